//! `sysctl` (ansible.posix.sysctl): a key in sysctl.conf, and optionally in
//! the running kernel. The file is rewritten as Ansible's module rewrites it
//! (every `key=value` line normalised, later duplicates dropped), atomically.

use async_trait::async_trait;

use super::util::{self, Place};
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.posix.sysctl:\n    name: net.ipv4.ip_forward\n    value: '1'\n    sysctl_set: true\n",
    aliases: &["ansible.posix.sysctl"],
    ..ModuleSpec::new(
        "sysctl",
        "Manage entries in sysctl.conf (and with sysctl_set, in the running kernel).",
        &[
            Param::new("name", Kind::Str, "The dot-separated key of the sysctl variable.").aliases(&["key"]).required(),
            Param::new("value", Kind::Raw, "Desired value of the key.").aliases(&["val"]),
            Param::new("state", Kind::Str, "Whether the entry should be present or absent in the sysctl file.").choices(&["present", "absent"]).default("present"),
            Param::new("reload", Kind::Bool, "Run sysctl -p on the file when something changed.").default("yes"),
            Param::new("sysctl_set", Kind::Bool, "Check the running value with sysctl and set it with -w if it differs.").default("no"),
            Param::new("ignoreerrors", Kind::Bool, "Ignore errors about unknown keys.").default("no"),
            Param::new("sysctl_file", Kind::Path, "The sysctl.conf to edit.").default("/etc/sysctl.conf"),
        ],
    )
};

pub struct Sysctl;

const PATH: &str = "PATH=\"$PATH:/usr/sbin:/sbin\"; export LANG=C LC_ALL=C\n";

/// Ansible's `_parse_value`: booleans become 1/0, the rest is trimmed.
fn parse_value(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::Bool(b)) => if *b { "1" } else { "0" }.into(),
        Some(serde_json::Value::String(s)) => match s.to_lowercase().as_str() {
            "y" | "yes" | "on" | "1" | "true" | "t" => "1".into(),
            "n" | "no" | "off" | "0" | "false" | "f" => "0".into(),
            _ => s.trim().to_string(),
        },
        Some(other) => other.to_string(),
    }
}

