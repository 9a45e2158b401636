//! `ini_file` (community.general.ini_file): options in INI files, edited with
//! the algorithm of Ansible's module (lines kept as they are, the option
//! changed where it stands, a missing section appended) and placed atomically.

use async_trait::async_trait;

use super::textfile::{self, lossy, Remote};
use super::{util, Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["community.general.ini_file", "community.general.files.ini_file"],
    mutually_exclusive: &[&["value", "values"]],
    example: "- community.general.ini_file:\n    path: /etc/app.ini\n    section: server\n    option: port\n    value: '8080'\n    mode: '0644'\n",
    ..ModuleSpec::new(
        "ini_file",
        "Tweak settings in INI files.",
        crate::with_attr_params![
            Param::new("path", Kind::Path, "Path to the INI file (created if missing, unless create: false).").aliases(&["dest"]).required(),
            Param::new("section", Kind::Str, "Section name; none for options before the first section."),
            Param::new("option", Kind::Str, "The option (key) to change; none to add or remove the section only."),
            Param::new("value", Kind::Str, "The value of the option."),
            Param::new("values", Kind::List, "Several values of the option (one line each)."),
            Param::new("state", Kind::Str, "present or absent.").choices(&["present", "absent"]).default("present"),
            Param::new("exclusive", Kind::Bool, "Remove other values of the option (present), or all of them (absent).").default("yes"),
            Param::new("no_extra_spaces", Kind::Bool, "Write `option=value`, without spaces around `=`.").default("no"),
            Param::new("ignore_spaces", Kind::Bool, "Do not change a line that differs only in spaces.").default("no"),
            Param::new("allow_no_value", Kind::Bool, "Allow an option without a value (a bare key line).").default("no"),
            Param::new("modify_inactive_option", Kind::Bool, "Change a commented-out option (`# option = x`) in place.").default("yes"),
            Param::new("create", Kind::Bool, "Create the file when it does not exist.").default("yes"),
            Param::new("backup", Kind::Bool, "Keep a timestamped copy of the old file.").default("no"),
            Param::new("follow", Kind::Bool, "Accepted; the link's target is edited either way.").default("no"),
            Param::new("section_has_values", Kind::List, "Not supported by ferry."),
        ],
    )
};

pub struct IniFile;

/// Ansible's `match_opt` (`inactive`: a `#`/`;` comment mark may precede
/// the option) on a line without its newline: (comment mark, value).
fn match_opt(option: &str, line: &str, inactive: bool) -> Option<(String, String)> {
    let mark = if inactive { "([#;]?)" } else { "()" };
    let re = regex::Regex::new(&format!(
        r"^{mark}[ \t]*({})[ \t]*(=|$)[ \t]*(.*)",
        regex::escape(option)
    ))
    .ok()?;
    let c = re.captures(line)?;
    Some((c[1].to_string(), c[4].to_string()))
}

fn body(line: &str) -> &str {
    line.strip_suffix('\n').unwrap_or(line)
}

/// What to do, as the module's parameters say it.
pub struct Edit<'a> {
    pub section: Option<&'a str>,
    pub option: Option<&'a str>,
    pub values: Vec<String>,
    pub present: bool,
    pub exclusive: bool,
    pub no_extra_spaces: bool,
    pub ignore_spaces: bool,
    pub allow_no_value: bool,
    pub modify_inactive_option: bool,
}

