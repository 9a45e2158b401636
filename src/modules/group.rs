//! `group`: groups through `getent group` and `groupadd`/`groupmod`/`groupdel`.

use async_trait::async_trait;
use serde_json::Value;

use super::sysadmin::{failed, Group as GroupEnt, Sections};
use super::{Args, Ctx, Kind, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::{join_argv, quote};

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.group:\n    name: deployers\n    gid: 1500\n    state: present\n",
    ..ModuleSpec::new(
        "group",
        "Add or remove groups (groupadd/groupmod/groupdel).",
        &[
            Param::new("name", Kind::Str, "Name of the group.").required(),
            Param::new("gid", Kind::Int, "The group's GID."),
            Param::new("state", Kind::Str, "Whether the group should exist.")
                .choices(&["absent", "present"])
                .default("present"),
            Param::new("system", Kind::Bool, "Create a system group (-r).").default("no"),
            Param::new(
                "non_unique",
                Kind::Bool,
                "With gid: allow a non-unique GID (-o).",
            )
            .default("no"),
            Param::new(
                "force",
                Kind::Bool,
                "groupdel --force (remove even if it is a user's primary group).",
            )
            .default("no"),
            Param::new(
                "gid_min",
                Kind::Int,
                "Lowest GID for a new group (-K GID_MIN=).",
            ),
            Param::new(
                "gid_max",
                Kind::Int,
                "Highest GID for a new group (-K GID_MAX=).",
            ),
            Param::new(
                "local",
                Kind::Bool,
                "Use lgroupadd and friends (not supported; false accepted).",
            )
            .default("no"),
        ],
    )
};

pub struct Group;

/// The command that brings the group to the wanted state (None: nothing to do).
const SPECULATED: &str = "@@FERRY-SPECULATED@@";

pub fn command(args: &Args, current: Option<&GroupEnt>) -> Option<Vec<String>> {
    let name = args.str("name").unwrap_or_default().to_string();
    let gid = args.int("gid");
    if args.str("state") == Some("absent") {
        current?;
        let mut c = vec!["groupdel".to_string()];
        if args.bool("force") {
            c.push("-f".into());
        }
        c.push(name);
        return Some(c);
    }
    match current {
        None => {
            let mut c = vec!["groupadd".to_string()];
            if let Some(g) = gid {
                c.extend(["-g".into(), g.to_string()]);
                if args.bool("non_unique") {
                    c.push("-o".into());
                }
            }
            if args.bool("system") {
                c.push("-r".into());
            }
            if let Some(m) = args.int("gid_min") {
                c.extend(["-K".into(), format!("GID_MIN={m}")]);
            }
            if let Some(m) = args.int("gid_max") {
                c.extend(["-K".into(), format!("GID_MAX={m}")]);
            }
            c.push(name);
            Some(c)
        }
        Some(cur) => {
            let g = gid.filter(|g| *g != cur.gid)?;
            let mut c = vec!["groupmod".to_string(), "-g".into(), g.to_string()];
            if args.bool("non_unique") {
                c.push("-o".into());
            }
            c.push(name);
            Some(c)
        }
    }
}

