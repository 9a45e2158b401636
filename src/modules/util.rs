//! Helpers shared by file-handling modules: remote stat, atomic placement,
//! modes and diffs. All paths go through `quote`, never plain concatenation.

use serde_json::Value;

use super::{Ctx, Diff, ModError};
use crate::connection::quote;

/// What `stat` tells about a remote path.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RStat {
    pub exists: bool,
    /// `file`, `directory`, `link`, `other`.
    pub kind: String,
    pub mode: u32,
    pub owner: String,
    pub group: String,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime: i64,
    pub link_target: Option<String>,
    pub checksum: Option<String>,
}

/// Shell snippet printing one `STAT|...` line for `$p` (or `STAT|absent`).
/// With `sum`, regular files also get their sha1.
pub fn stat_snippet(var: &str, sum: bool) -> String {
    let sum = if sum {
        format!(
            r#"; if [ -f "${var}" ] && [ -r "${var}" ]; then ferry_h=$(sha1sum < "${var}"); printf '|%s' "${{ferry_h%% *}}"; fi"#
        )
    } else {
        String::new()
    };
    format!(
        r#"if [ -e "${var}" ] || [ -L "${var}" ]; then printf 'STAT|%s' "$(stat -c '%F|%a|%U|%G|%u|%g|%s|%Y' -- "${var}")"; if [ -L "${var}" ]; then printf '|L:%s' "$(readlink -- "${var}")"; else printf '|L:'; fi{sum}; echo; else echo 'STAT|absent'; fi"#
    )
}

/// Parses the line `stat_snippet` printed (the first `STAT|` line of `out`).
pub fn parse_stat(out: &str) -> RStat {
    let Some(line) = out.lines().find(|l| l.starts_with("STAT|")) else {
        return RStat::default();
    };
    let f: Vec<&str> = line["STAT|".len()..].split('|').collect();
    if f.first() == Some(&"absent") || f.len() < 9 {
        return RStat::default();
    }
    let kind = match f[0] {
        "regular file" | "regular empty file" => "file",
        "directory" => "directory",
        "symbolic link" => "link",
        _ => "other",
    };
    RStat {
        exists: true,
        kind: kind.into(),
        mode: u32::from_str_radix(f[1], 8).unwrap_or(0),
        owner: f[2].into(),
        group: f[3].into(),
        uid: f[4].parse().unwrap_or(0),
        gid: f[5].parse().unwrap_or(0),
        size: f[6].parse().unwrap_or(0),
        mtime: f[7].parse().unwrap_or(0),
        link_target: f[8]
            .strip_prefix("L:")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        checksum: f.get(9).filter(|s| !s.is_empty()).map(|s| s.to_string()),
    }
}

/// Runs a script and fails the task (with stderr) when it exits non-zero.
pub async fn run_ok(ctx: &Ctx<'_>, script: &str) -> Result<crate::connection::ExecOut, ModError> {
    let out = ctx.sh(script).await?;
    if out.rc != 0 {
        let err = out.stderr_str();
        let mut data = serde_json::Map::new();
        data.insert("rc".into(), out.rc.into());
        data.insert("stdout".into(), out.stdout_str().into());
        data.insert("stderr".into(), err.clone().into());
        let msg = if err.trim().is_empty() {
            format!("command failed with rc={}", out.rc)
        } else {
            err.trim().to_string()
        };
        return Err(ModError::Failed { msg, data });
    }
    Ok(out)
}

/// The first of `names` found on the host's PATH (plus sbin dirs), if any.
pub async fn which(ctx: &Ctx<'_>, names: &[&str]) -> Result<Option<String>, ModError> {
    let list = names.iter().map(|n| quote(n)).collect::<Vec<_>>().join(" ");
    let out = ctx
        .sh(&format!("PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"; for n in {list}; do p=$(command -v \"$n\" 2>/dev/null) && {{ echo \"$p\"; exit 0; }}; done; exit 1"))
        .await?;
    Ok((out.rc == 0)
        .then(|| out.stdout_str().trim().to_string())
        .filter(|s| !s.is_empty()))
}

pub async fn stat(ctx: &Ctx<'_>, path: &str, sum: bool) -> Result<RStat, ModError> {
    let out = ctx
        .sh(&format!("p={}\n{}", quote(path), stat_snippet("p", sum)))
        .await?;
    Ok(parse_stat(&out.stdout_str()))
}

pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(data))
}