/// Ansible's `do_ini` on the file's text: (new text, changed, msg).
pub fn compute(text: &str, e: &Edit<'_>) -> (String, bool, &'static str) {
    const FAKE: &str = "ad01e11446efb704fcdbdb21f2c43757423d91c5";
    let mut values: Vec<String> = Vec::new();
    for v in &e.values {
        if !values.contains(v) {
            values.push(v.clone());
        }
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines: Vec<String> = text.split_inclusive('\n').map(String::from).collect();
    let mut changed = false;
    if lines.is_empty() {
        lines.push("\n".into());
    }
    if let Some(last) = lines.last_mut() {
        if !last.ends_with('\n') {
            last.push('\n');
            changed = true;
        }
    }
    lines.insert(0, format!("[{FAKE}]"));
    lines.push("[".into());
    let section = e.section.filter(|s| !s.is_empty()).unwrap_or(FAKE);
    let fmt = |o: &str, v: &str| {
        if e.no_extra_spaces {
            format!("{o}={v}\n")
        } else {
            format!("{o} = {v}\n")
        }
    };
    let section_re = regex::Regex::new(&format!(r"^\[\s*{}\s*]", regex::escape(section.trim())))
        .expect("escaped section");
    let (mut within, mut start, mut end) = (false, 0, 0);
    for (i, line) in lines.iter().enumerate() {
        if within && line.starts_with('[') {
            end = i;
            break;
        }
        if section_re.is_match(line) {
            within = true;
            start = i;
        }
    }
    let before: Vec<String> = lines[..start].to_vec();
    let mut sec: Vec<String> = lines[start..end].to_vec();
    let after: Vec<String> = lines[end..].to_vec();
    let mut done = vec![false; sec.len()];
    let mut msg = "OK";
    let inactive = e.modify_inactive_option;
    let mut no_value_present = false;
    // Replaces line `i` (unless only spaces differ and ignore_spaces).
    let update = |sec: &mut Vec<String>,
                  done: &mut Vec<bool>,
                  i: usize,
                  new: String,
                  changed: &mut bool,
                  msg: &mut &'static str| {
        let mut differs = None;
        if e.ignore_spaces {
            if let (Some(old), Some(n)) = (
                match_opt(e.option.unwrap_or_default(), body(&sec[i]), true),
                match_opt(e.option.unwrap_or_default(), body(&new), true),
            ) {
                if old.0.is_empty() {
                    differs = Some(old.1 != n.1);
                }
            }
        }
        if differs.unwrap_or(sec[i] != new) {
            sec[i] = new;
            *changed = true;
            *msg = "option changed";
        }
        done[i] = true;
    };
    if let (true, Some(opt)) = (e.present, e.option) {
        for i in 0..sec.len() {
            let Some((_, v)) = match_opt(opt, body(&sec[i]), inactive) else {
                continue;
            };
            if !values.is_empty() && values.contains(&v) {
                let new = if v.is_empty() && e.allow_no_value {
                    no_value_present = true;
                    format!("{opt}\n")
                } else {
                    fmt(opt, &v)
                };
                update(&mut sec, &mut done, i, new, &mut changed, &mut msg);
                values.retain(|x| *x != v);
            } else if values.is_empty() && e.allow_no_value {
                update(
                    &mut sec,
                    &mut done,
                    i,
                    format!("{opt}\n"),
                    &mut changed,
                    &mut msg,
                );
                no_value_present = true;
                break;
            }
        }
    }
    if e.present && e.exclusive && !e.allow_no_value {
        let opt = e.option.unwrap_or_default();
        if !values.is_empty() {
            for i in 0..sec.len() {
                if !done[i] && match_opt(opt, body(&sec[i]), inactive).is_some() {
                    let v = values.remove(0);
                    update(&mut sec, &mut done, i, fmt(opt, &v), &mut changed, &mut msg);
                    if values.is_empty() {
                        break;
                    }
                }
            }
        }
        for i in (1..sec.len()).rev() {
            if !done[i] && match_opt(opt, body(&sec[i]), inactive).is_some() {
                sec.remove(i);
                done.remove(i);
                changed = true;
                msg = "option changed";
            }
        }
    }
    if e.present {
        let blank_or_comment = |l: &str| {
            let t = body(l).trim_start_matches([' ', '\t']);
            t.is_empty() || t.starts_with('#') || t.starts_with(';')
        };
        for i in (1..=sec.len()).rev() {
            if !blank_or_comment(&sec[i - 1]) {
                if let (Some(opt), false) = (e.option, values.is_empty()) {
                    for v in values.iter().rev() {
                        sec.insert(i, fmt(opt, v));
                    }
                    msg = "option added";
                    changed = true;
                } else if let (Some(opt), true, true, false) = (
                    e.option,
                    values.is_empty(),
                    e.allow_no_value,
                    no_value_present,
                ) {
                    sec.insert(i, format!("{opt}\n"));
                    msg = "option added";
                    changed = true;
                }
                break;
            }
        }
    }
    if !e.present {
        match e.option {
            Some(opt) => {
                let keep = |l: &String| match match_opt(opt, body(l), false) {
                    Some((_, v)) => !(e.exclusive || values.contains(&v)),
                    None => true,
                };
                if e.exclusive || !values.is_empty() {
                    let new: Vec<String> = sec.iter().filter(|l| keep(l)).cloned().collect();
                    if new != sec {
                        changed = true;
                        msg = "option changed";
                        sec = new;
                    }
                }
            }
            None => {
                if !sec.is_empty() {
                    sec.clear();
                    msg = "section removed";
                    changed = true;
                }
            }
        }
    }
    let mut out: Vec<String> = before;
    out.extend(sec);
    out.extend(after);
    out.remove(0);
    out.pop();
    if !within && e.present {
        out.push(format!("[{section}]\n"));
        msg = "section and option added";
        match e.option {
            Some(opt) if !values.is_empty() => {
                for v in &values {
                    out.push(fmt(opt, v));
                }
            }
            Some(opt) if e.allow_no_value => out.push(format!("{opt}\n")),
            _ => msg = "only section added",
        }
        changed = true;
    }
    (out.concat(), changed, msg)
}

#[async_trait]
impl Module for IniFile {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let path = args.req_str("path")?;
        if args.has("section_has_values") {
            return Err(ModError::fail(
                "section_has_values is not supported by ferry",
            ));
        }
        let present = args.str("state") != Some("absent");
        if present
            && !args.bool("allow_no_value")
            && !args.has("value")
            && args.list("values").is_empty()
        {
            return Err(ModError::fail(
                "Parameter 'value(s)' must be defined if state=present and allow_no_value=False.",
            ));
        }
        textfile::edit_file!(ctx, path, |r| edit(args, ctx, r))
    }
}