#[async_trait]
impl Module for Group {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        if args.bool("local") {
            return Err(super::ModError::fail(
                "local=true (lgroupadd/lgroupmod) is not supported by ferry",
            ));
        }
        let name = args.req_str("name")?;
        let q = quote(name);
        let probe = format!(
            "if ferry_ge=$(getent group {q}); then printf '@@GR=%s\\n' \"$ferry_ge\"; fi\n"
        );
        let change = |c: &[String]| {
            format!(
                "PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"\nferry_e=$(mktemp)\n{} </dev/null >/dev/null 2>\"$ferry_e\"; ferry_rc=$?\ncat \"$ferry_e\" >&2; rm -f \"$ferry_e\"\n[ \"$ferry_rc\" = 0 ] || exit \"$ferry_rc\"\n{probe}",
                join_argv(c)
            )
        };
        // One round trip when the group is new: the probe, and when it finds
        // no group, the command planned for an absent one.
        let create = command(args, None).filter(|_| !ctx.check_mode);
        let first = match &create {
            Some(c) => format!(
                "if ferry_ge=$(getent group {q}); then printf '@@GR=%s\\n' \"$ferry_ge\"; else\necho {SPECULATED}\n{}\nfi\n",
                change(c)
            ),
            None => probe.clone(),
        };
        let out = ctx.sh(&first).await?;
        let text = out.stdout_str();
        let (seen, done) = match text.split_once(&format!("{SPECULATED}\n")) {
            Some((before, after)) => (before.to_string(), Some((out, after.to_string()))),
            None => (text, None),
        };
        let current = Sections::parse(&seen).val("GR").and_then(GroupEnt::parse);
        let cmd = match &done {
            Some(_) => create,
            None => command(args, current.as_ref()),
        };
        let mut o = Outcome::changed(cmd.is_some())
            .with("name", name)
            .with("state", args.str("state").unwrap_or("present"));
        let mut after = current.clone();
        if let (Some(c), false) = (&cmd, ctx.check_mode) {
            let (done, text) = match done {
                Some(d) => d,
                None => {
                    let d = ctx.sh(&change(c)).await?;
                    let t = d.stdout_str();
                    (d, t)
                }
            };
            let err = done.stderr_str();
            if done.rc != 0 {
                let mut e = failed(err.trim().to_string(), done.rc, "", &err);
                if let super::ModError::Failed { data, .. } = &mut e {
                    data.insert("name".into(), name.into());
                }
                return Err(e);
            }
            if !err.trim().is_empty() {
                o = o.with("stderr", err.trim());
            }
            after = Sections::parse(&text).val("GR").and_then(GroupEnt::parse);
        }
        if let Some(g) = after {
            o = o
                .with("system", args.bool("system"))
                .with("gid", Value::from(g.gid));
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::TestEnv;
    use serde_json::json;

    fn cmd(v: Value, cur: Option<&str>) -> Option<Vec<String>> {
        let a = SPEC.validate(v.as_object().unwrap().clone()).unwrap();
        command(&a, cur.and_then(GroupEnt::parse).as_ref())
    }

    #[test]
    fn commands_like_ansible() {
        assert_eq!(
            cmd(json!({"name": "ops", "gid": 1500, "system": true}), None).unwrap(),
            ["groupadd", "-g", "1500", "-r", "ops"]
        );
        assert_eq!(
            cmd(json!({"name": "ops", "gid": 1500}), Some("ops:x:1500:")),
            None
        );
        assert_eq!(
            cmd(
                json!({"name": "ops", "gid": 1501, "non_unique": true}),
                Some("ops:x:1500:")
            )
            .unwrap(),
            ["groupmod", "-g", "1501", "-o", "ops"]
        );
        assert_eq!(cmd(json!({"name": "ops"}), Some("ops:x:1500:")), None);
        assert_eq!(
            cmd(
                json!({"name": "ops", "state": "absent", "force": true}),
                Some("ops:x:1500:")
            )
            .unwrap(),
            ["groupdel", "-f", "ops"]
        );
        assert_eq!(cmd(json!({"name": "ops", "state": "absent"}), None), None);
    }

    #[tokio::test]
    async fn check_mode_reports_without_running() {
        // A group that cannot exist: check mode says it would be added, and adds nothing.
        let env = TestEnv::new();
        let o = env
            .check(&Group, json!({"name": "ferry-no-such-group-xyz"}))
            .await;
        assert!(o.changed);
        assert!(o.data.get("gid").is_none());
        let o = env.check(&Group, json!({"name": "root"})).await;
        assert!(!o.changed);
        assert_eq!(o.data["gid"], 0);
    }
}
