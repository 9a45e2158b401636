//! Host patterns: `all`, names, groups, globs, `~regex`, `a:b`, `a:&b`, `a:!b`, `g[0:2]`.

use indexmap::IndexSet;

use super::Inventory;
use crate::error::{Error, Result};

/// Hosts matched by a pattern, in inventory order.
pub fn select(inv: &Inventory, pattern: &str) -> Result<Vec<String>> {
    let terms = split_terms(pattern);
    let mut include: Option<IndexSet<String>> = None;
    let mut intersect: Vec<IndexSet<String>> = Vec::new();
    let mut exclude: IndexSet<String> = IndexSet::new();
    for term in terms {
        if let Some(t) = term.strip_prefix('&') {
            intersect.push(match_term(inv, t)?);
        } else if let Some(t) = term.strip_prefix('!') {
            exclude.extend(match_term(inv, t)?);
        } else {
            include
                .get_or_insert_with(IndexSet::new)
                .extend(match_term(inv, &term)?);
        }
    }
    let mut set = include.unwrap_or_else(|| inv.group_hosts("all").into_iter().collect());
    for i in intersect {
        set.retain(|h| i.contains(h));
    }
    set.retain(|h| !exclude.contains(h));
    // Inventory order, whatever the order of the terms.
    Ok(inv
        .hosts
        .keys()
        .filter(|h| set.contains(*h))
        .cloned()
        .collect())
}

/// Splits on `:` and `,`, but keeps regexes (`~...`) and IPv6 literals whole.
fn split_terms(pattern: &str) -> Vec<String> {
    let sep = if pattern.contains(',') { ',' } else { ':' };
    if sep == ':'
        && (pattern.starts_with('~')
            || pattern.matches(':').count() > 2 && !pattern.contains(['&', '!']))
    {
        return vec![pattern.to_string()];
    }
    // Separators inside `[...]` subscripts belong to the subscript.
    let mut terms = Vec::new();
    let (mut cur, mut depth) = (String::new(), 0usize);
    for c in pattern.chars() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        if c == sep && depth == 0 {
            terms.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    terms.push(cur);
    terms
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn match_term(inv: &Inventory, term: &str) -> Result<IndexSet<String>> {
    let (base, subscript) = split_subscript(term);
    let mut hosts: Vec<String> = if base == "all" || base == "*" {
        inv.group_hosts("all")
    } else if let Some(re) = base.strip_prefix('~') {
        let re = regex::Regex::new(re)
            .map_err(|e| Error::Usage(format!("invalid regex in host pattern {term:?}: {e}")))?;
        let mut v: Vec<String> = inv
            .hosts
            .keys()
            .filter(|h| re.is_match(h))
            .cloned()
            .collect();
        v.extend(
            inv.groups
                .keys()
                .filter(|g| re.is_match(g))
                .flat_map(|g| inv.group_hosts(g)),
        );
        v
    } else if inv.groups.contains_key(base) {
        inv.group_hosts(base)
    } else if inv.hosts.contains_key(base) {
        vec![base.to_string()]
    } else if base.contains(['*', '?', '[']) {
        let pat = glob::Pattern::new(base)
            .map_err(|e| Error::Usage(format!("invalid glob in host pattern {term:?}: {e}")))?;
        let mut v: Vec<String> = inv
            .hosts
            .keys()
            .filter(|h| pat.matches(h))
            .cloned()
            .collect();
        v.extend(
            inv.groups
                .keys()
                .filter(|g| pat.matches(g))
                .flat_map(|g| inv.group_hosts(g)),
        );
        v
    } else {
        Vec::new()
    };
    if let Some((a, b)) = subscript {
        let len = hosts.len() as i64;
        let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) } as usize;
        let start = norm(a);
        let end = match b {
            Some(e) => norm(e) + 1,
            None => start + 1,
        }
        .min(hosts.len());
        hosts = if start < end {
            hosts[start..end].to_vec()
        } else {
            Vec::new()
        };
    }
    Ok(hosts.into_iter().collect())
}

/// `group[1]`, `group[0:2]`, `group[-1]`: Ansible's subscripts (end inclusive).
fn split_subscript(term: &str) -> (&str, Option<(i64, Option<i64>)>) {
    if term.starts_with('~') || !term.ends_with(']') {
        return (term, None);
    }
    let Some(open) = term.rfind('[') else {
        return (term, None);
    };
    let inner = &term[open + 1..term.len() - 1];
    let parsed = match inner.split_once(':') {
        Some((a, b)) => {
            let a = if a.is_empty() {
                Some(0)
            } else {
                a.parse().ok()
            };
            let b = if b.is_empty() {
                Some(-1)
            } else {
                b.parse().ok()
            };
            a.zip(b).map(|(a, b)| (a, Some(b)))
        }
        None => inner.parse().ok().map(|a| (a, None)),
    };
    match parsed {
        Some(p) => (&term[..open], Some(p)),
        None => (term, None),
    }
}
