//! Shared by the modules that edit a text file in place (lineinfile,
//! blockinfile, replace): one remote read that returns everything needed to
//! decide (real path, stat, content, who we are), the new content computed on
//! the controller, then one atomic write with `util::place`.

use super::util::{self, Place, RStat};
use super::{file, Args, Ctx, ModError, ModResult};
use crate::connection::quote;

/// File attributes accepted for compatibility (`unsafe_writes`, `attributes`,
/// SELinux contexts): part of Ansible's `add_file_common_args`.
#[macro_export]
macro_rules! with_compat_attr_params {
    ($($p:expr),* $(,)?) => {&[$($p,)*
    $crate::modules::Param::new("unsafe_writes", $crate::modules::Kind::Bool, "Accepted for compatibility."),
    $crate::modules::Param::new("attributes", $crate::modules::Kind::Str, "Accepted for compatibility (chattr attributes are not set).").aliases(&["attr"]),
    $crate::modules::Param::new("setype", $crate::modules::Kind::Str, "Accepted for compatibility."),
    $crate::modules::Param::new("seuser", $crate::modules::Kind::Str, "Accepted for compatibility."),
    $crate::modules::Param::new("serole", $crate::modules::Kind::Str, "Accepted for compatibility."),
    $crate::modules::Param::new("selevel", $crate::modules::Kind::Str, "Accepted for compatibility."),
    ]};
}

/// Common file attribute parameters (`add_file_common_args` in Ansible).
#[macro_export]
macro_rules! with_attr_params {
    ($($p:expr),* $(,)?) => {$crate::with_compat_attr_params![$($p,)*
    $crate::modules::Param::new("mode", $crate::modules::Kind::Mode, "Permissions of the file (octal or symbolic)."),
    $crate::modules::Param::new("owner", $crate::modules::Kind::Str, "Owner of the file."),
    $crate::modules::Param::new("group", $crate::modules::Kind::Str, "Group of the file."),
    ]};
}

/// A path as a shell word: `~` and `~/x` expand to the remote `$HOME`, the rest is quoted.
pub fn sh_path(p: &str) -> String {
    if p == "~" {
        "\"$HOME\"".to_string()
    } else if let Some(rest) = p.strip_prefix("~/") {
        format!("\"$HOME\"/{}", quote(rest))
    } else {
        quote(p)
    }
}

/// The remote file as read before editing.
#[derive(Debug, Clone, Default)]
pub struct Remote {
    /// The path as the task gave it.
    pub path: String,
    /// Symlinks resolved: edits go to the real file, the link stays.
    pub real: String,
    pub st: RStat,
    /// `None` when absent (or not a regular file).
    pub content: Option<Vec<u8>>,
    pub readable: bool,
    pub dir_exists: bool,
    pub user: String,
    pub group: String,
    pub umask: u32,
    /// The `REAL|`, `DIR|` and `STAT|` lines (with checksum) the host printed.
    fp: String,
    /// Taken from the memo, not read now: a write or a confirmation must
    /// check the file still has fingerprint `fp`.
    guarded: bool,
    /// A guarded write or confirmation succeeded: the view was right.
    confirmed: Flag,
}

/// An `AtomicBool` that clones (a `Remote` is shared across awaits).
#[derive(Debug, Default)]
struct Flag(std::sync::atomic::AtomicBool);

impl Clone for Flag {
    fn clone(&self) -> Self {
        Flag(self.get().into())
    }
}

impl Flag {
    fn get(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
    fn set(&self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed)
    }
}

impl Remote {
    pub fn exists(&self) -> bool {
        self.st.exists
    }

    pub fn is_dir(&self) -> bool {
        self.st.kind == "directory"
    }

