//! Inventories: hosts, groups and their variables, as Ansible builds them.

mod ini;
pub mod pattern;
mod vars_dirs;
pub use vars_dirs::load_vars_file;
mod yaml_inv;

use std::path::{Path, PathBuf};

use indexmap::{IndexMap, IndexSet};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Default)]
pub struct Host {
    pub name: String,
    /// Variables set on the host in the inventory source itself.
    pub vars: Map<String, Value>,
    /// `host_vars/` files, lowest precedence first (inventory dir, then playbook dir).
    pub file_vars: Vec<Map<String, Value>>,
}

#[derive(Debug, Clone, Default)]
pub struct Group {
    pub name: String,
    pub hosts: IndexSet<String>,
    pub children: IndexSet<String>,
    pub vars: Map<String, Value>,
    /// `group_vars/` files, lowest precedence first.
    pub file_vars: Vec<Map<String, Value>>,
}

#[derive(Debug, Clone, Default)]
pub struct Inventory {
    pub hosts: IndexMap<String, Host>,
    pub groups: IndexMap<String, Group>,
    /// Directories whose `group_vars`/`host_vars` were read (to avoid reading twice).
    pub sources: Vec<PathBuf>,
    /// `localhost` was added implicitly: it is then not part of `all`.
    pub implicit_localhost: bool,
}

impl Inventory {
    pub fn new() -> Inventory {
        let mut inv = Inventory::default();
        inv.group_mut("all");
        inv.group_mut("ungrouped");
        inv
    }

    /// Loads every `-i` source: files, directories and `host1,host2,` lists.
    pub fn load(sources: &[String]) -> Result<Inventory> {
        Inventory::load_with(sources, &Ignore::default())
    }

    /// Like [`Inventory::load`], skipping in directories what `ignore` names.
    pub fn load_with(sources: &[String], ignore: &Ignore) -> Result<Inventory> {
        let mut inv = Inventory::new();
        for src in sources {
            if src.contains(',') && !Path::new(src).exists() {
                for h in src.split(',').map(str::trim).filter(|h| !h.is_empty()) {
                    inv.add_host("ungrouped", h);
                }
                continue;
            }
            let path = Path::new(src);
            if path.is_dir() {
                inv.load_dir(path, ignore)?;
                inv.load_vars_dirs(path)?;
            } else if path.is_file() {
                inv.load_file(path)?;
                inv.load_vars_dirs(path.parent().unwrap_or(Path::new(".")))?;
            } else {
                return Err(Error::Usage(format!(
                    "inventory source {src} does not exist"
                )));
            }
        }
        inv.finish();
        Ok(inv)
    }

    /// A directory source, read as Ansible reads it: entries in name order,
    /// subdirectories too, `group_vars`/`host_vars` only beside the `-i` source.
    fn load_dir(&mut self, dir: &Path, ignore: &Ignore) -> Result<()> {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| io_err(dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| !ignore.skips(p))
            .collect();
        entries.sort();
        for entry in entries {
            if entry.is_dir() {
                self.load_dir(&entry, ignore)?;
            } else if entry.is_file() {
                self.load_file(&entry)?;
            }
        }
        Ok(())
    }

    fn load_file(&mut self, path: &Path) -> Result<()> {
        // A whole inventory file may be vaulted, as in Ansible.
        let text = crate::vault::read_text(path)?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        if matches!(ext, "yml" | "yaml" | "json") {
            yaml_inv::parse(self, &text, path)
        } else {
            ini::parse(self, &text, path)
        }
    }

    /// Reads `group_vars/` and `host_vars/` beside an inventory or a playbook.
    pub fn load_vars_dirs(&mut self, dir: &Path) -> Result<()> {
        let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
        if self.sources.contains(&dir) {
            return Ok(());
        }
        self.sources.push(dir.clone());
        vars_dirs::load(self, &dir)
    }

    pub fn group_mut(&mut self, name: &str) -> &mut Group {
        self.groups
            .entry(name.to_string())
            .or_insert_with(|| Group {
                name: name.to_string(),
                ..Group::default()
            })
    }

    pub fn add_host(&mut self, group: &str, name: &str) -> &mut Host {
        self.group_mut(group).hosts.insert(name.to_string());
        self.hosts.entry(name.to_string()).or_insert_with(|| Host {
            name: name.to_string(),
            ..Host::default()
        })
    }

    pub fn add_child(&mut self, parent: &str, child: &str) {
        self.group_mut(child);
        if parent != child {
            self.group_mut(parent).children.insert(child.to_string());
        }
    }

