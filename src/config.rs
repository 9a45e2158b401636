//! `ansible.cfg`: the settings an existing Ansible project relies on, read from
//! `$ANSIBLE_CONFIG`, `./ansible.cfg`, `~/.ansible.cfg` or `/etc/ansible/ansible.cfg`
//! (the first found, as Ansible does).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

#[derive(Debug, Clone, Default)]
pub struct AnsibleCfg {
    pub path: Option<PathBuf>,
    pub inventory: Vec<String>,
    pub roles_path: Vec<PathBuf>,
    pub forks: Option<usize>,
    pub host_key_checking: Option<bool>,
    pub gathering: Option<String>,
    pub fact_caching: Option<String>,
    pub fact_caching_connection: Option<PathBuf>,
    pub fact_caching_timeout: Option<u64>,
    pub timeout: Option<u64>,
    /// `vault_password_file` (used when no password flag names one).
    pub vault_password_file: Option<PathBuf>,
    /// `vault_identity_list`: `[id@]source` entries, before the `--vault-id` flags.
    pub vault_identity_list: Vec<String>,
    /// Connection/escalation defaults as Ansible variables (lowest precedence).
    pub vars: Map<String, Value>,
    /// `ansible_managed`: the string templates see (a format, as in Ansible).
    pub ansible_managed: Option<String>,
    /// `inventory_ignore_extensions` (None: Ansible's default list).
    pub inventory_ignore_extensions: Option<Vec<String>>,
    /// `inventory_ignore_patterns`: regular expressions.
    pub inventory_ignore_patterns: Vec<String>,
}

pub fn find() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ANSIBLE_CONFIG").map(PathBuf::from) {
        if p.is_file() {
            return Some(p);
        }
    }
    let mut cands = vec![PathBuf::from("ansible.cfg")];
    if let Some(h) = std::env::var_os("HOME") {
        cands.push(Path::new(&h).join(".ansible.cfg"));
    }
    cands.push(PathBuf::from("/etc/ansible/ansible.cfg"));
    cands.into_iter().find(|p| p.is_file())
}

pub fn load() -> AnsibleCfg {
    let mut cfg = match find() {
        Some(p) => match std::fs::read_to_string(&p) {
            Ok(text) => parse(&text, &p),
            Err(_) => AnsibleCfg::default(),
        },
        None => AnsibleCfg::default(),
    };
    // The environment wins over the file, as in Ansible.
    if let Ok(v) = std::env::var("ANSIBLE_INVENTORY_IGNORE") {
        cfg.inventory_ignore_extensions = Some(list(&v));
    }
    if let Ok(v) = std::env::var("ANSIBLE_INVENTORY_IGNORE_REGEX") {
        cfg.inventory_ignore_patterns = list(&v);
    }
    cfg
}

/// A list setting: comma-separated, each item unquoted (Ansible's `ensure_type`).
fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(|s| {
            let s = s.trim();
            let q = s.len() >= 2 && (s.starts_with('"') || s.starts_with('\''));
            if q && s.ends_with(&s[..1]) {
                &s[1..s.len() - 1]
            } else {
                s
            }
        })
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

impl AnsibleCfg {
    /// What inventory directories skip.
    pub fn inventory_ignore(&self) -> crate::error::Result<crate::inventory::Ignore> {
        let exts = match &self.inventory_ignore_extensions {
            Some(e) => e.clone(),
            None => crate::inventory::DEFAULT_IGNORE_EXTENSIONS
                .map(String::from)
                .to_vec(),
        };
        crate::inventory::Ignore::new(exts, &self.inventory_ignore_patterns)
    }
}

fn expand(v: &str, base: &Path) -> PathBuf {
    let v = match (v.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(h)) => Path::new(&h).join(rest),
        _ => PathBuf::from(v),
    };
    if v.is_absolute() {
        v
    } else {
        base.parent().unwrap_or(Path::new(".")).join(v)
    }
}

fn boolish(v: &str) -> Option<bool> {
    crate::modules::to_bool(&Value::String(v.to_string()))
}