/// Same tokens, in the same order.
fn same_tokens(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

fn is_entry(line: &str) -> bool {
    !(line.is_empty() || line.starts_with('#') || line.starts_with(';') || !line.contains('='))
}

/// The file's value for `name` (the last one), and the file as Ansible writes it.
pub fn rewrite(text: &str, name: &str, value: Option<&str>) -> (Option<String>, String) {
    let mut current = None;
    let mut seen: Vec<String> = Vec::new();
    let mut out = String::new();
    for line in text.lines().map(str::trim) {
        if !is_entry(line) {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        let (k, v) = (k.trim(), v.trim());
        if k == name {
            current = Some(v.to_string());
        }
        if seen.iter().any(|s| s == k) {
            continue;
        }
        seen.push(k.to_string());
        if k == name {
            if let Some(v) = value {
                out.push_str(&format!("{k}={v}\n"));
            }
        } else {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    if let (Some(v), false) = (value, seen.iter().any(|s| s == name)) {
        out.push_str(&format!("{name}={v}\n"));
    }
    (current, out)
}

#[async_trait]
impl Module for Sysctl {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let name = args.req_str("name")?.trim().to_string();
        if name.is_empty() {
            return Err(ModError::fail("name cannot be blank"));
        }
        let present = args.str("state") != Some("absent");
        if present && args.get("value").is_none() {
            return Err(ModError::fail(
                "state is present but all of the following are missing: value",
            ));
        }
        let value = parse_value(args.get("value"));
        if present && value.is_empty() {
            return Err(ModError::fail("value cannot be blank"));
        }
        let file = args.str("sysctl_file").unwrap_or("/etc/sysctl.conf");
        let ignore = args.bool("ignoreerrors");
        // 1. Read: the running value (none if sysctl fails) and the file.
        let read = format!(
            concat!(
                "{PATH}command -v sysctl >/dev/null 2>&1 || {{ echo '==NOSYSCTL'; exit 0; }}\n",
                "if v=$(sysctl -e -n {name} 2>/dev/null); then printf '==PROC\\n%s\\n' \"$v\"; fi\n",
                "f={file}; printf '==REAL\\n%s\\n' \"$(readlink -f -- \"$f\" || printf '%s' \"$f\")\"\n",
                "if [ -f \"$f\" ]; then printf '==FILE\\n'; cat -- \"$f\"; fi\n",
            ),
            PATH = PATH,
            name = quote(&name),
            file = quote(file),
        );
        let out = ctx.sh(&read).await?;
        let text = out.stdout_str();
        if text.starts_with("==NOSYSCTL") {
            return Err(ModError::fail(
                "Failed to find required executable \"sysctl\"",
            ));
        }
        let secs = util::sections(&text);
        let proc_value = util::section(&secs, "PROC").map(str::to_string);
        let real = util::section(&secs, "REAL")
            .unwrap_or(file)
            .trim()
            .to_string();
        let (file_value, new_text) = rewrite(
            util::section(&secs, "FILE").unwrap_or(""),
            &name,
            present.then_some(value.as_str()),
        );
        // 2. Decide, as Ansible's module does.
        let reload = args.bool("reload");
        let mut changed = false;
        let mut write_file = false;
        let mut set_proc = false;
        match (&file_value, present) {
            (None, true) => (changed, write_file) = (true, true),
            (None, false) => {}
            (Some(v), false) => {
                if !v.is_empty() {
                    (changed, write_file) = (true, true)
                }
            }
            (Some(v), true) if *v != value => (changed, write_file) = (true, true),
            (Some(_), true) => {
                if reload
                    && !proc_value
                        .as_deref()
                        .is_some_and(|p| same_tokens(p, &value))
                {
                    changed = true;
                }
            }
        }
        if args.bool("sysctl_set") && present {
            match &proc_value {
                None => changed = true,
                Some(p) if !same_tokens(p, &value) => (changed, set_proc) = (true, true),
                Some(_) => {}
            }
        }
        let o = Outcome::changed(changed);
        if ctx.check_mode || !changed {
            return Ok(o);
        }
        // 3. Change: the running value, the file (atomically), the reload.
        if set_proc {
            // One word, spaces kept (Ansible quotes the value for its shlex).
            let e = if ignore { "-e " } else { "" };
            let s = format!(
                "{PATH}sysctl {e}-w {} 2>&1",
                quote(&format!("{name}={value}"))
            );
            let r = ctx.sh(&s).await?;
            let said = r.stdout_str();
            if r.rc != 0 || failed_setting(&said) {
                return Err(ModError::fail(format!("setting {name} failed: {said}")));
            }
        }
        if write_file {
            let place = Place {
                dest: &real,
                ..Place::default()
            };
            util::place(ctx, new_text.as_bytes(), &place).await?;
        }
        if reload {
            let e = if ignore { "-e " } else { "" };
            let s = format!("{PATH}sysctl {e}-p {} 2>&1", quote(file));
            let r = ctx.sh(&s).await?;
            let said = r.stdout_str();
            if r.rc != 0 || failed_setting(&said) {
                return Err(ModError::fail(format!("Failed to reload sysctl: {said}")));
            }
        }
        Ok(o)
    }
}

/// sysctl's words for a key it could not set (it may still exit 0).
fn failed_setting(out: &str) -> bool {
    out.lines().any(|l| {
        l.starts_with("sysctl: setting key \"")
            && (l.ends_with(": Invalid argument") || l.ends_with(": Read-only file system"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn file_rewritten_as_ansible_writes_it() {
        let text = "# comment\n  vm.swappiness = 60\nkernel.panic=1\n\n; other\nvm.swappiness=10\n";
        let (cur, new) = rewrite(text, "vm.swappiness", Some("5"));
        assert_eq!(cur.as_deref(), Some("10"));
        assert_eq!(
            new,
            "# comment\nvm.swappiness=5\nkernel.panic=1\n\n; other\n"
        );
        let (cur, new) = rewrite(text, "net.ipv4.ip_forward", Some("1"));
        assert_eq!(cur, None);
        assert!(
            new.ends_with("kernel.panic=1\n\n; other\nnet.ipv4.ip_forward=1\n"),
            "{new}"
        );
        let (_, new) = rewrite(text, "kernel.panic", None);
        assert_eq!(new, "# comment\nvm.swappiness=60\n\n; other\n");
    }

    #[test]
    fn values_as_ansible_parses_them() {
        assert_eq!(parse_value(Some(&json!(true))), "1");
        assert_eq!(parse_value(Some(&json!("no"))), "0");
        assert_eq!(parse_value(Some(&json!(" 4096 87380 "))), "4096 87380");
        assert_eq!(parse_value(Some(&json!(5))), "5");
        assert!(same_tokens("4096\t87380\n", "4096 87380"));
        assert!(!same_tokens("1", "1 2"));
        assert!(failed_setting(
            "sysctl: setting key \"net.x\": Invalid argument\n"
        ));
    }
}
