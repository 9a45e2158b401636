//! `file`: files, directories, links and their attributes.

use async_trait::async_trait;
use serde_json::json;

use super::util::{self, RStat};
use super::{Args, Ctx, Diff, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.file:\n    path: /srv/trainer\n    state: directory\n    mode: '0755'\n",
    ..ModuleSpec::new(
        "file",
        "Manage files, directories, symlinks and their attributes.",
        crate::with_compat_attr_params![
            Param::new("path", Kind::Path, "Path to manage.").aliases(&["dest", "name"]).required(),
            Param::new("state", Kind::Str, "file, directory, link, hard, touch or absent (default: the current state, or file).")
                .choices(&["file", "directory", "link", "hard", "touch", "absent"]),
            Param::new("mode", Kind::Mode, "Permissions: octal (0644 or '0644') or symbolic (u=rw,g=r)."),
            Param::new("owner", Kind::Str, "Owner name or uid."),
            Param::new("group", Kind::Str, "Group name or gid."),
            Param::new("src", Kind::Path, "Target of the link (link/hard)."),
            Param::new("recurse", Kind::Bool, "Apply attributes recursively (directory).").default("no"),
            Param::new("force", Kind::Bool, "Replace an existing file by a link.").default("no"),
            Param::new("follow", Kind::Bool, "Follow symlinks.").default("yes"),
            Param::new("modification_time", Kind::Str, "touch: 'now', 'preserve' or a time."),
            Param::new("access_time", Kind::Str, "touch: 'now', 'preserve' or a time."),
            Param::new("modification_time_format", Kind::Str, "Accepted for compatibility."),
            Param::new("access_time_format", Kind::Str, "Accepted for compatibility."),
        ],
    )
};

pub struct File;

fn state_name(s: &RStat) -> &str {
    if !s.exists {
        "absent"
    } else {
        match s.kind.as_str() {
            "directory" => "directory",
            "link" => "link",
            _ => "file",
        }
    }
}

/// Commands that bring owner/group/mode to what is asked, or none.
pub fn attr_fixes(
    args: &Args,
    path: &str,
    st: &RStat,
    recurse: bool,
) -> Result<Vec<String>, ModError> {
    let mut cmds = Vec::new();
    let q = quote(path);
    let r = if recurse { "-R " } else { "" };
    if let Some(o) = args.str("owner") {
        if recurse || (o != st.owner && o != st.uid.to_string()) {
            cmds.push(format!("chown {r}{} {q}", quote(o)));
        }
    }
    if let Some(g) = args.str("group") {
        if recurse || (g != st.group && g != st.gid.to_string()) {
            cmds.push(format!("chgrp {r}{} {q}", quote(g)));
        }
    }
    if let Some(mv) = args.get("mode") {
        let want = util::parse_mode(mv, st.mode, st.kind == "directory").map_err(ModError::fail)?;
        if let Some(m) = want {
            if recurse || m != st.mode & 0o7777 {
                cmds.push(format!("chmod {r}{:o} {q}", m));
            }
        }
    }
    Ok(cmds)
}

#[async_trait]
impl Module for File {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let path = args.req_str("path")?.to_string();
        let explicit = args.str("state");
        // One round trip on the common first run: the stat and, when the path
        // turns out to be absent, the commands planned for an absent path (its
        // plan needs no remote query), then the new stat. Otherwise the stat
        // alone and the change after it.
        let speculate = !ctx.check_mode && matches!(explicit, Some("directory" | "touch"));
        let mut after = None;
        let st = if speculate {
            let absent_plan = plan(
                args,
                ctx,
                &path,
                explicit.unwrap_or_default(),
                &RStat::default(),
            )
            .await?;
            let out = ctx
                .sh(&format!(
                    "p={q}\n{stat}\nif [ ! -e \"$p\" ] && [ ! -L \"$p\" ]; then\nset -e\n{cmds}\necho SPECULATED\n{stat}\nfi",
                    q = quote(&path),
                    stat = util::stat_snippet("p", false),
                    cmds = absent_plan.join("\n"),
                ))
                .await?;
            let text = out.stdout_str();
            if out.rc != 0 {
                return Err(ModError::fail(format!(
                    "{}: {}",
                    path,
                    out.stderr_str().trim()
                )));
            }
            if let Some((_, rest)) = text.split_once("SPECULATED\n") {
                after = Some((absent_plan, util::parse_stat(rest)));
            }
            util::parse_stat(&text)
        } else {
            util::stat(ctx, &path, false).await?
        };
        let before = state_name(&st).to_string();
        let state = explicit.map(str::to_string).unwrap_or_else(|| {
            if st.exists {
                before.clone()
            } else {
                "file".into()
            }
        });
        let (cmds, done) = match after {
            Some((cmds, now)) => (cmds, Some(now)),
            None => (plan(args, ctx, &path, &state, &st).await?, None),
        };
        let changed = !cmds.is_empty();
        let mut o = Outcome::changed(changed)
            .with("path", path.clone())
            .with("state", state.clone());
        if ctx.diff_mode && changed {
            o = o.diff(Diff {
                before: format!("{}\n", json!({"path": path, "state": before})),
                after: format!("{}\n", json!({"path": path, "state": state})),
                before_header: path.clone(),
                after_header: path.clone(),
            });
        }
        // Unchanged: what we read first is still true; no second round trip.
        let speculated = done.is_some();
        let mut now = done.unwrap_or(st);
        if changed && !ctx.check_mode && !speculated {
            // The change and the new stat in one script.
            let script = format!(
                "set -e\n{}\np={}\n{}",
                cmds.join("\n"),
                quote(&path),
                util::stat_snippet("p", false)
            );
            let out = ctx.sh(&script).await?;
            if out.rc != 0 {
                return Err(ModError::fail(format!(
                    "{}: {}",
                    path,
                    out.stderr_str().trim()
                )));
            }
            now = util::parse_stat(&out.stdout_str());
        }
        if state != "absent" && !ctx.check_mode {
            o = o
                .with("mode", format!("{:04o}", now.mode))
                .with("owner", now.owner)
                .with("group", now.group)
                .with("uid", now.uid)
                .with("gid", now.gid)
                .with("size", now.size);
        }
        Ok(o)
    }
}

