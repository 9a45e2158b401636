//! Local connection: commands run on the controller (`connection: local`).

use std::process::Stdio;
use std::time::Duration;

use async_trait::async_trait;

use super::{ConnError, Connection, ExecOut};

pub struct Local {
    user: Option<String>,
}

impl Default for Local {
    fn default() -> Self {
        Self::new()
    }
}

impl Local {
    pub fn new() -> Local {
        let user = std::env::var("USER").ok().or_else(|| {
            std::process::Command::new("id")
                .arg("-un")
                .output()
                .ok()
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        });
        Local { user }
    }
}

#[async_trait]
impl Connection for Local {
    async fn exec_raw(
        &self,
        cmdline: &str,
        stdin: super::Stdin<'_>,
        timeout: Option<Duration>,
    ) -> Result<ExecOut, ConnError> {
        super::count(&super::REMOTE_COMMANDS);
        let mut cmd = tokio::process::Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(cmdline)
            .stdin(if stdin.is_none() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .map_err(|e| ConnError::Other(format!("cannot run /bin/sh: {e}")))?;
        let pipe = child.stdin.take();
        // Fed while the output is read: a command that does not read its
        // stdin, or writes much, cannot block us.
        let feeding = async {
            if let Some(w) = pipe {
                super::feed(w, stdin).await
            }
        };
        let fut = async { tokio::join!(feeding, child.wait_with_output()).1 };
        let out = match timeout {
            Some(t) => tokio::time::timeout(t, fut)
                .await
                .map_err(|_| ConnError::Timeout(t))?,
            None => fut.await,
        }
        .map_err(|e| ConnError::Other(e.to_string()))?;
        Ok(ExecOut {
            rc: out.status.code().unwrap_or(-1),
            stdout: out.stdout,
            stderr: out.stderr,
        })
    }

    fn remote_user(&self) -> Option<&str> {
        self.user.as_deref()
    }
}
