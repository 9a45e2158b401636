//! `slurp`: a remote file's content, base64-encoded.

use async_trait::async_trait;
use base64::Engine;

use super::textfile::sh_path;
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.slurp:\n    src: /proc/mounts\n  register: mounts\n- ansible.builtin.debug:\n    msg: \"{{ mounts['content'] | b64decode }}\"\n",
    ..ModuleSpec::new(
        "slurp",
        "Slurps a file from the target: its content comes back base64-encoded.",
        &[Param::new("src", Kind::Path, "The file on the target to fetch. This must be a file, not a directory.").aliases(&["path"]).required()],
    )
};

pub struct Slurp;

/// Why a remote file could not be read, as Ansible words it.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadError {
    NotFound,
    IsDir,
    NotReadable,
    Other(String),
}

impl ReadError {
    pub fn slurp_msg(&self, src: &str) -> String {
        match self {
            ReadError::NotFound => format!("file not found: {src}"),
            ReadError::IsDir => format!("source is a directory and must be a file: {src}"),
            ReadError::NotReadable => format!("file is not readable: {src}"),
            ReadError::Other(e) => format!("unable to slurp file: {e}"),
        }
    }
}

const OK: &[u8] = b"@@FERRY-OK@@\n";

/// Reads a remote file in one round trip; `~` expands to the remote home.
/// Returns the resolved path and the bytes.
pub async fn read_remote(
    ctx: &Ctx<'_>,
    src: &str,
) -> Result<Result<(String, Vec<u8>), ReadError>, ModError> {
    let script = format!(
        "p={}\nif [ ! -e \"$p\" ]; then echo NOTFOUND; exit 0; fi\nif [ -d \"$p\" ]; then echo ISDIR; exit 0; fi\nif [ ! -r \"$p\" ]; then echo UNREADABLE; exit 0; fi\nprintf '%s\\n' \"$p\"\nprintf '@@FERRY-OK@@\\n'\nexec cat -- \"$p\"\n",
        sh_path(src)
    );
    let out = ctx.sh(&script).await?;
    let Some(i) = out.stdout.windows(OK.len()).position(|w| w == OK) else {
        let s = out.stdout_str();
        return Ok(Err(match s.trim() {
            "NOTFOUND" => ReadError::NotFound,
            "ISDIR" => ReadError::IsDir,
            "UNREADABLE" => ReadError::NotReadable,
            _ => ReadError::Other(out.stderr_str().trim().to_string()),
        }));
    };
    if out.rc != 0 {
        let err = out.stderr_str();
        return Ok(Err(if err.contains("Permission denied") {
            ReadError::NotReadable
        } else {
            ReadError::Other(err.trim().to_string())
        }));
    }
    let path = String::from_utf8_lossy(&out.stdout[..i])
        .trim_end_matches('\n')
        .to_string();
    Ok(Ok((path, out.stdout[i + OK.len()..].to_vec())))
}

#[async_trait]
impl Module for Slurp {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let src = args.req_str("src")?;
        match read_remote(ctx, src).await? {
            Ok((_, data)) => Ok(Outcome::ok()
                .with(
                    "content",
                    base64::engine::general_purpose::STANDARD.encode(&data),
                )
                .with("source", src)
                .with("encoding", "base64")),
            Err(e) => Err(ModError::fail(e.slurp_msg(src))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{field, TestEnv};
    use serde_json::json;

    #[tokio::test]
    async fn reads_files() {
        let env = TestEnv::new();
        let f = env.write("a.bin", "hello\n\0world");
        let o = env.ok(&Slurp, json!({"src": f})).await;
        assert!(!o.changed);
        assert_eq!(field(&o, "content"), "aGVsbG8KAHdvcmxk");
        assert_eq!(field(&o, "encoding"), "base64");
        assert_eq!(field(&o, "source").as_str(), Some(f.as_str()));
        // Read-only: same in check mode, and twice.
        assert_eq!(env.check(&Slurp, json!({"path": f})).await.data, o.data);
        let e = env
            .run(&Slurp, json!({"src": env.path("missing")}))
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("file not found: "));
        let e = env
            .run(&Slurp, json!({"src": env.path("")}))
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("source is a directory"));
        let e = env.run(&Slurp, json!({})).await.unwrap_err();
        assert!(e.to_string().contains("missing required arguments: src"));
    }
}