    /// Attributes a file has now, or would have if we created it.
    pub fn base_stat(&self) -> RStat {
        if self.st.exists {
            return self.st.clone();
        }
        RStat {
            exists: true,
            kind: "file".into(),
            mode: 0o666 & !self.umask,
            owner: self.user.clone(),
            group: self.group.clone(),
            ..RStat::default()
        }
    }
}

/// Files up to this size are remembered between tasks.
const MEMO_MAX: usize = 64 * 1024;

/// The text files a run has read or written on one host, by escalation and
/// path. An edit of a file seen before is computed from what was seen and
/// sent with a guard (real path, stat and checksum must be unchanged), so it
/// is one round trip; when the guard fails, the same round trip brings the
/// file as it is now and the module runs again on that.
#[derive(Debug, Default)]
pub struct FileMemo {
    files: std::sync::Mutex<std::collections::HashMap<(String, String), Remote>>,
    /// Per escalation: user, group and umask, as a read reported them.
    who: std::sync::Mutex<std::collections::HashMap<String, (String, String, u32)>>,
}

impl FileMemo {
    fn key(ctx: &Ctx<'_>, path: &str) -> (String, String) {
        let who = ctx
            .escalate
            .as_ref()
            .map(|b| b.user.clone())
            .unwrap_or_default();
        (who, path.to_string())
    }

    fn get(&self, ctx: &Ctx<'_>, path: &str) -> Option<Remote> {
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.get(&Self::key(ctx, path)).cloned()
    }

    /// A file never seen, guessed absent (its directory present) once the
    /// escalation's identity is known: creating files is the common first
    /// run, and a wrong guess costs no extra round trip.
    fn guess(&self, ctx: &Ctx<'_>, path: &str) -> Option<Remote> {
        let plain = path.starts_with('/')
            && !path.ends_with('/')
            && !path.contains("//")
            && !path.contains('\n')
            && path.split('/').all(|c| c != "." && c != "..");
        if !plain {
            return None;
        }
        let seen = {
            let who = self.who.lock().unwrap_or_else(|e| e.into_inner());
            who.get(&Self::key(ctx, path).0).cloned()
        };
        // Before any read: the identity the host's shell reported when it started.
        let (user, group, umask) = seen.or_else(|| {
            ctx.conn
                .identity(ctx.escalate.as_ref())
                .map(|i| (i.user, i.group, i.umask))
        })?;
        Some(Remote {
            path: path.to_string(),
            real: path.to_string(),
            readable: true,
            dir_exists: true,
            user,
            group,
            umask,
            fp: format!("REAL|{path}\nDIR|1\nSTAT|absent"),
            guarded: true,
            ..Remote::default()
        })
    }

    /// Remembers `r` (guarded from now on), or forgets the path when `r` is
    /// too large to keep.
    fn put(&self, ctx: &Ctx<'_>, r: &Remote) {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        let key = Self::key(ctx, &r.path);
        if !r.user.is_empty() {
            let mut who = self.who.lock().unwrap_or_else(|e| e.into_inner());
            who.insert(key.0.clone(), (r.user.clone(), r.group.clone(), r.umask));
        }
        if r.fp.is_empty() || r.content.as_ref().is_some_and(|c| c.len() > MEMO_MAX) {
            files.remove(&key);
            return;
        }
        files.insert(
            key,
            Remote {
                guarded: true,
                confirmed: Flag::default(),
                ..r.clone()
            },
        );
    }

    fn forget(&self, ctx: &Ctx<'_>, path: &str) {
        let mut files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        files.remove(&Self::key(ctx, path));
    }
}

const CONTENT: &[u8] = b"@@FERRY-CONTENT@@\n";
const STALE: &str = "@@FERRY-STALE@@";

/// Prints the fingerprint lines of `path`: `REAL|`, `DIR|` and `STAT|` (with checksum).
fn fp_snippet(path: &str) -> String {
    format!(
        "p={}\nr=$(readlink -f -- \"$p\" 2>/dev/null) || r=\nif [ -z \"$r\" ]; then r=$p; fi\nprintf 'REAL|%s\\n' \"$r\"\nif [ -d \"$(dirname -- \"$r\")\" ]; then echo 'DIR|1'; else echo 'DIR|0'; fi\n{}\n",
        sh_path(path),
        util::stat_snippet("r", true)
    )
}