/// SHA1 of a file on the controller, read in pieces (never whole in memory).
pub fn sha1_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha1::Digest;
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha1::Sha1::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match f.read(&mut buf)? {
            0 => return Ok(hex::encode(h.finalize())),
            n => h.update(&buf[..n]),
        }
    }
}

/// [`sha1_file`], once per file version and run: hosts copying the same large
/// file wait for one reading of it instead of each reading it again.
pub fn sha1_file_once(path: &std::path::Path) -> std::io::Result<String> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    type Key = (std::path::PathBuf, u64, std::time::SystemTime);
    type Slot = Arc<Mutex<Option<String>>>;
    static SUMS: OnceLock<Mutex<HashMap<Key, Slot>>> = OnceLock::new();
    let meta = std::fs::metadata(path)?;
    let key = (path.to_path_buf(), meta.len(), meta.modified()?);
    let slot = SUMS
        .get_or_init(Default::default)
        .lock()
        .expect("sums")
        .entry(key)
        .or_default()
        .clone();
    let mut sum = slot.lock().expect("sum");
    if let Some(s) = &*sum {
        return Ok(s.clone());
    }
    let s = sha1_file(path)?;
    *sum = Some(s.clone());
    Ok(s)
}

/// A remote script's output cut at its `==NAME` marker lines: (name, the
/// lines after it, each with its newline), in order.
pub fn sections(out: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = Vec::new();
    for line in out.lines() {
        if let Some(name) = line.strip_prefix("==") {
            v.push((name.to_string(), String::new()));
        } else if let Some(last) = v.last_mut() {
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    v
}

/// The text of the first section called `name`.
pub fn section<'a>(s: &'a [(String, String)], name: &str) -> Option<&'a str> {
    s.iter().find(|(n, _)| n == name).map(|(_, t)| t.as_str())
}

/// Options for placing a file atomically.
#[derive(Debug, Clone, Default)]
pub struct Place<'a> {
    pub dest: &'a str,
    pub mode: Option<u32>,
    pub owner: Option<&'a str>,
    pub group: Option<&'a str>,
    /// `validate` command with `%s` for the temporary file.
    pub validate: Option<&'a str>,
    pub backup: bool,
}

impl<'a> Place<'a> {
    /// The task's own owner/group/validate/backup parameters, for `dest` with `mode`.
    pub fn from_args(dest: &'a str, mode: Option<u32>, args: &'a super::Args) -> Place<'a> {
        Place {
            dest,
            mode,
            owner: args.str("owner"),
            group: args.str("group"),
            validate: args.str("validate"),
            backup: args.bool("backup"),
        }
    }
}

