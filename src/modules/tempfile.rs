//! `tempfile`: create a temporary file or directory on the target (`mktemp`).

use async_trait::async_trait;

use super::textfile::sh_path;
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.tempfile:\n    state: directory\n    suffix: build\n  register: build_dir\n",
    ..ModuleSpec::new(
        "tempfile",
        "Create a temporary file or directory on the target; returns its path. Always changed.",
        &[
            Param::new("state", Kind::Str, "Whether to create a file or a directory.").choices(&["file", "directory"]).default("file"),
            Param::new("path", Kind::Path, "Where to create it (default: $TMPDIR or /tmp)."),
            Param::new("prefix", Kind::Str, "Prefix of the name.").default("ansible."),
            Param::new("suffix", Kind::Str, "Suffix of the name.").default(""),
        ],
    )
};

pub struct TempFile;

/// The `mktemp` script; prints the created path.
pub fn script(
    dir: Option<&str>,
    prefix: &str,
    suffix: &str,
    directory: bool,
) -> Result<String, String> {
    if prefix.contains('/') || suffix.contains('/') {
        return Err("prefix and suffix may not contain '/'".into());
    }
    let dir = match dir {
        Some(d) => sh_path(d),
        None => "\"${TMPDIR:-/tmp}\"".to_string(),
    };
    let d = if directory { "-d " } else { "" };
    let tpl = format!("\"$dir\"/{}XXXXXXXX", quote(prefix));
    let body = if suffix.is_empty() {
        format!("mktemp {d}{tpl}")
    } else {
        // GNU mktemp has --suffix; elsewhere create, then rename atomically enough for a fresh name.
        let s = quote(suffix);
        format!("mktemp {d}--suffix={s} {tpl} 2>/dev/null || {{ f=$(mktemp {d}{tpl}) && mv -- \"$f\" \"$f\"{s} && printf '%s\\n' \"$f\"{s}; }}")
    };
    Ok(format!("dir={dir}\n[ -d \"$dir\" ] || {{ echo \"No such directory: $dir\" >&2; exit 2; }}\n{body}\n"))
}

#[async_trait]
impl Module for TempFile {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let directory = args.str("state") == Some("directory");
        let prefix = args.str("prefix").unwrap_or("ansible.");
        let suffix = args.str("suffix").unwrap_or("");
        let s = script(args.str("path"), prefix, suffix, directory).map_err(ModError::fail)?;
        if ctx.check_mode {
            // Nothing is created; the path is the template mktemp would fill in.
            let dir = args.str("path").unwrap_or("/tmp").trim_end_matches('/');
            return Ok(
                Outcome::changed(true).with("path", format!("{dir}/{prefix}XXXXXXXX{suffix}"))
            );
        }
        let out = ctx.sh(&s).await?;
        let path = out.stdout_str().trim_end_matches('\n').to_string();
        if out.rc != 0 || path.is_empty() {
            let err = out.stderr_str();
            return Err(ModError::fail(format!(
                "Failed to create temporary {}: {}",
                if directory { "directory" } else { "file" },
                err.trim()
            )));
        }
        Ok(Outcome::changed(true)
            .with("path", path)
            .with("state", if directory { "directory" } else { "file" }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{field, TestEnv};
    use serde_json::json;

    #[tokio::test]
    async fn creates_files_and_dirs() {
        let env = TestEnv::new();
        let dir = env.path("");
        let count = || std::fs::read_dir(env.dir.path()).unwrap().count();
        let o = env.check(&TempFile, json!({"path": dir})).await;
        assert!(o.changed);
        assert_eq!(count(), 0);
        let o = env
            .ok(
                &TempFile,
                json!({"path": dir, "prefix": "pre.", "suffix": ".conf"}),
            )
            .await;
        assert!(o.changed);
        let p = field(&o, "path").as_str().unwrap().to_string();
        assert!(std::path::Path::new(&p).is_file(), "{p}");
        let name = p.rsplit('/').next().unwrap();
        assert!(
            name.starts_with("pre.")
                && name.ends_with(".conf")
                && name.len() == "pre.".len() + 8 + ".conf".len()
        );
        // Always changed: a second run makes another one.
        let o2 = env
            .ok(&TempFile, json!({"path": dir, "state": "directory"}))
            .await;
        assert!(o2.changed);
        let d = field(&o2, "path").as_str().unwrap();
        assert!(std::path::Path::new(d).is_dir());
        assert!(d.rsplit('/').next().unwrap().starts_with("ansible."));
        assert_eq!(count(), 2);
        assert!(env
            .run(&TempFile, json!({"path": env.path("missing")}))
            .await
            .is_err());
    }
}
