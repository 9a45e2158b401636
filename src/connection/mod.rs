//! Connections: how commands reach a host. Modules only see this trait, so
//! local and SSH transports are interchangeable.

pub mod local;
pub mod recording;
pub mod shell;
pub mod ssh;

/// Opens a remote connection of the given kind (`ssh`) for a host.
pub async fn open(
    kind: &str,
    host: &str,
    vars: &crate::template::Scope,
    templar: &crate::template::Templar,
    cfg: &crate::engine::RunConfig,
) -> Result<std::sync::Arc<dyn Connection>, String> {
    match kind {
        "ssh" | "smart" | "paramiko" | "ansible.builtin.ssh" => {
            let get = |k: &str| vars.resolve(templar, k).ok().flatten();
            let timeout = Duration::from_secs(cfg.connection_timeout.unwrap_or(10));
            ssh::open(host, &get, timeout, cfg.host_key_checking).await
        }
        other => Err(format!(
            "connection type '{other}' is not supported (ssh, local)"
        )),
    }
}

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use async_trait::async_trait;

/// Commands run on hosts (any transport) and SSH channels opened, for the
/// end-of-run statistics (`FERRY_LOG=ferry::stats=info`) and the benchmark.
pub static REMOTE_COMMANDS: AtomicU64 = AtomicU64::new(0);
pub static SSH_CHANNELS: AtomicU64 = AtomicU64::new(0);

fn count(c: &AtomicU64) {
    c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

#[derive(Debug, Clone, Default)]
pub struct ExecOut {
    pub rc: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl ExecOut {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Privilege escalation settings for one command.
#[derive(Debug, Clone, PartialEq)]
pub struct Become {
    pub method: String,
    pub user: String,
    pub password: Option<String>,
    pub flags: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// The host cannot be reached (or the connection died): `unreachable`.
    #[error("{0}")]
    Unreachable(String),
    #[error("command timed out after {0:?}")]
    Timeout(Duration),
    /// Escalation failed (wrong or missing password).
    #[error("{0}")]
    Become(String),
    #[error("{0}")]
    Other(String),
}

/// Marker printed before the command when `sudo` accepted us; lets the prompt be told apart.
const BECOME_OK: &str = "FERRY-BECOME-OK";

/// User, primary group and umask of a remote shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub group: String,
    pub umask: u32,
}

impl Identity {
    /// From `id -un`, `id -gn` and `umask` output, space-separated.
    pub fn parse(s: &str) -> Option<Identity> {
        let mut f = s.split_whitespace();
        let (user, group, umask) = (f.next()?, f.next()?, f.next()?);
        Some(Identity {
            user: user.to_string(),
            group: group.to_string(),
            umask: u32::from_str_radix(umask, 8).ok()?,
        })
    }
}

/// What a command reads on its stdin: byte pieces in order, then a stream
/// (a file read while it is sent). Nothing at all: stdin is /dev/null.
#[derive(Default)]
pub struct Stdin<'a> {
    pub pieces: Vec<&'a [u8]>,
    pub tail: Option<&'a mut (dyn tokio::io::AsyncRead + Send + Unpin + 'static)>,
}

