//! `copy`: files from the controller (or `content:`) placed atomically on the target.

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use super::util::{self, Place};
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

/// Parameters shared by modules that place a file (copy, template).
#[macro_export]
macro_rules! with_file_params {
    ($($p:expr),* $(,)?) => {$crate::with_attr_params![$($p,)*
    $crate::modules::Param::new("dest", $crate::modules::Kind::Path, "Remote absolute path where the file is placed.").required(),
    $crate::modules::Param::new("backup", $crate::modules::Kind::Bool, "Keep a timestamped copy of the old file.").default("no"),
    $crate::modules::Param::new("force", $crate::modules::Kind::Bool, "Replace the file when contents differ (no: only when absent).").default("yes"),
    $crate::modules::Param::new("validate", $crate::modules::Kind::Str, "Command to validate the new file before it is placed; %s is the temporary file."),
    ]};
}

pub static SPEC: ModuleSpec = ModuleSpec {
    mutually_exclusive: &[&["content", "src"]],
    required_one_of: &[&["content", "src"]],
    example: "- ansible.builtin.copy:\n    src: train-lda.py\n    dest: /srv/trainer/train-lda.py\n    mode: '0644'\n",
    ..ModuleSpec::new("copy", "Copy files (or content) to the target, atomically.", crate::with_file_params![
        Param::new("src", Kind::Path, "Local path (searched in the role's files/); a directory is copied recursively."),
        Param::new("content", Kind::Raw, "Contents of the file, instead of src."),
        Param::new("remote_src", Kind::Bool, "src is on the target.").default("no"),
        Param::new("directory_mode", Kind::Mode, "Mode of directories created by a recursive copy."),
        Param::new("checksum", Kind::Str, "Expected SHA1 of the source."),
        Param::new("decrypt", Kind::Bool, "Decrypt vault-encrypted source files on the controller.").default("yes"),
        Param::new("follow", Kind::Bool, "Accepted for compatibility.").default("no"),
        Param::new("local_follow", Kind::Bool, "Accepted for compatibility.").default("yes"),
    ])
};

pub struct Copy;

/// Places `data` at `dest` unless it is already there; shared with `template`.
pub async fn put_content(
    ctx: &Ctx<'_>,
    args: &Args,
    data: &[u8],
    dest: &str,
    src: Option<&str>,
) -> ModResult {
    put_source(ctx, args, &Source::Bytes(data.into()), dest, src).await
}

/// What `copy` places: bytes, or a large plain file on the controller, hashed
/// in pieces and read only when it has to be sent (a re-run never holds it).
pub enum Source<'a> {
    Bytes(std::borrow::Cow<'a, [u8]>),
    File {
        path: PathBuf,
        len: usize,
        sum: String,
    },
}

impl Source<'_> {
    fn len(&self) -> usize {
        match self {
            Source::Bytes(b) => b.len(),
            Source::File { len, .. } => *len,
        }
    }
}

/// Source files at least this large are hashed in pieces, not read whole.
const STREAM_MIN: u64 = 1024 * 1024;

fn load_src(args: &Args, path: &Path) -> Result<Source<'static>, ModError> {
    let io = |e: std::io::Error| ModError::fail(format!("{}: {e}", path.display()));
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len >= STREAM_MIN {
        use std::io::Read;
        let mut head = [0u8; 64];
        let n = std::fs::File::open(path)
            .and_then(|mut f| f.read(&mut head))
            .map_err(io)?;
        if !(args.bool("decrypt") && crate::vault::is_vault_bytes(&head[..n])) {
            let sum = util::sha1_file_once(path).map_err(io)?;
            return Ok(Source::File {
                path: path.to_path_buf(),
                len: len as usize,
                sum,
            });
        }
    }
    read_src(args, path).map(|b| Source::Bytes(b.into()))
}

