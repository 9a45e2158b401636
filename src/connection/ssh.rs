//! SSH transport: one multiplexed OpenSSH master per host (the `openssh`
//! crate's native mux), reused by every command of the run.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use openssh::{KnownHosts, Session, SessionBuilder, Stdio};

use super::shell::{self, Shell, ShellError};
use super::{exec_oneshot, Become, ConnError, Connection, ExecOut};

/// One persistent shell and what can be known about it while it is busy.
struct ShellSlot {
    escalate: Option<Become>,
    shell: tokio::sync::Mutex<Option<Shell>>,
    /// The remote pid of the script running now (0: none), for kills.
    pid: std::sync::atomic::AtomicI64,
    /// Who the shell runs as, from its start.
    who: std::sync::OnceLock<super::Identity>,
}

/// How to reach a host, from Ansible's connection variables.
#[derive(Debug, Clone, Default)]
pub struct SshParams {
    pub host: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub key_file: Option<PathBuf>,
    /// `ansible_ssh_common_args` + `ansible_ssh_extra_args`, split like a shell.
    pub extra_args: Vec<String>,
    pub host_key_checking: bool,
    pub connect_timeout: Duration,
    pub retries: u32,
}

pub struct Ssh {
    session: Option<Arc<Session>>,
    user: Option<String>,
    /// Persistent shells, one per escalation (see `shell.rs`).
    shells: std::sync::Mutex<Vec<Arc<ShellSlot>>>,
    /// Cleared when a shell cannot start here: one-shot commands from then on.
    shells_ok: std::sync::atomic::AtomicBool,
    connect_timeout: Duration,
    /// Generated ssh_config (kept alive for the master's lifetime).
    _config: Option<tempfile_lite::TempFile>,
}

/// A tiny self-deleting temp file (no extra crate for one file).
mod tempfile_lite {
    use std::path::{Path, PathBuf};

    #[derive(Debug)]
    pub struct TempFile(PathBuf);

