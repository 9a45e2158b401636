//! A persistent remote shell: one SSH channel per host (and escalation) that runs
//! every command of the run, so a task costs one round trip instead of a channel
//! set-up, a PAM session, a login shell and a `sudo` (about 40 ms each on loopback,
//! against about 2 ms here).
//!
//! The remote end is a plain POSIX `sh` reading requests from its stdin. Each
//! request runs the script in its own session (`setsid`, so a kill reaches
//! everything it started) with its stdin from a file (data travels base64-encoded
//! in a here-document, so binary is safe) or `/dev/null`. The script's shell first
//! reports its pid; its stdout and stderr then flow straight down the channel's two
//! streams, each ended by a marker line that holds a random key sent only in the
//! request (never in a process argument), with the exit code on stdout's marker.
//! Nothing is forked per request but the script itself. Lines before a request's
//! pid line (output of a daemon an earlier script left behind) are dropped.
//! The shell's private 0700 temp directory carries its pid; a shell that died
//! without cleaning up (killed host, SIGKILL) has it removed by the next shell.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::{quote, strip_become_marker, Become, ConnError, ExecOut, Identity, BECOME_OK};

/// Requests with more stdin than this go through a channel of their own: the
/// remote shell holds a here-document in memory.
pub const MAX_INLINE_STDIN: usize = 256 * 1024;

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// The three pipes of a remote process, plus whatever keeps it alive.
pub struct Pipes {
    pub stdin: Writer,
    pub stdout: Reader,
    pub stderr: Reader,
    pub keep: Box<dyn std::any::Any + Send>,
}

pub struct Shell {
    stdin: Writer,
    stdout: Stream,
    stderr: ErrStream,
    _keep: Box<dyn std::any::Any + Send>,
    tag: String,
    /// Goes into end markers; unlike `tag`, never in a process argument.
    key: String,
    seq: u64,
    /// `base64` exists on the host (needed to pass stdin).
    pub can_stdin: bool,
    /// Who the shell runs as (None: `id` did not answer).
    pub who: Option<Identity>,
}

/// Why a request did not run in the shell.
#[derive(Debug)]
pub enum ShellError {
    /// The shell is gone or out of step; the connection error says why.
    Broken(ConnError),
    /// The command ran out of time; the caller kills the pid's session.
    Timeout(Duration),
}