/// Fingerprint, identity, and content of `path`.
fn load_script(path: &str) -> String {
    format!(
        "{}printf 'WHO|%s|%s|%s\\n' \"$(id -un)\" \"$(id -gn)\" \"$(umask)\"\nif [ -f \"$r\" ]; then if [ -r \"$r\" ]; then printf '@@FERRY-CONTENT@@\\n'; cat -- \"$r\" || exit 5; else echo UNREADABLE; fi; fi\n",
        fp_snippet(path)
    )
}

/// A script that continues only while `r`'s fingerprint holds; otherwise it
/// prints the stale marker and the file as it is now, and stops.
fn guard_script(r: &Remote) -> String {
    format!(
        "fp=$({})\nif [ \"$fp\" != {} ]; then echo {STALE}; {}exit 0; fi\n",
        fp_snippet(&r.path).trim_end(),
        quote(&r.fp),
        load_script(&r.path)
    )
}

/// The fingerprint lines at the start of `text`.
fn parse_fp(text: &str) -> String {
    text.lines()
        .skip_while(|l| !l.starts_with("REAL|"))
        .take(3)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The file before editing: remembered from an earlier task (guarded), or
/// read now (one round trip: real path, parent dir, identity, stat, content).
pub async fn load(ctx: &Ctx<'_>, path: &str) -> Result<Remote, ModError> {
    if let Some(r) = ctx
        .memo
        .and_then(|m| m.get(ctx, path).or_else(|| m.guess(ctx, path)))
    {
        return Ok(r);
    }
    read(ctx, path).await
}

/// Reads the file now (and remembers it when it is small enough).
async fn read(ctx: &Ctx<'_>, path: &str) -> Result<Remote, ModError> {
    let out = ctx.sh(&load_script(path)).await?;
    if out.rc != 0 {
        return Err(ModError::fail(format!(
            "could not read {path}: {}",
            out.stderr_str().trim()
        )));
    }
    let r = parse_load(path, &out.stdout)?;
    if let Some(m) = ctx.memo {
        m.put(ctx, &r);
    }
    Ok(r)
}

fn parse_load(path: &str, stdout: &[u8]) -> Result<Remote, ModError> {
    let (head, content) = match find(stdout, CONTENT) {
        Some(i) => (&stdout[..i], Some(stdout[i + CONTENT.len()..].to_vec())),
        None => (stdout, None),
    };
    let head = String::from_utf8_lossy(head).into_owned();
    let mut r = Remote {
        path: path.to_string(),
        readable: true,
        fp: parse_fp(&head),
        ..Remote::default()
    };
    for line in head.lines() {
        if let Some(v) = line.strip_prefix("REAL|") {
            r.real = v.to_string();
        } else if let Some(v) = line.strip_prefix("DIR|") {
            r.dir_exists = v == "1";
        } else if let Some(v) = line.strip_prefix("WHO|") {
            let f: Vec<&str> = v.split('|').collect();
            r.user = f.first().unwrap_or(&"").to_string();
            r.group = f.get(1).unwrap_or(&"").to_string();
            r.umask = f
                .get(2)
                .and_then(|m| u32::from_str_radix(m.trim(), 8).ok())
                .unwrap_or(0o022);
        } else if line == "UNREADABLE" {
            r.readable = false;
        }
    }
    r.st = util::parse_stat(&head);
    r.content = content;
    if r.real.is_empty() {
        r.real = path.to_string();
    }
    if r.st.exists && r.st.kind == "file" && !r.readable {
        return Err(ModError::fail(format!(
            "{path}: permission denied (file is not readable)"
        )));
    }
    Ok(r)
}

/// When the output says the guard failed: remembers the file as it is now
/// and returns `ModError::Stale`.
fn stale_check(ctx: &Ctx<'_>, r: &Remote, stdout: &[u8]) -> Result<(), ModError> {
    let marker = format!("{STALE}\n");
    let Some(i) = find(stdout, marker.as_bytes()) else {
        return Ok(());
    };
    let now = parse_load(&r.path, &stdout[i + marker.len()..])?;
    if let Some(m) = ctx.memo {
        m.put(ctx, &now);
    }
    Err(ModError::Stale(r.path.clone()))
}

/// Loads the file at `$path` and evaluates `$edit` (a future using `$r: &Remote`)
/// to the module's result; when a remembered view proves stale, the edit runs
/// again on the file as it is now.
macro_rules! edit_file {
    ($ctx:expr, $path:expr, |$r:ident| $edit:expr) => {{
        let mut now = textfile::load($ctx, $path).await?;
        loop {
            let res = {
                let $r = &now;
                $edit.await
            };
            match textfile::settle($ctx, &now, res).await? {
                textfile::Settled::Done(res) => break res,
                textfile::Settled::Again(fresh) => now = fresh,
            }
        }
    }};
}
pub(crate) use edit_file;

/// How an edit of a remembered file ended.
pub enum Settled {
    Done(ModResult),
    /// The file had changed: run the module again on it as it is now.
    Again(Remote),
}

/// Ends an edit that ran on `r`: when `r` was remembered and nothing
/// confirmed it yet (no write), one round trip checks it still holds.
pub async fn settle(ctx: &Ctx<'_>, r: &Remote, res: ModResult) -> Result<Settled, ModError> {
    let stale = match res {
        Err(ModError::Stale(_)) => true,
        _ if r.guarded && !r.confirmed.get() => {
            let out = ctx.sh(&guard_script(r)).await?;
            stale_check(ctx, r, &out.stdout).is_err()
        }
        _ => false,
    };
    if !stale {
        return Ok(Settled::Done(res));
    }
    // The stale round trip brought the file as it is now; the memo kept it
    // unless it is too large to remember, then it is read once more.
    let now = match ctx.memo.and_then(|m| m.get(ctx, &r.path)) {
        Some(now) => Remote {
            guarded: false,
            ..now
        },
        None => read(ctx, &r.path).await?,
    };
    Ok(Settled::Again(now))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Commands that bring mode/owner/group to what the task asks, given `base`.
pub fn attr_fixes(args: &Args, real: &str, base: &RStat) -> Result<Vec<String>, ModError> {
    file::attr_fixes(args, real, base, false)
}

const MKDIR_FAILED: i32 = 71;

/// Writes `data` atomically to the real file (creating the parent directory
/// when asked) with the task's validate/backup/mode/owner/group. Returns the
/// backup name. A remembered `r` is checked in the same round trip
/// (`ModError::Stale` when the file changed).
pub async fn save(
    ctx: &Ctx<'_>,
    args: &Args,
    r: &Remote,
    data: &[u8],
) -> Result<Option<String>, ModError> {
    let base = r.base_stat();
    let mode = match args.get("mode") {
        Some(m) => util::parse_mode(m, base.mode, false).map_err(ModError::fail)?,
        None => None,
    };
    let mut script = String::new();
    if r.guarded {
        script.push_str(&guard_script(r));
    }
    if !r.dir_exists {
        script.push_str(&format!(
            "mkdir -p -- \"$(dirname -- {})\" || exit {MKDIR_FAILED}\n",
            quote(&r.real)
        ));
    }
    script.push_str(&util::place_script(&Place::from_args(&r.real, mode, args))?);
    // The new fingerprint, so the next edit of this file needs no read.
    script.push_str(&fp_snippet(&r.path));
    let out = ctx.sh_in(&script, Some(data)).await?;
    stale_check(ctx, r, &out.stdout)?;
    r.confirmed.set();
    if out.rc == MKDIR_FAILED {
        return Err(ModError::fail(format!(
            "Error creating the directory of {}: {}",
            r.path,
            out.stderr_str().trim()
        )));
    }
    let backup = util::placed(&out, &r.path)?;
    if let Some(m) = ctx.memo {
        let text = out.stdout_str();
        let mut now = Remote {
            fp: parse_fp(&text),
            st: util::parse_stat(&text),
            content: Some(data.to_vec()),
            dir_exists: true,
            guarded: false,
            ..r.clone()
        };
        now.st.checksum = Some(util::sha1_hex(data));
        m.put(ctx, &now);
    }
    Ok(backup)
}

/// Ansible's `check_file_attrs`: fixes attributes when the content did not
/// change (a write already applied them) and extends the message.
pub async fn check_attrs(
    ctx: &Ctx<'_>,
    args: &Args,
    r: &Remote,
    content_changed: bool,
    changed: &mut bool,
    msg: &mut String,
) -> Result<(), ModError> {
    let fixes = attr_fixes(args, &r.real, &r.base_stat())?;
    if fixes.is_empty() {
        return Ok(());
    }
    if !content_changed && !ctx.check_mode {
        let guard = if r.guarded {
            guard_script(r)
        } else {
            String::new()
        };
        let out = ctx
            .sh(&format!("{guard}set -e\n{}", fixes.join("\n")))
            .await?;
        stale_check(ctx, r, &out.stdout)?;
        r.confirmed.set();
        if let Some(m) = ctx.memo {
            m.forget(ctx, &r.path);
        }
        if out.rc != 0 {
            return Err(ModError::fail(format!(
                "{}: {}",
                r.path,
                out.stderr_str().trim()
            )));
        }
    }
    if *changed {
        msg.push_str(" and ");
    }
    *changed = true;
    msg.push_str("ownership, perms or SE linux context changed");
    Ok(())
}

/// Splits like Python's `bytes.readlines()`: after each `\n`, terminators kept.
pub fn readlines(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in data.iter().enumerate() {
        if *b == b'\n' {
            out.push(data[start..=i].to_vec());
            start = i + 1;
        }
    }
    if start < data.len() {
        out.push(data[start..].to_vec());
    }
    out
}

/// Python's `bytes.splitlines(True)`: `\n`, `\r\n` and `\r` end lines.
pub fn splitlines_keep(data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\n' => {
                out.push(data[start..=i].to_vec());
                start = i + 1;
            }
            b'\r' => {
                let end = if data.get(i + 1) == Some(&b'\n') {
                    i + 1
                } else {
                    i
                };
                out.push(data[start..=end].to_vec());
                i = end;
                start = end + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < data.len() {
        out.push(data[start..].to_vec());
    }
    out
}

/// `line.rstrip(b'\r\n')`.
pub fn rstrip_nl(l: &[u8]) -> &[u8] {
    let mut end = l.len();
    while end > 0 && (l[end - 1] == b'\n' || l[end - 1] == b'\r') {
        end -= 1;
    }
    &l[..end]
}

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_splitting() {
        assert_eq!(readlines(b"a\nb"), vec![b"a\n".to_vec(), b"b".to_vec()]);
        assert_eq!(readlines(b""), Vec::<Vec<u8>>::new());
        assert_eq!(
            splitlines_keep(b"a\r\nb\rc\n"),
            vec![b"a\r\n".to_vec(), b"b\r".to_vec(), b"c\n".to_vec()]
        );
        assert_eq!(rstrip_nl(b"x\r\n"), b"x");
    }

    #[test]
    fn home_paths() {
        assert_eq!(sh_path("~/a b"), "\"$HOME\"/'a b'");
        assert_eq!(sh_path("/etc/x"), "/etc/x");
    }
}
