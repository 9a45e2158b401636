//! Ansible's INI inventory format.

use std::path::Path;

use serde_json::{Map, Value};

use super::Inventory;
use crate::error::{Error, Location, Result};

enum Section {
    Hosts(String),
    Vars(String),
    Children(String),
}

pub fn parse(inv: &mut Inventory, text: &str, path: &Path) -> Result<()> {
    let mut section = Section::Hosts("ungrouped".into());
    for (idx, raw) in text.lines().enumerate() {
        let lineno = idx + 1;
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let err = |col: usize, msg: String| {
            Error::parse(Location::new(path, lineno, col), msg).with_snippet()
        };
        if let Some(rest) = line.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(err(1, "section header must end with ']'".into()));
            };
            let (group, kind) = match name.split_once(':') {
                Some((g, k)) => (g.trim(), k.trim()),
                None => (name.trim(), "hosts"),
            };
            if group.is_empty() || group.contains(char::is_whitespace) {
                return Err(err(2, format!("invalid group name {group:?}")));
            }
            section = match kind {
                "hosts" => Section::Hosts(group.into()),
                "vars" => Section::Vars(group.into()),
                "children" => Section::Children(group.into()),
                other => {
                    return Err(err(
                        2,
                        format!("unknown section type :{other} (use :vars or :children)"),
                    ))
                }
            };
            inv.group_mut(group);
            continue;
        }
        match &section {
            Section::Hosts(group) => {
                let words = shlex_split(line).ok_or_else(|| err(1, "unbalanced quotes".into()))?;
                let (host, rest) = words.split_first().expect("line is not empty");
                let (name, port) = split_port(host);
                let mut vars = Map::new();
                if let Some(port) = port {
                    vars.insert("ansible_port".into(), Value::from(port));
                }
                for kv in rest {
                    let Some((k, v)) = kv.split_once('=') else {
                        return Err(err(
                            raw.find(kv.as_str()).unwrap_or(0) + 1,
                            format!("expected key=value after the host name, found {kv:?}"),
                        ));
                    };
                    vars.insert(k.to_string(), literal(v));
                }
                for h in expand_range(&name).map_err(|m| err(1, m))? {
                    inv.add_host(group, &h).vars.extend(vars.clone());
                }
            }
            Section::Vars(group) => {
                let Some((k, v)) = line.split_once('=') else {
                    return Err(err(1, "expected key=value in a :vars section".into()));
                };
                // In :vars sections values stay strings (Ansible docs), unquoted.
                let v = v.trim();
                let v = shlex_split(v)
                    .filter(|w| w.len() == 1)
                    .map(|mut w| w.remove(0))
                    .unwrap_or_else(|| v.to_string());
                inv.group_mut(group)
                    .vars
                    .insert(k.trim().to_string(), Value::String(v));
            }
            Section::Children(group) => {
                let child = line.split_whitespace().next().unwrap_or(line);
                inv.add_child(group, child);
            }
        }
    }
    Ok(())
}

fn shlex_split(s: &str) -> Option<Vec<String>> {
    // Ansible splits host lines with shlex, comments allowed after whitespace.
    let cut = s
        .char_indices()
        .find(|(i, c)| *c == '#' && *i > 0 && s[..*i].ends_with(char::is_whitespace))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    shlex::split(&s[..cut])
}

fn split_port(host: &str) -> (String, Option<u16>) {
    // `host:port`, but not IPv6 literals (more than one colon).
    if host.matches(':').count() == 1 {
        if let Some((h, p)) = host.split_once(':') {
            if let Ok(port) = p.parse() {
                return (h.to_string(), Some(port));
            }
        }
    }
    (host.to_string(), None)
}

/// Inline host variables are Python literals in Ansible (`x=5` is an int).
pub fn literal(v: &str) -> Value {
    match v {
        "True" | "true" => return Value::Bool(true),
        "False" | "false" => return Value::Bool(false),
        "None" => return Value::Null,
        _ => {}
    }
    if let Ok(i) = v.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = v.parse::<f64>() {
        if v.contains('.') {
            return serde_json::json!(f);
        }
    }
    if (v.starts_with('[') && v.ends_with(']')) || (v.starts_with('{') && v.ends_with('}')) {
        if let Ok(j) = serde_json::from_str(&v.replace('\'', "\"")) {
            return j;
        }
    }
    Value::String(v.to_string())
}

/// Expands `web[01:03].example.com` and `db-[a:c]` ranges (with optional stride).
pub fn expand_range(pattern: &str) -> std::result::Result<Vec<String>, String> {
    let Some(open) = pattern.find('[') else {
        return Ok(vec![pattern.to_string()]);
    };
    let Some(close_rel) = pattern[open..].find(']') else {
        return Err(format!("unclosed range in host pattern {pattern:?}"));
    };
    let close = open + close_rel;
    let (head, inner, tail) = (
        &pattern[..open],
        &pattern[open + 1..close],
        &pattern[close + 1..],
    );
    let (range, stride) = match inner.split_once(':') {
        Some((a, rest)) => match rest.split_once(':') {
            Some((b, s)) => (
                (a, b),
                s.parse::<usize>()
                    .map_err(|_| format!("bad stride in {pattern:?}"))?,
            ),
            None => ((a, rest), 1),
        },
        None => return Err(format!("range {inner:?} in {pattern:?} needs a ':'")),
    };
    let stride = stride.max(1);
    let mut items = Vec::new();
    let (a, b) = range;
    if let (Ok(x), Ok(y)) = (a.parse::<u64>(), b.parse::<u64>()) {
        if x > y {
            return Err(format!("range start is after its end in {pattern:?}"));
        }
        too_many(pattern, (y - x) / stride as u64 + 1)?;
        let width = if a.starts_with('0') { a.len() } else { 0 };
        for n in (x..=y).step_by(stride) {
            items.push(format!("{n:0width$}"));
        }
    } else if a.len() == 1
        && b.len() == 1
        && a.chars().chain(b.chars()).all(|c| c.is_ascii_alphabetic())
    {
        let (x, y) = (a.as_bytes()[0], b.as_bytes()[0]);
        if x > y {
            return Err(format!("range start is after its end in {pattern:?}"));
        }
        for c in (x..=y).step_by(stride) {
            items.push((c as char).to_string());
        }
    } else {
        return Err(format!("invalid range {inner:?} in {pattern:?}"));
    }
    let rests = expand_range(tail)?;
    too_many(pattern, items.len() as u64 * rests.len() as u64)?;
    let mut out = Vec::with_capacity(items.len() * rests.len());
    for it in items {
        for rest in &rests {
            out.push(format!("{head}{it}{rest}"));
        }
    }
    Ok(out)
}

/// Host ranges are capped: `web[1:9999999999]` would take the machine's memory
/// (found by the fuzzer). Ansible has no cap; no real inventory comes near it.
const MAX_RANGE_HOSTS: u64 = 100_000;

fn too_many(pattern: &str, n: u64) -> std::result::Result<(), String> {
    if n > MAX_RANGE_HOSTS {
        return Err(format!(
            "host range {pattern:?} expands to {n} hosts (at most {MAX_RANGE_HOSTS})"
        ));
    }
    Ok(())
}
