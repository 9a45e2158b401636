//! `replace`: replace all matches of a Python regex in a file (MULTILINE),
//! optionally only between `after` and `before` (DOTALL).

use async_trait::async_trait;

use super::textfile::{self, lossy, Remote};
use super::{pyre, util, Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.replace:\n    path: /etc/hosts\n    regexp: '(\\s+)old\\.host\\.name(\\s+.*)?$'\n    replace: '\\1new.host.name\\2'\n",
    ..ModuleSpec::new(
        "replace",
        "Replace all instances of a pattern in a file, using back-referenced regular expressions.",
        crate::with_attr_params![
            Param::new("path", Kind::Path, "The file to modify.").aliases(&["dest", "destfile", "name"]).required(),
            Param::new("regexp", Kind::Str, "Python regular expression (MULTILINE) to look for.").required(),
            Param::new("replace", Kind::Str, "Replacement; may use \\1, \\g<1>, \\g<name>. Empty removes the matches.").default(""),
            Param::new("after", Kind::Str, "Only replace after this match (DOTALL)."),
            Param::new("before", Kind::Str, "Only replace before this match (DOTALL)."),
            Param::new("backup", Kind::Bool, "Keep a timestamped copy of the old file.").default("no"),
            Param::new("validate", Kind::Str, "Command to validate the new file before it is placed; %s is the temporary file."),
            Param::new("encoding", Kind::Str, "Character encoding; the file's bytes are matched as UTF-8.").default("utf-8"),
            Param::new("others", Kind::Raw, "Accepted for compatibility."),
        ],
    )
};

pub struct Replace;

#[derive(Debug, PartialEq)]
pub enum Replaced {
    /// after/before did not match: nothing examined.
    NoSection(String),
    /// New content and number of replacements (0: unchanged).
    Done(Vec<u8>, usize),
}

/// Ansible's replace: the section between `after` and `before`, then `re.subn`.
pub fn compute(
    contents: &[u8],
    regexp: &str,
    replace: &str,
    after: Option<&str>,
    before: Option<&str>,
) -> Result<Replaced, String> {
    let after = after.filter(|s| !s.is_empty());
    let before = before.filter(|s| !s.is_empty());
    let (start, end, pattern) = match (after, before) {
        (None, None) => (0, contents.len(), None),
        (a, b) => {
            let pat = match (a, b) {
                (Some(a), Some(b)) => format!("{a}(?P<subsection>.*?){b}"),
                (Some(a), None) => format!("{a}(?P<subsection>.*)"),
                (None, Some(b)) => format!("(?P<subsection>.*){b}"),
                _ => unreachable!(),
            };
            let re = pyre::compile(&pat, false, true)?;
            let Some(c) = re.captures(contents) else {
                return Ok(Replaced::NoSection(format!(
                    "Pattern for before/after params did not match the given file: {pat}"
                )));
            };
            let m = c
                .name("subsection")
                .ok_or("internal error: no subsection")?;
            (m.start(), m.end(), Some(pat))
        }
    };
    let _ = pattern;
    let re = pyre::compile(regexp, true, false)
        .map_err(|e| format!("Unable to process replace due to error: {e}"))?;
    let tpl = pyre::translate_template(replace, &re)
        .map_err(|e| format!("Unable to process replace due to error: {e}"))?;
    let section = &contents[start..end];
    let count = re.find_iter(section).count();
    if count == 0 {
        return Ok(Replaced::Done(contents.to_vec(), 0));
    }
    let new_section = re.replace_all(section, tpl.as_bytes());
    if new_section.as_ref() == section {
        return Ok(Replaced::Done(contents.to_vec(), 0));
    }
    let mut out = Vec::with_capacity(contents.len());
    out.extend_from_slice(&contents[..start]);
    out.extend_from_slice(&new_section);
    out.extend_from_slice(&contents[end..]);
    Ok(Replaced::Done(out, count))
}

#[async_trait]
impl Module for Replace {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let path = args.req_str("path")?;
        args.req_str("regexp")?;
        textfile::edit_file!(ctx, path, |r| edit(args, ctx, r))
    }
}