impl Shell {
    /// Starts the shell on `pipes` (a process running `sh`, or the escalation
    /// command from [`start_command`]). With `become`, waits for sudo's marker and
    /// answers its prompt with the password, written only when asked for.
    pub async fn start(
        pipes: Pipes,
        escalate: Option<&Become>,
        deadline: Duration,
    ) -> Result<Shell, ConnError> {
        let Pipes {
            mut stdin,
            stdout,
            stderr,
            keep,
        } = pipes;
        let mut stdout = Stream {
            r: stdout,
            buf: Vec::new(),
        };
        let (err_tx, mut err_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        // stderr is read for the whole life of the shell: sudo's prompt, then scripts' stderr.
        tokio::spawn(drain(stderr, err_tx));
        let tag = nonce();
        let fut = async {
            if let Some(b) = escalate {
                let mut err_all = Vec::new();
                let mut prompts = 0;
                let mut err_open = true;
                let marker = format!("{BECOME_OK}\n");
                loop {
                    tokio::select! {
                        line = stdout.read_line() => match line {
                            Ok(l) if l == marker.as_bytes() => break,
                            // EOF or an unexpected line: escalation failed.
                            Ok(l) => return Err(become_failure(&mut stdin, &mut err_rx, l, err_all, b).await),
                            Err(_) => return Err(become_failure(&mut stdin, &mut err_rx, Vec::new(), err_all, b).await),
                        },
                        chunk = err_rx.recv(), if err_open => match chunk {
                            Some(c) => {
                                err_all.extend_from_slice(&c);
                                let text = String::from_utf8_lossy(&err_all);
                                let now = text.matches(PROMPT).count();
                                if now > prompts {
                                    prompts = now;
                                    match (&b.password, prompts) {
                                        (Some(pw), 1) => {
                                            let mut line = pw.as_bytes().to_vec();
                                            line.push(b'\n');
                                            stdin.write_all(&line).await.map_err(io_unreachable)?;
                                            stdin.flush().await.map_err(io_unreachable)?;
                                        }
                                        // Asked again: the password was wrong.
                                        _ => return Err(become_failure(&mut stdin, &mut err_rx, Vec::new(), err_all, b).await),
                                    }
                                }
                            }
                            None => err_open = false,
                        },
                    }
                }
            }
            let init = format!(
                "for __o in \"${{TMPDIR:-/tmp}}\"/.ferry-sh.*; do __p=${{__o##*/.ferry-sh.}}; __p=${{__p%%.*}}; \
                 case $__p in ''|*[!0-9]*) continue;; esac; [ -d /proc/$__p ] || rm -rf -- \"$__o\"; done; \
                 __t=$(mktemp -d \"${{TMPDIR:-/tmp}}/.ferry-sh.$$.XXXXXXXX\") && trap 'rm -rf \"$__t\"' EXIT && \
                 trap 'rm -rf \"$__t\"; exit 129' HUP INT TERM PIPE && \
                 {{ if setsid true 2>/dev/null; then __s=setsid; else __s=; fi; \
                 if command -v base64 >/dev/null 2>&1; then __b=1; else __b=0; fi; \
                 echo \"FERRY-READY-{tag} $__b $(id -un) $(id -gn) $(umask)\"; }} || echo \"FERRY-FAIL-{tag}\"\n"
            );
            stdin
                .write_all(init.as_bytes())
                .await
                .map_err(io_unreachable)?;
            stdin.flush().await.map_err(io_unreachable)?;
            let line = stdout.read_line().await.map_err(io_unreachable)?;
            let line = String::from_utf8_lossy(&line);
            let ready = format!("FERRY-READY-{tag} ");
            match line.strip_prefix(&ready) {
                // `$__b user group umask`; the identity lets modules skip asking for it.
                Some(rest) => {
                    let (b, who) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
                    Ok((b == "1", Identity::parse(who)))
                }
                None => Err(ConnError::Other(format!(
                    "the remote shell did not start: {}",
                    line.trim()
                ))),
            }
        };
        let (can_stdin, who) = tokio::time::timeout(deadline, fut)
            .await
            .map_err(|_| ConnError::Timeout(deadline))??;
        Ok(Shell {
            stdin,
            stdout,
            stderr: ErrStream {
                rx: err_rx,
                buf: Vec::new(),
            },
            _keep: keep,
            tag,
            key: nonce(),
            seq: 0,
            can_stdin,
            who,
        })
    }

    /// Runs one script. The remote pid (leader of the script's session) is stored
    /// in `pid` while it runs, so another task can kill it (timeout, Ctrl-C).
    pub async fn run(
        &mut self,
        script: &str,
        stdin: Option<&[u8]>,
        timeout: Option<Duration>,
        pid: &AtomicI64,
    ) -> Result<ExecOut, ShellError> {
        self.seq += 1;
        let tag = format!("{}-{}", self.tag, self.seq);
        let key = format!("{}-{}", self.key, self.seq);
        let req = request(&tag, &key, script, stdin);
        let fut = async {
            self.stdin.write_all(req.as_bytes()).await?;
            self.stdin.flush().await?;
            let want = format!("FERRY-PID-{tag} ");
            let p: i64 = loop {
                let line = self.stdout.read_line().await?;
                if let Some(rest) = line.strip_prefix(want.as_bytes()) {
                    break String::from_utf8_lossy(rest)
                        .trim()
                        .parse()
                        .map_err(|_| out_of_step(&line))?;
                }
                tracing::debug!(line = %String::from_utf8_lossy(&line).trim_end(), "dropped stray output of an earlier command");
            };
            pid.store(p, Ordering::SeqCst);
            let stdout = self
                .stdout
                .read_until(format!("\nFERRY-END-{key} ").as_bytes())
                .await?;
            let line = self.stdout.read_line().await?;
            pid.store(0, Ordering::SeqCst);
            let rc: i32 = String::from_utf8_lossy(&line)
                .trim()
                .parse()
                .map_err(|_| out_of_step(&line))?;
            let stderr = self
                .stderr
                .read_until(format!("\nFERRY-END-{key}\n").as_bytes())
                .await?;
            Ok::<_, std::io::Error>(ExecOut { rc, stdout, stderr })
        };
        let res = match timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .map_err(|_| ShellError::Timeout(t))?,
            None => fut.await,
        };
        res.map_err(|e| ShellError::Broken(io_unreachable(e)))
    }
}

/// The command that starts the shell: `sh`, or `sh` under sudo behind the marker.
pub fn start_command(escalate: Option<&Become>) -> String {
    match escalate {
        None => "exec sh".to_string(),
        Some(b) => super::wrap_become("exec sh", b).0,
    }
}

