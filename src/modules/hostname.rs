//! `hostname`: the current (kernel) and permanent hostname, with Ansible's
//! strategies: `systemd` (hostnamectl), file-based ones (`debian` and
//! `alpine`: /etc/hostname, `sles`: /etc/HOSTNAME, `redhat`:
//! /etc/sysconfig/network, `openrc`: /etc/conf.d/hostname) that also run
//! `hostname NAME`, and `generic` (`hostname NAME` only).

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::sysadmin::{failed, Sections};
use super::{Args, Ctx, Diff, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.hostname:\n    name: web01\n",
    ..ModuleSpec::new(
        "hostname",
        "Set the system's hostname (current and permanent).",
        &[
            Param::new("name", Kind::Str, "The hostname.").required(),
            Param::new(
                "use",
                Kind::Str,
                "Strategy (default: systemd when systemd runs, else by distribution).",
            )
            .choices(&[
                "alpine", "debian", "freebsd", "generic", "macos", "macosx", "darwin", "openbsd",
                "openrc", "redhat", "sles", "solaris", "systemd",
            ]),
        ],
    )
};

pub struct Hostname;

/// Where the permanent name lives for a strategy.
fn file_of(strategy: &str) -> Option<&'static str> {
    match strategy {
        "debian" | "alpine" => Some("/etc/hostname"),
        "sles" => Some("/etc/HOSTNAME"),
        "redhat" => Some("/etc/sysconfig/network"),
        "openrc" => Some("/etc/conf.d/hostname"),
        _ => None,
    }
}

/// The permanent name from the strategy's file content.
pub fn permanent_from(strategy: &str, content: Option<&str>) -> String {
    let Some(c) = content else {
        return String::new();
    };
    match strategy {
        "redhat" => c
            .lines()
            .find(|l| l.starts_with("HOSTNAME"))
            .and_then(|l| l.split_once('='))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default(),
        "openrc" => c
            .lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix("hostname="))
            .map(|v| v.trim_matches('"').to_string())
            .unwrap_or_default(),
        _ => c.trim().to_string(),
    }
}

/// The new content of the strategy's file.
pub fn permanent_content(strategy: &str, old: Option<&str>, name: &str) -> String {
    match strategy {
        "redhat" => {
            let mut found = false;
            let mut out = String::new();
            for l in old.unwrap_or("").split_inclusive('\n') {
                if l.starts_with("HOSTNAME") {
                    out.push_str(&format!("HOSTNAME={name}\n"));
                    found = true;
                } else {
                    out.push_str(l);
                }
            }
            if !found {
                out.push_str(&format!("HOSTNAME={name}\n"));
            }
            out
        }
        "openrc" => {
            let mut lines: Vec<String> = old
                .unwrap_or("")
                .lines()
                .map(|l| l.trim().to_string())
                .collect();
            match lines.iter_mut().find(|l| l.starts_with("hostname=")) {
                Some(l) => *l = format!("hostname=\"{name}\""),
                None => lines.push(format!("hostname=\"{name}\"")),
            }
            format!("{}\n", lines.join("\n"))
        }
        _ => format!("{name}\n"),
    }
}

const FQDN: &str = "if command -v timeout >/dev/null 2>&1; then ferry_fq=$(timeout 3 hostname -f 2>/dev/null); else ferry_fq=$(hostname -f 2>/dev/null); fi; [ -n \"$ferry_fq\" ] || ferry_fq=$(hostname 2>/dev/null || uname -n); printf '@@FQDN=%s\\n' \"$ferry_fq\"\n";