/// The script `place` runs: the new contents come on stdin; prints
/// `BACKUP|name` when it kept a backup.
pub fn place_script(p: &Place<'_>) -> Result<String, ModError> {
    let mut s = format!(
        "set -e\nd={}\ndir=$(dirname -- \"$d\")\n[ -d \"$dir\" ] || {{ echo \"Destination directory $dir does not exist\" >&2; exit 2; }}\nfor f in \"$dir\"/.ferry-tmp.*; do p=${{f##*/.ferry-tmp.}}; p=${{p%%.*}}; case $p in ''|*[!0-9]*) continue;; esac; [ -d /proc/$p ] || rm -f -- \"$f\"; done\ntmp=$(mktemp \"$dir/.ferry-tmp.$$.XXXXXXXX\")\ntrap 'rm -f \"$tmp\"' EXIT\ntrap 'rm -f \"$tmp\"; exit 129' HUP INT TERM PIPE\ncat > \"$tmp\"\n",
        quote(p.dest)
    );
    if let Some(v) = p.validate {
        if !v.contains("%s") {
            return Err(ModError::fail("validate must contain %s"));
        }
        let cmd = v.replace("%s", "\"$tmp\"");
        s.push_str(&format!(
            "if ! out=$({cmd} 2>&1); then echo \"failed to validate: $out\" >&2; exit 3; fi\n"
        ));
    }
    s.push_str("if [ -e \"$d\" ]; then chmod --reference=\"$d\" \"$tmp\"; chown --reference=\"$d\" \"$tmp\" 2>/dev/null || true; else m=$(umask); chmod \"$(printf '%o' $(( 0666 & ~m )))\" \"$tmp\"; fi\n");
    if let Some(m) = p.mode {
        s.push_str(&format!("chmod {:o} \"$tmp\"\n", m));
    }
    match (p.owner, p.group) {
        (Some(o), Some(g)) => s.push_str(&format!("chown {}:{} \"$tmp\"\n", quote(o), quote(g))),
        (Some(o), None) => s.push_str(&format!("chown {} \"$tmp\"\n", quote(o))),
        (None, Some(g)) => s.push_str(&format!("chgrp {} \"$tmp\"\n", quote(g))),
        _ => {}
    }
    if p.backup {
        s.push_str("if [ -f \"$d\" ]; then b=\"$d.$(date +%Y-%m-%d@%H:%M:%S)~\"; cp -p -- \"$d\" \"$b\"; echo \"BACKUP|$b\"; fi\n");
    }
    s.push_str("sync \"$tmp\" 2>/dev/null || true\nmv -f -- \"$tmp\" \"$d\"\ntrap - EXIT\n");
    Ok(s)
}

/// Writes `data` to a temp file beside `dest`, validates it, sets owner and
/// mode, then renames it over `dest`: readers see the old or the new file,
/// never half of one. Returns the backup file name when one was made.
pub async fn place(ctx: &Ctx<'_>, data: &[u8], p: &Place<'_>) -> Result<Option<String>, ModError> {
    let s = place_script(p)?;
    let out = ctx.sh_in(&s, Some(data)).await?;
    placed(&out, p.dest)
}

/// [`place`] for a controller file, streamed as it is read.
pub async fn place_file(
    ctx: &Ctx<'_>,
    path: &std::path::Path,
    p: &Place<'_>,
) -> Result<Option<String>, ModError> {
    let s = place_script(p)?;
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| ModError::fail(format!("{}: {e}", path.display())))?;
    let out = ctx.sh_stream(&s, &mut f).await?;
    placed(&out, p.dest)
}

/// What a run of `place_script` reported: the backup file, or the failure.
pub fn placed(out: &crate::connection::ExecOut, dest: &str) -> Result<Option<String>, ModError> {
    if out.rc != 0 {
        let err = out.stderr_str();
        return Err(ModError::fail(if err.trim().is_empty() {
            format!("could not write {dest} (rc={})", out.rc)
        } else {
            err.trim().to_string()
        }));
    }
    Ok(out
        .stdout_str()
        .lines()
        .find_map(|l| l.strip_prefix("BACKUP|").map(str::to_string)))
}

/// Reads a remote file (for diffs, slurp, fetch).
pub async fn read(ctx: &Ctx<'_>, path: &str) -> Result<Option<Vec<u8>>, ModError> {
    let out = ctx
        .sh(&format!(
            "p={}\n[ -f \"$p\" ] || exit 44\ncat -- \"$p\"",
            quote(path)
        ))
        .await?;
    match out.rc {
        0 => Ok(Some(out.stdout)),
        44 => Ok(None),
        _ => Err(ModError::fail(format!(
            "could not read {path}: {}",
            out.stderr_str().trim()
        ))),
    }
}