/// Escalation methods the shell can start under (`su` has no prompt we can wait for).
pub fn supports(escalate: Option<&Become>) -> bool {
    escalate.is_none_or(|b| b.method == "sudo")
}

/// Kills the session of a script started by [`Shell::run`]: TERM to its process
/// group, KILL two seconds later if anything is left.
pub fn kill_script(pid: i64) -> String {
    format!(
        "kill -TERM -{pid} 2>/dev/null || kill -TERM {pid} 2>/dev/null; \
         (sleep 2; kill -KILL -{pid}) >/dev/null 2>&1 </dev/null & exit 0"
    )
}

const PROMPT: &str = "[sudo via ferry] password: ";

fn request(tag: &str, key: &str, script: &str, stdin: Option<&[u8]>) -> String {
    let mut r = String::new();
    let input = match stdin {
        Some(data) => {
            use base64::Engine;
            let enc = base64::engine::general_purpose::STANDARD.encode(data);
            r.push_str(&format!("base64 -d >\"$__t/i\" <<'FERRY-DATA-{tag}'\n"));
            for chunk in enc.as_bytes().chunks(76) {
                r.push_str(std::str::from_utf8(chunk).unwrap_or_default());
                r.push('\n');
            }
            r.push_str(&format!("FERRY-DATA-{tag}\n"));
            "\"$__t/i\""
        }
        None => "/dev/null",
    };
    // The script's shell reports its pid on fd 3 (a copy of the channel) and closes
    // it; `eval` runs the script in that same shell (one exec fewer than `sh -c`).
    r.push_str(&format!(
        "$__s sh -c 'echo \"FERRY-PID-{tag} $$\" >&3; exec 3>&-; eval \"$1\"' sh {} 3>&1 <{input}; \
         __rc=$?; printf '\\nFERRY-END-{key} %d\\n' \"$__rc\"; printf '\\nFERRY-END-{key}\\n' >&2{}\n",
        quote(script),
        if stdin.is_some() { "; rm -f \"$__t/i\"" } else { "" }
    ));
    r
}

/// The channel's stdout, read up to markers; what follows a marker stays buffered.
struct Stream {
    r: Reader,
    buf: Vec<u8>,
}

impl Stream {
    /// The bytes before `marker` (consumed too). Cancel-safe: bytes read so far stay in `buf`.
    async fn read_until(&mut self, marker: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut from = 0;
        loop {
            if let Some(out) = take_until(&mut self.buf, &mut from, marker) {
                return Ok(out);
            }
            let mut chunk = [0u8; 16384];
            let n = self.r.read(&mut chunk).await?;
            if n == 0 {
                return Err(closed());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// One line, with its newline.
    async fn read_line(&mut self) -> std::io::Result<Vec<u8>> {
        let mut line = self.read_until(b"\n").await?;
        line.push(b'\n');
        Ok(line)
    }
}

/// The channel's stderr, as chunks from the task that drains it.
struct ErrStream {
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    buf: Vec<u8>,
}

impl ErrStream {
    async fn read_until(&mut self, marker: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut from = 0;
        loop {
            if let Some(out) = take_until(&mut self.buf, &mut from, marker) {
                return Ok(out);
            }
            match self.rx.recv().await {
                Some(c) => self.buf.extend_from_slice(&c),
                None => return Err(closed()),
            }
        }
    }
}

/// Takes the bytes before `marker` out of `buf` (dropping the marker), or notes in
/// `from` where the next search may start (a marker may straddle two reads).
fn take_until(buf: &mut Vec<u8>, from: &mut usize, marker: &[u8]) -> Option<Vec<u8>> {
    match buf[*from..].windows(marker.len()).position(|w| w == marker) {
        Some(i) => {
            let at = *from + i;
            let out = buf[..at].to_vec();
            buf.drain(..at + marker.len());
            Some(out)
        }
        None => {
            *from = buf.len().saturating_sub(marker.len());
            None
        }
    }
}

fn closed() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the remote shell closed the connection",
    )
}

fn out_of_step(line: &[u8]) -> std::io::Error {
    std::io::Error::other(format!(
        "the remote shell answered out of step: {:?}",
        String::from_utf8_lossy(line).trim()
    ))
}

async fn drain(mut r: Reader, tx: mpsc::UnboundedSender<Vec<u8>>) {
    let mut buf = vec![0; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        if tx.send(buf[..n].to_vec()).is_err() {
            break;
        }
    }
}

/// Closes sudo's stdin, collects what it said, and words the failure like the
/// one-shot path does.
async fn become_failure(
    stdin: &mut Writer,
    err_rx: &mut mpsc::UnboundedReceiver<Vec<u8>>,
    stdout: Vec<u8>,
    mut stderr: Vec<u8>,
    b: &Become,
) -> ConnError {
    let _ = stdin.shutdown().await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(c) = err_rx.recv().await {
            stderr.extend_from_slice(&c);
        }
    })
    .await;
    let mut out = ExecOut {
        rc: 1,
        stdout,
        stderr,
    };
    match strip_become_marker(&mut out, b) {
        Err(e) => e,
        Ok(()) => ConnError::Become(format!(
            "privilege escalation with {} failed: {}",
            b.method,
            out.stderr_str().trim()
        )),
    }
}

