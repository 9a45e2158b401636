//! `apt_repository`: one-line apt sources (`deb ... suite components`) in
//! `/etc/apt/sources.list` and `/etc/apt/sources.list.d/*.list`, with
//! Ansible's rules: a source already present anywhere (even commented out)
//! is enabled rather than added again; a new one goes to
//! `sources.list.d/<filename>.list`, the name derived from the repository URL
//! when `filename` is not given; `absent` removes it from every file and
//! deletes files left empty. Files are replaced atomically; after a change
//! the cache is updated (`update_cache`, default yes) and the files are put
//! back if that update fails. `ppa:` shortcuts (Ubuntu) are not supported.

use std::collections::BTreeMap;

use async_trait::async_trait;
use base64::Engine;
use serde_json::Value;

use super::{util, Args, Ctx, Diff, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["ansible.builtin.apt_repository", "ansible.legacy.apt_repository"],
    example: "- ansible.builtin.apt_repository:\n    repo: deb [signed-by=/etc/apt/keyrings/x.gpg] https://example.com/apt bookworm main\n    filename: example\n",
    ..ModuleSpec::new(
        "apt_repository",
        "Add or remove a one-line apt source (sources.list.d/*.list).",
        &[
            Param::new("repo", Kind::Str, "The source line, e.g. `deb http://deb.debian.org/debian bookworm main`.").required(),
            Param::new("state", Kind::Str, "present or absent.").choices(&["absent", "present"]).default("present"),
            Param::new("mode", Kind::Mode, "Mode of a newly created source file (default 0644)."),
            Param::new("update_cache", Kind::Bool, "Run apt-get update after a change.").aliases(&["update-cache"]).default("yes"),
            Param::new("update_cache_retries", Kind::Int, "Attempts at updating the cache.").default("5"),
            Param::new("update_cache_retry_max_delay", Kind::Int, "Longest delay between attempts, seconds.").default("12"),
            Param::new("filename", Kind::Str, "File name in sources.list.d, without `.list` (default: derived from the URL)."),
            Param::new("install_python_apt", Kind::Bool, "Accepted for compatibility (python-apt is not used).").default("yes"),
            Param::new("validate_certs", Kind::Bool, "Accepted for compatibility (only used for PPAs).").default("yes"),
            Param::new("codename", Kind::Str, "Accepted for compatibility (only used for PPAs)."),
        ],
    )
};

pub struct AptRepository;

const SOURCES_LIST: &str = "/etc/apt/sources.list";
const SOURCES_D: &str = "/etc/apt/sources.list.d";

/// One line of a sources file, as Ansible's SourcesList keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub valid: bool,
    pub enabled: bool,
    pub source: String,
    pub comment: String,
}

/// Ansible's `_parse`: `#` disables, a later `#` starts a comment, whitespace is collapsed.
pub fn parse_line(line: &str) -> Line {
    let mut line = line.trim();
    let mut enabled = true;
    if let Some(rest) = line.strip_prefix('#') {
        enabled = false;
        line = rest;
    }
    let mut comment = String::new();
    let mut body = line;
    if let Some(i) = line.find('#') {
        if i > 0 {
            comment = line[i + 1..].trim().to_string();
            body = &line[..i];
        }
    }
    let mut source = body.trim().to_string();
    let mut valid = false;
    if !source.is_empty() {
        let chunks: Vec<&str> = source.split_whitespace().collect();
        if matches!(chunks[0], "deb" | "deb-src") {
            valid = true;
            source = chunks.join(" ");
        }
    }
    Line {
        valid,
        enabled,
        source,
        comment,
    }
}

pub fn dump_line(l: &Line) -> String {
    let mut s = String::new();
    if !l.enabled {
        s.push_str("# ");
    }
    s.push_str(&l.source);
    if !l.comment.is_empty() {
        s.push_str(" # ");
        s.push_str(&l.comment);
    }
    s.push('\n');
    s
}

