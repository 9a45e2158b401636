//! `ferry doc`: generated from the modules' argument specs, so it cannot drift.

use crate::modules::{self, Kind};

pub fn list() -> String {
    let mut mods: Vec<_> = modules::all().iter().map(|m| m.spec()).collect();
    mods.sort_by_key(|s| s.name);
    let mut out = String::new();
    for s in mods {
        let fq = if s.aliases.is_empty() {
            format!("ansible.builtin.{}", s.name)
        } else {
            s.aliases.join(", ")
        };
        out.push_str(&format!("{:<22} {}  ({})\n", s.name, s.description, fq));
    }
    out
}

pub fn module(name: &str) -> Option<String> {
    let s = modules::find(name)?.spec();
    let mut out = format!(
        "> {} ({})\n\n  {}\n\nOPTIONS (= is mandatory):\n\n",
        s.name.to_uppercase(),
        s.name,
        s.description
    );
    for p in s.params.iter().filter(|p| p.name != "_raw_params") {
        let mark = if p.required { "=" } else { "-" };
        out.push_str(&format!("{mark} {}\n        {}\n", p.name, p.doc));
        if !p.aliases.is_empty() {
            out.push_str(&format!("        aliases: [{}]\n", p.aliases.join(", ")));
        }
        if !p.choices.is_empty() {
            out.push_str(&format!("        choices: [{}]\n", p.choices.join(", ")));
        }
        if let Some(d) = p.default {
            out.push_str(&format!(
                "        default: {}\n",
                if d == "\n" { "\\n" } else { d }
            ));
        }
        out.push_str(&format!(
            "        type: {}\n\n",
            if p.kind == Kind::Mode {
                "raw"
            } else {
                p.kind.name()
            }
        ));
    }
    if s.free_form {
        out.push_str("  This module takes a free-form command as its argument.\n\n");
    }
    if !s.mutually_exclusive.is_empty() {
        let groups: Vec<String> = s.mutually_exclusive.iter().map(|g| g.join("|")).collect();
        out.push_str(&format!("MUTUALLY EXCLUSIVE: {}\n\n", groups.join(", ")));
    }
    if !s.example.is_empty() {
        out.push_str(&format!("EXAMPLES:\n\n{}\n", s.example));
    }
    Some(out)
}
