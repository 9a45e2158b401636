//! Shared by the modules that edit a text file in place (lineinfile,
//! blockinfile, replace): one remote read that returns everything needed to
//! decide (real path, stat, content, who we are), the new content computed on
//! the controller, then one atomic write with `util::place`.

use super::util::{self, Place, RStat};
use super::{file, Args, Ctx, ModError};
use crate::connection::quote;

/// Common file attribute parameters (`add_file_common_args` in Ansible).
#[macro_export]
macro_rules! with_attr_params {
    ($($p:expr),* $(,)?) => {&[$($p,)*
    $crate::modules::Param::new("mode", $crate::modules::Kind::Mode, "Permissions of the file (octal or symbolic)."),
    $crate::modules::Param::new("owner", $crate::modules::Kind::Str, "Owner of the file."),
    $crate::modules::Param::new("group", $crate::modules::Kind::Str, "Group of the file."),
    $crate::modules::Param::new("unsafe_writes", $crate::modules::Kind::Bool, "Accepted for compatibility."),
    $crate::modules::Param::new("attributes", $crate::modules::Kind::Str, "Not supported (accepted when empty).").aliases(&["attr"]),
    $crate::modules::Param::new("setype", $crate::modules::Kind::Str, "Accepted for compatibility."),
    $crate::modules::Param::new("seuser", $crate::modules::Kind::Str, "Accepted for compatibility."),
    $crate::modules::Param::new("serole", $crate::modules::Kind::Str, "Accepted for compatibility."),
    $crate::modules::Param::new("selevel", $crate::modules::Kind::Str, "Accepted for compatibility."),
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

const CONTENT: &[u8] = b"@@FERRY-CONTENT@@\n";

/// One round trip: real path, parent dir, identity, stat and content.
pub async fn load(ctx: &Ctx<'_>, path: &str) -> Result<Remote, ModError> {
    let script = format!(
        "p={}\nr=$(readlink -f -- \"$p\" 2>/dev/null) || r=\nif [ -z \"$r\" ]; then r=$p; fi\nprintf 'REAL|%s\\n' \"$r\"\nif [ -d \"$(dirname -- \"$r\")\" ]; then echo 'DIR|1'; else echo 'DIR|0'; fi\nprintf 'WHO|%s|%s|%s\\n' \"$(id -un)\" \"$(id -gn)\" \"$(umask)\"\n{}\nif [ -f \"$r\" ]; then if [ -r \"$r\" ]; then printf '@@FERRY-CONTENT@@\\n'; cat -- \"$r\" || exit 5; else echo UNREADABLE; fi; fi\n",
        sh_path(path),
        util::stat_snippet("r", false)
    );
    let out = ctx.sh(&script).await?;
    if out.rc != 0 {
        return Err(ModError::fail(format!(
            "could not read {path}: {}",
            out.stderr_str().trim()
        )));
    }
    let (head, content) = match find(&out.stdout, CONTENT) {
        Some(i) => (
            &out.stdout[..i],
            Some(out.stdout[i + CONTENT.len()..].to_vec()),
        ),
        None => (&out.stdout[..], None),
    };
    let head = String::from_utf8_lossy(head).into_owned();
    let mut r = Remote {
        path: path.to_string(),
        readable: true,
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

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Commands that bring mode/owner/group to what the task asks, given `base`.
pub fn attr_fixes(args: &Args, real: &str, base: &RStat) -> Result<Vec<String>, ModError> {
    file::attr_fixes(args, real, base, false)
}

/// Writes `data` atomically to the real file (creating the parent directory
/// when asked) with the task's validate/backup/mode/owner/group. Returns the backup name.
pub async fn save(
    ctx: &Ctx<'_>,
    args: &Args,
    r: &Remote,
    data: &[u8],
) -> Result<Option<String>, ModError> {
    if !r.dir_exists {
        let out = ctx
            .sh(&format!("mkdir -p -- \"$(dirname -- {})\"", quote(&r.real)))
            .await?;
        if out.rc != 0 {
            return Err(ModError::fail(format!(
                "Error creating the directory of {}: {}",
                r.path,
                out.stderr_str().trim()
            )));
        }
    }
    let base = r.base_stat();
    let mode = match args.get("mode") {
        Some(m) => util::parse_mode(m, base.mode, false).map_err(ModError::fail)?,
        None => None,
    };
    util::place(
        ctx,
        data,
        &Place {
            dest: &r.real,
            mode,
            owner: args.str("owner"),
            group: args.str("group"),
            validate: args.str("validate"),
            backup: args.bool("backup"),
        },
    )
    .await
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
        let out = ctx.sh(&format!("set -e\n{}", fixes.join("\n"))).await?;
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