async fn edit(args: &Args, ctx: &Ctx<'_>, r: &Remote) -> ModResult {
    let path = r.path.as_str();
    if r.is_dir() {
        return Err(ModError::fail(format!(
            "Destination {path} is a directory !"
        )));
    }
    if !r.exists() && !args.bool("create") {
        let mut data = serde_json::Map::new();
        data.insert("rc".into(), 257.into());
        return Err(ModError::Failed {
            msg: format!("Destination {path} does not exist!"),
            data,
        });
    }
    let old = lossy(&r.content.clone().unwrap_or_default());
    let values = match args.str("value") {
        Some(v) => vec![v.to_string()],
        None => args.list("values"),
    };
    let e = Edit {
        section: args.str("section"),
        option: args.str("option"),
        values,
        present: args.str("state") != Some("absent"),
        exclusive: args.bool("exclusive"),
        no_extra_spaces: args.bool("no_extra_spaces"),
        ignore_spaces: args.bool("ignore_spaces"),
        allow_no_value: args.bool("allow_no_value"),
        modify_inactive_option: args.bool("modify_inactive_option"),
    };
    let (new, content_changed, msg) = compute(&old, &e);
    let mut o = Outcome::ok().with("path", path);
    if content_changed && ctx.diff_mode {
        o = o.diff(util::text_diff(&old, &new, path));
    }
    if content_changed && !ctx.check_mode {
        if let Some(b) = textfile::save(ctx, args, r, new.as_bytes()).await? {
            o = o.with("backup_file", b);
        }
    }
    let mut changed = content_changed;
    if r.exists() || content_changed {
        // Ansible's ini_file reports attributes in `changed` only, not in msg.
        let mut unused = String::new();
        textfile::check_attrs(ctx, args, r, content_changed, &mut changed, &mut unused).await?;
    }
    o.changed = changed;
    Ok(o.msg(msg))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ed<'a>(section: Option<&'a str>, option: Option<&'a str>, values: &[&str]) -> Edit<'a> {
        Edit {
            section,
            option,
            values: values.iter().map(|s| s.to_string()).collect(),
            present: true,
            exclusive: true,
            no_extra_spaces: false,
            ignore_spaces: false,
            allow_no_value: false,
            modify_inactive_option: true,
        }
    }

    #[test]
    fn edits_as_ansibles_module_does() {
        let text = "; top\nglobal=1\n\n[server]\n# port = 80\nhost = a\n\n[client]\nx = 1\n";
        // A commented-out option is changed where it stands.
        let (new, ch, msg) = compute(text, &ed(Some("server"), Some("port"), &["8080"]));
        assert!(ch);
        assert_eq!(msg, "option changed");
        assert_eq!(
            new,
            "; top\nglobal=1\n\n[server]\nport = 8080\nhost = a\n\n[client]\nx = 1\n"
        );
        // Again: nothing to do.
        let (again, ch, msg) = compute(&new, &ed(Some("server"), Some("port"), &["8080"]));
        assert_eq!((again.as_str(), ch, msg), (new.as_str(), false, "OK"));
        // A new option goes after the section's last active line.
        let (new, _, msg) = compute(text, &ed(Some("client"), Some("y"), &["2"]));
        assert_eq!(msg, "option added");
        assert!(new.ends_with("[client]\nx = 1\ny = 2\n"), "{new}");
        // Options before any section; a missing section is appended.
        let (new, _, _) = compute(text, &ed(None, Some("global"), &["2"]));
        assert!(new.starts_with("; top\nglobal = 2\n"), "{new}");
        let (new, _, msg) = compute("a = 1", &ed(Some("new"), Some("k"), &["v"]));
        assert_eq!(
            (new.as_str(), msg),
            ("a = 1\n[new]\nk = v\n", "section and option added")
        );
        // Several values, exclusive: others removed.
        let (new, _, _) = compute(
            "[s]\nk = 1\nk = 2\nk = 3\n",
            &ed(Some("s"), Some("k"), &["3", "4"]),
        );
        assert_eq!(new, "[s]\nk = 4\nk = 3\n");
        // Absent: the option, or the whole section.
        let mut gone = ed(Some("server"), Some("host"), &[]);
        gone.present = false;
        let (new, _, _) = compute(text, &gone);
        assert!(!new.contains("host"));
        gone.option = None;
        let (new, _, msg) = compute(text, &gone);
        assert_eq!(msg, "section removed");
        assert_eq!(new, "; top\nglobal=1\n\n[client]\nx = 1\n");
        // no_extra_spaces and an empty file.
        let mut tight = ed(Some("s"), Some("k"), &["v"]);
        tight.no_extra_spaces = true;
        assert_eq!(compute("", &tight).0, "\n[s]\nk=v\n");
    }
}
