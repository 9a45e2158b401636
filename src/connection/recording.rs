//! A recording connection for unit tests of module logic: it answers scripts
//! from canned responses (matched by substring, in order) and records every
//! script it was given. Red Hat paths are tested with it, since no Red Hat
//! host can be started on these machines.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use super::{ConnError, Connection, ExecOut};

#[derive(Default)]
pub struct Recording {
    /// (substring of the script, rc, stdout, stderr); the first match answers.
    responses: Mutex<Vec<(String, i32, String, String)>>,
    /// Every script run, in order (the `sh -c` wrapping removed).
    pub log: Mutex<Vec<String>>,
    /// Stdin given with each script.
    pub stdins: Mutex<Vec<Option<Vec<u8>>>>,
}

impl Recording {
    pub fn new() -> Recording {
        Recording::default()
    }

    /// Answers scripts containing `needle` with `rc` and `stdout`.
    pub fn on(&self, needle: &str, rc: i32, stdout: &str) -> &Self {
        self.responses.lock().expect("lock").push((
            needle.into(),
            rc,
            stdout.into(),
            String::new(),
        ));
        self
    }

    pub fn on_err(&self, needle: &str, rc: i32, stderr: &str) -> &Self {
        self.responses.lock().expect("lock").push((
            needle.into(),
            rc,
            String::new(),
            stderr.into(),
        ));
        self
    }

    /// The scripts run so far.
    pub fn scripts(&self) -> Vec<String> {
        self.log.lock().expect("lock").clone()
    }

    /// Whether any script contained `needle`.
    pub fn ran(&self, needle: &str) -> bool {
        self.scripts().iter().any(|s| s.contains(needle))
    }
}

#[async_trait]
impl Connection for Recording {
    async fn exec_raw(
        &self,
        cmdline: &str,
        stdin: super::Stdin<'_>,
        _timeout: Option<Duration>,
    ) -> Result<ExecOut, ConnError> {
        // Undo the `sh -c '<script>'` quoting so tests read plain scripts.
        let script = shlex::split(cmdline)
            .and_then(|w| {
                if w.len() == 3 && w[0] == "sh" && w[1] == "-c" {
                    Some(w[2].clone())
                } else {
                    None
                }
            })
            .unwrap_or_else(|| cmdline.to_string());
        self.log.lock().expect("lock").push(script.clone());
        let input = if stdin.is_none() {
            None
        } else {
            Some(
                stdin
                    .collect()
                    .await
                    .map_err(|e| ConnError::Other(e.to_string()))?,
            )
        };
        self.stdins.lock().expect("lock").push(input);
        let responses = self.responses.lock().expect("lock");
        let hit = responses.iter().find(|(n, ..)| script.contains(n.as_str()));
        Ok(match hit {
            Some((_, rc, out, err)) => ExecOut {
                rc: *rc,
                stdout: out.clone().into_bytes(),
                stderr: err.clone().into_bytes(),
            },
            None => ExecOut::default(),
        })
    }

    fn remote_user(&self) -> Option<&str> {
        Some("root")
    }
}