    impl TempFile {
        pub fn create(prefix: &str, contents: &str) -> std::io::Result<TempFile> {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let dir = std::env::temp_dir();
            for i in 0..100u32 {
                let p = dir.join(format!("{prefix}-{}-{}-{i}", std::process::id(), nanos()));
                match std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&p)
                {
                    Ok(mut f) => {
                        f.write_all(contents.as_bytes())?;
                        return Ok(TempFile(p));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => return Err(e),
                }
            }
            Err(std::io::Error::other("could not create a temporary file"))
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    fn nanos() -> u128 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

/// Turns `-F file`, `-o K=V`, `-o K V`, `-J jump` into ssh_config lines
/// (the builder has no generic option passthrough).
pub fn config_from_args(
    args: &[String],
    host_key_checking: bool,
) -> Result<Option<String>, String> {
    let mut lines: Vec<String> = Vec::new();
    let mut include: Option<String> = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let mut next = || {
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| format!("ssh option {a} needs a value"))
        };
        if a == "-F" {
            include = Some(next()?);
        } else if let Some(f) = a.strip_prefix("-F") {
            include = Some(f.to_string());
        } else if a == "-o" {
            lines.push(opt_line(&next()?));
        } else if let Some(o) = a.strip_prefix("-o") {
            lines.push(opt_line(o));
        } else if a == "-J" {
            lines.push(format!("ProxyJump {}", next()?));
        } else if a == "-C" {
            lines.push("Compression yes".into());
        } else if a == "-q" || a == "-v" || a == "-T" || a == "-tt" {
            // Output and tty flags do not apply to multiplexed commands.
        } else {
            return Err(format!("unsupported ssh argument {a:?} in ansible_ssh_common_args/extra_args (use -o Key=Value, -F, -J)"));
        }
        i += 1;
    }
    if !host_key_checking {
        lines.push("StrictHostKeyChecking no".into());
        lines.push("UserKnownHostsFile /dev/null".into());
    }
    if lines.is_empty() && include.is_none() {
        return Ok(None);
    }
    let mut cfg = lines.join("\n");
    cfg.push('\n');
    match include {
        Some(f) => {
            let abs = std::fs::canonicalize(&f).map_err(|e| format!("ssh config file {f}: {e}"))?;
            cfg.push_str(&format!("Include {}\n", abs.display()));
        }
        None => {
            if let Some(home) = std::env::var_os("HOME") {
                let user_cfg = PathBuf::from(home).join(".ssh/config");
                if user_cfg.is_file() {
                    cfg.push_str(&format!("Include {}\n", user_cfg.display()));
                }
            }
            cfg.push_str("Include /etc/ssh/ssh_config\n");
        }
    }
    Ok(Some(cfg))
}

fn opt_line(o: &str) -> String {
    match o.split_once('=') {
        Some((k, v)) => format!("{} {}", k.trim(), v.trim()),
        None => o.to_string(),
    }
}

impl Ssh {
    pub async fn connect(p: &SshParams) -> Result<Ssh, ConnError> {
        let config =
            config_from_args(&p.extra_args, p.host_key_checking).map_err(ConnError::Other)?;
        let config = match config {
            Some(c) => Some(
                tempfile_lite::TempFile::create("ferry-ssh-config", &c)
                    .map_err(|e| ConnError::Other(e.to_string()))?,
            ),
            None => None,
        };
        let mut b = SessionBuilder::default();
        b.known_hosts_check(if p.host_key_checking {
            KnownHosts::Strict
        } else {
            KnownHosts::Accept
        });
        b.connect_timeout(p.connect_timeout);
        b.server_alive_interval(Duration::from_secs(15));
        if let Some(u) = &p.user {
            b.user(u.clone());
        }
        if let Some(port) = p.port {
            b.port(port);
        }
        if let Some(k) = &p.key_file {
            b.keyfile(k);
        }
        if let Some(c) = &config {
            b.config_file(c.path());
        }
        let mut last = String::new();
        for attempt in 0..=p.retries {
            match b.connect_mux(&p.host).await {
                Ok(session) => {
                    return Ok(Ssh {
                        session: Some(Arc::new(session)),
                        user: p.user.clone(),
                        shells: Default::default(),
                        shells_ok: std::sync::atomic::AtomicBool::new(persistent_shell_enabled()),
                        connect_timeout: p.connect_timeout,
                        _config: config,
                    })
                }
                Err(e) => {
                    last = describe(&e);
                    tracing::debug!(host = %p.host, attempt, error = %last, "ssh connect failed");
                    if last.contains("Host key verification failed")
                        || last.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
                    {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(300 * (attempt as u64 + 1))).await;
                }
            }
        }
        if last.contains("Host key verification failed")
            || last.contains("IDENTIFICATION HAS CHANGED")
        {
            last.push_str(" (the host key is unknown or has changed: verify it and update known_hosts, or disable host_key_checking)");
        }
        Err(ConnError::Unreachable(format!(
            "Failed to connect to the host via ssh: {last}"
        )))
    }
}

/// `FERRY_PERSISTENT_SHELL=0` runs every command on a channel of its own (the
/// behaviour before the persistent shell; kept for comparison and as an escape hatch).
fn persistent_shell_enabled() -> bool {
    std::env::var("FERRY_PERSISTENT_SHELL").map_or(true, |v| v != "0")
}

impl Ssh {
    fn session(&self) -> Result<&Arc<Session>, ConnError> {
        self.session
            .as_ref()
            .ok_or_else(|| ConnError::Unreachable("connection closed".into()))
    }

    fn slot(&self, escalate: Option<&Become>) -> Arc<ShellSlot> {
        let mut slots = self.shells.lock().expect("shells lock");
        if let Some(s) = slots.iter().find(|s| s.escalate.as_ref() == escalate) {
            return s.clone();
        }
        let s = Arc::new(ShellSlot {
            escalate: escalate.cloned(),
            shell: tokio::sync::Mutex::new(None),
            pid: Default::default(),
            who: Default::default(),
        });
        slots.push(s.clone());
        s
    }

    async fn start_shell(&self, escalate: Option<&Become>) -> Result<Shell, ConnError> {
        let mut cmd =
            Session::arc_raw_command(self.session()?.clone(), shell::start_command(escalate));
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        super::count(&super::SSH_CHANNELS);
        let mut child = cmd.spawn().await.map_err(unreachable)?;
        let missing = || ConnError::Other("ssh: a pipe of the shell is missing".into());
        let pipes = shell::Pipes {
            stdin: Box::new(child.stdin().take().ok_or_else(missing)?),
            stdout: Box::new(child.stdout().take().ok_or_else(missing)?),
            stderr: Box::new(child.stderr().take().ok_or_else(missing)?),
            keep: Box::new(child),
        };
        Shell::start(
            pipes,
            escalate,
            self.connect_timeout + Duration::from_secs(20),
        )
        .await
    }

