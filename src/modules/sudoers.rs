//! `sudoers` (community.general): one rule per file in /etc/sudoers.d,
//! rendered exactly like the community module, checked with `visudo -c`
//! before anything is written and placed atomically with mode 0440.

use async_trait::async_trait;

use super::sysadmin::{failed, failed_with, Sections};
use super::util::{self, Place};
use super::{Args, Ctx, Diff, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["community.general.sudoers"],
    mutually_exclusive: &[&["user", "group"]],
    example: "- community.general.sudoers:\n    name: allow-backup\n    user: backup\n    commands:\n      - /usr/local/bin/backup\n      - /usr/bin/rsync\n",
    ..ModuleSpec::new(
        "sudoers",
        "Manage one sudoers rule in its own file under /etc/sudoers.d (validated with visudo).",
        &[
            Param::new("name", Kind::Str, "Name of the rule; the file name under sudoers_path.").required(),
            Param::new("user", Kind::Str, "The user the rule is for."),
            Param::new("group", Kind::Str, "The group the rule is for (%group)."),
            Param::new("commands", Kind::List, "Allowed commands (full paths, or ALL)."),
            Param::new("nopassword", Kind::Bool, "No password needed (NOPASSWD:).").default("yes"),
            Param::new("setenv", Kind::Bool, "Allow keeping the environment (SETENV:).").default("no"),
            Param::new("noexec", Kind::Bool, "Prevent commands from running further commands (NOEXEC:).").default("no"),
            Param::new("host", Kind::Str, "The host the rule is for.").default("ALL"),
            Param::new("runas", Kind::Str, "The user the commands run as."),
            Param::new("defaults", Kind::List, "Defaults directives scoped to the user/group, written before the rule."),
            Param::new("sudoers_path", Kind::Str, "Directory of the rule files.").default("/etc/sudoers.d"),
            Param::new("state", Kind::Str, "Whether the rule should exist.").choices(&["present", "absent"]).default("present"),
            Param::new("validation", Kind::Str, "detect: validate with visudo when it exists; required: visudo must exist; absent: no validation.")
                .choices(&["absent", "detect", "required"])
                .default("detect"),
        ],
    )
};

pub struct Sudoers;

/// The file's content, as the community module renders it.
pub fn content(args: &Args) -> Result<String, ModError> {
    let owner = match (args.str("user"), args.str("group")) {
        (Some(u), _) => u.to_string(),
        (None, Some(g)) => format!("%{g}"),
        (None, None) => {
            return Err(ModError::fail(
                "one of the following is required: user, group",
            ))
        }
    };
    let defaults: String = args
        .list("defaults")
        .iter()
        .map(|d| format!("Defaults:{owner} {d}\n"))
        .collect();
    let commands = args.list("commands").join(", ");
    let noexec = if args.bool("noexec") { "NOEXEC:" } else { "" };
    let nopasswd = if args.bool("nopassword") {
        "NOPASSWD:"
    } else {
        ""
    };
    let setenv = if args.bool("setenv") { "SETENV:" } else { "" };
    let runas = args
        .str("runas")
        .map(|r| format!("({r})"))
        .unwrap_or_default();
    let host = args.str("host").unwrap_or("ALL");
    Ok(format!(
        "{defaults}{owner} {host}={runas}{noexec}{nopasswd}{setenv} {commands}\n"
    ))
}

