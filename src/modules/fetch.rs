//! `fetch`: copy a file from the target to the controller, under
//! `dest/<inventory_hostname>/<src path>` (or to `dest` itself with `flat`).
//! Idempotent by SHA1; the local file is written atomically (temp + rename).

use std::path::{Component, Path, PathBuf};

use async_trait::async_trait;
use serde_json::Value;

use super::slurp::{read_remote, ReadError};
use super::textfile::sh_path;
use super::{util, Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.fetch:\n    src: /var/log/trainer.log\n    dest: fetched/\n",
    ..ModuleSpec::new(
        "fetch",
        "Fetch files from the target into a tree on the controller, organized by host name.",
        &[
            Param::new("src", Kind::Str, "The file on the target to fetch (a file, not a directory).").required(),
            Param::new("dest", Kind::Str, "Directory on the controller (relative: to the playbook directory); with flat, the file itself.").required(),
            Param::new("flat", Kind::Bool, "Store at dest directly instead of dest/<host>/<src>; a dest ending in / gets the source's file name.").default("no"),
            Param::new("fail_on_missing", Kind::Bool, "Fail when the remote file cannot be read for any reason.").default("yes"),
            Param::new("validate_checksum", Kind::Bool, "Verify that source and destination checksums match after the fetch.").aliases(&["validate_md5"]).default("yes"),
        ],
    )
};

pub struct Fetch;

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

