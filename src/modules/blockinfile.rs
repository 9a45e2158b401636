//! `blockinfile`: insert/update/remove a block of lines between marker lines.

use async_trait::async_trait;

use super::textfile::{self, lossy, splitlines_keep, Remote};
use super::{pyre, util, Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    mutually_exclusive: &[&["insertbefore", "insertafter"]],
    example: "- ansible.builtin.blockinfile:\n    path: /etc/ssh/sshd_config\n    block: |\n      Match User deploy\n      PasswordAuthentication no\n",
    ..ModuleSpec::new(
        "blockinfile",
        "Insert/update/remove a text block surrounded by marker lines.",
        crate::with_attr_params![
            Param::new("path", Kind::Path, "The file to modify.").aliases(&["dest", "destfile", "name"]).required(),
            Param::new("state", Kind::Str, "Whether the block should be there or not.").choices(&["absent", "present"]).default("present"),
            Param::new("marker", Kind::Str, "Marker line template; {mark} becomes marker_begin/marker_end.").default("# {mark} ANSIBLE MANAGED BLOCK"),
            Param::new("block", Kind::Str, "The text to insert inside the marker lines; empty removes the block.").aliases(&["content"]).default(""),
            Param::new("insertafter", Kind::Str, "EOF or a regex: insert after the last matching line when the markers are not found."),
            Param::new("insertbefore", Kind::Str, "BOF or a regex: insert before the last matching line when the markers are not found."),
            Param::new("create", Kind::Bool, "Create the file when it does not exist.").default("no"),
            Param::new("backup", Kind::Bool, "Keep a timestamped copy of the old file.").default("no"),
            Param::new("validate", Kind::Str, "Command to validate the new file before it is placed; %s is the temporary file."),
            Param::new("marker_begin", Kind::Str, "Replaces {mark} in the opening marker.").default("BEGIN"),
            Param::new("marker_end", Kind::Str, "Replaces {mark} in the closing marker.").default("END"),
            Param::new("append_newline", Kind::Bool, "Add a blank line after the block unless at the end of the file or one is there.").default("no"),
            Param::new("prepend_newline", Kind::Bool, "Add a blank line before the block unless at the start of the file or one is there.").default("no"),
            Param::new("encoding", Kind::Str, "Only utf-8 (bytes are kept as they are).").default("utf-8"),
        ],
    )
};

pub struct BlockInFile;

pub struct Block<'a> {
    pub present: bool,
    pub block: &'a str,
    pub marker: &'a str,
    pub marker_begin: &'a str,
    pub marker_end: &'a str,
    pub insertafter: Option<&'a str>,
    pub insertbefore: Option<&'a str>,
    pub append_newline: bool,
    pub prepend_newline: bool,
}

/// Ansible's block placement: the new content, and whether the block is there after.
pub fn compute(original: Option<&[u8]>, b: &Block<'_>) -> Result<(Vec<u8>, bool), String> {
    let mut lines = original.map(splitlines_keep).unwrap_or_default();
    let (insertafter, insertbefore) = match (b.insertafter, b.insertbefore) {
        (None, None) => (Some("EOF"), None),
        other => other,
    };
    let insert_pat = match (insertafter, insertbefore) {
        (Some(a), _) if a != "EOF" => Some(a),
        (None, Some(bf)) if bf != "BOF" => Some(bf),
        _ => None,
    };
    let insert_re = insert_pat
        .map(|p| pyre::compile(p, false, false))
        .transpose()?;
    let mk = |m: &str| {
        let mut v = b.marker.replace("{mark}", m).into_bytes();
        v.push(b'\n');
        v
    };
    let (marker0, marker1) = (mk(b.marker_begin), mk(b.marker_end));
    let mut blocklines: Vec<Vec<u8>> = Vec::new();
    if b.present && !b.block.is_empty() {
        let mut body = b.block.as_bytes().to_vec();
        if !body.ends_with(b"\n") {
            body.push(b'\n');
        }
        blocklines.push(marker0.clone());
        blocklines.extend(splitlines_keep(&body));
        blocklines.push(marker1.clone());
    }
    let (mut n0, mut n1) = (None, None);
    for (i, l) in lines.iter().enumerate() {
        if *l == marker0 {
            n0 = Some(i);
        }
        if *l == marker1 {
            n1 = Some(i);
        }
    }
    let mut n0 = match (n0, n1.take()) {
        (Some(a), Some(z)) if a < z => {
            lines.drain(a..=z);
            a
        }
        (Some(a), Some(z)) => {
            lines.drain(z..=a);
            z
        }
        _ => {
            if let (Some(re), Some(pat)) = (&insert_re, insert_pat) {
                let mut found: Option<usize> = None;
                if pyre::has_inline_multiline(pat) {
                    if let Some(orig) = original {
                        if let Some(m) = re.find(orig) {
                            found = Some(if insertafter.is_some() {
                                orig[..m.end()].iter().filter(|c| **c == b'\n').count()
                            } else {
                                orig[..m.start()].iter().filter(|c| **c == b'\n').count()
                            });
                        }
                    }
                } else {
                    for (i, l) in lines.iter().enumerate() {
                        let s = l.strip_suffix(b"\n").unwrap_or(l);
                        if re.is_match(s) || re.is_match(l) {
                            found = Some(i);
                        }
                    }
                }
                match found {
                    None => lines.len(),
                    Some(i) if insertafter.is_some() => i + 1,
                    Some(i) => i,
                }
            } else if insertbefore.is_some() {
                0
            } else {
                lines.len()
            }
        }
    };
    n0 = n0.min(lines.len());
    if n0 > 0 && !lines[n0 - 1].ends_with(b"\n") {
        lines[n0 - 1].push(b'\n');
    }
    if b.prepend_newline && b.present && n0 != 0 && lines[n0 - 1] != b"\n" {
        lines.insert(n0, b"\n".to_vec());
        n0 += 1;
    }
    let count = blocklines.len();
    let has_block = count > 0;
    lines.splice(n0..n0, blocklines);
    if b.append_newline && b.present {
        let after = n0 + count;
        if after < lines.len() && lines[after] != b"\n" {
            lines.insert(after, b"\n".to_vec());
        }
    }
    Ok((lines.concat(), has_block))
}

