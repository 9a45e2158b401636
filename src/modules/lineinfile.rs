//! `lineinfile`: ensure a line is in a file, or replace/remove lines by regex.
//!
//! The file is read once, the new content is computed on the controller with
//! Ansible's exact rules (`present`/`absent` below), and written atomically.

use async_trait::async_trait;
use regex::bytes::Regex;

use super::textfile::{self, lossy, readlines, rstrip_nl, Remote};
use super::{pyre, util, Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    mutually_exclusive: &[&["insertbefore", "insertafter"], &["regexp", "search_string"]],
    example: "- ansible.builtin.lineinfile:\n    path: /etc/selinux/config\n    regexp: '^SELINUX='\n    line: SELINUX=enforcing\n",
    ..ModuleSpec::new(
        "lineinfile",
        "Manage lines in text files: ensure a line is present, replace it by regex, or remove matching lines.",
        crate::with_attr_params![
            Param::new("path", Kind::Path, "The file to modify.").aliases(&["dest", "destfile", "name"]).required(),
            Param::new("state", Kind::Str, "Whether the line should be there or not.").choices(&["absent", "present"]).default("present"),
            Param::new("regexp", Kind::Str, "Python regular expression looked for in every line; with state=present the last matching line is replaced, with state=absent all are removed.").aliases(&["regex"]),
            Param::new("search_string", Kind::Str, "Literal string looked for in every line (instead of regexp)."),
            Param::new("line", Kind::Str, "The line to insert/replace (required for state=present).").aliases(&["value"]),
            Param::new("backrefs", Kind::Bool, "Expand back-references of regexp in line; if regexp matches nothing the file is left unchanged.").default("no"),
            Param::new("insertafter", Kind::Str, "EOF or a regex: insert after the last (or first with firstmatch) matching line, when regexp/search_string found nothing."),
            Param::new("insertbefore", Kind::Str, "BOF or a regex: insert before the last (or first with firstmatch) matching line."),
            Param::new("create", Kind::Bool, "Create the file when it does not exist.").default("no"),
            Param::new("backup", Kind::Bool, "Keep a timestamped copy of the old file.").default("no"),
            Param::new("firstmatch", Kind::Bool, "insertafter/insertbefore use the first matching line.").default("no"),
            Param::new("validate", Kind::Str, "Command to validate the new file before it is placed; %s is the temporary file."),
            Param::new("others", Kind::Raw, "Accepted for compatibility."),
        ],
    )
};

pub struct LineInFile;

/// What to look for and what to write.
pub struct Present<'a> {
    pub regexp: Option<&'a Regex>,
    pub search_string: Option<&'a str>,
    pub line: &'a str,
    pub insertafter: Option<&'a str>,
    pub insertbefore: Option<&'a str>,
    pub backrefs: bool,
    pub firstmatch: bool,
}

