//! `service_facts`: `ansible_facts.services` as Ansible builds it, from
//! `systemctl list-units`/`list-unit-files` on systemd hosts, otherwise from
//! `service --status-all` (plus the rc?.d start links for `status`).

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::sysadmin::{failed, Sections};
use super::{Args, Ctx, ModResult, Module, ModuleSpec, Outcome};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.service_facts:\n- ansible.builtin.debug:\n    var: ansible_facts.services['cron']\n",
    ..ModuleSpec::new("service_facts", "Return service state information as facts (ansible_facts.services).", &[])
};

pub struct ServiceFacts;

const READ: &str = "PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"\n\
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then\n\
echo @@MGR=systemd\n\
echo @@UNITS\nsystemctl list-units --no-pager --type service --all --plain 2>/dev/null\n\
echo @@UNITFILES\nsystemctl list-unit-files --no-pager --type service --all 2>/dev/null\n\
else\n\
echo @@MGR=sysv\n\
if [ -d /etc/rc2.d ]; then echo @@STARTLINKS; for f in /etc/rc[2345].d/S*; do [ -e \"$f\" ] && echo \"${f##*/S??}\"; done; fi\n\
if command -v service >/dev/null 2>&1; then echo @@STATUSALL; LANG=C LC_ALL=C service --status-all 2>/dev/null </dev/null; fi\n\
fi\n";

const BAD_STATES: &[&str] = &["not-found", "masked", "failed"];

#[async_trait]
impl Module for ServiceFacts {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, _args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let out = ctx.sh(READ).await?;
        if out.rc != 0 {
            let err = out.stderr_str();
            return Err(failed(
                format!("could not list services: {}", err.trim()),
                out.rc,
                &out.stdout_str(),
                &err,
            ));
        }
        let s = Sections::parse(&out.stdout_str());
        let mut services = Map::new();
        if s.val("MGR") == Some("systemd") {
            from_units(s.body("UNITS").unwrap_or(""), &mut services);
            let missing = from_unit_files(s.body("UNITFILES").unwrap_or(""), &mut services);
            if !missing.is_empty() {
                let list = missing
                    .iter()
                    .map(|(n, _)| quote(n))
                    .collect::<Vec<_>>()
                    .join(" ");
                let out = ctx
                    .sh(&format!(
                        "for u in {list}; do if o=$(systemctl show \"$u\" --property=ActiveState 2>/dev/null) && [ -n \"$o\" ]; then echo \"$u ${{o#ActiveState=}}\"; else echo \"$u unknown\"; fi; done"
                    ))
                    .await?;
                let states: Map<String, Value> = out
                    .stdout_str()
                    .lines()
                    .filter_map(|l| {
                        l.split_once(' ').map(|(n, st)| {
                            (n.to_string(), Value::String(st.trim_end().to_string()))
                        })
                    })
                    .collect();
                for (name, status) in missing {
                    let state = states
                        .get(&name)
                        .cloned()
                        .unwrap_or_else(|| "unknown".into());
                    services.insert(name.clone(), json!({"name": name, "state": state, "status": status, "source": "systemd"}));
                }
            }
        } else {
            let enabled: Option<Vec<&str>> = s.body("STARTLINKS").map(|b| b.lines().collect());
            from_status_all(
                s.body("STATUSALL").unwrap_or(""),
                enabled.as_deref(),
                &mut services,
            );
        }
        let mut facts = Map::new();
        facts.insert("services".into(), Value::Object(services));
        Ok(Outcome {
            facts: Some(facts),
            ..Outcome::ok()
        })
    }
}

/// `systemctl list-units --plain` lines, with Ansible's reading of the columns.
pub fn from_units(out: &str, services: &mut Map<String, Value>) {
    for line in out.lines().filter(|l| l.contains(".service")) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 4 {
            continue;
        }
        let head = &fields[..fields.len() - 1];
        let status = BAD_STATES
            .iter()
            .find(|b| head.contains(b))
            .copied()
            .unwrap_or(fields[2]);
        let state = if fields[3] == "running" {
            "running"
        } else {
            "stopped"
        };
        services.insert(
            fields[0].to_string(),
            json!({"name": fields[0], "state": state, "status": status, "source": "systemd"}),
        );
    }
}

/// `systemctl list-unit-files` lines: updates `status`; returns the units not
/// listed by list-units (their state needs `systemctl show`), with their status.
pub fn from_unit_files(out: &str, services: &mut Map<String, Value>) -> Vec<(String, String)> {
    let mut missing = Vec::new();
    for line in out.lines().filter(|l| l.contains(".service")) {
        let mut f = line.split_whitespace();
        let (Some(name), Some(status)) = (f.next(), f.next()) else {
            continue;
        };
        match services.get_mut(name) {
            None => missing.push((name.to_string(), status.to_string())),
            Some(Value::Object(m)) => {
                let cur = m.get("status").and_then(Value::as_str).unwrap_or("");
                if !BAD_STATES.contains(&cur) {
                    m.insert("status".into(), status.into());
                }
            }
            Some(_) => {}
        }
    }
    missing
}

