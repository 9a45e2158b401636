//! `find`: files matching criteria, listed with one remote `find -printf`
//! and filtered on the controller with Ansible's rules (glob/regex on the
//! base name, excludes, age, size, mode, hidden). `contains` and
//! `get_checksum` take one more round trip, over the candidates only.

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::textfile::sh_path;
use super::{pyre, util, Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.find:\n    paths: /var/log\n    patterns: '*.gz'\n    age: 2w\n    recurse: yes\n  register: old_logs\n",
    ..ModuleSpec::new(
        "find",
        "Return a list of files based on specific criteria (AND'd together).",
        &[
            Param::new("paths", Kind::List, "Directories to search.").aliases(&["name", "path"]).required(),
            Param::new("patterns", Kind::List, "Shell globs (or Python regexes with use_regex) matched against base names; default * or .*.").aliases(&["pattern"]),
            Param::new("excludes", Kind::List, "Patterns whose matches are removed from the result.").aliases(&["exclude"]),
            Param::new("contains", Kind::Str, "Regex matched against file content (file_type=file only): each line from its start, or anywhere with read_whole_file."),
            Param::new("read_whole_file", Kind::Bool, "Search contains in the whole file instead of line by line.").default("no"),
            Param::new("file_type", Kind::Str, "Type of file to select.").choices(&["any", "directory", "file", "link"]).default("file"),
            Param::new("age", Kind::Str, "Files at least this old (e.g. 2d, 4w, 3600); negative: at most this old. Units s, m, h, d, w."),
            Param::new("age_stamp", Kind::Str, "Timestamp the age is compared against.").choices(&["atime", "ctime", "mtime"]).default("mtime"),
            Param::new("size", Kind::Str, "Files at least this big (e.g. 10m); negative: at most. Units b, k, m, g, t."),
            Param::new("recurse", Kind::Bool, "Descend into directories.").default("no"),
            Param::new("hidden", Kind::Bool, "Include hidden files.").default("no"),
            Param::new("follow", Kind::Bool, "Follow symlinks.").default("no"),
            Param::new("get_checksum", Kind::Bool, "Return the SHA1 of regular files.").default("no"),
            Param::new("use_regex", Kind::Bool, "patterns/excludes are Python regexes (matched from the start of the name).").default("no"),
            Param::new("depth", Kind::Int, "Maximum number of levels to descend (with recurse)."),
            Param::new("mode", Kind::Mode, "Only objects with these permissions (octal or symbolic)."),
            Param::new("exact_mode", Kind::Bool, "mode must match exactly (else: any of its bits).").default("yes"),
            Param::new("encoding", Kind::Str, "Accepted for compatibility."),
            Param::new("limit", Kind::Int, "Stop after this many matches."),
        ],
    )
};

pub struct Find;

/// One object as `find -printf` described it.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub kind: char,
    pub mode: u32,
    pub size: u64,
    pub mtime: f64,
    pub atime: f64,
    pub ctime: f64,
    pub uid: u64,
    pub gid: u64,
    pub user: String,
    pub group: String,
    pub inode: u64,
    pub nlink: u64,
    pub dev: u64,
    pub path: String,
}

const FMT: &str = "F|%y|%m|%s|%T@|%A@|%C@|%U|%G|%u|%g|%i|%n|%D|%p\\0";

/// Parses one `F|...` record.
pub fn parse_entry(rec: &str) -> Option<Entry> {
    let f: Vec<&str> = rec.strip_prefix("F|")?.splitn(14, '|').collect();
    if f.len() < 14 {
        return None;
    }
    let num = |s: &str| s.parse::<u64>().unwrap_or(0);
    let fl = |s: &str| s.parse::<f64>().unwrap_or(0.0);
    let name = |s: &str, id: &str| {
        if s == id {
            String::new()
        } else {
            s.to_string()
        }
    };
    Some(Entry {
        kind: f[0].chars().next().unwrap_or('?'),
        mode: u32::from_str_radix(f[1], 8).unwrap_or(0),
        size: num(f[2]),
        mtime: fl(f[3]),
        atime: fl(f[4]),
        ctime: fl(f[5]),
        uid: num(f[6]),
        gid: num(f[7]),
        user: name(f[8], f[6]),
        group: name(f[9], f[7]),
        inode: num(f[10]),
        nlink: num(f[11]),
        dev: num(f[12]),
        path: normalize(f[13]),
    })
}