/// `os.path.normpath` for the parts we build (no symlink resolution).
pub fn normpath(p: &str) -> String {
    let abs = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().map(|l| *l != "..").unwrap_or(false) {
                    parts.pop();
                } else if !abs {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let j = parts.join("/");
    match (abs, j.is_empty()) {
        (true, _) => format!("/{j}"),
        (false, true) => ".".into(),
        (false, false) => j,
    }
}

/// Where the file goes on the controller.
pub fn local_dest(
    dest: &str,
    src: &str,
    host: &str,
    flat: bool,
    base: &Path,
) -> Result<PathBuf, String> {
    let abs = |d: &str| {
        if d.starts_with('/') {
            d.to_string()
        } else {
            format!("{}/{}", base.display(), d)
        }
    };
    let path = if flat {
        let d = if dest.ends_with('/') {
            let name = src.rsplit('/').next().unwrap_or(src);
            format!("{dest}{name}")
        } else {
            if Path::new(&abs(dest)).is_dir() {
                return Err("dest is an existing directory, use a trailing slash if you want to fetch src into that directory".into());
            }
            dest.to_string()
        };
        normpath(&abs(&d))
    } else {
        let root = normpath(&abs(dest));
        let p = normpath(&format!("{root}/{host}/{src}"));
        let inside = Path::new(&p)
            .strip_prefix(&root)
            .map(|r| !r.components().any(|c| c == Component::ParentDir))
            .unwrap_or(false);
        if !inside {
            return Err(format!(
                "Detected directory traversal, expected to be contained in '{dest}' but got '{p}'"
            ));
        }
        p
    };
    Ok(PathBuf::from(path))
}

/// Temp file beside `dest`, then rename: readers never see half a file.
fn write_atomic(dest: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.ferry-tmp.{}",
        dest.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let res = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dest)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

#[async_trait]
impl Module for Fetch {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        if ctx.check_mode {
            return Ok(Outcome {
                skipped: true,
                ..Outcome::ok()
            }
            .msg("check mode not (yet) supported for this module"));
        }
        let src = args.req_str("src")?;
        let dest = args.req_str("dest")?;
        let fail_on_missing = args.bool("fail_on_missing");
        let base = match ctx.var("playbook_dir") {
            Some(Value::String(d)) if !d.is_empty() => PathBuf::from(d),
            _ => ctx
                .search_dirs
                .last()
                .cloned()
                .unwrap_or_else(|| std::env::current_dir().unwrap_or_default()),
        };
        // The remote path with `~` expanded (needed to build the local path).
        let remote_src = if src.starts_with('~') {
            let out = ctx.sh(&format!("printf '%s' {}", sh_path(src))).await?;
            out.stdout_str()
        } else {
            src.to_string()
        };
        let local = local_dest(dest, &remote_src, ctx.host, args.bool("flat"), &base)
            .map_err(ModError::fail)?;
        let local_s = local.to_string_lossy().into_owned();
        let local_data = std::fs::read(&local).ok();

        let missing = |msg: String| -> ModResult {
            if fail_on_missing {
                let mut data = serde_json::Map::new();
                data.insert("file".into(), src.into());
                Err(ModError::Failed { msg, data })
            } else {
                Ok(Outcome::ok().msg(msg).with("file", src))
            }
        };
        let not_there = |e: ReadError| match e {
            ReadError::NotFound => {
                missing("the remote file does not exist, not transferring, ignored".into())
            }
            ReadError::IsDir => {
                if fail_on_missing {
                    missing("remote file is a directory, fetch cannot work on directories".into())
                } else {
                    missing("remote file is a directory, fetch cannot work on directories, not transferring, ignored".into())
                }
            }
            other => missing(other.slurp_msg(src)),
        };

        // A local copy exists: compare checksums first (no transfer when equal).
        let mut remote_sum: Option<String> = None;
        if let Some(have) = &local_data {
            let script = format!(
                "p={}\nif [ ! -e \"$p\" ]; then echo NOTFOUND; elif [ -d \"$p\" ]; then echo ISDIR; elif [ ! -r \"$p\" ]; then echo UNREADABLE; else printf 'SUM|%s\\n' \"$(sha1sum < \"$p\" | cut -d' ' -f1)\"; fi",
                sh_path(src)
            );
            let out = ctx.sh(&script).await?;
            let s = out.stdout_str();
            match s.trim() {
                "NOTFOUND" => return not_there(ReadError::NotFound),
                "ISDIR" => return not_there(ReadError::IsDir),
                "UNREADABLE" => return not_there(ReadError::NotReadable),
                _ => {}
            }
            remote_sum = s
                .lines()
                .find_map(|l| l.strip_prefix("SUM|"))
                .map(str::to_string)
                .filter(|x| x.len() == 40);
            let local_sum = util::sha1_hex(have);
            if remote_sum.as_deref() == Some(local_sum.as_str()) {
                return Ok(Outcome::ok()
                    .with("md5sum", md5_hex(have))
                    .with("file", src)
                    .with("dest", local_s)
                    .with("checksum", local_sum));
            }
        }

        let data = match read_remote(ctx, src).await? {
            Ok((_, d)) => d,
            Err(e) => return not_there(e),
        };
        let new_sum = util::sha1_hex(&data);
        let remote_checksum = remote_sum.clone().unwrap_or_else(|| new_sum.clone());
        if local_data.as_deref() == Some(&data[..]) {
            return Ok(Outcome::ok()
                .with("md5sum", md5_hex(&data))
                .with("file", src)
                .with("dest", local_s)
                .with("checksum", new_sum));
        }
        if args.bool("validate_checksum") && remote_sum.is_some() && new_sum != remote_checksum {
            let mut m = serde_json::Map::new();
            for (k, v) in [
                ("file", src.to_string()),
                ("dest", local_s.clone()),
                ("checksum", new_sum.clone()),
                ("remote_checksum", remote_checksum.clone()),
            ] {
                m.insert(k.into(), v.into());
            }
            m.insert("md5sum".into(), md5_hex(&data).into());
            m.insert("remote_md5sum".into(), Value::Null);
            return Err(ModError::Failed {
                msg: "checksum mismatch".into(),
                data: m,
            });
        }
        write_atomic(&local, &data)
            .map_err(|e| ModError::fail(format!("Failed to fetch the file: {e}")))?;
        Ok(Outcome::changed(true)
            .with("md5sum", md5_hex(&data))
            .with("dest", local_s)
            .with("remote_md5sum", Value::Null)
            .with("checksum", new_sum)
            .with("remote_checksum", remote_checksum))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{field, TestEnv};
    use serde_json::json;

    #[test]
    fn destinations() {
        let base = Path::new("/pb");
        assert_eq!(
            local_dest("out", "/etc/profile", "web1", false, base).unwrap(),
            PathBuf::from("/pb/out/web1/etc/profile")
        );
        assert_eq!(
            local_dest("/b/", "rel/x.log", "h", false, base).unwrap(),
            PathBuf::from("/b/h/rel/x.log")
        );
        assert_eq!(
            local_dest("/b/", "/var/log/x.log", "h", true, base).unwrap(),
            PathBuf::from("/b/x.log")
        );
        assert_eq!(
            local_dest("/b/y.log", "/var/log/x.log", "h", true, base).unwrap(),
            PathBuf::from("/b/y.log")
        );
        assert!(local_dest("/b", "../../../etc/passwd", "h", false, base)
            .unwrap_err()
            .contains("directory traversal"));
        assert_eq!(normpath("/a//b/./c/../d"), "/a/b/d");
    }

    #[tokio::test]
    async fn fetches_once() {
        let env = TestEnv::new();
        let src = env.write("remote/var/app.log", "line 1\n");
        let out = env.path("fetched");
        let args = json!({"src": src, "dest": out});
        // Check mode: skipped, nothing written.
        let o = env.check(&Fetch, args.clone()).await;
        assert!(o.skipped && !o.changed);
        assert!(!env.pathbuf("fetched").exists());

        let o = env.ok(&Fetch, args.clone()).await;
        assert!(o.changed);
        let local = format!("{out}/testhost{src}");
        assert_eq!(field(&o, "dest").as_str(), Some(local.as_str()));
        assert_eq!(std::fs::read_to_string(&local).unwrap(), "line 1\n");
        assert_eq!(field(&o, "checksum"), field(&o, "remote_checksum"));
        let o = env.ok(&Fetch, args.clone()).await;
        assert!(!o.changed);

        // Changed remote: fetched again.
        std::fs::write(&src, "line 2\n").unwrap();
        assert!(env.ok(&Fetch, args).await.changed);
        assert_eq!(std::fs::read_to_string(&local).unwrap(), "line 2\n");

        // flat with a trailing slash.
        let o = env
            .ok(
                &Fetch,
                json!({"src": src, "dest": format!("{}/", env.path("flat")), "flat": true}),
            )
            .await;
        assert!(o.changed);
        assert_eq!(env.read("flat/app.log"), "line 2\n");

        // Missing: fails by default, ignored with fail_on_missing=no.
        let e = env
            .run(&Fetch, json!({"src": env.path("nope"), "dest": out}))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("does not exist"));
        let o = env
            .ok(
                &Fetch,
                json!({"src": env.path("nope"), "dest": out, "fail_on_missing": false}),
            )
            .await;
        assert!(!o.changed);
        assert_eq!(
            o.msg.as_deref(),
            Some("the remote file does not exist, not transferring, ignored")
        );
    }
}
