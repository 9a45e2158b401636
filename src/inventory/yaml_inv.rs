//! Ansible's YAML (and JSON) inventory format.

use std::path::Path;

use super::Inventory;
use crate::error::{Error, Location, Result};
use crate::yaml::{self, Node};

pub fn parse(inv: &mut Inventory, text: &str, path: &Path) -> Result<()> {
    let docs = yaml::parse_str(text, path)?;
    let Some(doc) = docs.first() else {
        return Ok(());
    };
    if doc.root.is_null() {
        return Ok(());
    }
    let top = doc.root.as_map().ok_or_else(|| {
        Error::parse(
            Location::new(path, doc.root.line, doc.root.col),
            "a YAML inventory must be a mapping of groups (e.g. `all:`)",
        )
        .with_snippet()
    })?;
    for (k, v) in top {
        group(inv, &k.key_str(), v, path)?;
    }
    Ok(())
}

fn group(inv: &mut Inventory, name: &str, node: &Node, path: &Path) -> Result<()> {
    inv.group_mut(name);
    if node.is_null() {
        return Ok(());
    }
    let bad = |n: &Node, msg: String| {
        Error::parse(Location::new(path, n.line, n.col), msg).with_snippet()
    };
    let map = node.as_map().ok_or_else(|| {
        bad(
            node,
            format!("group {name:?} must be a mapping with hosts/vars/children"),
        )
    })?;
    for (k, v) in map {
        match k.key_str().as_str() {
            "hosts" => {
                if v.is_null() {
                    continue;
                }
                let hosts = v
                    .as_map()
                    .ok_or_else(|| bad(v, format!("hosts of group {name:?} must be a mapping")))?;
                for (h, hv) in hosts {
                    let vars = match yaml::to_json(hv) {
                        serde_json::Value::Object(m) => m,
                        serde_json::Value::Null => Default::default(),
                        _ => {
                            return Err(bad(
                                hv,
                                format!("variables of host {:?} must be a mapping", h.key_str()),
                            ))
                        }
                    };
                    for hn in super::ini::expand_range(&h.key_str()).map_err(|m| bad(h, m))? {
                        inv.add_host(name, &hn).vars.extend(vars.clone());
                    }
                }
            }
            "vars" => match yaml::to_json(v) {
                serde_json::Value::Object(m) => inv.group_mut(name).vars.extend(m),
                serde_json::Value::Null => {}
                _ => return Err(bad(v, format!("vars of group {name:?} must be a mapping"))),
            },
            "children" => {
                if v.is_null() {
                    continue;
                }
                let children = v.as_map().ok_or_else(|| {
                    bad(v, format!("children of group {name:?} must be a mapping"))
                })?;
                for (c, cv) in children {
                    let cname = c.key_str();
                    inv.add_child(name, &cname);
                    group(inv, &cname, cv, path)?;
                }
            }
            other => {
                return Err(bad(
                    k,
                    format!(
                    "unknown key {other:?} in group {name:?} (expected hosts, vars or children)"
                ),
                ))
            }
        }
    }
    Ok(())
}