/// `service --status-all` (`[ + ]  cron`); `enabled` lists the services with
/// start links in runlevels 2-5 (None: no rc?.d directories).
pub fn from_status_all(out: &str, enabled: Option<&[&str]>, services: &mut Map<String, Value>) {
    for line in out.lines() {
        let t = line.trim_start();
        let Some(rest) = t.strip_prefix("[ ") else {
            continue;
        };
        let (mark, name) = match (rest.strip_prefix("+ ]"), rest.strip_prefix("- ]")) {
            (Some(n), _) => ("running", n),
            (_, Some(n)) => ("stopped", n),
            _ => continue,
        };
        let name = name.trim();
        if name.is_empty() {
            continue;
        }
        let status = match enabled {
            Some(list) if list.contains(&name) => "enabled",
            Some(_) => "disabled",
            None => "unknown",
        };
        services.insert(
            name.to_string(),
            json!({"name": name, "state": mark, "status": status, "source": "sysv"}),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use crate::modules::testutil::{ctx_on, facts_scope};
    use crate::template::Templar;

    #[test]
    fn sysv_status_all() {
        let mut m = Map::new();
        from_status_all(
            " [ - ]  cron\n [ ? ]  hwclock.sh\n [ + ]  ssh\n [ - ]  sudo\n",
            Some(&["cron", "ssh"]),
            &mut m,
        );
        assert_eq!(
            m["cron"],
            json!({"name": "cron", "state": "stopped", "status": "enabled", "source": "sysv"})
        );
        assert_eq!(m["ssh"]["state"], "running");
        assert_eq!(m["sudo"]["status"], "disabled");
        assert!(!m.contains_key("hwclock.sh"));
    }

    const UNITS: &str = "UNIT LOAD ACTIVE SUB DESCRIPTION\n\
        crond.service loaded active running Command Scheduler\n\
        kdump.service loaded failed failed Crash recovery kernel arming\n\
        nfs.service not-found inactive dead nfs.service\n\
        sshd.service loaded active running OpenSSH server daemon\n";
    const UNIT_FILES: &str = "UNIT FILE STATE VENDOR PRESET\n\
        crond.service enabled enabled\n\
        kdump.service enabled enabled\n\
        sshd.service enabled enabled\n\
        tuned.service disabled enabled\n\
        getty@.service enabled enabled\n\n5 unit files listed.\n";

    #[test]
    fn systemd_units_and_files() {
        let mut m = Map::new();
        from_units(UNITS, &mut m);
        assert_eq!(
            m["crond.service"],
            json!({"name": "crond.service", "state": "running", "status": "active", "source": "systemd"})
        );
        assert_eq!(m["kdump.service"]["status"], "failed");
        assert_eq!(m["nfs.service"]["status"], "not-found");
        let missing = from_unit_files(UNIT_FILES, &mut m);
        assert_eq!(m["crond.service"]["status"], "enabled");
        assert_eq!(
            m["kdump.service"]["status"], "failed",
            "bad states are kept"
        );
        assert_eq!(
            missing,
            vec![
                ("tuned.service".to_string(), "disabled".to_string()),
                ("getty@.service".into(), "enabled".into())
            ]
        );
    }

    #[tokio::test]
    async fn rhel9_facts_from_recorded_systemctl() {
        let rec = Recording::new();
        rec.on(
            "list-units",
            0,
            &format!("@@MGR=systemd\n@@UNITS\n{UNITS}@@UNITFILES\n{UNIT_FILES}"),
        );
        rec.on(
            "--property=ActiveState",
            0,
            "tuned.service inactive\ngetty@.service unknown\n",
        );
        let templar = Templar::new();
        let scope = facts_scope(crate::modules::systemd::rhel9_facts());
        let ctx = ctx_on(&rec, &templar, &scope, true, false);
        let o = ServiceFacts.run(&Args::default(), &ctx).await.unwrap();
        assert!(!o.changed);
        let f = o.facts.unwrap();
        assert_eq!(
            f["services"]["tuned.service"],
            json!({"name": "tuned.service", "state": "inactive", "status": "disabled", "source": "systemd"})
        );
        assert_eq!(f["services"]["sshd.service"]["state"], "running");
        let s = rec.scripts();
        assert!(s[0].contains("systemctl list-units --no-pager --type service --all --plain"));
        assert!(s[0].contains("systemctl list-unit-files --no-pager --type service --all"));
        assert!(
            s[1].starts_with("for u in tuned.service 'getty@.service'")
                || s[1].starts_with("for u in tuned.service getty@.service"),
            "{}",
            s[1]
        );
    }
}