impl<'a> Stdin<'a> {
    pub fn bytes(pieces: &[&'a [u8]]) -> Stdin<'a> {
        Stdin {
            pieces: pieces.to_vec(),
            tail: None,
        }
    }

    pub fn is_none(&self) -> bool {
        self.pieces.is_empty() && self.tail.is_none()
    }

    /// Everything, read into memory (for connections that only record it).
    pub async fn collect(self) -> std::io::Result<Vec<u8>> {
        use tokio::io::AsyncReadExt;
        let mut all = self.pieces.concat();
        if let Some(t) = self.tail {
            t.read_to_end(&mut all).await?;
        }
        Ok(all)
    }
}

#[async_trait]
pub trait Connection: Send + Sync {
    /// Runs a shell command line (already quoted) on the host through `sh -c`.
    /// `stdin` is written in pieces and then streamed, so a password line and
    /// a large file are sent without being joined (or read whole) in memory.
    async fn exec_raw(
        &self,
        cmdline: &str,
        stdin: Stdin<'_>,
        timeout: Option<Duration>,
    ) -> Result<ExecOut, ConnError>;

    /// The user commands run as when not escalated (None: unknown).
    fn remote_user(&self) -> Option<&str> {
        None
    }

    /// Who commands run as under `escalate`, once a command has run there
    /// (None: not known yet, or the connection does not tell).
    fn identity(&self, _escalate: Option<&Become>) -> Option<Identity> {
        None
    }

    async fn close(&self) {}

    /// Stops commands still running on the host (Ctrl-C); best effort.
    async fn interrupt(&self) {}

    /// Makes a Unix socket of the host (e.g. `/var/run/docker.sock`) reachable
    /// on the controller; returns the local path. Local connections return it as is.
    async fn forward_unix(&self, remote: &str) -> Result<std::path::PathBuf, ConnError> {
        Ok(std::path::PathBuf::from(remote))
    }

    /// Runs a POSIX `sh` script, escalated when `become` is given. The password,
    /// if any, goes through stdin, never into an argument.
    async fn exec(
        &self,
        script: &str,
        stdin: Option<&[u8]>,
        escalate: Option<&Become>,
        timeout: Option<Duration>,
    ) -> Result<ExecOut, ConnError> {
        exec_oneshot(self, script, stdin, escalate, timeout).await
    }
}

/// The escalation a command needs: none when the connection already is the become user.
pub fn needed_become<'a>(
    escalate: Option<&'a Become>,
    remote_user: Option<&str>,
) -> Option<&'a Become> {
    escalate.filter(|b| Some(b.user.as_str()) != remote_user)
}

/// Runs a script as one command of its own (`sh -c`, or under `sudo`/`su`).
pub async fn exec_oneshot<C: Connection + ?Sized>(
    conn: &C,
    script: &str,
    stdin: Option<&[u8]>,
    escalate: Option<&Become>,
    timeout: Option<Duration>,
) -> Result<ExecOut, ConnError> {
    exec_input(
        conn,
        script,
        Stdin::bytes(stdin.as_slice()),
        escalate,
        timeout,
    )
    .await
}

/// [`exec_oneshot`] with any stdin, e.g. a file streamed as it is read.
pub async fn exec_input<C: Connection + ?Sized>(
    conn: &C,
    script: &str,
    stdin: Stdin<'_>,
    escalate: Option<&Become>,
    timeout: Option<Duration>,
) -> Result<ExecOut, ConnError> {
    let Some(b) = needed_become(escalate, conn.remote_user()) else {
        return conn
            .exec_raw(&format!("sh -c {}", quote(script)), stdin, timeout)
            .await;
    };
    let (cmd, password) = wrap_become(script, b);
    let mut input = Stdin {
        pieces: vec![password.as_slice()],
        tail: stdin.tail,
    };
    input.pieces.extend(stdin.pieces);
    input.pieces.retain(|p| !p.is_empty());
    let mut out = conn.exec_raw(&cmd, input, timeout).await?;
    strip_become_marker(&mut out, b)?;
    Ok(out)
}

/// Builds the escalated command line and what goes first on its stdin (the
/// password line, if any).
pub fn wrap_become(script: &str, b: &Become) -> (String, Vec<u8>) {
    let inner = format!("echo {BECOME_OK}; exec sh -c {}", quote(script));
    let mut input: Vec<u8> = Vec::new();
    let cmd = match b.method.as_str() {
        "su" => {
            if let Some(pw) = &b.password {
                input.extend_from_slice(pw.as_bytes());
                input.push(b'\n');
            }
            format!("su {} -s /bin/sh -c {}", quote(&b.user), quote(&inner))
        }
        _ => {
            let flags = if b.flags.is_empty() {
                "-H -S -n".to_string()
            } else {
                b.flags.clone()
            };
            match &b.password {
                Some(pw) => {
                    input.extend_from_slice(pw.as_bytes());
                    input.push(b'\n');
                    let flags = flags
                        .replace("-n", "")
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    format!(
                        "sudo {flags} -p '[sudo via ferry] password: ' -u {} sh -c {}",
                        quote(&b.user),
                        quote(&inner)
                    )
                }
                None => format!("sudo {flags} -u {} sh -c {}", quote(&b.user), quote(&inner)),
            }
        }
    };
    (cmd, input)
}