fn normalize(p: &str) -> String {
    let mut s = p.to_string();
    while s.contains("//") {
        s = s.replace("//", "/");
    }
    s.replace("/./", "/")
}

/// `^(-?\d+)(unit)?$` with the given units.
fn scaled(v: &str, units: &[(char, i64)]) -> Option<i64> {
    let v = v.trim().to_lowercase();
    let (num, mult) = match v.chars().last() {
        Some(c) if c.is_ascii_alphabetic() => {
            (&v[..v.len() - 1], units.iter().find(|(u, _)| *u == c)?.1)
        }
        _ => (&v[..], 1),
    };
    if num.is_empty()
        || !num
            .trim_start_matches('-')
            .chars()
            .all(|c| c.is_ascii_digit())
        || num.trim_start_matches('-').is_empty()
    {
        return None;
    }
    num.parse::<i64>().ok().map(|n| n * mult)
}

pub fn parse_age(v: &str) -> Option<i64> {
    scaled(
        v,
        &[
            ('s', 1),
            ('m', 60),
            ('h', 3600),
            ('d', 86400),
            ('w', 604800),
        ],
    )
}

pub fn parse_size(v: &str) -> Option<i64> {
    scaled(
        v,
        &[
            ('b', 1),
            ('k', 1024),
            ('m', 1024 * 1024),
            ('g', 1024 * 1024 * 1024),
            ('t', 1024_i64.pow(4)),
        ],
    )
}

/// The name filters (patterns, then excludes).
pub struct Names {
    patterns: Vec<String>,
    excludes: Vec<String>,
    regexes: Option<(Vec<regex::bytes::Regex>, Vec<regex::bytes::Regex>)>,
}

impl Names {
    pub fn new(
        patterns: Vec<String>,
        excludes: Vec<String>,
        use_regex: bool,
    ) -> Result<Names, String> {
        let patterns = if patterns.is_empty() {
            vec![if use_regex {
                ".*".to_string()
            } else {
                "*".to_string()
            }]
        } else {
            patterns
        };
        let regexes = if use_regex {
            let c = |v: &[String]| {
                v.iter()
                    .map(|p| pyre::compile(&format!("\\A(?:{p})"), false, false))
                    .collect::<Result<Vec<_>, String>>()
            };
            Some((c(&patterns)?, c(&excludes)?))
        } else {
            None
        };
        Ok(Names {
            patterns,
            excludes,
            regexes,
        })
    }

    /// Ansible's `pfilter`.
    pub fn matches(&self, name: &str) -> bool {
        let (inc, exc) = match &self.regexes {
            Some((p, e)) => (
                p.iter().any(|r| r.is_match(name.as_bytes())),
                e.iter().any(|r| r.is_match(name.as_bytes())),
            ),
            None => (
                self.patterns.iter().any(|p| pyre::fnmatch(name, p)),
                self.excludes.iter().any(|p| pyre::fnmatch(name, p)),
            ),
        };
        inc && !exc
    }
}

/// The controller-side filters of one entry; `None` when it is not selected.
pub struct Filter {
    pub names: Names,
    pub file_type: String,
    pub hidden: bool,
    pub age: Option<i64>,
    pub age_stamp: String,
    pub size: Option<i64>,
    pub mode: Option<u32>,
    pub exact_mode: bool,
    pub now: f64,
}

impl Filter {
    pub fn select(&self, e: &Entry) -> bool {
        let base = e.path.rsplit('/').next().unwrap_or(&e.path);
        if base.starts_with('.') && !self.hidden {
            return false;
        }
        let is_reg = e.kind == 'f';
        let wanted = match self.file_type.as_str() {
            "any" => true,
            "directory" => e.kind == 'd',
            "link" => e.kind == 'l',
            _ => is_reg,
        };
        if !wanted || !self.names.matches(base) {
            return false;
        }
        if let Some(age) = self.age {
            let t = match self.age_stamp.as_str() {
                "atime" => e.atime,
                "ctime" => e.ctime,
                _ => e.mtime,
            };
            let d = self.now - t;
            if (age >= 0 && d < age as f64) || (age < 0 && d > (-age) as f64) {
                return false;
            }
        }
        if let Some(m) = self.mode {
            let have = e.mode & 0o7777;
            if (self.exact_mode && have != m) || (!self.exact_mode && have & m == 0) {
                return false;
            }
        }
        if let (Some(size), true) = (
            self.size,
            is_reg && (self.file_type == "file" || self.file_type == "any"),
        ) {
            let s = e.size as i64;
            if (size >= 0 && s < size) || (size < 0 && s > -size) {
                return false;
            }
        }
        true
    }
}

