//! `package_facts`: installed packages as `ansible_facts.packages`, shaped
//! like Ansible's: `{name: [{name, version, arch, source, ...}]}` from one
//! `dpkg-query -W` (apt) or `rpm -qa --queryformat` (rpm) on the host.

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::util;
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["ansible.builtin.package_facts", "ansible.legacy.package_facts"],
    example: "- ansible.builtin.package_facts:\n- ansible.builtin.debug:\n    msg: \"{{ ansible_facts.packages['openssh-server'][0].version }}\"\n",
    ..ModuleSpec::new(
        "package_facts",
        "Gather the installed packages into ansible_facts.packages (apt and rpm).",
        &[
            Param::new("manager", Kind::List, "auto, apt or rpm (several: tried in order).").default("auto"),
            Param::new("strategy", Kind::Str, "first: the first manager found; all: every one found.").choices(&["first", "all"]).default("first"),
        ],
    )
};

pub struct PackageFacts;

const APT: &str = "if command -v dpkg-query >/dev/null 2>&1; then echo 'MGR|apt'; dpkg-query -W -f='A|${Package}|${Version}|${Architecture}|${db:Status-Status}|${Section}\\n'; fi";
const RPM: &str = "if command -v rpm >/dev/null 2>&1 && { [ -d /var/lib/rpm ] || [ -d /usr/lib/sysimage/rpm ]; }; then echo 'MGR|rpm'; rpm -qa --queryformat 'R|%{NAME}|%{VERSION}|%{RELEASE}|%{EPOCHNUM}|%{ARCH}|%{EPOCH}\\n'; fi";

/// The script for the managers asked for; with `first`, stops after the first found.
pub fn script(managers: &[String], first: bool) -> Result<String, ModError> {
    let mut order: Vec<&str> = Vec::new();
    for m in managers {
        match m.as_str() {
            "auto" => order.extend(["apt", "rpm"]),
            "apt" | "rpm" => order.push(m.as_str()),
            other => {
                return Err(ModError::fail(format!(
                    "Unsupported package manager: {other} (ferry knows apt and rpm)"
                )))
            }
        }
    }
    order.dedup();
    let mut s = String::from("export LANG=C LC_ALL=C\n");
    for m in order {
        let body = if m == "apt" { APT } else { RPM };
        if first {
            s.push_str(&format!("{{ {body}; }} | {{ IFS= read -r l && {{ printf '%s\\n' \"$l\"; cat; exit 10; }}; }}; [ $? = 10 ] && exit 0\n"));
        } else {
            s.push_str(body);
            s.push('\n');
        }
    }
    Ok(s)
}

/// Parses the listing into Ansible's shape.
pub fn parse(out: &str) -> (Map<String, Value>, Vec<String>) {
    let mut pkgs: Map<String, Value> = Map::new();
    let mut found = Vec::new();
    for l in out.lines() {
        if let Some(m) = l.strip_prefix("MGR|") {
            found.push(m.to_string());
            continue;
        }
        let f: Vec<&str> = l.split('|').collect();
        let entry = match f.as_slice() {
            ["A", name, version, arch, status, section] => {
                if matches!(*status, "not-installed" | "config-files") || version.is_empty() {
                    continue;
                }
                json!({"name": name, "version": version, "arch": arch, "category": section, "source": "apt"})
            }
            ["R", name, version, release, _epochnum, arch, epoch] => {
                let epoch: Value = epoch.parse::<i64>().map(Value::from).unwrap_or(Value::Null);
                json!({"name": name, "version": version, "release": release, "epoch": epoch, "arch": arch, "source": "rpm"})
            }
            _ => continue,
        };
        let name = entry["name"].as_str().unwrap_or_default().to_string();
        if let Value::Array(a) = pkgs.entry(name).or_insert_with(|| Value::Array(Vec::new())) {
            a.push(entry);
        }
    }
    (pkgs, found)
}

#[async_trait]
impl Module for PackageFacts {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let managers = args.list("manager");
        let managers = if managers.is_empty() {
            vec!["auto".to_string()]
        } else {
            managers
        };
        let s = script(&managers, args.str("strategy") != Some("all"))?;
        let out = util::run_ok(ctx, &s).await?;
        let (pkgs, found) = parse(&out.stdout_str());
        if found.is_empty() {
            return Err(ModError::fail(format!(
                "Could not detect a supported package manager from the following list: {}",
                managers.join(", ")
            )));
        }
        let mut facts = Map::new();
        facts.insert("packages".into(), Value::Object(pkgs));
        let mut o = Outcome::ok();
        o.facts = Some(facts);
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use crate::modules::dnf::run_recorded;

    #[test]
    fn apt_shape() {
        let (p, found) = parse("MGR|apt\nA|openssh-server|1:9.2p1-2+deb12u3|amd64|installed|net\nA|gone|1.0|amd64|config-files|x\nA|libc6|2.36-9|amd64|installed|libs\nA|libc6|2.36-9|i386|installed|libs\n");
        assert_eq!(found, vec!["apt"]);
        assert_eq!(
            p["openssh-server"],
            json!([{"name": "openssh-server", "version": "1:9.2p1-2+deb12u3", "arch": "amd64", "category": "net", "source": "apt"}])
        );
        assert!(!p.contains_key("gone"));
        assert_eq!(p["libc6"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn rpm_shape_recorded() {
        let rec = Recording::new();
        rec.on(
            "rpm -qa",
            0,
            "MGR|rpm\nR|bash|5.1.8|9.el9|0|x86_64|(none)\nR|shadow-utils|4.9|8.el9|2|x86_64|2\n",
        );
        let o = run_recorded(&PackageFacts, &rec, json!({}), false).unwrap();
        let pk = &o.facts.unwrap()["packages"];
        assert_eq!(
            pk["bash"][0],
            json!({"name": "bash", "version": "5.1.8", "release": "9.el9", "epoch": null, "arch": "x86_64", "source": "rpm"})
        );
        assert_eq!(pk["shadow-utils"][0]["epoch"], json!(2));
        assert!(!o.changed);
    }

    #[test]
    fn scripts() {
        let s = script(&["auto".into()], true).unwrap();
        assert!(s.contains("dpkg-query -W") && s.contains("rpm -qa") && s.contains("exit 10"));
        assert!(script(&["pacman".into()], true).is_err());
    }
}