async fn put_source(
    ctx: &Ctx<'_>,
    args: &Args,
    data: &Source<'_>,
    dest: &str,
    src: Option<&str>,
) -> ModResult {
    let sum = match data {
        Source::Bytes(b) => util::sha1_hex(b),
        Source::File { sum, .. } => sum.clone(),
    };
    let inline = match data {
        Source::Bytes(b) => place_if_differs(ctx, args, b, dest, &sum).await?,
        Source::File { .. } => Inline::Skipped,
    };
    let st = match inline {
        Inline::Placed(backup) => {
            let mut o = Outcome::changed(true)
                .with("dest", dest)
                .with("checksum", sum)
                .with("size", data.len());
            if let Some(s) = src {
                o = o.with("src", s);
            }
            if let Some(b) = backup {
                o = o.with("backup_file", b);
            }
            return Ok(o);
        }
        Inline::Kept(st) if st.kind != "directory" => st,
        _ => util::stat(ctx, dest, true).await?,
    };
    let dest = if st.kind == "directory" {
        let name = src.and_then(|s| Path::new(s).file_name()).ok_or_else(|| {
            ModError::fail(format!("dest {dest} is a directory; give a file name"))
        })?;
        format!("{}/{}", dest.trim_end_matches('/'), name.to_string_lossy())
    } else {
        dest.to_string()
    };
    let st = if dest != args.str("dest").unwrap_or_default() {
        util::stat(ctx, &dest, true).await?
    } else {
        st
    };
    let same = st.exists && st.checksum.as_deref() == Some(sum.as_str());
    let skip = st.exists && !args.bool("force");
    let mut o = Outcome::ok()
        .with("dest", dest.clone())
        .with("checksum", sum.clone())
        .with("size", data.len());
    if let Some(s) = src {
        o = o.with("src", s);
    }
    if same || skip {
        // Content is right; owner/mode may still need fixing.
        let fixes = super::file::attr_fixes(args, &dest, &st, false)?;
        if !fixes.is_empty() {
            o.changed = true;
            if !ctx.check_mode {
                let out = ctx.sh(&format!("set -e\n{}", fixes.join("\n"))).await?;
                if out.rc != 0 {
                    return Err(ModError::fail(out.stderr_str().trim().to_string()));
                }
            }
        }
        return Ok(o);
    }
    o.changed = true;
    if ctx.diff_mode {
        let before = if st.exists && st.size < 256 * 1024 {
            util::read(ctx, &dest)
                .await?
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let after = match data {
            Source::Bytes(b) if b.len() < 256 * 1024 => String::from_utf8_lossy(b).into_owned(),
            _ => "<large file>".into(),
        };
        o = o.diff(util::text_diff(&before, &after, &dest));
    }
    if ctx.check_mode {
        return Ok(o);
    }
    let mode = match args.get("mode") {
        Some(m) => util::parse_mode(m, if st.exists { st.mode } else { 0o644 }, false)
            .map_err(ModError::fail)?,
        None => None,
    };
    let place = Place::from_args(&dest, mode, args);
    let backup = match data {
        Source::Bytes(b) => util::place(ctx, b, &place).await?,
        Source::File { path, .. } => util::place_file(ctx, path, &place).await?,
    };
    if let Some(b) = backup {
        o = o.with("backup_file", b);
    }
    Ok(o)
}

/// Content up to this size travels with the check, so a first run places a
/// file in one round trip (a re-run sends it for nothing: cheap at this size).
const INLINE_MAX: usize = 64 * 1024;
const SAME: &str = "@@FERRY-SAME@@";

enum Inline {
    /// Not tried (check/diff mode, large content, a symbolic mode).
    Skipped,
    /// The file was written; the backup file, if one was kept.
    Placed(Option<String>),
    /// Nothing written: the stat of `dest` as the script found it.
    Kept(util::RStat),
}

/// One script: stat `dest`, and unless it is a directory, already holds
/// `data`, or exists without `force`, place `data` atomically.
async fn place_if_differs(
    ctx: &Ctx<'_>,
    args: &Args,
    data: &[u8],
    dest: &str,
    sum: &str,
) -> Result<Inline, ModError> {
    if ctx.check_mode || ctx.diff_mode || data.len() > INLINE_MAX {
        return Ok(Inline::Skipped);
    }
    // A symbolic mode depends on the current one, which is not known yet.
    let mode = match args.get("mode") {
        Some(m) => {
            let a = util::parse_mode(m, 0, false).map_err(ModError::fail)?;
            if a != util::parse_mode(m, 0o7777, false).map_err(ModError::fail)? {
                return Ok(Inline::Skipped);
            }
            a
        }
        None => None,
    };
    // One hash of the current file, in the shell (no second process per check).
    let keep = if args.bool("force") {
        format!("if [ -f \"$p\" ] && ferry_h=$(sha1sum < \"$p\" 2>/dev/null) && [ \"${{ferry_h%% *}}\" = {sum} ]; then echo {SAME}; exit 0; fi")
    } else {
        "exit 0".to_string()
    };
    let place = util::place_script(&Place::from_args(dest, mode, args))?;
    let script = format!(
        "p={}\n{}\n[ -d \"$p\" ] && exit 0\nif [ -e \"$p\" ] || [ -L \"$p\" ]; then\n{keep}\nfi\necho PLACED\n{place}",
        quote(dest),
        util::stat_snippet("p", false),
    );
    let out = ctx.sh_in(&script, Some(data)).await?;
    if out.stdout_str().lines().any(|l| l == "PLACED") {
        return util::placed(&out, dest).map(Inline::Placed);
    }
    if out.rc != 0 {
        return Err(ModError::fail(out.stderr_str().trim().to_string()));
    }
    let text = out.stdout_str();
    let mut st = util::parse_stat(&text);
    if text.lines().any(|l| l == SAME) {
        st.checksum = Some(sum.to_string());
    }
    Ok(Inline::Kept(st))
}

#[async_trait]
impl Module for Copy {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let dest = args.req_str("dest")?;
        if let Some(content) = args.get("content") {
            let text = match content {
                serde_json::Value::String(s) => s.clone(),
                // Ansible writes non-string content as JSON.
                other => other.to_string(),
            };
            if dest.ends_with('/') {
                return Err(ModError::fail("can not use content with a dir as dest"));
            }
            return put_content(ctx, args, text.as_bytes(), dest, None).await;
        }
        let src = args.req_str("src")?;
        if args.bool("remote_src") {
            return remote_copy(ctx, args, src, dest).await;
        }
        let path = ctx.find_file("files", src).ok_or_else(|| ModError::fail(format!("Could not find or access '{src}' on the controller (searched the role's files/, the role, the playbook dir)")))?;
        if path.is_dir() {
            return copy_dir(ctx, args, &path, src.ends_with('/'), dest).await;
        }
        let data = load_src(args, &path)?;
        let dest = if dest.ends_with('/') {
            format!(
                "{dest}{}",
                path.file_name().unwrap_or_default().to_string_lossy()
            )
        } else {
            dest.to_string()
        };
        put_source(ctx, args, &data, &dest, Some(&path.to_string_lossy())).await
    }
}