#[async_trait]
impl Module for Hostname {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let name = args.req_str("name")?;
        let asked = args.str("use");
        if let Some(u) = asked {
            if ![
                "debian", "alpine", "sles", "redhat", "openrc", "systemd", "generic",
            ]
            .contains(&u)
            {
                return Err(ModError::fail(format!("use={u} is not supported by ferry (systemd, debian, alpine, redhat, sles, openrc, generic)")));
            }
        }
        let family = ctx
            .var("ansible_os_family")
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        // One script: the strategy (unless given), the current and permanent names.
        let mut s = String::from("PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"\n");
        match asked {
            Some(u) => s.push_str(&format!("ferry_s={u}\n")),
            None => s.push_str(&format!(
                "ferry_fam={}\n\
                 if [ -d /run/systemd/system ] && command -v hostnamectl >/dev/null 2>&1; then ferry_s=systemd\n\
                 elif [ \"$ferry_fam\" = Debian ] || [ -f /etc/debian_version ]; then ferry_s=debian\n\
                 elif [ \"$ferry_fam\" = Alpine ] || [ -f /etc/alpine-release ]; then ferry_s=alpine\n\
                 elif [ \"$ferry_fam\" = Suse ] || [ -f /etc/SuSE-release ]; then ferry_s=sles\n\
                 elif [ \"$ferry_fam\" = Gentoo ] || [ -f /etc/conf.d/hostname ]; then ferry_s=openrc\n\
                 elif [ \"$ferry_fam\" = RedHat ] && [ -f /etc/sysconfig/network ]; then ferry_s=redhat\n\
                 else ferry_s=generic; fi\n",
                quote(&family)
            )),
        }
        s.push_str(
            "echo \"@@STRATEGY=$ferry_s\"\n\
             case \"$ferry_s\" in\n\
             systemd) printf '@@CURRENT=%s\\n' \"$(hostnamectl --transient status 2>/dev/null || hostname)\"; printf '@@PERMANENT=%s\\n' \"$(hostnamectl --static status 2>/dev/null)\";;\n\
             *) printf '@@CURRENT=%s\\n' \"$(hostname 2>/dev/null || uname -n)\";;\n\
             esac\n",
        );
        s.push_str(FQDN);
        s.push_str(
            "case \"$ferry_s\" in debian|alpine) ferry_pf=/etc/hostname;; sles) ferry_pf=/etc/HOSTNAME;; redhat) ferry_pf=/etc/sysconfig/network;; openrc) ferry_pf=/etc/conf.d/hostname;; *) ferry_pf=;; esac\n\
             if [ -n \"$ferry_pf\" ] && [ -f \"$ferry_pf\" ]; then echo @@@FILE; cat -- \"$ferry_pf\"; fi\n",
        );
        let out = ctx.sh(&s).await?;
        if out.rc != 0 {
            let err = out.stderr_str();
            return Err(failed(
                format!("could not read the hostname: {}", err.trim()),
                out.rc,
                &out.stdout_str(),
                &err,
            ));
        }
        let sec = Sections::parse(&out.stdout_str());
        let strategy = sec.val("STRATEGY").unwrap_or("generic").to_string();
        let current = sec.val("CURRENT").unwrap_or("").trim().to_string();
        let file = sec.body("FILE");
        let permanent = match strategy.as_str() {
            "systemd" => sec.val("PERMANENT").unwrap_or("").trim().to_string(),
            "generic" => current.clone(),
            s => permanent_from(s, file),
        };
        if strategy == "systemd" && name.len() > 64 {
            return Err(ModError::fail(
                "name cannot be longer than 64 characters on systemd servers, try a shorter name",
            ));
        }
        let set_current = current != name;
        let set_permanent = permanent != name;
        let changed = set_current || set_permanent;
        let mut fqdn = sec.val("FQDN").unwrap_or("").to_string();
        if changed && !ctx.check_mode {
            let n = quote(name);
            let mut c = String::from("PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"\nset -e\n");
            if strategy == "systemd" {
                if set_current {
                    c.push_str(&format!("hostnamectl --transient set-hostname {n}\n"));
                }
                if set_permanent {
                    c.push_str(&format!("hostnamectl --pretty set-hostname {n}\nhostnamectl --static set-hostname {n}\n"));
                }
            } else {
                if let (true, Some(path)) = (set_permanent, file_of(&strategy)) {
                    let content = permanent_content(&strategy, file, name);
                    c.push_str(&format!(
                        "ferry_pf={p}\nferry_tmp=$(mktemp \"$ferry_pf.XXXXXXXX\")\nprintf '%s' {content} > \"$ferry_tmp\"\n\
                         if [ -e \"$ferry_pf\" ]; then chmod --reference=\"$ferry_pf\" \"$ferry_tmp\"; chown --reference=\"$ferry_pf\" \"$ferry_tmp\" 2>/dev/null || true; else chmod 644 \"$ferry_tmp\"; fi\n\
                         mv -f -- \"$ferry_tmp\" \"$ferry_pf\"\n",
                        p = quote(path),
                        content = quote(&content)
                    ));
                }
                if set_current {
                    if strategy == "alpine" {
                        c.push_str("hostname -F /etc/hostname\n");
                    } else {
                        c.push_str(&format!("hostname {n}\n"));
                    }
                }
            }
            c.push_str("set +e\n");
            c.push_str(FQDN);
            let done = ctx.sh(&c).await?;
            if done.rc != 0 {
                let err = done.stderr_str();
                return Err(failed(
                    format!("Command failed rc={}, err={}", done.rc, err.trim()),
                    done.rc,
                    &done.stdout_str(),
                    &err,
                ));
            }
            fqdn = Sections::parse(&done.stdout_str())
                .val("FQDN")
                .unwrap_or(&fqdn)
                .to_string();
        }
        let before = if name != current {
            current.clone()
        } else {
            permanent.clone()
        };
        let mut facts = Map::new();
        facts.insert(
            "ansible_hostname".into(),
            Value::from(name.split('.').next().unwrap_or(name)),
        );
        facts.insert("ansible_nodename".into(), Value::from(name));
        facts.insert(
            "ansible_domain".into(),
            Value::from(fqdn.split_once('.').map(|(_, d)| d).unwrap_or("")),
        );
        facts.insert("ansible_fqdn".into(), Value::from(fqdn));
        let mut o = Outcome {
            facts: Some(facts),
            ..Outcome::changed(changed)
        }
        .with("name", name);
        if changed && ctx.diff_mode {
            o = o.diff(Diff {
                before: format!("hostname = {before}\n"),
                after: format!("hostname = {name}\n"),
                ..Diff::default()
            });
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use serde_json::json;

    #[test]
    fn files_per_strategy() {
        assert_eq!(permanent_from("debian", Some("web01\n")), "web01");
        assert_eq!(permanent_from("debian", None), "");
        assert_eq!(
            permanent_from("redhat", Some("NETWORKING=yes\nHOSTNAME=old.example\n")),
            "old.example"
        );
        assert_eq!(
            permanent_content("redhat", Some("NETWORKING=yes\nHOSTNAME=old\n"), "new"),
            "NETWORKING=yes\nHOSTNAME=new\n"
        );
        assert_eq!(
            permanent_content("redhat", Some("NETWORKING=yes\n"), "new"),
            "NETWORKING=yes\nHOSTNAME=new\n"
        );
        assert_eq!(
            permanent_from("openrc", Some("# c\nhostname=\"gentoo\"\n")),
            "gentoo"
        );
        assert_eq!(
            permanent_content("openrc", Some("# c\nhostname=\"gentoo\"\n"), "box"),
            "# c\nhostname=\"box\"\n"
        );
        assert_eq!(permanent_content("debian", None, "box"), "box\n");
    }

    async fn run(rec: &Recording, args: serde_json::Value, check: bool) -> ModResult {
        crate::modules::testutil::run_on(
            rec,
            &Hostname,
            args,
            Some(crate::modules::systemd::rhel9_facts()),
            check,
            true,
        )
        .await
    }

    #[tokio::test]
    async fn rhel9_uses_hostnamectl() {
        let rec = Recording::new();
        rec.on(
            "@@STRATEGY",
            0,
            "@@STRATEGY=systemd\n@@CURRENT=rhel9\n@@PERMANENT=rhel9\n@@FQDN=rhel9\n",
        );
        rec.on("set-hostname", 0, "@@FQDN=web01.example.com\n");
        let o = run(&rec, json!({"name": "web01.example.com"}), false)
            .await
            .unwrap();
        assert!(o.changed);
        let s = rec.scripts();
        assert!(s[0].contains("ferry_fam=RedHat"));
        assert!(s[1].contains("hostnamectl --transient set-hostname web01.example.com\nhostnamectl --pretty set-hostname web01.example.com\nhostnamectl --static set-hostname web01.example.com\n"));
        let f = o.facts.unwrap();
        assert_eq!(
            (f["ansible_hostname"].as_str(), f["ansible_domain"].as_str()),
            (Some("web01"), Some("example.com"))
        );
        assert_eq!(o.diff[0].before, "hostname = rhel9\n");
        // Already named: no change script.
        let rec = Recording::new();
        rec.on(
            "@@STRATEGY",
            0,
            "@@STRATEGY=systemd\n@@CURRENT=web01\n@@PERMANENT=web01\n@@FQDN=web01\n",
        );
        assert!(
            !run(&rec, json!({"name": "web01"}), false)
                .await
                .unwrap()
                .changed
        );
        assert_eq!(rec.scripts().len(), 1);
        // Check mode: the read only.
        let rec = Recording::new();
        rec.on(
            "@@STRATEGY",
            0,
            "@@STRATEGY=systemd\n@@CURRENT=a\n@@PERMANENT=a\n@@FQDN=a\n",
        );
        assert!(
            run(&rec, json!({"name": "web01"}), true)
                .await
                .unwrap()
                .changed
        );
        assert_eq!(rec.scripts().len(), 1);
    }
}