/// Writes the pieces of a command's stdin, then closes it. Errors are ignored:
/// a command that does not read its input closes the pipe early.
pub async fn feed<W: tokio::io::AsyncWrite + Unpin>(mut w: W, stdin: Stdin<'_>) {
    use tokio::io::AsyncWriteExt;
    for p in &stdin.pieces {
        if w.write_all(p).await.is_err() {
            return;
        }
    }
    if let Some(t) = stdin.tail {
        if tokio::io::copy(t, &mut w).await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

pub(crate) fn strip_become_marker(out: &mut ExecOut, b: &Become) -> Result<(), ConnError> {
    let marker = format!("{BECOME_OK}\n");
    if out.stdout.starts_with(marker.as_bytes()) {
        out.stdout.drain(..marker.len());
        // sudo's prompt goes to stderr before the marker: drop it.
        let err = out.stderr_str();
        if let Some(rest) = err.strip_prefix("[sudo via ferry] password: ") {
            out.stderr = rest.as_bytes().to_vec();
        }
        return Ok(());
    }
    let err = out.stderr_str();
    let msg = if err.contains("a password is required") || err.contains("a terminal is required") {
        format!("{} needs a password for this user: set ansible_become_password or use --ask-become-pass", b.method)
    } else if err.contains("incorrect password")
        || err.contains("Sorry, try again")
        || err.contains("Authentication failure")
    {
        format!("incorrect {} password", b.method)
    } else if err.contains("not in the sudoers") || err.contains("is not allowed to") {
        format!("the user may not run {}: {}", b.method, err.trim())
    } else if err.contains("not found") && err.contains(&b.method) {
        format!("{} is not installed on the host", b.method)
    } else {
        format!(
            "privilege escalation with {} failed (rc={}): {}",
            b.method,
            out.rc,
            err.trim()
        )
    };
    Err(ConnError::Become(msg))
}

/// POSIX shell quoting: the one place where arguments become shell words.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// Quotes an argv into a command line.
pub fn join_argv<S: AsRef<str>>(argv: &[S]) -> String {
    argv.iter()
        .map(|a| quote(a.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stdin pieces arrive in order, the become password line first; a command
    /// that never reads a large input does not block the caller.
    #[tokio::test]
    async fn stdin_pieces_in_order_and_password_first() {
        let local = local::Local::new();
        let out = local
            .exec_raw("cat", Stdin::bytes(&[b"abc".as_slice(), b"def"]), None)
            .await
            .unwrap();
        assert_eq!(out.stdout, b"abcdef");
        let big = vec![b'x'; 4 << 20];
        let out = local
            .exec_raw(
                "echo done",
                Stdin::bytes(&[big.as_slice()]),
                Some(Duration::from_secs(20)),
            )
            .await
            .unwrap();
        assert_eq!(out.stdout, b"done\n");

        let rec = recording::Recording::new();
        let b = Become {
            method: "sudo".into(),
            user: "postgres".into(),
            password: Some("pw".into()),
            flags: String::new(),
        };
        exec_oneshot(&rec, "cat", Some(b"data".as_slice()), Some(&b), None)
            .await
            .ok();
        // A streamed file goes after the password line too.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"file-body").unwrap();
        let mut f = tokio::fs::File::open(dir.path().join("f")).await.unwrap();
        let streamed = Stdin {
            pieces: Vec::new(),
            tail: Some(&mut f),
        };
        exec_input(&rec, "cat", streamed, Some(&b), None).await.ok();
        let stdins = rec.stdins.lock().unwrap().clone();
        assert_eq!(
            stdins,
            vec![Some(b"pw\ndata".to_vec()), Some(b"pw\nfile-body".to_vec())]
        );
        // Over a real pipe: pieces, then the stream.
        let mut f = tokio::fs::File::open(dir.path().join("f")).await.unwrap();
        let both = Stdin {
            pieces: vec![b"head:".as_slice()],
            tail: Some(&mut f),
        };
        let out = local.exec_raw("cat", both, None).await.unwrap();
        assert_eq!(out.stdout, b"head:file-body");
    }

    #[test]
    fn identity_from_id_and_umask() {
        let i = Identity::parse("deploy staff 0027").unwrap();
        assert_eq!(
            (i.user.as_str(), i.group.as_str(), i.umask),
            ("deploy", "staff", 0o027)
        );
        assert_eq!(Identity::parse("deploy staff"), None);
        assert_eq!(Identity::parse("deploy staff 0x9"), None);
    }

    #[test]
    fn quoting_round_trips_through_sh() {
        for s in [
            "plain",
            "a b",
            "it's",
            "$(rm -rf /)",
            "a\nb",
            "\"q\"",
            "",
            "*",
            "\\",
        ] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf %s {}", quote(s)))
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), s);
        }
    }
}