/// Ansible's per-file dict (as `stat` and `find` return it).
pub fn entry_json(e: &Entry) -> Map<String, Value> {
    let m = e.mode;
    let v = json!({
        "path": e.path,
        "mode": format!("{:04o}", m & 0o7777),
        "isdir": e.kind == 'd', "ischr": e.kind == 'c', "isblk": e.kind == 'b', "isreg": e.kind == 'f',
        "isfifo": e.kind == 'p', "islnk": e.kind == 'l', "issock": e.kind == 's',
        "uid": e.uid, "gid": e.gid, "size": e.size, "inode": e.inode, "dev": e.dev, "nlink": e.nlink,
        "atime": e.atime, "mtime": e.mtime, "ctime": e.ctime,
        "gr_name": e.group, "pw_name": e.user,
        "wusr": m & 0o200 != 0, "rusr": m & 0o400 != 0, "xusr": m & 0o100 != 0,
        "wgrp": m & 0o020 != 0, "rgrp": m & 0o040 != 0, "xgrp": m & 0o010 != 0,
        "woth": m & 0o002 != 0, "roth": m & 0o004 != 0, "xoth": m & 0o001 != 0,
        "isuid": m & 0o4000 != 0, "isgid": m & 0o2000 != 0,
    });
    v.as_object().cloned().unwrap_or_default()
}