fn io_unreachable(e: std::io::Error) -> ConnError {
    ConnError::Unreachable(format!("ssh: {e}"))
}

fn nonce() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    format!("{:016x}", h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Stdio;

    /// The protocol against a local `sh`: the same bytes as over SSH.
    async fn local_shell() -> Shell {
        let mut child = tokio::process::Command::new("sh")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pipes = Pipes {
            stdin: Box::new(child.stdin.take().unwrap()),
            stdout: Box::new(child.stdout.take().unwrap()),
            stderr: Box::new(child.stderr.take().unwrap()),
            keep: Box::new(child),
        };
        Shell::start(pipes, None, Duration::from_secs(10))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn runs_scripts_with_separate_outputs_codes_and_binary_stdin() {
        let mut sh = local_shell().await;
        assert!(sh.can_stdin);
        let pid = AtomicI64::new(0);
        let out = sh
            .run("echo out; echo err >&2; exit 3", None, None, &pid)
            .await
            .unwrap();
        assert_eq!(
            (out.rc, out.stdout_str(), out.stderr_str()),
            (3, "out\n".into(), "err\n".into())
        );
        // Binary stdin and output that looks like framing come back byte for byte.
        let data: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let out = sh
            .run(
                "cat; printf 'FERRY-END-x 0 0 0\\n'",
                Some(&data),
                None,
                &pid,
            )
            .await
            .unwrap();
        assert_eq!(&out.stdout[..data.len()], &data[..]);
        assert_eq!(&out.stdout[data.len()..], b"FERRY-END-x 0 0 0\n");
        // A script that reads stdin without being given any sees EOF, not the protocol.
        let out = sh.run("cat; echo done", None, None, &pid).await.unwrap();
        assert_eq!(out.stdout_str(), "done\n");
        // Quotes, $() and newlines in the script are not expanded by the outer shell.
        let out = sh
            .run(
                "x='$(echo no)'; printf '%s\\n' \"$x\" 'a\nb'",
                None,
                None,
                &pid,
            )
            .await
            .unwrap();
        assert_eq!(out.stdout_str(), "$(echo no)\na\nb\n");
        assert_eq!(pid.load(Ordering::SeqCst), 0);
        // Output with no final newline, and none at all.
        let out = sh
            .run("printf abc; printf e >&2", None, None, &pid)
            .await
            .unwrap();
        assert_eq!(
            (out.stdout_str(), out.stderr_str()),
            ("abc".into(), "e".into())
        );
        let out = sh.run("true", None, None, &pid).await.unwrap();
        assert_eq!((out.rc, out.stdout.len(), out.stderr.len()), (0, 0, 0));
        // A daemon left behind by one script does not leak into the next one's result.
        sh.run(
            "(sleep 0.3; echo stray; echo stray >&2) &",
            None,
            None,
            &pid,
        )
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        let out = sh.run("echo next", None, None, &pid).await.unwrap();
        assert_eq!(out.stdout_str(), "next\n");
    }

    #[tokio::test]
    async fn a_timed_out_script_leaves_its_pid_to_kill() {
        let mut sh = local_shell().await;
        let pid = AtomicI64::new(0);
        let err = sh
            .run("sleep 30", None, Some(Duration::from_millis(300)), &pid)
            .await
            .unwrap_err();
        assert!(matches!(err, ShellError::Timeout(_)), "{err:?}");
        let p = pid.load(Ordering::SeqCst);
        assert!(p > 0);
        let st = std::process::Command::new("sh")
            .arg("-c")
            .arg(kill_script(p))
            .status()
            .unwrap();
        assert!(st.success());
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !std::path::Path::new(&format!("/proc/{p}")).exists() || {
                // A zombie until the shell reaps it is fine; a sleeping process is not.
                std::fs::read_to_string(format!("/proc/{p}/stat"))
                    .map(|s| s.contains(") Z "))
                    .unwrap_or(true)
            }
        );
    }
}