/// Recursive copy of a controller directory: `src/` copies its contents, `src` the directory itself.
async fn copy_dir(
    ctx: &Ctx<'_>,
    args: &Args,
    dir: &Path,
    contents_only: bool,
    dest: &str,
) -> ModResult {
    let root = if contents_only {
        dest.trim_end_matches('/').to_string()
    } else {
        format!(
            "{}/{}",
            dest.trim_end_matches('/'),
            dir.file_name().unwrap_or_default().to_string_lossy()
        )
    };
    let mut files: Vec<PathBuf> = Vec::new();
    let mut dirs: Vec<PathBuf> = Vec::new();
    walk(dir, &mut files, &mut dirs)
        .map_err(|e| ModError::fail(format!("{}: {e}", dir.display())))?;
    let mut changed = false;
    let dmode = args
        .get("directory_mode")
        .and_then(|m| util::parse_mode(m, 0o755, true).ok().flatten());
    let mut mk = vec![root.clone()];
    mk.extend(dirs.iter().map(|d| {
        format!(
            "{root}/{}",
            d.strip_prefix(dir).unwrap_or(d).to_string_lossy()
        )
    }));
    let check: String = mk
        .iter()
        .map(|d| format!("[ -d {} ] || echo MISSING", quote(d)))
        .collect::<Vec<_>>()
        .join("\n");
    let out = ctx.sh(&check).await?;
    if out.stdout_str().contains("MISSING") {
        changed = true;
        if !ctx.check_mode {
            let mut s = String::from("set -e\n");
            for d in &mk {
                s.push_str(&format!(
                    "[ -d {0} ] || {{ mkdir -p {0}; {1} }}\n",
                    quote(d),
                    dmode
                        .map(|m| format!("chmod {m:o} {};", quote(d)))
                        .unwrap_or_default()
                ));
            }
            let out = ctx.sh(&s).await?;
            if out.rc != 0 {
                return Err(ModError::fail(out.stderr_str().trim().to_string()));
            }
        }
    }
    for f in &files {
        let rel = f.strip_prefix(dir).unwrap_or(f);
        let target = format!("{root}/{}", rel.to_string_lossy());
        let data = load_src(args, f)?;
        if ctx.check_mode && changed {
            continue;
        }
        let o = put_source(ctx, args, &data, &target, Some(&f.to_string_lossy())).await?;
        changed |= o.changed;
    }
    Ok(Outcome::changed(changed)
        .with("dest", root)
        .with("src", dir.to_string_lossy().into_owned()))
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, dirs: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for e in entries {
        if e.is_dir() {
            dirs.push(e.clone());
            walk(&e, files, dirs)?;
        } else {
            files.push(e);
        }
    }
    Ok(())
}

async fn remote_copy(ctx: &Ctx<'_>, args: &Args, src: &str, dest: &str) -> ModResult {
    let s = util::stat(ctx, src, true).await?;
    if !s.exists {
        return Err(ModError::fail(format!("Source {src} not found")));
    }
    if s.kind == "directory" {
        return Err(ModError::fail(
            "remote_src of a directory is not supported by ferry yet",
        ));
    }
    let d = util::stat(ctx, dest, true).await?;
    let mut o = Outcome::ok().with("dest", dest).with("src", src);
    if d.exists && (d.checksum == s.checksum || !args.bool("force")) {
        let fixes = super::file::attr_fixes(args, dest, &d, false)?;
        o.changed = !fixes.is_empty();
        if o.changed && !ctx.check_mode {
            ctx.sh(&fixes.join("\n")).await?;
        }
        return Ok(o);
    }
    o.changed = true;
    if ctx.check_mode {
        return Ok(o);
    }
    let data = util::read(ctx, src).await?.unwrap_or_default();
    let mode = match args.get("mode") {
        Some(m) => util::parse_mode(m, s.mode, false).map_err(ModError::fail)?,
        None => Some(s.mode & 0o7777),
    };
    util::place(ctx, &data, &Place::from_args(dest, mode, args)).await?;
    Ok(o)
}

/// A source file from the controller, decrypted when vaulted unless `decrypt: no`.
fn read_src(args: &Args, path: &std::path::Path) -> Result<Vec<u8>, ModError> {
    if args.bool("decrypt") {
        crate::vault::read_bytes(path).map_err(ModError::fail)
    } else {
        std::fs::read(path).map_err(|e| ModError::fail(format!("{}: {e}", path.display())))
    }
}
