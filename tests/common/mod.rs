//! A small fluent harness: a temp project dir, the built `ferry` binary, and
//! assertions on exit code, recap and files.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Project {
    pub dir: tempfile::TempDir,
}

pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file (creating parent directories); returns self for chaining.
    pub fn file(&self, rel: &str, text: &str) -> &Self {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        self
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
    }

    pub fn ferry(&self, args: &[&str]) -> Out {
        self.ferry_env(args, &[])
    }

    /// `ferry` with extra environment variables.
    pub fn ferry_env(&self, args: &[&str], env: &[(&str, &str)]) -> Out {
        let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("FERRY_INVENTORY")
            .envs(env.iter().copied())
            .output()
            .expect("run ferry");
        Out {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `ferry playbook` with extra args.
    pub fn playbook(&self, book: &str, extra: &[&str]) -> Out {
        let mut args = vec!["playbook", book];
        args.extend_from_slice(extra);
        self.ferry(&args)
    }
}

/// Counters of one host's PLAY RECAP line.
#[derive(Debug, Default, PartialEq)]
pub struct Recap {
    pub ok: u32,
    pub changed: u32,
    pub unreachable: u32,
    pub failed: u32,
    pub skipped: u32,
    pub rescued: u32,
    pub ignored: u32,
}

impl Out {
    pub fn recap(&self, host: &str) -> Recap {
        let line = self
            .stdout
            .lines()
            .rev()
            .find(|l| l.split_whitespace().next() == Some(host) && l.contains("ok="))
            .unwrap_or_else(|| {
                panic!(
                    "no recap line for {host} in:\n{}\n{}",
                    self.stdout, self.stderr
                )
            });
        let get = |k: &str| -> u32 {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{k}=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Recap {
            ok: get("ok"),
            changed: get("changed"),
            unreachable: get("unreachable"),
            failed: get("failed"),
            skipped: get("skipped"),
            rescued: get("rescued"),
            ignored: get("ignored"),
        }
    }

    /// Remote commands the run sent (its `ferry::stats` line; run with
    /// `FERRY_LOG=ferry::stats=info`).
    #[track_caller]
    pub fn remote_commands(&self) -> u32 {
        self.stderr
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("remote_commands="))
            .next_back()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no remote_commands= in stderr:\n{}", self.stderr))
    }

    #[track_caller]
    pub fn success(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "exit code {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code {}\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn contains(&self, s: &str) -> &Self {
        assert!(
            self.stdout.contains(s) || self.stderr.contains(s),
            "{s:?} not in output:\n{}\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// A snapshot of every file under a directory (path, mode, contents) to prove
/// that `--check` changed nothing.
pub fn snapshot(dir: &Path) -> Vec<(String, u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    fn walk(d: &Path, out: &mut Vec<(String, u32, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        let mut entries: Vec<_> = rd.filter_map(|e| e.ok()).map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            let meta = std::fs::symlink_metadata(&p).unwrap();
            let data = if meta.is_file() {
                std::fs::read(&p).unwrap()
            } else {
                Vec::new()
            };
            out.push((
                p.to_string_lossy().into_owned(),
                meta.permissions().mode(),
                data,
            ));
            if meta.is_dir() {
                walk(&p, out);
            }
        }
    }
    walk(dir, &mut out);
    out
}

/// The test hosts' state dir when they are up (`tests/hosts/lab up 4`). Without them
/// the test is skipped, unless FERRY_REQUIRE_LAB is set (as `tests/run` does).
pub fn lab() -> Option<PathBuf> {
    let dir =
        PathBuf::from(std::env::var("FERRY_LAB_DIR").unwrap_or_else(|_| "/tmp/ferry-lab".into()));
    let ok = dir.join("hosts.ini").is_file() && ssh_status(&dir, "lab-1", "true") == 0;
    if ok {
        return Some(dir);
    }
    if std::env::var_os("FERRY_REQUIRE_LAB").is_some() {
        panic!(
            "test hosts are required but not up in {} (run tests/hosts/lab up 4)",
            dir.display()
        );
    }
    eprintln!(
        "skipping: no test hosts in {} (tests/run starts them)",
        dir.display()
    );
    None
}

/// Exit status of a command run over the lab's ssh_config (`host` may be `root@lab-1`).
pub fn ssh_status(dir: &Path, host: &str, cmd: &str) -> i32 {
    Command::new("ssh")
        .args([
            "-F",
            &dir.join("ssh_config").to_string_lossy(),
            "-o",
            "BatchMode=yes",
            host,
            cmd,
        ])
        .output()
        .map(|o| o.status.code().unwrap_or(-1))
        .unwrap_or(-1)
}

/// Runs a command on a host as root (through the lab's ssh_config); returns stdout.
pub fn on_host(dir: &Path, host: &str, cmd: &str) -> String {
    let out = Command::new("ssh")
        .args([
            "-F",
            &dir.join("ssh_config").to_string_lossy(),
            "-o",
            "BatchMode=yes",
            &format!("root@{host}"),
            cmd,
        ])
        .output()
        .expect("ssh");
    String::from_utf8_lossy(&out.stdout).into_owned()
}