    /// Runs a script in the persistent shell for its escalation. `None`: the
    /// shell cannot take it (busy, too much stdin, could not start), so the caller
    /// runs it on a channel of its own.
    async fn exec_in_shell(
        &self,
        script: &str,
        stdin: Option<&[u8]>,
        escalate: Option<&Become>,
        timeout: Option<Duration>,
    ) -> Option<Result<ExecOut, ConnError>> {
        use std::sync::atomic::Ordering;
        if !self.shells_ok.load(Ordering::Relaxed)
            || !shell::supports(escalate)
            || stdin.is_some_and(|s| s.len() > shell::MAX_INLINE_STDIN)
        {
            return None;
        }
        let slot = self.slot(escalate);
        // Busy (a concurrent command on this host): do not queue behind it.
        let mut guard = slot.shell.try_lock().ok()?;
        if guard.is_none() {
            match self.start_shell(escalate).await {
                Ok(sh) => {
                    if let Some(w) = &sh.who {
                        let _ = slot.who.set(w.clone());
                    }
                    *guard = Some(sh)
                }
                Err(e @ (ConnError::Become(_) | ConnError::Unreachable(_))) => return Some(Err(e)),
                Err(e) => {
                    tracing::debug!(error = %e, "no persistent shell; one channel per command");
                    self.shells_ok.store(false, Ordering::Relaxed);
                    return None;
                }
            }
        }
        let sh = guard.as_mut()?;
        if stdin.is_some() && !sh.can_stdin {
            return None;
        }
        super::count(&super::REMOTE_COMMANDS);
        match sh.run(script, stdin, timeout, &slot.pid).await {
            Ok(out) => Some(Ok(out)),
            Err(ShellError::Broken(e)) => {
                *guard = None;
                Some(Err(e))
            }
            Err(ShellError::Timeout(t)) => {
                // The shell is still waiting for the script: stop it, start afresh next time.
                *guard = None;
                self.kill_remote(&slot).await;
                Some(Err(ConnError::Timeout(t)))
            }
        }
    }