/// Target mode from Ansible's `mode:` (octal int/string or symbolic), given the current one.
pub fn parse_mode(v: &Value, current: u32, is_dir: bool) -> Result<Option<u32>, String> {
    let s = match v {
        Value::Null => return Ok(None),
        // YAML 1.1 already read `0644` as octal 420; a bare int is taken as given.
        Value::Number(n) => {
            return n
                .as_u64()
                .map(|m| Some(m as u32 & 0o7777))
                .ok_or_else(|| format!("bad mode {v}"))
        }
        Value::String(s) => s.trim().to_string(),
        other => return Err(format!("bad mode {other}")),
    };
    if s == "preserve" {
        return Ok(None);
    }
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_digit()) {
        return u32::from_str_radix(&s, 8)
            .map(|m| Some(m & 0o7777))
            .map_err(|_| format!("mode must be in octal or symbolic form, got {s:?}"));
    }
    symbolic(&s, current, is_dir).map(Some)
}

fn symbolic(spec: &str, current: u32, is_dir: bool) -> Result<u32, String> {
    let mut mode = current & 0o7777;
    for clause in spec.split(',') {
        let pos = clause
            .find(['+', '-', '='])
            .ok_or_else(|| format!("bad symbolic mode {spec:?}"))?;
        let (who, rest) = clause.split_at(pos);
        let who_mask = if who.is_empty() || who.contains('a') {
            0o7777
        } else {
            let mut m = 0;
            for c in who.chars() {
                m |= match c {
                    'u' => 0o4700,
                    'g' => 0o2070,
                    'o' => 0o1007,
                    _ => return Err(format!("bad symbolic mode {spec:?}")),
                };
            }
            m
        };
        let op = rest.as_bytes()[0] as char;
        let mut bits = 0u32;
        for c in rest[1..].chars() {
            bits |= match c {
                'r' => 0o444,
                'w' => 0o222,
                'x' => 0o111,
                'X' if is_dir || current & 0o111 != 0 => 0o111,
                'X' => 0,
                's' => 0o6000,
                't' => 0o1000,
                _ => return Err(format!("bad symbolic mode {spec:?}")),
            };
        }
        let bits = bits & who_mask;
        mode = match op {
            '+' => mode | bits,
            '-' => mode & !bits,
            _ => (mode & !(who_mask & 0o7777)) | bits,
        };
    }
    Ok(mode)
}

/// A unified diff of two texts, for `--diff`.
pub fn text_diff(before: &str, after: &str, path: &str) -> Diff {
    Diff {
        before: before.to_string(),
        after: after.to_string(),
        before_header: path.to_string(),
        after_header: path.to_string(),
    }
}

pub fn unified(d: &Diff) -> String {
    similar::TextDiff::from_lines(&d.before, &d.after)
        .unified_diff()
        .context_radius(3)
        .header(
            &format!("before: {}", d.before_header),
            &format!("after: {}", d.after_header),
        )
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn file_sums_are_kept_per_version() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, b"one").unwrap();
        let threads: Vec<_> = (0..3)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || sha1_file_once(&p).unwrap())
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), sha1_hex(b"one"));
        }
        std::fs::write(&p, b"other").unwrap();
        assert_eq!(sha1_file_once(&p).unwrap(), sha1_hex(b"other"));
        assert!(sha1_file_once(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode(&json!(420), 0, false).unwrap(), Some(0o644));
        assert_eq!(parse_mode(&json!("0755"), 0, false).unwrap(), Some(0o755));
        assert_eq!(
            parse_mode(&json!("u=rw,g=r,o="), 0o777, false).unwrap(),
            Some(0o640)
        );
        assert_eq!(
            parse_mode(&json!("u+x"), 0o644, false).unwrap(),
            Some(0o744)
        );
        assert_eq!(
            parse_mode(&json!("a-w"), 0o666, false).unwrap(),
            Some(0o444)
        );
        assert_eq!(parse_mode(&json!("g+X"), 0o600, true).unwrap(), Some(0o610));
        assert!(parse_mode(&json!("rwx"), 0, false).is_err());
    }

    #[test]
    fn stat_parse() {
        let s = parse_stat("STAT|regular file|644|root|root|0|0|12|1700000000|L:|abc\n");
        assert!(s.exists);
        assert_eq!((s.kind.as_str(), s.mode, s.size), ("file", 0o644, 12));
        assert_eq!(s.checksum.as_deref(), Some("abc"));
        assert!(!parse_stat("STAT|absent\n").exists);
    }
}
