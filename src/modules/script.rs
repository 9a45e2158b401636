//! `script`: transfer a local script to the target and run it there.
//!
//! One round trip: the script travels on stdin into a private `mktemp -d`
//! directory (0700), is made executable, runs with its arguments (each one
//! quoted), and is removed whatever happens.

use std::path::Path;

use async_trait::async_trait;

use super::textfile::sh_path;
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::{join_argv, quote};

pub static SPEC: ModuleSpec = ModuleSpec {
    free_form: true,
    example: "- ansible.builtin.script: bootstrap.sh --role web\n  args:\n    creates: /etc/bootstrapped\n",
    ..ModuleSpec::new(
        "script",
        "Run a local script on the target after transferring it (found in the role's files/ or the playbook dir).",
        &[
            Param::new("_raw_params", Kind::Str, "Path to the local script followed by its arguments (free form)."),
            Param::new("cmd", Kind::Str, "Path to the local script followed by its arguments."),
            Param::new("creates", Kind::Path, "A file name; when it already exists on the target, this step is skipped."),
            Param::new("removes", Kind::Path, "A file name; when it does not exist on the target, this step is skipped."),
            Param::new("chdir", Kind::Path, "Absolute directory on the target to change into before running the script."),
            Param::new("executable", Kind::Str, "Interpreter to run the script with (e.g. python3, bash)."),
            Param::new("decrypt", Kind::Bool, "Accepted for compatibility (vault is not supported).").default("yes"),
        ],
    )
};

pub struct Script;

const SKIP: &str = "__FERRY_SKIP__";

/// The guard lines for creates/removes (they print a marker and exit 0).
fn guards(args: &Args) -> String {
    let mut s = String::new();
    if let Some(c) = args.str("creates") {
        s.push_str(&format!(
            "if [ -e {} ]; then printf {SKIP}C; exit 0; fi\n",
            sh_path(c)
        ));
    }
    if let Some(r) = args.str("removes") {
        s.push_str(&format!(
            "if [ ! -e {} ]; then printf {SKIP}R; exit 0; fi\n",
            sh_path(r)
        ));
    }
    s
}

fn skipped(stdout: &str, args: &Args) -> Option<Outcome> {
    let msg = if stdout.starts_with(&format!("{SKIP}C")) {
        format!(
            "{} exists, matching creates option",
            args.str("creates").unwrap_or_default()
        )
    } else if stdout.starts_with(&format!("{SKIP}R")) {
        format!(
            "{} does not exist, matching removes option",
            args.str("removes").unwrap_or_default()
        )
    } else {
        return None;
    };
    Some(
        Outcome {
            skipped: true,
            ..Outcome::ok()
        }
        .msg(msg),
    )
}

/// The remote script: receive on stdin, run, clean up, keep the script's rc.
pub fn runner(
    name: &str,
    argv: &[String],
    chdir: Option<&str>,
    executable: Option<&str>,
    guard: &str,
) -> String {
    let mut s = String::from(guard);
    s.push_str("d=$(mktemp -d 2>/dev/null || mktemp -d -t ferry.XXXXXXXX) || { echo 'cannot create a temporary directory' >&2; exit 125; }\n");
    s.push_str("trap 'rm -rf \"$d\"' EXIT\nchmod 700 \"$d\"\n");
    s.push_str(&format!("f=\"$d\"/{}\n", quote(name)));
    s.push_str("cat > \"$f\" || exit 125\nchmod 700 \"$f\"\n");
    if let Some(c) = chdir {
        s.push_str(&format!("cd {} || exit 1\n", sh_path(c)));
    }
    let run = match executable {
        // The interpreter may carry its own flags ("python3 -u"): split it like a command line.
        Some(e) => format!(
            "{} \"$f\"",
            shlex::split(e)
                .map(|w| join_argv(&w))
                .unwrap_or_else(|| quote(e))
        ),
        None => "\"$f\"".to_string(),
    };
    let args = if argv.is_empty() {
        String::new()
    } else {
        format!(" {}", join_argv(argv))
    };
    s.push_str(&format!(
        "{run}{args} </dev/null\nrc=$?\nrm -rf \"$d\"\nexit $rc\n"
    ));
    s
}

