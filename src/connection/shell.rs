//! A persistent remote shell: one SSH channel per host (and escalation) that runs
//! every command of the run, so a task costs one round trip instead of a channel
//! set-up, a PAM session, a login shell and a `sudo` (about 40 ms each on loopback,
//! against about 2 ms here).
//!
//! The remote end is a plain POSIX `sh` reading requests from its stdin. Each
//! request runs the script in its own session (`setsid sh -c`), its stdin from a
//! file (data travels base64-encoded in a here-document, so binary is safe) and its
//! stdout/stderr into files of a private 0700 directory; the shell then prints a
//! framed reply: the pid, then `rc`, the two lengths, and the two outputs.
//! Nothing the script prints can reach the channel, so the framing cannot be forged.
//! The directory carries the shell's pid; a shell that died without cleaning up
//! (killed host, SIGKILL) has its directory removed by the next shell that starts.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use super::{quote, strip_become_marker, Become, ConnError, ExecOut, BECOME_OK};

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
    stdout: BufReader<Reader>,
    _keep: Box<dyn std::any::Any + Send>,
    tag: String,
    seq: u64,
    /// `base64` exists on the host (needed to pass stdin).
    pub can_stdin: bool,
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
        let mut stdout = BufReader::new(stdout);
        let (err_tx, mut err_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        // stderr is drained for the whole life of the shell (nothing should come).
        tokio::spawn(drain(stderr, err_tx));
        let tag = nonce();
        let fut = async {
            if let Some(b) = escalate {
                let mut seen = Vec::new();
                let mut err_all = Vec::new();
                let mut prompts = 0;
                let mut err_open = true;
                let marker = format!("{BECOME_OK}\n");
                loop {
                    tokio::select! {
                        r = stdout.read_until(b'\n', &mut seen) => {
                            let n = r.map_err(io_unreachable)?;
                            if seen.as_slice() == marker.as_bytes() {
                                break;
                            }
                            if n == 0 || seen.ends_with(b"\n") {
                                // EOF or an unexpected line: escalation failed.
                                return Err(become_failure(&mut stdin, &mut err_rx, seen, err_all, b).await);
                            }
                        }
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
                                        _ => return Err(become_failure(&mut stdin, &mut err_rx, seen, err_all, b).await),
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
                 echo \"FERRY-READY-{tag} $__b\"; }} || echo \"FERRY-FAIL-{tag}\"\n"
            );
            stdin
                .write_all(init.as_bytes())
                .await
                .map_err(io_unreachable)?;
            stdin.flush().await.map_err(io_unreachable)?;
            let line = read_line(&mut stdout).await.map_err(io_unreachable)?;
            let ready = format!("FERRY-READY-{tag} ");
            match line.strip_prefix(&ready) {
                Some(b) => Ok(b.trim() == "1"),
                None => Err(ConnError::Other(format!(
                    "the remote shell did not start: {}",
                    line.trim()
                ))),
            }
        };
        let can_stdin = tokio::time::timeout(deadline, fut)
            .await
            .map_err(|_| ConnError::Timeout(deadline))??;
        Ok(Shell {
            stdin,
            stdout,
            _keep: keep,
            tag,
            seq: 0,
            can_stdin,
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
        let req = request(&tag, script, stdin);
        let fut = async {
            self.stdin.write_all(req.as_bytes()).await?;
            self.stdin.flush().await?;
            let line = read_line(&mut self.stdout).await?;
            let p: i64 = line
                .strip_prefix(&format!("FERRY-PID-{tag} "))
                .and_then(|p| p.trim().parse().ok())
                .ok_or_else(|| out_of_step(&line))?;
            pid.store(p, Ordering::SeqCst);
            let line = read_line(&mut self.stdout).await?;
            pid.store(0, Ordering::SeqCst);
            let nums: Vec<i64> = line
                .strip_prefix(&format!("FERRY-END-{tag} "))
                .map(|r| {
                    r.split_whitespace()
                        .filter_map(|n| n.parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            let [rc, olen, elen] = nums[..] else {
                return Err(out_of_step(&line));
            };
            let mut stdout = vec![0; olen.max(0) as usize];
            self.stdout.read_exact(&mut stdout).await?;
            let mut stderr = vec![0; elen.max(0) as usize];
            self.stdout.read_exact(&mut stderr).await?;
            Ok::<_, std::io::Error>(ExecOut {
                rc: rc as i32,
                stdout,
                stderr,
            })
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
        Some(b) => super::wrap_become("exec sh", b, None).0,
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

fn request(tag: &str, script: &str, stdin: Option<&[u8]>) -> String {
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
    r.push_str(&format!(
        "$__s sh -c {} <{input} >\"$__t/o\" 2>\"$__t/e\" & __p=$!; echo \"FERRY-PID-{tag} $__p\"; \
         wait $__p; __rc=$?; rm -f \"$__t/i\"; \
         echo \"FERRY-END-{tag} $__rc $(wc -c <\"$__t/o\") $(wc -c <\"$__t/e\")\"; cat \"$__t/o\" \"$__t/e\"\n",
        quote(script)
    ));
    r
}

async fn read_line(r: &mut BufReader<Reader>) -> std::io::Result<String> {
    let mut buf = Vec::new();
    let n = r.read_until(b'\n', &mut buf).await?;
    if n == 0 || !buf.ends_with(b"\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the remote shell closed the connection",
        ));
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

fn out_of_step(line: &str) -> std::io::Error {
    std::io::Error::other(format!(
        "the remote shell answered out of step: {:?}",
        line.trim()
    ))
}

async fn drain(mut r: Reader, tx: mpsc::UnboundedSender<Vec<u8>>) {
    let mut buf = vec![0; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        // Once the shell runs nobody listens: keep draining, drop the bytes.
        let _ = tx.send(buf[..n].to_vec());
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