    /// Kills the script running in a shell, on a channel of its own.
    async fn kill_remote(&self, slot: &ShellSlot) {
        let pid = slot.pid.swap(0, std::sync::atomic::Ordering::SeqCst);
        if pid > 0 {
            let res = exec_oneshot(
                self,
                &shell::kill_script(pid),
                None,
                slot.escalate.as_ref(),
                Some(self.connect_timeout),
            )
            .await;
            tracing::debug!(pid, ok = res.is_ok(), "killed a remote command");
        }
    }
}

fn describe(e: &openssh::Error) -> String {
    let mut s = e.to_string();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

#[async_trait]
impl Connection for Ssh {
    async fn exec_raw(
        &self,
        cmdline: &str,
        stdin: super::Stdin<'_>,
        timeout: Option<Duration>,
    ) -> Result<ExecOut, ConnError> {
        let session = self.session()?;
        super::count(&super::REMOTE_COMMANDS);
        super::count(&super::SSH_CHANNELS);
        let fut = async {
            let mut cmd = session.raw_command(cmdline);
            cmd.stdin(if stdin.is_none() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
            let mut child = cmd.spawn().await.map_err(unreachable)?;
            let pipe = child.stdin().take();
            // Stdin is fed while the output is read, so a large output cannot
            // deadlock us, and from the caller's buffer (no copy).
            let feeding = async {
                if let Some(w) = pipe {
                    super::feed(w, stdin).await
                }
            };
            let (_, out) = tokio::join!(feeding, child.wait_with_output());
            let out = out.map_err(unreachable)?;
            Ok(ExecOut {
                rc: out.status.code().unwrap_or(-1),
                stdout: out.stdout,
                stderr: out.stderr,
            })
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .map_err(|_| ConnError::Timeout(t))?,
            None => fut.await,
        }
    }

    async fn exec(
        &self,
        script: &str,
        stdin: Option<&[u8]>,
        escalate: Option<&Become>,
        timeout: Option<Duration>,
    ) -> Result<ExecOut, ConnError> {
        let esc = super::needed_become(escalate, self.remote_user());
        match self.exec_in_shell(script, stdin, esc, timeout).await {
            Some(res) => res,
            None => exec_oneshot(self, script, stdin, esc, timeout).await,
        }
    }

    async fn interrupt(&self) {
        let slots: Vec<Arc<ShellSlot>> = self.shells.lock().expect("shells lock").clone();
        for slot in slots {
            self.kill_remote(&slot).await;
        }
    }

    fn remote_user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    fn identity(&self, escalate: Option<&Become>) -> Option<super::Identity> {
        let esc = super::needed_become(escalate, self.remote_user());
        let slots = self.shells.lock().expect("shells lock");
        slots
            .iter()
            .find(|s| s.escalate.as_ref() == esc)
            .and_then(|s| s.who.get().cloned())
    }

    /// Forwards a Unix socket of the host through the master (`ssh -L local:remote`
    /// over the mux): the local end is `<tmp>/ferry-fwd-…/s.sock` in a fresh 0700
    /// directory, which the caller may delete when done.
    async fn forward_unix(&self, remote: &str) -> Result<PathBuf, ConnError> {
        use openssh::{ForwardType, Socket};
        use std::os::unix::fs::DirBuilderExt;
        static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let session = self.session()?;
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        // Short names: a socket path may not exceed ~107 bytes.
        let dir =
            std::env::temp_dir().join(format!("ferry-fwd-{}-{n}-{stamp:x}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| ConnError::Other(format!("{}: {e}", dir.display())))?;
        let local = dir.join("s.sock");
        let res = session
            .request_port_forward(
                ForwardType::Local,
                Socket::UnixSocket {
                    path: local.as_path().into(),
                },
                Socket::UnixSocket {
                    path: std::path::Path::new(remote).into(),
                },
            )
            .await;
        if let Err(e) = res {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(ConnError::Other(format!(
                "ssh: cannot forward {remote}: {}",
                describe(&e)
            )));
        }
        Ok(local)
    }

    async fn close(&self) {
        // Session::close takes ownership; dropping the master on drop is enough.
    }
}

fn unreachable(e: openssh::Error) -> ConnError {
    ConnError::Unreachable(format!("ssh: {}", describe(&e)))
}

/// Connection parameters from a host's variables (Ansible's names).
pub fn params_from_vars(
    host: &str,
    get: &(dyn Fn(&str) -> Option<serde_json::Value> + Sync),
    timeout: Duration,
) -> Result<SshParams, String> {
    let s = |k: &str| {
        get(k).and_then(|v| match v {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let mut extra = Vec::new();
    for k in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
        if let Some(a) = s(k) {
            extra.extend(shlex::split(&a).ok_or_else(|| format!("{k}: unbalanced quotes"))?);
        }
    }
    let hkc = get("ansible_host_key_checking")
        .or_else(|| get("ansible_ssh_host_key_checking"))
        .and_then(|v| crate::modules::to_bool(&v))
        .or_else(|| {
            std::env::var("ANSIBLE_HOST_KEY_CHECKING")
                .ok()
                .and_then(|v| crate::modules::to_bool(&serde_json::Value::String(v)))
        })
        .unwrap_or(true);
    Ok(SshParams {
        host: s("ansible_host")
            .or_else(|| s("ansible_ssh_host"))
            .unwrap_or_else(|| host.to_string()),
        port: s("ansible_port")
            .or_else(|| s("ansible_ssh_port"))
            .map(|p| p.parse().map_err(|_| format!("invalid ansible_port {p:?}")))
            .transpose()?,
        user: s("ansible_user").or_else(|| s("ansible_ssh_user")),
        key_file: s("ansible_ssh_private_key_file")
            .or_else(|| s("ansible_private_key_file"))
            .map(PathBuf::from),
        extra_args: extra,
        host_key_checking: hkc,
        connect_timeout: s("ansible_ssh_timeout")
            .or_else(|| s("ansible_timeout"))
            .and_then(|t| t.parse().ok())
            .map(Duration::from_secs)
            .unwrap_or(timeout),
        retries: s("ansible_ssh_retries")
            .and_then(|r| r.parse().ok())
            .unwrap_or(2),
    })
}

pub async fn open(
    host: &str,
    get: &(dyn Fn(&str) -> Option<serde_json::Value> + Sync),
    timeout: Duration,
    cfg_hkc: Option<bool>,
) -> Result<Arc<dyn Connection>, String> {
    let mut p = params_from_vars(host, get, timeout)?;
    // ansible.cfg is the weakest source: only when neither a variable nor the environment said.
    if let Some(false) = cfg_hkc {
        let said = get("ansible_host_key_checking")
            .or_else(|| get("ansible_ssh_host_key_checking"))
            .is_some()
            || std::env::var_os("ANSIBLE_HOST_KEY_CHECKING").is_some();
        if !said {
            p.host_key_checking = false;
        }
    }
    Ssh::connect(&p)
        .await
        .map(|s| Arc::new(s) as Arc<dyn Connection>)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_args_become_config() {
        let args: Vec<String> = [
            "-o",
            "ProxyCommand=nsenter --net=/run/netns/x socat - TCP:127.0.0.1:22",
            "-oServerAliveCountMax=3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cfg = config_from_args(&args, true).unwrap().unwrap();
        assert!(cfg.starts_with("ProxyCommand nsenter --net=/run/netns/x socat - TCP:127.0.0.1:22\nServerAliveCountMax 3\n"), "{cfg}");
        assert!(config_from_args(&["-X".to_string()], true).is_err());
        assert!(config_from_args(&[], true).unwrap().is_none());
        assert!(config_from_args(&[], false)
            .unwrap()
            .unwrap()
            .contains("StrictHostKeyChecking no"));
    }
}