/// Python `re.search` on a line as `readlines()` gives it (with its newline):
/// tried without the newline first so that `$` matches at the line's end.
fn search<'h>(re: &Regex, line: &'h [u8]) -> Option<regex::bytes::Captures<'h>> {
    let stripped = line.strip_suffix(b"\n").unwrap_or(line);
    re.captures(stripped).or_else(|| {
        if stripped.len() != line.len() {
            re.captures(line)
        } else {
            None
        }
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn ends_nl(l: &[u8]) -> bool {
    matches!(l.last(), Some(b'\n') | Some(b'\r'))
}

/// Ansible's `present()`: the new lines, whether they changed, and the message.
pub fn present(
    mut lines: Vec<Vec<u8>>,
    p: &Present<'_>,
) -> Result<(Vec<Vec<u8>>, bool, &'static str), String> {
    let ins_re = match (p.insertafter, p.insertbefore) {
        (Some(a), _) if a != "BOF" && a != "EOF" => Some(pyre::compile(a, false, false)?),
        (None, Some(b)) if b != "BOF" => Some(pyre::compile(b, false, false)?),
        _ => None,
    };
    let b_line = p.line.as_bytes();
    let mut index: [isize; 2] = [-1, -1];
    let mut matched_line: Option<usize> = None;
    let mut exact = false;

    if let Some(re) = p.regexp {
        for (i, l) in lines.iter().enumerate() {
            if search(re, l).is_some() {
                index[0] = i as isize;
                matched_line = Some(i);
                if p.firstmatch {
                    break;
                }
            }
        }
    }
    if let Some(s) = p.search_string {
        for (i, l) in lines.iter().enumerate() {
            if contains(l, s.as_bytes()) {
                index[0] = i as isize;
                matched_line = Some(i);
                if p.firstmatch {
                    break;
                }
            }
        }
    }
    if matched_line.is_none() {
        for (i, l) in lines.iter().enumerate() {
            if rstrip_nl(l) == b_line {
                index[0] = i as isize;
                exact = true;
            } else if ins_re
                .as_ref()
                .map(|r| search(r, l).is_some())
                .unwrap_or(false)
            {
                if p.insertafter.is_some() {
                    index[1] = i as isize + 1;
                    if p.firstmatch {
                        break;
                    }
                }
                if p.insertbefore.is_some() {
                    index[1] = i as isize;
                    if p.firstmatch {
                        break;
                    }
                }
            }
        }
    }

    let mut with_nl = b_line.to_vec();
    with_nl.push(b'\n');
    let mut msg = "";
    let mut changed = false;
    if index[0] != -1 {
        let i = index[0] as usize;
        let mut new_line = match (p.backrefs, p.regexp, matched_line) {
            (true, Some(re), Some(m)) => {
                let caps = search(re, &lines[m]).ok_or("internal error: match vanished")?;
                pyre::expand(re, &caps, p.line)?
            }
            _ => b_line.to_vec(),
        };
        if !new_line.ends_with(b"\n") {
            new_line.push(b'\n');
        }
        let _ = exact;
        if lines[i] != new_line {
            lines[i] = new_line;
            msg = "line replaced";
            changed = true;
        }
    } else if p.backrefs {
        // Not safe to build the line without the regexp's groups: leave the file alone.
    } else if p.insertbefore == Some("BOF") || p.insertafter == Some("BOF") {
        lines.insert(0, with_nl);
        msg = "line added";
        changed = true;
    } else if p.insertafter == Some("EOF") || index[1] == -1 {
        if lines.last().map(|l| !ends_nl(l)).unwrap_or(false) {
            lines.push(b"\n".to_vec());
        }
        lines.push(with_nl);
        msg = "line added";
        changed = true;
    } else if p.insertafter.is_some() {
        let at = index[1] as usize;
        if lines.len() == at {
            if rstrip_nl(&lines[at - 1]) != b_line {
                lines.push(with_nl);
                msg = "line added";
                changed = true;
            }
        } else if rstrip_nl(&lines[at]) != b_line {
            lines.insert(at, with_nl);
            msg = "line added";
            changed = true;
        }
    } else {
        lines.insert(index[1] as usize, with_nl);
        msg = "line added";
        changed = true;
    }
    Ok((lines, changed, msg))
}

/// Ansible's `absent()`: lines kept and how many were removed.
pub fn absent(
    lines: Vec<Vec<u8>>,
    regexp: Option<&Regex>,
    search_string: Option<&str>,
    line: Option<&str>,
) -> (Vec<Vec<u8>>, usize) {
    let mut found = 0;
    let kept = lines
        .into_iter()
        .filter(|l| {
            let hit = if let Some(re) = regexp {
                search(re, l).is_some()
            } else if let Some(s) = search_string {
                contains(l, s.as_bytes())
            } else {
                rstrip_nl(l) == line.unwrap_or_default().as_bytes()
            };
            if hit {
                found += 1;
            }
            !hit
        })
        .collect();
    (kept, found)
}

#[async_trait]
impl Module for LineInFile {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let path = args.req_str("path")?;
        let regexp = args.str("regexp");
        let search_string = args.str("search_string");
        let backrefs = args.bool("backrefs");
        if search_string.is_some() && backrefs {
            return Err(ModError::fail(
                "parameters are mutually exclusive: backrefs|search_string",
            ));
        }
        let mut warnings: Vec<String> = Vec::new();
        if regexp == Some("") || search_string == Some("") {
            let (name, extra) = if regexp == Some("") {
                ("regular expression", " If this is desired, use '^' to match every line in the file and avoid this warning.")
            } else {
                ("search string", "")
            };
            warnings.push(format!("The {name} is an empty string, which will match every line in the file. This may have unintended consequences, such as replacing the last line in the file rather than appending.{extra}"));
        }
        let re = regexp
            .map(|r| pyre::compile(r, false, false))
            .transpose()
            .map_err(ModError::fail)?;
        let state = args.str("state").unwrap_or("present");
        textfile::edit_file!(ctx, path, |r| edit(
            args,
            ctx,
            r,
            state,
            re.as_ref(),
            &warnings
        ))
    }
}

/// The edit on the file as `r` shows it.
async fn edit(
    args: &Args,
    ctx: &Ctx<'_>,
    r: &Remote,
    state: &str,
    re: Option<&Regex>,
    warnings: &[String],
) -> ModResult {
    let path = r.path.as_str();
    let regexp = args.str("regexp");
    let search_string = args.str("search_string");
    let line = args.str("line");
    let backrefs = args.bool("backrefs");
    if r.is_dir() {
        return Err(failed_rc(format!("Path {path} is a directory !"), 256));
    }
    let mut o = if state == "present" {
        if backrefs && regexp.is_none() {
            return Err(ModError::fail("regexp is required with backrefs=true"));
        }
        let line = line.ok_or_else(|| ModError::fail("line is required with state=present"))?;
        let (ia, ib) = match (args.str("insertafter"), args.str("insertbefore")) {
            (None, None) => (Some("EOF"), None),
            other => other,
        };
        let p = Present {
            regexp: re,
            search_string,
            line,
            insertafter: ia,
            insertbefore: ib,
            backrefs,
            firstmatch: args.bool("firstmatch"),
        };
        run_present(args, ctx, r, &p).await?
    } else {
        if regexp.is_none() && search_string.is_none() && line.is_none() {
            return Err(ModError::fail(
                "one of line, search_string, or regexp is required with state=absent",
            ));
        }
        run_absent(args, ctx, r, re, search_string, line).await?
    };
    if !warnings.is_empty() {
        o = o.with("warnings", warnings.to_vec());
    }
    Ok(o)
}

fn failed_rc(msg: String, rc: i64) -> ModError {
    let mut data = serde_json::Map::new();
    data.insert("rc".into(), rc.into());
    ModError::Failed { msg, data }
}

async fn run_present(args: &Args, ctx: &Ctx<'_>, r: &Remote, p: &Present<'_>) -> ModResult {
    if !r.exists() && !args.bool("create") {
        return Err(failed_rc(
            format!("Destination {} does not exist !", r.path),
            257,
        ));
    }
    let before = r.content.clone().unwrap_or_default();
    let (lines, changed, msg) = present(readlines(&before), p).map_err(ModError::fail)?;
    let after: Vec<u8> = lines.concat();
    finish(
        args,
        ctx,
        r,
        &before,
        &after,
        changed,
        msg.to_string(),
        None,
    )
    .await
}

async fn run_absent(
    args: &Args,
    ctx: &Ctx<'_>,
    r: &Remote,
    re: Option<&Regex>,
    ss: Option<&str>,
    line: Option<&str>,
) -> ModResult {
    if !r.exists() {
        return Ok(Outcome::ok()
            .msg("file not present")
            .with("backup", "")
            .with("found", 0));
    }
    let before = r.content.clone().unwrap_or_default();
    let (lines, found) = absent(readlines(&before), re, ss, line);
    let after: Vec<u8> = lines.concat();
    let msg = if found > 0 {
        format!("{found} line(s) removed")
    } else {
        String::new()
    };
    finish(args, ctx, r, &before, &after, found > 0, msg, Some(found)).await
}

#[allow(clippy::too_many_arguments)]
async fn finish(
    args: &Args,
    ctx: &Ctx<'_>,
    r: &Remote,
    before: &[u8],
    after: &[u8],
    changed: bool,
    mut msg: String,
    found: Option<usize>,
) -> ModResult {
    let mut o = Outcome::ok();
    if ctx.diff_mode && changed {
        let mut d = util::text_diff(&lossy(before), &lossy(after), &r.path);
        d.before_header = format!("{} (content)", r.path);
        d.after_header = d.before_header.clone();
        o = o.diff(d);
    }
    let mut backup = String::new();
    if changed && !ctx.check_mode {
        if let Some(b) = textfile::save(ctx, args, r, after).await? {
            backup = b;
        }
    }
    let mut changed = changed;
    if !ctx.check_mode || r.exists() {
        textfile::check_attrs(ctx, args, r, changed, &mut changed, &mut msg).await?;
    }
    o.changed = changed;
    o = o.msg(msg).with("backup", backup);
    if let Some(n) = found {
        o = o.with("found", n);
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{field, TestEnv};
    use serde_json::json;

    fn run(content: &str, p: &Present<'_>) -> (String, bool, &'static str) {
        let (lines, changed, msg) = present(readlines(content.as_bytes()), p).unwrap();
        (String::from_utf8(lines.concat()).unwrap(), changed, msg)
    }

    fn pr<'a>(line: &'a str) -> Present<'a> {
        Present {
            regexp: None,
            search_string: None,
            line,
            insertafter: Some("EOF"),
            insertbefore: None,
            backrefs: false,
            firstmatch: false,
        }
    }

    #[test]
    fn appends_and_is_idempotent() {
        assert_eq!(
            run("a\nb\n", &pr("c")),
            ("a\nb\nc\n".into(), true, "line added")
        );
        assert_eq!(run("a\nc\nb\n", &pr("c")), ("a\nc\nb\n".into(), false, ""));
        // A missing final newline is added before the new line.
        assert_eq!(run("a", &pr("c")).0, "a\nc\n");
        assert_eq!(run("", &pr("c")).0, "c\n");
    }

    #[test]
    fn regexp_replaces_last_match() {
        let re = pyre::compile("^port=", false, false).unwrap();
        let p = Present {
            regexp: Some(&re),
            ..pr("port=22")
        };
        assert_eq!(
            run("port=1\nx\nport=2\n", &p),
            ("port=1\nx\nport=22\n".into(), true, "line replaced")
        );
        assert!(!run("port=1\nx\nport=22\n", &p).1);
        // No match: appended at EOF.
        assert_eq!(run("x\n", &p).0, "x\nport=22\n");
        // firstmatch replaces the first one.
        let p = Present {
            firstmatch: true,
            ..p
        };
        assert_eq!(run("port=1\nport=2\n", &p).0, "port=22\nport=2\n");
        // `$` matches at the line's end even though lines keep their newline.
        let re = pyre::compile("^x$", false, false).unwrap();
        assert_eq!(
            run(
                "x\ny\n",
                &Present {
                    regexp: Some(&re),
                    ..pr("z")
                }
            )
            .0,
            "z\ny\n"
        );
    }

    #[test]
    fn line_already_present_anywhere_is_ok() {
        let re = pyre::compile("^nomatch", false, false).unwrap();
        let p = Present {
            regexp: Some(&re),
            ..pr("b")
        };
        assert_eq!(run("a\nb\nc\n", &p), ("a\nb\nc\n".into(), false, ""));
    }

    #[test]
    fn backrefs() {
        let re = pyre::compile(r"^(host=)(.*)$", false, false).unwrap();
        let p = Present {
            regexp: Some(&re),
            backrefs: true,
            ..pr(r"\1new # was \2")
        };
        assert_eq!(run("a\nhost=old\n", &p).0, "a\nhost=new # was old\n");
        let p = Present {
            regexp: Some(&re),
            backrefs: true,
            ..pr(r"\g<1>x")
        };
        assert_eq!(run("host=y\n", &p).0, "host=x\n");
        // No match: unchanged, even though the line is absent.
        assert_eq!(run("a\n", &p), ("a\n".into(), false, ""));
    }

    #[test]
    fn insertafter_and_before() {
        let ia = |pat: &'static str, first: bool| Present {
            insertafter: Some(pat),
            firstmatch: first,
            ..pr("new")
        };
        assert_eq!(
            run("a\nx\nb\nx\nc\n", &ia("^x", false)).0,
            "a\nx\nb\nx\nnew\nc\n"
        );
        assert_eq!(
            run("a\nx\nb\nx\nc\n", &ia("^x", true)).0,
            "a\nx\nnew\nb\nx\nc\n"
        );
        // Match on the last line.
        assert_eq!(run("a\nx\n", &ia("^x", false)).0, "a\nx\nnew\n");
        // No match: EOF.
        assert_eq!(run("a\n", &ia("^zz", false)).0, "a\nnew\n");
        let ib = |pat: &'static str| Present {
            insertafter: None,
            insertbefore: Some(pat),
            ..pr("new")
        };
        assert_eq!(run("a\nx\nb\n", &ib("^x")).0, "a\nnew\nx\nb\n");
        assert_eq!(run("a\nb\n", &ib("BOF")).0, "new\na\nb\n");
        assert_eq!(run("x\nb\n", &ib("^x")).0, "new\nx\nb\n");
        assert_eq!(run("a\n", &ib("^zz")).0, "a\nnew\n");
        // regexp found: insertafter ignored, line replaced in place.
        let re = pyre::compile("^a", false, false).unwrap();
        let p = Present {
            regexp: Some(&re),
            insertafter: Some("^x"),
            ..pr("A")
        };
        assert_eq!(run("a\nx\n", &p).0, "A\nx\n");
    }

    #[test]
    fn search_string() {
        let p = Present {
            search_string: Some("[x]"),
            ..pr("y=1")
        };
        assert_eq!(run("a\n[x] = 0\n", &p).0, "a\ny=1\n");
    }

    #[test]
    fn absent_lines() {
        let re = pyre::compile("^#", false, false).unwrap();
        let (l, n) = absent(readlines(b"#a\nb\n#c\n"), Some(&re), None, None);
        assert_eq!((l.concat(), n), (b"b\n".to_vec(), 2));
        let (l, n) = absent(readlines(b"a\nb\n"), None, None, Some("b"));
        assert_eq!((l.concat(), n), (b"a\n".to_vec(), 1));
    }

    #[tokio::test]
    async fn runs_on_a_real_file() {
        let env = TestEnv::new();
        let f = env.write("etc/app.conf", "a=1\nport=1\n");
        let args = json!({"path": f, "regexp": "^port=", "line": "port=8080", "mode": "0640"});
        let o = env.ok(&LineInFile, args.clone()).await;
        assert!(o.changed);
        assert_eq!(
            o.msg.as_deref(),
            Some("line replaced and ownership, perms or SE linux context changed")
        );
        assert_eq!(env.read("etc/app.conf"), "a=1\nport=8080\n");
        let o = env.ok(&LineInFile, args).await;
        assert!(!o.changed, "second run must be ok: {:?}", o.msg);

        // Check mode on a fresh target: reports the change, writes nothing.
        let g = env.path("new/created.conf");
        let args = json!({"path": g, "line": "x=1", "create": true});
        let o = env.check(&LineInFile, args.clone()).await;
        assert!(o.changed);
        assert!(!env.pathbuf("new").exists());
        let o = env.ok(&LineInFile, args.clone()).await;
        assert!(o.changed);
        assert_eq!(env.read("new/created.conf"), "x=1\n");
        assert!(!env.ok(&LineInFile, args).await.changed);

        // Removal with backup and diff.
        let args = json!({"path": f, "regexp": "^a=", "state": "absent", "backup": true});
        let o = env
            .run_with(&LineInFile, args.clone(), false, true)
            .await
            .unwrap();
        assert!(o.changed);
        assert_eq!(o.msg.as_deref(), Some("1 line(s) removed"));
        assert_eq!(o.diff[0].before, "a=1\nport=8080\n");
        assert_eq!(o.diff[0].after, "port=8080\n");
        let b = field(&o, "backup").as_str().unwrap().to_string();
        assert!(std::path::Path::new(&b).exists());
        assert!(!env.ok(&LineInFile, args).await.changed);

        // Missing file without create.
        let e = env
            .run(&LineInFile, json!({"path": env.path("nope"), "line": "x"}))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("does not exist"));
    }

    #[tokio::test]
    async fn edits_through_a_symlink() {
        let env = TestEnv::new();
        let real = env.write("real.conf", "a\n");
        let link = env.path("link.conf");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        assert!(
            env.ok(&LineInFile, json!({"path": link, "line": "b"}))
                .await
                .changed
        );
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(env.read("real.conf"), "a\nb\n");
    }
}