/// The commands that bring `path` from `st` to `state`, or none.
async fn plan(
    args: &Args,
    ctx: &Ctx<'_>,
    path: &str,
    state: &str,
    st: &RStat,
) -> Result<Vec<String>, ModError> {
    let q = quote(path);
    let mut cmds: Vec<String> = Vec::new();
    let recurse = args.bool("recurse");
    match state {
        "absent" => {
            if st.exists {
                cmds.push(format!("rm -rf -- {q}"));
            }
        }
        "directory" => {
            if !st.exists {
                cmds.push(format!("mkdir -p -- {q}"));
            } else if st.kind != "directory" && !(st.kind == "link" && args.bool("follow")) {
                return Err(ModError::fail(format!(
                    "{path} already exists as a {}",
                    st.kind
                )));
            }
            if recurse && st.exists && recursive_differs(args, ctx, path).await? {
                cmds.extend(attr_fixes(args, path, st, true)?);
            } else if !recurse {
                let base = if st.exists {
                    st.clone()
                } else {
                    RStat {
                        kind: "directory".into(),
                        mode: 0o755,
                        ..RStat::default()
                    }
                };
                let mut fixes = attr_fixes(args, path, &base, false)?;
                if !st.exists && args.get("mode").is_none() {
                    fixes.clear();
                    fixes.extend(attr_fixes(
                        args,
                        path,
                        &RStat {
                            owner: String::new(),
                            group: String::new(),
                            ..base
                        },
                        false,
                    )?);
                }
                cmds.extend(fixes);
            } else if !st.exists {
                cmds.extend(attr_fixes(args, path, st, true)?);
            }
        }
        "file" => {
            if !st.exists {
                return Err(ModError::fail(format!(
                    "file ({path}) is absent, cannot continue"
                )));
            }
            if st.kind == "directory" && args.get("state").is_some() {
                return Err(ModError::fail(format!("{path} is a directory, not a file")));
            }
            cmds.extend(attr_fixes(args, path, st, false)?);
        }
        "touch" => {
            let preserve = args.str("modification_time") == Some("preserve")
                && args.str("access_time").unwrap_or("preserve") == "preserve";
            if !st.exists {
                cmds.push(format!("touch -- {q}"));
                let base = RStat {
                    kind: "file".into(),
                    mode: 0o644,
                    ..RStat::default()
                };
                cmds.extend(
                    attr_fixes(args, path, &base, false)?
                        .into_iter()
                        .filter(|c| !c.starts_with("chmod") || args.get("mode").is_some()),
                );
            } else {
                if !preserve {
                    cmds.push(format!("touch -- {q}"));
                }
                cmds.extend(attr_fixes(args, path, st, false)?);
            }
        }
        "link" | "hard" => {
            let src = args.str("src").ok_or_else(|| {
                ModError::fail(format!("src is required for creating the {state} {path}"))
            })?;
            if state == "link" {
                let same = st.kind == "link" && st.link_target.as_deref() == Some(src);
                if !same {
                    if st.exists && st.kind != "link" && !args.bool("force") {
                        return Err(ModError::fail(format!(
                            "refusing to convert from {} to symlink for {path}",
                            st.kind
                        )));
                    }
                    cmds.push(format!("ln -sfn -- {} {q}", quote(src)));
                }
            } else {
                let out = ctx
                    .sh(&format!("[ {q} -ef {} ] && echo SAME", quote(src)))
                    .await?;
                if !out.stdout_str().contains("SAME") {
                    if st.exists && st.kind == "directory" {
                        return Err(ModError::fail(format!("{path} is a directory")));
                    }
                    cmds.push(format!("ln -f -- {} {q}", quote(src)));
                }
            }
            for c in attr_fixes(args, path, st, false)? {
                cmds.push(
                    c.replacen("chown ", "chown -h ", 1)
                        .replacen("chgrp ", "chgrp -h ", 1),
                );
            }
        }
        other => return Err(ModError::fail(format!("unsupported state {other}"))),
    }
    Ok(cmds)
}

/// Whether anything under a directory differs from the wanted owner/group/mode.
async fn recursive_differs(args: &Args, ctx: &Ctx<'_>, path: &str) -> Result<bool, ModError> {
    let mut tests = Vec::new();
    if let Some(o) = args.str("owner") {
        tests.push(format!("! -user {}", quote(o)));
    }
    if let Some(g) = args.str("group") {
        tests.push(format!("! -group {}", quote(g)));
    }
    if let Some(mv) = args.get("mode") {
        match util::parse_mode(mv, 0, false) {
            Ok(Some(m)) if !matches!(mv, serde_json::Value::String(s) if s.contains(['u', 'g', 'o', 'a'])) => {
                tests.push(format!("! -perm {:o}", m))
            }
            // Symbolic modes: always re-apply (chmod is idempotent).
            _ => return Ok(true),
        }
    }
    if tests.is_empty() {
        return Ok(false);
    }
    let out = ctx
        .sh(&format!(
            "find {} \\( {} \\) -print | head -n 1",
            quote(path),
            tests.join(" -o ")
        ))
        .await?;
    Ok(!out.stdout_str().trim().is_empty())
}