/// Ansible's `_suggest_filename`: `deb [opts] http://user@host/path suite` → `host_path.list`.
pub fn suggest_filename(source: &str, filename: Option<&str>) -> String {
    if let Some(f) = filename {
        return format!("{f}.list");
    }
    let no_opts = regex::Regex::new(r"\[[^\]]+\]")
        .expect("re")
        .replace_all(source, "");
    let no_proto = regex::Regex::new(r"\w+://")
        .expect("re")
        .replace_all(&no_opts, "")
        .to_string();
    let parts: Vec<&str> = no_proto
        .split_whitespace()
        .filter(|p| !matches!(*p, "deb" | "deb-src"))
        .collect();
    let first = parts.first().copied().unwrap_or("");
    let first = first.split_once('@').map(|(_, r)| r).unwrap_or(first);
    let cleaned: String = first
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { ' ' })
        .collect();
    format!(
        "{}.list",
        cleaned.split_whitespace().collect::<Vec<_>>().join("_")
    )
}

/// All sources files, in apt's order (sources.list first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SourcesList {
    pub files: BTreeMap<String, Vec<Line>>,
    /// Files the new source was appended to (they get `mode`).
    pub new_files: Vec<String>,
}

impl SourcesList {
    /// Parses the `FILE|path` / content / `END|path` stream of the read script.
    pub fn parse(out: &str) -> SourcesList {
        let mut sl = SourcesList::default();
        let mut cur: Option<(String, Vec<Line>)> = None;
        for l in out.lines() {
            if let Some(p) = l.strip_prefix("FILE|") {
                cur = Some((p.to_string(), Vec::new()));
            } else if let Some(p) = l.strip_prefix("END|") {
                if let Some((f, lines)) = cur.take() {
                    if f == p {
                        sl.files.insert(f, lines);
                    }
                }
            } else if let Some((_, lines)) = cur.as_mut() {
                lines.push(parse_line(l));
            }
        }
        sl
    }

    pub fn dump(&self) -> BTreeMap<String, String> {
        self.files
            .iter()
            .filter(|(_, l)| !l.is_empty())
            .map(|(f, l)| (f.clone(), l.iter().map(dump_line).collect()))
            .collect()
    }

    pub fn add(&mut self, source: &str, comment: &str, file: &str) {
        let mut found = false;
        for lines in self.files.values_mut() {
            for l in lines.iter_mut() {
                if l.valid && l.source == source {
                    l.enabled = true;
                    found = true;
                }
            }
        }
        if !found {
            let path = if file.contains('/') {
                file.to_string()
            } else {
                format!("{SOURCES_D}/{file}")
            };
            self.files.entry(path.clone()).or_default().push(Line {
                valid: true,
                enabled: true,
                source: source.into(),
                comment: comment.into(),
            });
            self.new_files.push(path);
        }
    }

    pub fn remove(&mut self, source: &str) {
        for lines in self.files.values_mut() {
            lines.retain(|l| !(l.valid && l.enabled && l.source == source));
        }
    }
}

pub const READ: &str = "for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do [ -f \"$f\" ] || continue; printf 'FILE|%s\\n' \"$f\"; cat -- \"$f\"; if [ -s \"$f\" ] && [ -n \"$(tail -c 1 -- \"$f\")\" ]; then echo; fi; printf 'END|%s\\n' \"$f\"; done";