fn split_nul(b: &[u8]) -> Vec<String> {
    b.split(|c| *c == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

#[async_trait]
impl Module for Find {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let paths = args.list("paths");
        let age = match args.str("age") {
            Some(a) => {
                Some(parse_age(a).ok_or_else(|| failed_with("failed to process age", "age", a))?)
            }
            None => None,
        };
        let size = match args.str("size") {
            Some(s) => Some(
                parse_size(s).ok_or_else(|| failed_with("failed to process size", "size", s))?,
            ),
            None => None,
        };
        let mode = match args.get("mode") {
            Some(m) => {
                let s = m.as_str().map(|s| s.trim_start_matches("0o").to_string());
                let v = s.map(Value::String).unwrap_or_else(|| m.clone());
                util::parse_mode(&v, 0, false).map_err(ModError::fail)?
            }
            None => None,
        };
        let use_regex = args.bool("use_regex");
        let names = Names::new(args.list("patterns"), args.list("excludes"), use_regex)
            .map_err(ModError::fail)?;
        let depth = if !args.bool("recurse") {
            Some(1)
        } else {
            args.int("depth").filter(|d| *d > 0)
        };
        let follow = if args.bool("follow") { "-L " } else { "" };
        let maxdepth = depth.map(|d| format!(" -maxdepth {d}")).unwrap_or_default();

        // One round trip: the target's clock, then every object under each path.
        let mut script = String::from("printf 'NOW|%s\\0' \"$(date +%s)\"\n");
        for (i, p) in paths.iter().enumerate() {
            script.push_str(&format!(
                "p={}\nif [ -d \"$p\" ]; then printf 'ROOT|{i}\\0'; find {follow}\"$p\" -mindepth 1{maxdepth} -printf '{FMT}' 2>/dev/null; else printf 'SKIP|{i}\\0'; fi\n",
                sh_path(p)
            ));
        }
        let out = ctx.sh(&script).await?;
        let records = split_nul(&out.stdout);
        if records.iter().any(|r| r.starts_with("ROOT|"))
            && !records.iter().any(|r| r.starts_with("F|"))
            && out.stderr_str().contains("printf")
        {
            return Err(ModError::fail(
                "find on the target does not support -printf (GNU findutils is required)",
            ));
        }
        let now = records
            .iter()
            .find_map(|r| r.strip_prefix("NOW|"))
            .and_then(|s| s.trim().parse::<f64>().ok())
            .unwrap_or_else(|| chrono::Utc::now().timestamp() as f64);
        let filter = Filter {
            names,
            file_type: args.str("file_type").unwrap_or("file").to_string(),
            hidden: args.bool("hidden"),
            age,
            age_stamp: args.str("age_stamp").unwrap_or("mtime").to_string(),
            size,
            mode,
            exact_mode: args.bool("exact_mode"),
            now,
        };
        let mut skipped = Map::new();
        let mut warnings: Vec<String> = Vec::new();
        let mut examined = 0usize;
        let mut selected: Vec<Entry> = Vec::new();
        for r in &records {
            if let Some(i) = r.strip_prefix("SKIP|") {
                let p = i
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| paths.get(i))
                    .cloned()
                    .unwrap_or_default();
                let why = format!("'{p}' is not a directory");
                warnings.push(format!(
                    "Skipped '{p}' path due to this access issue: {why}\n"
                ));
                skipped.insert(p, why.into());
            } else if let Some(e) = parse_entry(r) {
                examined += 1;
                if filter.select(&e) {
                    selected.push(e);
                }
            }
        }

        // contains / get_checksum: one more trip over the regular-file candidates.
        let contains = args.str("contains").filter(|_| filter.file_type == "file");
        let checksum = args.bool("get_checksum");
        let mut sums: std::collections::HashMap<String, String> = Default::default();
        if (contains.is_some() || checksum) && selected.iter().any(|e| e.kind == 'f') {
            let regular: Vec<&Entry> = selected.iter().filter(|e| e.kind == 'f').collect();
            let mut input = Vec::new();
            for e in &regular {
                input.extend_from_slice(e.path.as_bytes());
                input.push(0);
            }
            let mut s = String::from(
                "t=$(mktemp) || exit 1\ntrap 'rm -f \"$t\" \"$t.m\"' EXIT\ncat > \"$t\"\n",
            );
            if let Some(c) = contains {
                pyre::translate(c).map_err(ModError::fail)?;
                let (pp, pe, z) = if args.bool("read_whole_file") {
                    (c.to_string(), c.to_string(), "-z ")
                } else {
                    (format!("^(?:{c})"), format!("^({c})"), "")
                };
                s.push_str(&format!(
                    "if printf 'a\\n' | grep -qP '^a' 2>/dev/null; then m=-P; e={}; else m=-E; e={}; fi\nxargs -0 -r grep -lsZ {z}$m -e \"$e\" -- < \"$t\" > \"$t.m\"\nmv -f \"$t.m\" \"$t\"\nprintf 'MATCHED\\0'; cat \"$t\"\n",
                    quote(&pp),
                    quote(&pe)
                ));
            }
            if checksum {
                s.push_str("printf 'SUMS\\0'; xargs -0 -r sha1sum -z -- < \"$t\" 2>/dev/null\n");
            }
            let out = ctx.sh_in(&s, Some(&input)).await?;
            let recs = split_nul(&out.stdout);
            let mut section = "";
            let mut matched: std::collections::HashSet<String> = Default::default();
            for r in recs {
                match r.as_str() {
                    "MATCHED" => section = "m",
                    "SUMS" => section = "s",
                    _ if section == "m" => {
                        matched.insert(r);
                    }
                    _ if section == "s" => {
                        if let Some((sum, p)) = r.split_once("  ") {
                            sums.insert(p.to_string(), sum.trim_start_matches('\\').to_string());
                        }
                    }
                    _ => {}
                }
            }
            if contains.is_some() {
                selected.retain(|e| matched.contains(&e.path));
            }
        }
        if let Some(limit) = args.int("limit").filter(|l| *l > 0) {
            selected.truncate(limit as usize);
        }
        let files: Vec<Value> = selected
            .iter()
            .map(|e| {
                let mut m = entry_json(e);
                if checksum && e.kind == 'f' {
                    if let Some(s) = sums.get(&e.path) {
                        m.insert("checksum".into(), s.clone().into());
                    }
                }
                Value::Object(m)
            })
            .collect();
        let msg = if warnings.is_empty() {
            "All paths examined"
        } else {
            "Not all paths examined, check warnings for details"
        };
        let mut o = Outcome::ok()
            .msg(msg)
            .with("matched", files.len())
            .with("files", files)
            .with("examined", examined)
            .with("skipped_paths", skipped);
        if !warnings.is_empty() {
            o = o.with("warnings", warnings);
        }
        Ok(o)
    }
}