#[async_trait]
impl Module for BlockInFile {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let path = args.req_str("path")?;
        textfile::edit_file!(ctx, path, |r| edit(args, ctx, r))
    }
}

/// The edit on the file as `r` shows it.
async fn edit(args: &Args, ctx: &Ctx<'_>, r: &Remote) -> ModResult {
    let path = r.path.as_str();
    if r.is_dir() {
        return Err(failed_rc(format!("Path {path} is a directory !"), 256));
    }
    let present = args.str("state") != Some("absent");
    if !r.exists() {
        if !args.bool("create") {
            return Err(failed_rc(format!("Path {path} does not exist !"), 257));
        }
        if !present {
            return Ok(Outcome::ok().msg(format!("File {path} not present")));
        }
    }
    let b = Block {
        present,
        block: args.str("block").unwrap_or(""),
        marker: args
            .str("marker")
            .unwrap_or("# {mark} ANSIBLE MANAGED BLOCK"),
        marker_begin: args.str("marker_begin").unwrap_or("BEGIN"),
        marker_end: args.str("marker_end").unwrap_or("END"),
        insertafter: args.str("insertafter"),
        insertbefore: args.str("insertbefore"),
        append_newline: args.bool("append_newline"),
        prepend_newline: args.bool("prepend_newline"),
    };
    let original = if r.exists() {
        Some(r.content.clone().unwrap_or_default())
    } else {
        None
    };
    let (result, has_block) = compute(original.as_deref(), &b).map_err(ModError::fail)?;
    let (changed, mut msg) = match &original {
        Some(o) if *o == result => (false, ""),
        None => (true, "File created"),
        Some(_) if !has_block => (true, "Block removed"),
        Some(_) => (true, "Block inserted"),
    };
    if !r.exists() && !present {
        msg = "";
    }
    let mut o = Outcome::ok();
    if ctx.diff_mode && changed {
        let mut d = util::text_diff(
            &lossy(original.as_deref().unwrap_or_default()),
            &lossy(&result),
            path,
        );
        d.before_header = format!("{path} (content)");
        d.after_header = d.before_header.clone();
        o = o.diff(d);
    }
    let mut backup = None;
    if changed && !ctx.check_mode {
        backup = textfile::save(ctx, args, r, &result).await?;
    }
    let mut changed = changed;
    let mut msg = msg.to_string();
    if !ctx.check_mode || r.exists() {
        textfile::check_attrs(ctx, args, r, changed, &mut changed, &mut msg).await?;
    }
    o.changed = changed;
    o = o.msg(msg);
    if let Some(b) = backup {
        o = o.with("backup_file", b);
    }
    Ok(o)
}