#[async_trait]
impl Module for Sudoers {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let name = args.req_str("name")?;
        let dir = args.str("sudoers_path").unwrap_or("/etc/sudoers.d");
        let file = format!("{}/{}", dir.trim_end_matches('/'), name);
        let present = args.str("state") != Some("absent");
        let validation = args.str("validation").unwrap_or("detect");
        if present && args.list("commands").is_empty() && args.get("commands").is_none() {
            return Err(ModError::fail(
                "state is present but all of the following are missing: commands",
            ));
        }
        let text = if present {
            content(args)?
        } else {
            String::new()
        };
        let validate = present && validation != "absent";
        // One script: visudo's verdict on the new rule (stdin), the current file and its mode.
        let mut s = format!(
            "PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"\nferry_f={}\nferry_v=$(command -v visudo 2>/dev/null)\nprintf '@@VISUDO=%s\\n' \"$ferry_v\"\n",
            quote(&file)
        );
        if validate {
            s.push_str(
                "if [ -n \"$ferry_v\" ]; then ferry_e=$(mktemp); echo @@VOUT; \"$ferry_v\" -c -f - 2>\"$ferry_e\"; ferry_rc=$?; echo; echo @@VERR; cat \"$ferry_e\"; echo; rm -f \"$ferry_e\"; echo \"@@VRC=$ferry_rc\"; fi\n",
            );
        }
        s.push_str("if [ -e \"$ferry_f\" ]; then printf '@@MODE=%s\\n' \"$(stat -c %a -- \"$ferry_f\")\"; echo @@@FILE; cat -- \"$ferry_f\"; fi\n");
        let out = ctx.sh_in(&s, validate.then_some(text.as_bytes())).await?;
        if out.rc != 0 {
            let err = out.stderr_str();
            return Err(failed(
                format!("could not read {file}: {}", err.trim()),
                out.rc,
                &out.stdout_str(),
                &err,
            ));
        }
        let sec = Sections::parse(&out.stdout_str());
        let visudo = sec
            .val("VISUDO")
            .filter(|v| !v.is_empty())
            .map(str::to_string);
        let exists = sec.has("MODE");
        let current = sec.body("FILE").unwrap_or("");
        if !present {
            if exists && !ctx.check_mode {
                util::run_ok(ctx, &format!("rm -f -- {}", quote(&file))).await?;
            }
            return Ok(Outcome::changed(exists));
        }
        if validate {
            match &visudo {
                None if validation == "required" => {
                    return Err(ModError::fail("Failed to find required executable \"visudo\" in paths: /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
                }
                Some(_) if sec.int("VRC") != Some(0) => {
                    let so = sec.body("VOUT").unwrap_or("").trim().to_string();
                    let se = sec.body("VERR").unwrap_or("").trim().to_string();
                    let shown = if so.is_empty() { &se } else { &so };
                    return Err(failed_with(
                        format!("Failed to validate sudoers rule:\n{shown}"),
                        &[("stdout", so.clone().into()), ("stderr", se.clone().into())],
                    ));
                }
                _ => {}
            }
        }
        let matches = exists
            && current == text
            && sec
                .val("MODE")
                .and_then(|m| u32::from_str_radix(m.trim(), 8).ok())
                .map(|m| m & 0o777)
                == Some(0o440);
        if matches {
            return Ok(Outcome::ok());
        }
        let mut o = Outcome::changed(true);
        if ctx.diff_mode {
            o = o.diff(Diff {
                before: current.to_string(),
                after: text.clone(),
                before_header: file.clone(),
                after_header: file.clone(),
            });
        }
        if !ctx.check_mode {
            let check = visudo
                .as_ref()
                .filter(|_| validate)
                .map(|v| format!("{} -c -f %s", quote(v)));
            util::place(
                ctx,
                text.as_bytes(),
                &Place {
                    dest: &file,
                    mode: Some(0o440),
                    validate: check.as_deref(),
                    ..Place::default()
                },
            )
            .await?;
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::TestEnv;
    use serde_json::{json, Value};

    fn render(v: Value) -> String {
        content(&SPEC.validate(v.as_object().unwrap().clone()).unwrap()).unwrap()
    }

    #[test]
    fn renders_like_the_community_module() {
        assert_eq!(
            render(json!({"name": "x", "user": "alice", "commands": ["/bin/ls", "/bin/cat"]})),
            "alice ALL=NOPASSWD: /bin/ls, /bin/cat\n"
        );
        assert_eq!(
            render(
                json!({"name": "x", "user": "bob", "runas": "alice", "commands": "ALL", "nopassword": false})
            ),
            "bob ALL=(alice) ALL\n"
        );
        assert_eq!(
            render(
                json!({"name": "x", "group": "ops", "host": "web", "commands": "/usr/bin/less", "noexec": true, "setenv": true})
            ),
            "%ops web=NOEXEC:NOPASSWD:SETENV: /usr/bin/less\n"
        );
        assert_eq!(
            render(
                json!({"name": "x", "group": "ops", "commands": "ALL", "nopassword": false, "defaults": ["!targetpw"]})
            ),
            "Defaults:%ops !targetpw\n%ops ALL= ALL\n"
        );
    }

    #[tokio::test]
    async fn local_file_without_validation() {
        let env = TestEnv::new();
        std::fs::create_dir_all(env.pathbuf("sudoers.d")).unwrap();
        let args = json!({"name": "t", "user": "alice", "commands": "/bin/true", "sudoers_path": env.path("sudoers.d"), "validation": "absent"});
        assert!(env.check(&Sudoers, args.clone()).await.changed);
        assert!(!env.pathbuf("sudoers.d/t").exists());
        assert!(env.ok(&Sudoers, args.clone()).await.changed);
        assert_eq!(env.read("sudoers.d/t"), "alice ALL=NOPASSWD: /bin/true\n");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(env.pathbuf("sudoers.d/t"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o440
        );
        assert!(!env.ok(&Sudoers, args.clone()).await.changed);
        let mut gone = args.clone();
        gone["state"] = json!("absent");
        assert!(env.ok(&Sudoers, gone.clone()).await.changed);
        assert!(!env.pathbuf("sudoers.d/t").exists());
        assert!(!env.ok(&Sudoers, gone).await.changed);
    }
}