pub fn parse(text: &str, path: &Path) -> AnsibleCfg {
    let mut cfg = AnsibleCfg {
        path: Some(path.to_path_buf()),
        ..AnsibleCfg::default()
    };
    let mut section = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_string();
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.split(" ;").next().unwrap_or("").trim());
        let mut var = |name: &str, val: Value| {
            cfg.vars.insert(name.to_string(), val);
        };
        match (section.as_str(), k) {
            ("defaults", "inventory" | "hostfile") => {
                cfg.inventory = v
                    .split(',')
                    .map(|s| expand(s.trim(), path).to_string_lossy().into_owned())
                    .collect()
            }
            ("defaults", "roles_path") => {
                cfg.roles_path = v.split(':').map(|s| expand(s.trim(), path)).collect()
            }
            ("defaults", "forks") => cfg.forks = v.parse().ok(),
            ("defaults", "vault_password_file") if !v.is_empty() => {
                cfg.vault_password_file = Some(expand(v, path))
            }
            ("defaults", "vault_identity_list") => {
                cfg.vault_identity_list = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|spec| match spec.split_once('@') {
                        // Relative password files are relative to ansible.cfg, like the rest.
                        Some((id, src)) if src != "prompt" => {
                            format!("{id}@{}", expand(src, path).display())
                        }
                        _ => spec.to_string(),
                    })
                    .collect()
            }
            ("defaults", "host_key_checking") => cfg.host_key_checking = boolish(v),
            ("defaults", "gathering") => cfg.gathering = Some(v.to_string()),
            ("defaults", "fact_caching") => cfg.fact_caching = Some(v.to_string()),
            ("defaults", "fact_caching_connection") => {
                cfg.fact_caching_connection = Some(expand(v, path))
            }
            ("defaults", "fact_caching_timeout") => cfg.fact_caching_timeout = v.parse().ok(),
            ("defaults", "timeout") => cfg.timeout = v.parse().ok(),
            ("defaults", "ansible_managed") => cfg.ansible_managed = Some(v.to_string()),
            ("defaults", "inventory_ignore_extensions") | ("inventory", "ignore_extensions") => {
                cfg.inventory_ignore_extensions = Some(list(v))
            }
            ("defaults", "inventory_ignore_patterns") | ("inventory", "ignore_patterns") => {
                cfg.inventory_ignore_patterns = list(v)
            }
            ("defaults", "remote_user") => var("ansible_user", Value::String(v.into())),
            ("defaults", "private_key_file") => var(
                "ansible_ssh_private_key_file",
                Value::String(expand(v, path).to_string_lossy().into_owned()),
            ),
            ("defaults", "remote_port") => var("ansible_port", Value::String(v.into())),
            ("privilege_escalation", "become") => {
                var("ansible_become", Value::Bool(boolish(v).unwrap_or(false)))
            }
            ("privilege_escalation", "become_user") => {
                var("ansible_become_user", Value::String(v.into()))
            }
            ("privilege_escalation", "become_method") => {
                var("ansible_become_method", Value::String(v.into()))
            }
            ("ssh_connection", "ssh_args") => {
                var("ansible_ssh_common_args", Value::String(v.into()))
            }
            _ => {}
        }
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_settings_projects_use() {
        let c = parse(
            "[defaults]\ninventory = inventories/prod\nroles_path = roles:/opt/roles\nforks = 20\nhost_key_checking = False\nremote_user = ops\ngathering = smart\nfact_caching = jsonfile\nfact_caching_connection = /tmp/facts\n\n[privilege_escalation]\nbecome = True\n",
            Path::new("/p/ansible.cfg"),
        );
        assert_eq!(c.inventory, vec!["/p/inventories/prod"]);
        assert_eq!(
            c.roles_path,
            vec![PathBuf::from("/p/roles"), PathBuf::from("/opt/roles")]
        );
        assert_eq!(c.forks, Some(20));
        assert_eq!(c.host_key_checking, Some(false));
        assert_eq!(c.vars["ansible_user"], "ops");
        assert_eq!(c.vars["ansible_become"], true);
        assert_eq!(c.gathering.as_deref(), Some("smart"));
        assert_eq!(c.fact_caching_connection, Some(PathBuf::from("/tmp/facts")));
    }

    #[test]
    fn reads_managed_string_and_inventory_ignores() {
        let c = parse(
            "[defaults]\nansible_managed = Managed by {uid} on {host}\ninventory_ignore_extensions = '.bak', ~, .orig\n[inventory]\nignore_patterns = ^old, tmp$\n",
            Path::new("/p/ansible.cfg"),
        );
        assert_eq!(
            c.ansible_managed.as_deref(),
            Some("Managed by {uid} on {host}")
        );
        let exts = c.inventory_ignore_extensions.clone().unwrap();
        assert_eq!(exts, vec![".bak", "~", ".orig"]);
        assert_eq!(c.inventory_ignore_patterns, vec!["^old", "tmp$"]);
        let ignore = c.inventory_ignore().unwrap();
        assert_eq!(ignore.patterns.len(), 2);
        // Not set: Ansible's defaults, `.ini` among them.
        let d = AnsibleCfg::default().inventory_ignore().unwrap();
        assert!(d.extensions.iter().any(|e| e == ".ini"));
    }
}