fn failed_rc(msg: String, rc: i64) -> ModError {
    let mut data = serde_json::Map::new();
    data.insert("rc".into(), rc.into());
    ModError::Failed { msg, data }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{field, TestEnv};
    use serde_json::json;

    fn blk<'a>(block: &'a str) -> Block<'a> {
        Block {
            present: true,
            block,
            marker: "# {mark} ANSIBLE MANAGED BLOCK",
            marker_begin: "BEGIN",
            marker_end: "END",
            insertafter: None,
            insertbefore: None,
            append_newline: false,
            prepend_newline: false,
        }
    }

    fn run(orig: &str, b: &Block<'_>) -> String {
        String::from_utf8(compute(Some(orig.as_bytes()), b).unwrap().0).unwrap()
    }

    const B: &str = "# BEGIN ANSIBLE MANAGED BLOCK\nx\ny\n# END ANSIBLE MANAGED BLOCK\n";

    #[test]
    fn insert_update_remove() {
        assert_eq!(run("a\n", &blk("x\ny")), format!("a\n{B}"));
        // No final newline on the last line: one is added first.
        assert_eq!(run("a", &blk("x\ny\n")), format!("a\n{B}"));
        // Update in place keeps the position.
        assert_eq!(
            run(
                "a\n# BEGIN ANSIBLE MANAGED BLOCK\nold\n# END ANSIBLE MANAGED BLOCK\nz\n",
                &blk("x\ny")
            ),
            format!("a\n{B}z\n")
        );
        // Idempotent.
        assert_eq!(run(&format!("a\n{B}"), &blk("x\ny")), format!("a\n{B}"));
        // Empty block or absent: removed.
        assert_eq!(run(&format!("a\n{B}z\n"), &blk("")), "a\nz\n");
        assert_eq!(
            run(
                &format!("a\n{B}z\n"),
                &Block {
                    present: false,
                    ..blk("x")
                }
            ),
            "a\nz\n"
        );
    }

    #[test]
    fn placement() {
        assert_eq!(
            run(
                "a\nb\n",
                &Block {
                    insertbefore: Some("BOF"),
                    ..blk("x\ny")
                }
            ),
            format!("{B}a\nb\n")
        );
        assert_eq!(
            run(
                "a\nk\nb\nk\nc\n",
                &Block {
                    insertafter: Some("^k"),
                    ..blk("x\ny")
                }
            ),
            format!("a\nk\nb\nk\n{B}c\n")
        );
        assert_eq!(
            run(
                "a\nk\nb\n",
                &Block {
                    insertbefore: Some("^k"),
                    ..blk("x\ny")
                }
            ),
            format!("a\n{B}k\nb\n")
        );
        assert_eq!(
            run(
                "a\n",
                &Block {
                    insertbefore: Some("^zz"),
                    ..blk("x\ny")
                }
            ),
            format!("a\n{B}")
        );
        // Multiline regex searched over the whole file.
        assert_eq!(
            run(
                "a\nk\nl\nb\n",
                &Block {
                    insertafter: Some("(?m)^k\\nl"),
                    ..blk("x\ny")
                }
            ),
            format!("a\nk\nl\n{B}b\n")
        );
        // Custom markers.
        let b = Block {
            marker: "<!-- {mark} -->",
            marker_begin: "start",
            marker_end: "stop",
            ..blk("x")
        };
        assert_eq!(run("", &b), "<!-- start -->\nx\n<!-- stop -->\n");
    }

    #[test]
    fn blank_lines() {
        let b = Block {
            prepend_newline: true,
            append_newline: true,
            insertafter: Some("^a"),
            ..blk("x\ny")
        };
        assert_eq!(run("a\nz\n", &b), format!("a\n\n{B}\nz\n"));
        // At the start/end of the file nothing is added.
        let b = Block {
            prepend_newline: true,
            append_newline: true,
            ..blk("x\ny")
        };
        assert_eq!(run("", &b), B);
    }

    #[tokio::test]
    async fn runs_on_a_real_file() {
        let env = TestEnv::new();
        let f = env.write("hosts", "127.0.0.1 localhost\n");
        let args = json!({"path": f, "block": "10.0.0.1 a\n10.0.0.2 b\n", "backup": true});
        let o = env.ok(&BlockInFile, args.clone()).await;
        assert!(o.changed);
        assert_eq!(o.msg.as_deref(), Some("Block inserted"));
        assert!(field(&o, "backup_file").is_string());
        assert_eq!(env.read("hosts"), "127.0.0.1 localhost\n# BEGIN ANSIBLE MANAGED BLOCK\n10.0.0.1 a\n10.0.0.2 b\n# END ANSIBLE MANAGED BLOCK\n");
        let o = env.ok(&BlockInFile, args).await;
        assert!(!o.changed);
        assert_eq!(o.msg.as_deref(), Some(""));

        let o = env
            .ok(&BlockInFile, json!({"path": f, "state": "absent"}))
            .await;
        assert_eq!((o.changed, o.msg.as_deref()), (true, Some("Block removed")));
        assert_eq!(env.read("hosts"), "127.0.0.1 localhost\n");

        // Check mode on a fresh target.
        let g = env.path("sub/new.conf");
        let args = json!({"path": g, "block": "k=v", "create": true});
        let o = env.check(&BlockInFile, args.clone()).await;
        assert_eq!((o.changed, o.msg.as_deref()), (true, Some("File created")));
        assert!(!env.pathbuf("sub").exists());
        assert!(env.ok(&BlockInFile, args.clone()).await.changed);
        assert!(!env.ok(&BlockInFile, args).await.changed);
        assert!(env
            .run(
                &BlockInFile,
                json!({"path": env.path("missing"), "block": "x"})
            )
            .await
            .is_err());
    }
}
