//! `group_vars/` and `host_vars/` directories.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::Inventory;
use crate::error::{Error, Location, Result};

pub fn load(inv: &mut Inventory, dir: &Path) -> Result<()> {
    for (kind, is_group) in [("group_vars", true), ("host_vars", false)] {
        let base = dir.join(kind);
        let Ok(rd) = std::fs::read_dir(&base) else {
            continue;
        };
        let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        entries.sort();
        let mut per_name: Vec<(String, Map<String, Value>)> = Vec::new();
        for entry in entries {
            let fname = entry
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("")
                .to_string();
            if fname.starts_with('.') {
                continue;
            }
            let name = strip_vars_ext(&fname).to_string();
            let vars = if entry.is_dir() {
                load_dir(&entry)?
            } else if is_vars_file(&fname) {
                load_vars_file(&entry)?
            } else {
                continue;
            };
            match per_name.iter_mut().find(|(n, _)| *n == name) {
                Some((_, m)) => m.extend(vars),
                None => per_name.push((name, vars)),
            }
        }
        for (name, vars) in per_name {
            if is_group {
                inv.group_mut(&name).file_vars.push(vars);
            } else if let Some(h) = inv.hosts.get_mut(&name) {
                h.file_vars.push(vars);
            }
        }
    }
    Ok(())
}

fn strip_vars_ext(name: &str) -> &str {
    for ext in [".yml", ".yaml", ".json"] {
        if let Some(s) = name.strip_suffix(ext) {
            return s;
        }
    }
    name
}

fn is_vars_file(name: &str) -> bool {
    !name.ends_with('~')
        && (name.ends_with(".yml")
            || name.ends_with(".yaml")
            || name.ends_with(".json")
            || !name.contains('.'))
}

fn load_dir(dir: &Path) -> Result<Map<String, Value>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::Io {
            path: dir.to_path_buf(),
            source: e,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let mut out = Map::new();
    for f in files {
        let name = f
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("")
            .to_string();
        if f.is_dir() {
            out.extend(load_dir(&f)?);
        } else if !name.starts_with('.') && is_vars_file(&name) {
            out.extend(load_vars_file(&f)?);
        }
    }
    Ok(out)
}

/// A YAML/JSON file that must hold a mapping of variables (or nothing).
pub fn load_vars_file(path: &Path) -> Result<Map<String, Value>> {
    let docs = crate::yaml::load_file(path)?;
    let Some(doc) = docs.first() else {
        return Ok(Map::new());
    };
    match crate::yaml::to_json(&doc.root) {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        _ => Err(Error::parse(
            Location::new(path, doc.root.line, doc.root.col),
            format!(
                "a variables file must be a mapping, found a {}",
                doc.root.type_name()
            ),
        )
        .with_snippet()),
    }
}