fn failed_with(msg: &str, k: &str, v: &str) -> ModError {
    let mut data = Map::new();
    data.insert(k.into(), v.into());
    ModError::Failed {
        msg: msg.into(),
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{field, TestEnv};

    #[test]
    fn units() {
        assert_eq!(parse_age("2d"), Some(172800));
        assert_eq!(parse_age("-1w"), Some(-604800));
        assert_eq!(parse_age("3600"), Some(3600));
        assert_eq!(parse_age("1y"), None);
        assert_eq!(parse_size("10m"), Some(10 * 1024 * 1024));
        assert_eq!(parse_size("-5K"), Some(-5 * 1024));
        assert_eq!(parse_size("abc"), None);
    }

    #[test]
    fn name_filters() {
        let n = Names::new(
            vec!["*.log".into(), "*.gz".into()],
            vec!["skip*".into()],
            false,
        )
        .unwrap();
        assert!(
            n.matches("a.log")
                && n.matches("b.gz")
                && !n.matches("skip.log")
                && !n.matches("c.txt")
        );
        let r = Names::new(vec![r".*\.log".into()], vec![], true).unwrap();
        assert!(r.matches("a.log") && r.matches("a.log.1x") && !r.matches("xlog"));
        // re.match: anchored at the start only.
        let r = Names::new(vec![r"\.log".into()], vec![], true).unwrap();
        assert!(!r.matches("a.log"));
        assert!(Names::new(vec![], vec![], false)
            .unwrap()
            .matches("anything"));
    }

    #[test]
    fn record_parsing() {
        let e = parse_entry(
            "F|f|644|12|1700000000.5|1700000001.0|1700000002.0|1000|1000|me|me|42|1|2049|/tmp//x|y",
        )
        .unwrap();
        assert_eq!(
            (e.kind, e.mode, e.size, e.path.as_str()),
            ('f', 0o644, 12, "/tmp/x|y")
        );
        let j = entry_json(&e);
        assert_eq!(j["mode"], "0644");
        assert_eq!(j["isreg"], true);
        assert_eq!(j["pw_name"], "me");
    }

    #[tokio::test]
    async fn finds_on_the_target() {
        let env = TestEnv::new();
        env.write("d/a.log", "hello\nerror: x\n");
        env.write("d/b.log", "fine\n");
        env.write("d/c.txt", "error: y\n");
        env.write("d/.hidden.log", "x");
        env.write("d/sub/deep.log", "error: deep\n");
        let d = env.path("d");
        let names = |o: &Outcome| {
            let mut v: Vec<String> = field(o, "files")
                .as_array()
                .unwrap()
                .iter()
                .map(|f| {
                    f["path"]
                        .as_str()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap()
                        .to_string()
                })
                .collect();
            v.sort();
            v
        };
        let o = env
            .ok(&Find, json!({"paths": d, "patterns": "*.log"}))
            .await;
        assert!(!o.changed);
        assert_eq!(names(&o), vec!["a.log", "b.log"]);
        assert_eq!(field(&o, "matched"), 2);
        assert_eq!(o.msg.as_deref(), Some("All paths examined"));
        let o = env
            .ok(
                &Find,
                json!({"paths": d, "patterns": "*.log", "recurse": true, "hidden": true}),
            )
            .await;
        assert_eq!(names(&o), vec![".hidden.log", "a.log", "b.log", "deep.log"]);
        let o = env
            .ok(
                &Find,
                json!({"paths": d, "contains": "error", "recurse": true, "get_checksum": true}),
            )
            .await;
        assert_eq!(names(&o), vec!["a.log", "c.txt", "deep.log"]);
        assert_eq!(
            field(&o, "files")[0]["checksum"].as_str().map(str::len),
            Some(40)
        );
        let o = env
            .ok(&Find, json!({"paths": d, "file_type": "directory"}))
            .await;
        assert_eq!(names(&o), vec!["sub"]);
        let o = env.ok(&Find, json!({"paths": d, "age": "1d"})).await;
        assert_eq!(field(&o, "matched"), 0);
        let o = env
            .ok(
                &Find,
                json!({"paths": d, "size": "-5", "recurse": true, "hidden": true}),
            )
            .await;
        assert_eq!(names(&o), vec![".hidden.log", "b.log"]);
        let o = env.ok(&Find, json!({"paths": [d, env.path("none")], "use_regex": true, "patterns": [r".*\.txt$"]})).await;
        assert_eq!(names(&o), vec!["c.txt"]);
        assert!(field(&o, "skipped_paths")
            .as_object()
            .unwrap()
            .contains_key(&env.path("none")));
        // Check mode: read-only, same answer.
        assert_eq!(
            env.check(&Find, json!({"paths": d})).await.data["matched"],
            3
        );
    }
}