/// One script writing every changed file (atomically, through symlinks),
/// updating the cache and putting the old files back if the update fails.
pub fn write_script(
    changes: &[(String, Option<String>)],
    modes: &BTreeMap<String, u32>,
    update: Option<(i64, i64)>,
) -> String {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut s =
        String::from("set -u\nbk=$(mktemp -d)\ntrap 'rm -rf \"$bk\"' EXIT\n: > \"$bk/list\"\n");
    for (i, (path, content)) in changes.iter().enumerate() {
        s.push_str(&format!(
            "f={}\n[ -L \"$f\" ] && f=$(readlink -f -- \"$f\")\n",
            quote(path)
        ));
        // Remember the old state for a revert.
        s.push_str(&format!(
            "if [ -e \"$f\" ]; then cp -p -- \"$f\" \"$bk/{i}\"; else : > \"$bk/{i}.new\"; fi\nprintf '%s\\n' \"$f\" > \"$bk/{i}.path\"; echo {i} >> \"$bk/list\"\n"
        ));
        match content {
            Some(c) => {
                let mode = modes
                    .get(path)
                    .map(|m| format!("chmod {m:o} \"$tmp\"\n"))
                    .unwrap_or_default();
                s.push_str(&format!(
                    "d=$(dirname -- \"$f\"); mkdir -p -- \"$d\" || exit 70\ntmp=$(mktemp \"$d/.ferry-tmp.XXXXXXXX\") || exit 70\nprintf '%s' {} | base64 -d > \"$tmp\" || {{ rm -f \"$tmp\"; exit 71; }}\n\
if [ -e \"$f\" ]; then chmod --reference=\"$f\" \"$tmp\"; chown --reference=\"$f\" \"$tmp\" 2>/dev/null; else chmod 0644 \"$tmp\"; fi\n{mode}mv -f -- \"$tmp\" \"$f\" || exit 72\n",
                    quote(&b64.encode(c.as_bytes()))
                ));
            }
            None => s.push_str("rm -f -- \"$f\" || exit 73\n"),
        }
    }
    if let Some((retries, max)) = update {
        let revert = "for i in $(cat \"$bk/list\"); do t=$(cat \"$bk/$i.path\"); if [ -e \"$bk/$i.new\" ]; then rm -f -- \"$t\"; else cp -p -- \"$bk/$i\" \"$t\"; fi; done; exit 74";
        s.push_str(&super::apt::update_snippet(60, retries, max, revert));
    }
    s
}