#[async_trait]
impl Module for Script {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let raw = args
            .str("_raw_params")
            .or_else(|| args.str("cmd"))
            .ok_or_else(|| ModError::fail("no script given"))?;
        let parts = shlex::split(raw.trim())
            .ok_or_else(|| ModError::fail(format!("could not parse script line: {raw}")))?;
        let (source, argv) = parts
            .split_first()
            .ok_or_else(|| ModError::fail("no script given"))?;
        if let Some(c) = args.str("chdir") {
            if !c.starts_with('/') && !c.starts_with('~') {
                return Err(ModError::fail(format!(
                    "chdir {c} must be an absolute path for a Unix-aware remote node"
                )));
            }
        }
        let local = ctx
            .find_file("files", source)
            .filter(|p| p.is_file())
            .ok_or_else(|| ModError::fail(format!("Could not find or access '{source}' (searched the role's files/, the role, the playbook dir)")))?;
        let data = std::fs::read(&local)
            .map_err(|e| ModError::fail(format!("{}: {e}", local.display())))?;
        let guard = guards(args);
        if ctx.check_mode {
            if guard.is_empty() {
                return Ok(Outcome {
                    skipped: true,
                    ..Outcome::ok()
                }
                .msg("Check mode is not supported for this task."));
            }
            let out = ctx.sh(&guard).await?;
            return Ok(skipped(&out.stdout_str(), args).unwrap_or_else(|| Outcome::changed(true)));
        }
        let name = Path::new(source)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "script".into());
        let s = runner(
            &name,
            argv,
            args.str("chdir"),
            args.str("executable"),
            &guard,
        );
        let out = ctx.sh_in(&s, Some(&data)).await?;
        let stdout = out.stdout_str();
        if let Some(o) = skipped(&stdout, args) {
            return Ok(o);
        }
        let stderr = out.stderr_str();
        let lines = |s: &str| s.lines().map(str::to_string).collect::<Vec<_>>();
        let mut o = Outcome::changed(true)
            .with("rc", out.rc)
            .with("stdout_lines", lines(&stdout))
            .with("stderr_lines", lines(&stderr))
            .with("stdout", stdout)
            .with("stderr", stderr);
        if out.rc != 0 {
            o.failed = true;
            o.msg = Some("non-zero return code".into());
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{field, TestEnv};
    use serde_json::json;

    #[tokio::test]
    async fn runs_local_scripts_remotely() {
        let env = TestEnv::new();
        env.write(
            "files/hello.sh",
            "#!/bin/sh\necho \"hello $1|$2\"\necho warn >&2\ntouch \"$3\"\n",
        );
        let marker = env.path("done");
        let args =
            json!({"_raw_params": format!("hello.sh 'a b' \"$HOME\" {marker}"), "creates": marker});

        // Check mode on a fresh target: would run, nothing done.
        let o = env.check(&Script, args.clone()).await;
        assert!(o.changed && !o.skipped);
        assert!(!env.pathbuf("done").exists());

        let o = env.ok(&Script, args.clone()).await;
        assert!(o.changed && !o.failed);
        assert_eq!(field(&o, "stdout"), "hello a b|$HOME\n");
        assert_eq!(field(&o, "stdout_lines"), &json!(["hello a b|$HOME"]));
        assert_eq!(field(&o, "stderr"), "warn\n");
        assert_eq!(field(&o, "rc"), 0);
        // Second run: skipped by creates.
        let o = env.ok(&Script, args).await;
        assert!(o.skipped && !o.changed);
        assert!(o.msg.unwrap().ends_with("exists, matching creates option"));

        // Interpreter, chdir and failure.
        env.write(
            "fail.py",
            "import os\nprint(os.getcwd())\nraise SystemExit(3)\n",
        );
        let o = env
            .ok(
                &Script,
                json!({"cmd": "fail.py", "executable": "python3", "chdir": "/"}),
            )
            .await;
        assert!(o.failed);
        assert_eq!(
            (field(&o, "rc"), field(&o, "stdout")),
            (&json!(3), &json!("/\n"))
        );
        // Without creates/removes check mode cannot tell: skipped.
        assert!(
            env.check(&Script, json!({"_raw_params": "fail.py"}))
                .await
                .skipped
        );
        assert!(env
            .run(&Script, json!({"_raw_params": "missing.sh"}))
            .await
            .unwrap_err()
            .to_string()
            .contains("Could not find"));
        // Nothing left behind in the temp dir.
        let tmp = std::env::var("TMPDIR").unwrap_or("/tmp".into());
        let left = std::fs::read_dir(&tmp)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("hello.sh").exists())
            .count();
        assert_eq!(left, 0);
    }
}
