//! `pause`: wait on the controller for a time, or for the operator to answer
//! a prompt. Without a terminal on stdin a prompt does not block (Ansible
//! warns and continues).

use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Local;

use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    mutually_exclusive: &[&["minutes", "seconds"]],
    example: "- ansible.builtin.pause:\n    seconds: 10\n- ansible.builtin.pause:\n    prompt: Check the dashboard, then press enter\n",
    ..ModuleSpec::new(
        "pause",
        "Pause for a number of seconds or minutes, or until the operator answers a prompt.",
        &[
            Param::new("minutes", Kind::Int, "Minutes to pause for."),
            Param::new("seconds", Kind::Int, "Seconds to pause for."),
            Param::new("prompt", Kind::Str, "Text shown to the operator (the answer is returned as user_input)."),
            Param::new("echo", Kind::Bool, "Show what the operator types.").default("yes"),
        ],
    )
};

pub struct Pause;

fn now_str() -> String {
    Local::now().format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// Python's `round(x, 2)` printed like `str(float)` ("10.0", "0.05").
fn round2(x: f64) -> String {
    let r = (x * 100.0).round() / 100.0;
    let s = format!("{r}");
    if s.contains('.') {
        s
    } else {
        format!("{s}.0")
    }
}

/// Reads a line from the terminal (echo off when asked).
fn read_answer(prompt: &str, echo: bool) -> std::io::Result<String> {
    let mut err = std::io::stderr();
    write!(err, "{prompt}")?;
    err.flush()?;
    let stty = |arg: &str| {
        let _ = std::process::Command::new("stty")
            .arg(arg)
            .stdin(std::process::Stdio::inherit())
            .status();
    };
    if !echo {
        stty("-echo");
    }
    let mut line = String::new();
    let res = std::io::stdin().lock().read_line(&mut line);
    if !echo {
        stty("echo");
        writeln!(err)?;
    }
    res?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

#[async_trait]
impl Module for Pause {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, _ctx: &Ctx<'_>) -> ModResult {
        let (secs, unit) = match (args.int("minutes"), args.int("seconds")) {
            (Some(m), _) => (Some(m.max(0) as u64 * 60), "minutes"),
            (None, Some(s)) => (Some(s.max(0) as u64), "seconds"),
            _ => (None, "seconds"),
        };
        let echo = args.bool("echo");
        let prompt = args.str("prompt");
        let start = Instant::now();
        let start_s = now_str();
        let mut user_input = String::new();
        let mut warnings: Vec<String> = Vec::new();
        let interactive = std::io::stdin().is_terminal();
        match (secs, prompt) {
            (Some(s), _) => {
                if let (Some(p), true) = (prompt, interactive) {
                    eprintln!("[pause]\n{p}");
                }
                tokio::time::sleep(Duration::from_secs(s)).await;
            }
            (None, p) => {
                if interactive {
                    let text = format!(
                        "[pause]\n{}:\n",
                        p.unwrap_or("Press enter to continue, Ctrl+C to interrupt")
                    );
                    user_input = tokio::task::spawn_blocking(move || read_answer(&text, echo))
                        .await
                        .map_err(|e| ModError::fail(e.to_string()))?
                        .map_err(|e| ModError::fail(format!("could not read the answer: {e}")))?;
                } else {
                    warnings.push(
                        "Not waiting for response to prompt as stdin is not interactive".into(),
                    );
                }
            }
        }
        let dur = start.elapsed().as_secs_f64();
        let shown = if unit == "minutes" { dur / 60.0 } else { dur };
        let mut o = Outcome::ok()
            .with("start", start_s)
            .with("stop", now_str())
            .with("delta", dur as u64)
            .with("user_input", user_input)
            .with("echo", echo)
            .with("rc", 0)
            .with("stderr", "")
            .with("stdout", format!("Paused for {} {unit}", round2(shown)));
        if !warnings.is_empty() {
            o = o.msg(warnings[0].clone()).with("warnings", warnings);
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
    async fn sleeps_and_never_blocks_without_a_terminal() {
        let env = TestEnv::new();
        let t = Instant::now();
        let o = env.ok(&Pause, json!({"seconds": 1})).await;
        assert!(t.elapsed() >= Duration::from_secs(1));
        assert!(!o.changed);
        assert_eq!(field(&o, "delta"), 1);
        assert_eq!(field(&o, "user_input"), "");
        assert_eq!(field(&o, "echo"), true);
        assert!(field(&o, "stdout")
            .as_str()
            .unwrap()
            .starts_with("Paused for 1."));
        // Check mode behaves the same (nothing to change).
        assert!(!env.check(&Pause, json!({"seconds": 0})).await.changed);
        if !std::io::stdin().is_terminal() {
            let t = Instant::now();
            let o = env.ok(&Pause, json!({"prompt": "Continue?"})).await;
            assert!(t.elapsed() < Duration::from_secs(1));
            assert!(o.msg.unwrap().contains("not interactive"));
        }
        assert!(env
            .run(&Pause, json!({"seconds": 1, "minutes": 1}))
            .await
            .is_err());
        assert_eq!(round2(0.0), "0.0");
        assert_eq!(round2(10.004), "10.0");
        assert_eq!(round2(1.256), "1.26");
    }
}