    /// Puts top-level groups under `all` and group-less hosts in `ungrouped`.
    pub fn finish(&mut self) {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        let children: IndexSet<String> = self
            .groups
            .values()
            .flat_map(|g| g.children.iter().cloned())
            .collect();
        for n in &names {
            if n != "all" && !children.contains(n) {
                self.group_mut("all").children.insert(n.clone());
            }
        }
        let grouped: IndexSet<String> = self
            .groups
            .values()
            .filter(|g| g.name != "all" && g.name != "ungrouped")
            .flat_map(|g| g.hosts.iter().cloned())
            .collect();
        let hosts: Vec<String> = self.hosts.keys().cloned().collect();
        let ungrouped = self.group_mut("ungrouped");
        ungrouped.hosts.retain(|h| !grouped.contains(h));
        for h in hosts {
            if !grouped.contains(&h) {
                ungrouped.hosts.insert(h);
            }
        }
        let all = self.group_mut("all");
        all.hosts.clear();
    }

    /// All hosts of a group, children included, in inventory order.
    pub fn group_hosts(&self, group: &str) -> Vec<String> {
        if group == "all" {
            return self
                .hosts
                .keys()
                .filter(|h| !(self.implicit_localhost && *h == "localhost"))
                .cloned()
                .collect();
        }
        let mut out = IndexSet::new();
        let mut seen = IndexSet::new();
        self.collect_hosts(group, &mut out, &mut seen);
        // Inventory order, like Ansible's default `order: inventory`.
        self.hosts
            .keys()
            .filter(|h| out.contains(*h))
            .cloned()
            .collect()
    }

    fn collect_hosts(&self, group: &str, out: &mut IndexSet<String>, seen: &mut IndexSet<String>) {
        if !seen.insert(group.to_string()) {
            return;
        }
        if let Some(g) = self.groups.get(group) {
            out.extend(g.hosts.iter().cloned());
            for c in &g.children {
                self.collect_hosts(c, out, seen);
            }
        }
    }

    /// Groups a host belongs to (directly or through children), with their depth.
    fn host_groups_with_depth(&self, host: &str) -> Vec<(usize, String)> {
        let mut out: Vec<(usize, String)> = Vec::new();
        for g in self.groups.values() {
            if g.hosts.contains(host) {
                self.ancestors(&g.name, &mut out);
            }
        }
        if self.hosts.contains_key(host) && !out.iter().any(|(_, n)| n == "all") {
            out.push((0, "all".into()));
        }
        out
    }

    /// Adds `group` and every parent of it, with depth = distance from `all`.
    fn ancestors(&self, group: &str, out: &mut Vec<(usize, String)>) {
        if out.iter().any(|(_, n)| n == group) {
            return;
        }
        out.push((self.depth(group, 0), group.to_string()));
        for p in self.groups.values() {
            if p.children.contains(group) {
                self.ancestors(&p.name, out);
            }
        }
    }

    fn depth(&self, group: &str, guard: usize) -> usize {
        if group == "all" || guard > 64 {
            return 0;
        }
        self.groups
            .values()
            .filter(|p| p.children.contains(group))
            .map(|p| 1 + self.depth(&p.name, guard + 1))
            .max()
            .unwrap_or(1)
    }

    /// `group_names`: the host's groups without `all`/`ungrouped`, sorted like Ansible.
    pub fn group_names(&self, host: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .host_groups_with_depth(host)
            .into_iter()
            .map(|(_, n)| n)
            .filter(|n| n != "all" && n != "ungrouped")
            .collect();
        v.sort();
        v
    }

    /// Inventory variables of a host: groups by depth (then name), then the host.
    pub fn host_vars(&self, host: &str) -> Map<String, Value> {
        let mut groups = self.host_groups_with_depth(host);
        groups.sort();
        let mut vars = Map::new();
        for (_, g) in &groups {
            if let Some(g) = self.groups.get(g) {
                vars.extend(g.vars.clone());
                for fv in &g.file_vars {
                    vars.extend(fv.clone());
                }
            }
        }
        if let Some(h) = self.hosts.get(host) {
            vars.extend(h.vars.clone());
            for fv in &h.file_vars {
                vars.extend(fv.clone());
            }
        }
        vars
    }

    /// `groups` magic variable: every group with its hosts.
    pub fn groups_map(&self) -> Map<String, Value> {
        self.groups
            .keys()
            .map(|g| {
                (
                    g.clone(),
                    Value::Array(self.group_hosts(g).into_iter().map(Value::String).collect()),
                )
            })
            .collect()
    }