#[async_trait]
impl Module for AptRepository {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let repo = args.req_str("repo")?.trim().to_string();
        let state = args.str("state").unwrap_or("present");
        if repo.is_empty() {
            return Err(ModError::fail(
                "Please set argument 'repo' to a non-empty value",
            ));
        }
        if repo.starts_with("ppa:") {
            return Err(ModError::fail("ppa: repositories (Ubuntu) are not supported by ferry; give the deb line and its key instead"));
        }
        let parsed = parse_line(&repo);
        if !parsed.valid || !parsed.enabled {
            return Err(ModError::fail(format!("Invalid repository string: {repo}")));
        }
        let out = ctx.sh(READ).await?;
        let mut sl = SourcesList::parse(&out.stdout_str());
        let before = sl.dump();
        match state {
            "absent" => sl.remove(&parsed.source),
            _ => {
                let file = suggest_filename(&parsed.source, args.str("filename"));
                sl.add(&parsed.source, &parsed.comment, &file);
            }
        }
        let after = sl.dump();
        let mut changes: Vec<(String, Option<String>)> = Vec::new();
        let mut diffs = Vec::new();
        let keys: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
        for f in keys {
            let (b, a) = (before.get(f), after.get(f));
            if b != a {
                changes.push((f.clone(), a.cloned()));
                diffs.push(Diff {
                    before: b.cloned().unwrap_or_default(),
                    after: a.cloned().unwrap_or_default(),
                    before_header: if b.is_some() {
                        f.clone()
                    } else {
                        "/dev/null".into()
                    },
                    after_header: if a.is_some() {
                        f.clone()
                    } else {
                        "/dev/null".into()
                    },
                });
            }
        }
        // Sources lists in apt's order: sources.list, then sources.list.d sorted.
        changes.sort_by_key(|(f, _)| (f != SOURCES_LIST, f.clone()));
        let added: Vec<Value> = after
            .keys()
            .filter(|k| !before.contains_key(*k))
            .map(|k| Value::String(k.clone()))
            .collect();
        let removed: Vec<Value> = before
            .keys()
            .filter(|k| !after.contains_key(*k))
            .map(|k| Value::String(k.clone()))
            .collect();
        let mut modes = BTreeMap::new();
        if !changes.is_empty() {
            for f in &sl.new_files {
                let m = match args.get("mode") {
                    Some(v) => util::parse_mode(v, 0o644, false)
                        .map_err(ModError::fail)?
                        .unwrap_or(0o644),
                    None => 0o644,
                };
                modes.insert(f.clone(), m);
            }
        }
        let changed = !changes.is_empty();
        if changed && !ctx.check_mode {
            let update = args.bool("update_cache").then(|| {
                (
                    args.int("update_cache_retries").unwrap_or(5).max(1),
                    args.int("update_cache_retry_max_delay")
                        .unwrap_or(12)
                        .max(1),
                )
            });
            let out = ctx.sh(&write_script(&changes, &modes, update)).await?;
            if out.rc != 0 {
                let err = out.stderr_str();
                return Err(ModError::fail(if err.trim().is_empty() {
                    format!("writing apt sources failed (rc={})", out.rc)
                } else {
                    err.trim().to_string()
                }));
            }
        }
        let mut o = Outcome::changed(changed)
            .with("repo", repo)
            .with("state", state)
            .with("sources_added", added)
            .with("sources_removed", removed);
        if ctx.diff_mode {
            o.diff = diffs;
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_like_ansible() {
        assert_eq!(
            suggest_filename("deb http://deb.debian.org/debian bookworm main", None),
            "deb_debian_org_debian.list"
        );
        assert_eq!(suggest_filename("deb [arch=amd64 signed-by=/k.gpg] https://user:pw@download.docker.com/linux/debian bookworm stable", None), "download_docker_com_linux_debian.list");
        assert_eq!(
            suggest_filename("deb http://x/y z", Some("mine")),
            "mine.list"
        );
    }

    #[test]
    fn lines() {
        let l = parse_line("#  deb   http://x/y  z main # note");
        assert!(l.valid && !l.enabled);
        assert_eq!(
            (l.source.as_str(), l.comment.as_str()),
            ("deb http://x/y z main", "note")
        );
        assert_eq!(dump_line(&l), "# deb http://x/y z main # note\n");
        assert!(!parse_line("# just a comment").valid);
        assert_eq!(dump_line(&parse_line("")), "\n");
    }

    #[test]
    fn add_enable_remove() {
        let out = "FILE|/etc/apt/sources.list\n# deb http://a/ x main\n\nEND|/etc/apt/sources.list\nFILE|/etc/apt/sources.list.d/b.list\ndeb http://b/ y main\nEND|/etc/apt/sources.list.d/b.list\n";
        let mut sl = SourcesList::parse(out);
        let before = sl.dump();
        sl.add("deb http://a/ x main", "", "a.list");
        let after = sl.dump();
        assert_eq!(after["/etc/apt/sources.list"], "deb http://a/ x main\n\n");
        assert!(sl.new_files.is_empty());
        assert_ne!(before, after);
        sl.add("deb http://c/ z main", "", "c_.list");
        assert_eq!(
            sl.dump()["/etc/apt/sources.list.d/c_.list"],
            "deb http://c/ z main\n"
        );
        sl.add("deb http://c/ z main", "", "c_.list");
        assert_eq!(
            sl.dump()["/etc/apt/sources.list.d/c_.list"],
            "deb http://c/ z main\n",
            "idempotent"
        );
        sl.remove("deb http://b/ y main");
        assert!(
            !sl.dump().contains_key("/etc/apt/sources.list.d/b.list"),
            "emptied files go"
        );
    }

    #[test]
    fn write_script_reverts_on_failed_update() {
        let s = write_script(
            &[(
                "/etc/apt/sources.list.d/x.list".into(),
                Some("deb http://x/ y z\n".into()),
            )],
            &BTreeMap::new(),
            Some((5, 12)),
        );
        assert!(s.contains("base64 -d") && s.contains("apt-get update") && s.contains("exit 74"));
        let s = write_script(
            &[("/etc/apt/sources.list.d/x.list".into(), None)],
            &BTreeMap::new(),
            None,
        );
        assert!(s.contains("rm -f -- \"$f\"") && !s.contains("apt-get update"));
    }
}