/// The edit on the file as `r` shows it.
async fn edit(args: &Args, ctx: &Ctx<'_>, r: &Remote) -> ModResult {
    let path = r.path.as_str();
    let regexp = args.req_str("regexp")?;
    if r.is_dir() {
        return Err(failed_rc(format!("Path {path} is a directory !"), 256));
    }
    if !r.exists() {
        return Err(failed_rc(format!("Path {path} does not exist !"), 257));
    }
    let contents = r.content.clone().unwrap_or_default();
    let res = compute(
        &contents,
        regexp,
        args.str("replace").unwrap_or(""),
        args.str("after"),
        args.str("before"),
    )
    .map_err(ModError::fail)?;
    let (new, count) = match res {
        Replaced::NoSection(msg) => return Ok(Outcome::ok().msg(msg).with("rc", 0)),
        Replaced::Done(new, count) => (new, count),
    };
    let mut changed = count > 0;
    let mut msg = if changed {
        format!("{count} replacements made")
    } else {
        String::new()
    };
    let mut o = Outcome::ok().with("rc", 0);
    if changed && ctx.diff_mode {
        o = o.diff(util::text_diff(&lossy(&contents), &lossy(&new), path));
    }
    if changed && !ctx.check_mode {
        if let Some(b) = textfile::save(ctx, args, r, &new).await? {
            o = o.with("backup_file", b);
        }
    }
    let content_changed = changed;
    textfile::check_attrs(ctx, args, r, content_changed, &mut changed, &mut msg).await?;
    o.changed = changed;
    Ok(o.msg(msg))
}

fn failed_rc(msg: String, rc: i64) -> ModError {
    let mut data = serde_json::Map::new();
    data.insert("rc".into(), rc.into());
    ModError::Failed { msg, data }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::TestEnv;
    use serde_json::json;

    fn done(c: &str, re: &str, rep: &str, a: Option<&str>, b: Option<&str>) -> (String, usize) {
        match compute(c.as_bytes(), re, rep, a, b).unwrap() {
            Replaced::Done(v, n) => (String::from_utf8(v).unwrap(), n),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn multiline_and_backrefs() {
        assert_eq!(
            done("a 1\nb 2\n", r"^(\w) (\d)$", r"\2 \1", None, None),
            ("1 a\n2 b\n".into(), 2)
        );
        assert_eq!(
            done("host old\n", r"(?P<k>host) old", r"\g<k> new", None, None),
            ("host new\n".into(), 1)
        );
        // Replacement that yields the same text: unchanged.
        assert_eq!(done("abc\n", "b", "b", None, None), ("abc\n".into(), 0));
        assert_eq!(done("x$y\n", r"\$", "$$", None, None), ("x$$y\n".into(), 1));
    }

    #[test]
    fn sections() {
        let c = "a\n<V>\na\n</V>\na\n";
        assert_eq!(
            done(c, "^a$", "#a", Some("(?m)^<V>"), Some("</V>"),).0,
            "a\n<V>\n#a\n</V>\na\n"
        );
        assert_eq!(
            done(c, "^a$", "#a", Some("</V>"), None).0,
            "a\n<V>\na\n</V>\n#a\n"
        );
        assert_eq!(
            done(c, "^a$", "#a", None, Some("<V>")).0,
            "#a\n<V>\na\n</V>\na\n"
        );
        assert!(matches!(
            compute(c.as_bytes(), "a", "b", Some("nomatch"), None).unwrap(),
            Replaced::NoSection(_)
        ));
    }

    #[tokio::test]
    async fn runs_on_a_real_file() {
        let env = TestEnv::new();
        let f = env.write("sshd_config", "#PermitRootLogin yes\nPort 22\n");
        let args = json!({"path": f, "regexp": r"^#?PermitRootLogin \w+$", "replace": "PermitRootLogin no"});
        let o = env.check(&Replace, args.clone()).await;
        assert!(o.changed);
        assert_eq!(env.read("sshd_config"), "#PermitRootLogin yes\nPort 22\n");
        let o = env.ok(&Replace, args.clone()).await;
        assert_eq!(
            (o.changed, o.msg.as_deref()),
            (true, Some("1 replacements made"))
        );
        assert_eq!(env.read("sshd_config"), "PermitRootLogin no\nPort 22\n");
        let o = env.ok(&Replace, args).await;
        assert!(!o.changed);
        assert!(env
            .run(&Replace, json!({"path": env.path("nope"), "regexp": "x"}))
            .await
            .unwrap_err()
            .to_string()
            .contains("does not exist"));
    }
}