    /// Same shape as `ansible-inventory --list`.
    pub fn to_list_json(&self) -> Value {
        let mut out = Map::new();
        // Hosts without variables are left out, as ansible-inventory does.
        let hostvars: Map<String, Value> = self
            .hosts
            .keys()
            .map(|h| (h.clone(), self.host_vars(h)))
            .filter(|(_, v)| !v.is_empty())
            .map(|(h, v)| (h, Value::Object(v)))
            .collect();
        let mut meta = Map::new();
        meta.insert("hostvars".into(), Value::Object(hostvars));
        out.insert("_meta".into(), Value::Object(meta));
        for g in self.groups.values() {
            let mut gm = Map::new();
            if !g.children.is_empty() {
                gm.insert(
                    "children".into(),
                    Value::Array(g.children.iter().cloned().map(Value::String).collect()),
                );
            }
            if !g.hosts.is_empty() {
                gm.insert(
                    "hosts".into(),
                    Value::Array(g.hosts.iter().cloned().map(Value::String).collect()),
                );
            }
            if g.name == "ungrouped" && g.hosts.is_empty() {
                continue;
            }
            out.insert(g.name.clone(), Value::Object(gm));
        }
        Value::Object(out)
    }

    /// Same shape as `ansible-inventory --graph`.
    pub fn graph(&self, root: &str) -> String {
        let mut s = String::new();
        self.graph_rec(root, 0, &mut s);
        s
    }

    /// Ansible's `--graph` lines: `  |` per level, `--` before a nested name.
    fn graph_rec(&self, group: &str, depth: usize, s: &mut String) {
        let line = |s: &mut String, depth: usize, name: &str| {
            let dashes = if depth > 0 { "--" } else { "" };
            s.push_str(&format!("{}{dashes}{name}\n", "  |".repeat(depth)));
        };
        line(s, depth, &format!("@{group}:"));
        if let Some(g) = self.groups.get(group) {
            for c in &g.children {
                self.graph_rec(c, depth + 1, s);
            }
            for h in &g.hosts {
                line(s, depth + 1, h);
            }
        }
    }

    /// Ansible's implicit `localhost`, used when a pattern names it but the inventory does not.
    pub fn ensure_implicit_localhost(&mut self) {
        if !self.hosts.contains_key("localhost") {
            let mut vars = Map::new();
            vars.insert("ansible_connection".into(), Value::String("local".into()));
            vars.insert(
                "ansible_python_interpreter".into(),
                Value::String("/usr/bin/env python3".into()),
            );
            self.hosts.insert(
                "localhost".into(),
                Host {
                    name: "localhost".into(),
                    vars,
                    file_vars: Vec::new(),
                },
            );
            self.implicit_localhost = true;
        }
    }
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: e,
    }
}

/// Files Ansible's inventory directory loader skips: hidden ones and its
/// default `inventory_ignore_extensions` (so a `hosts.ini` in a directory is
/// not read, by Ansible or by ferry; name it `hosts` or `hosts.yml`).
/// What a directory source skips: Ansible's `inventory_ignore_extensions` and
/// `inventory_ignore_patterns`, besides hidden entries and the vars directories.
#[derive(Debug, Clone)]
pub struct Ignore {
    pub extensions: Vec<String>,
    pub patterns: Vec<regex::Regex>,
}

/// Ansible's default `inventory_ignore_extensions` (REJECT_EXTS and four more).
pub const DEFAULT_IGNORE_EXTENSIONS: [&str; 13] = [
    ".pyc", ".pyo", ".swp", ".bak", "~", ".rpm", ".md", ".txt", ".rst", ".orig", ".ini", ".cfg",
    ".retry",
];

impl Default for Ignore {
    fn default() -> Ignore {
        Ignore {
            extensions: DEFAULT_IGNORE_EXTENSIONS.map(String::from).to_vec(),
            patterns: Vec::new(),
        }
    }
}

impl Ignore {
    /// Patterns are regular expressions searched in the entry's name (as Ansible does).
    pub fn new(extensions: Vec<String>, patterns: &[String]) -> Result<Ignore> {
        let patterns = patterns
            .iter()
            .map(|p| {
                regex::Regex::new(p).map_err(|e| {
                    Error::Usage(format!(
                        "inventory_ignore_patterns: {p:?} is not a regular expression: {e}"
                    ))
                })
            })
            .collect::<Result<_>>()?;
        Ok(Ignore {
            extensions,
            patterns,
        })
    }

    fn skips(&self, p: &Path) -> bool {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        name.starts_with('.')
            || matches!(name, "group_vars" | "host_vars" | "vars_plugins")
            || self.extensions.iter().any(|s| name.ends_with(s.as_str()))
            || self.patterns.iter().any(|r| r.is_match(name))
    }
}

#[cfg(test)]
mod tests;
