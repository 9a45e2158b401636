//! ansible-playbook's default output.

use std::io::{IsTerminal, Write};

use indexmap::IndexMap;
use serde_json::Value;

use super::{visible, Reporter};
use crate::engine::{HostResult, Stats, Status};

pub struct Human {
    out: Box<dyn Write + Send>,
    color: bool,
    /// Live "still running" line for the current task (terminals only).
    spinner: Option<indicatif::ProgressBar>,
    tty: bool,
}

impl Human {
    pub fn stdout() -> Human {
        let tty = std::io::stdout().is_terminal();
        let color = tty && std::env::var_os("NO_COLOR").is_none();
        Human {
            out: Box::new(std::io::stdout()),
            color,
            spinner: None,
            tty,
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn stop_spinner(&mut self) {
        if let Some(s) = self.spinner.take() {
            s.finish_and_clear();
        }
    }

    /// Shows the task name and elapsed time while hosts work (package installs,
    /// image builds and training take minutes).
    fn start_spinner(&mut self, name: &str) {
        if !self.tty {
            return;
        }
        let s = indicatif::ProgressBar::new_spinner();
        if let Ok(style) = indicatif::ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
            s.set_style(style);
        }
        s.set_message(name.to_string());
        s.enable_steady_tick(std::time::Duration::from_millis(120));
        self.spinner = Some(s);
    }

    fn banner(&mut self, title: &str) {
        self.stop_spinner();
        let stars = 80usize.saturating_sub(title.len() + 1).max(3);
        let line = format!("\n{title} {}", "*".repeat(stars));
        let _ = writeln!(self.out, "{line}");
    }

    fn color_for(status: Status, ignored: bool) -> &'static str {
        match status {
            Status::Ok => "32",
            Status::Changed => "33",
            Status::Skipped => "36",
            Status::Failed if ignored => "36",
            Status::Failed | Status::Unreachable => "31",
        }
    }
}

/// Indented like Ansible's output (4 spaces).
fn pretty(v: &serde_json::Map<String, Value>) -> String {
    use serde::Serialize;
    let mut buf = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(
        &mut buf,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    let _ = v.serialize(&mut ser);
    String::from_utf8(buf).unwrap_or_default()
}

/// JSON on one line with Python's separators (`{"a": 1, "b": 2}`), as Ansible prints it.
fn compact(v: &serde_json::Map<String, Value>) -> String {
    fn w(v: &Value, out: &mut String) {
        match v {
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    w(x, out);
                }
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push_str(": ");
                    w(x, out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut s = String::new();
    w(&Value::Object(v.clone()), &mut s);
    s
}

impl Reporter for Human {
    fn play_start(&mut self, name: &str) {
        self.banner(&format!("PLAY [{name}]"));
    }

    fn task_start(&mut self, name: &str, handler: bool, _module: &str) {
        let kind = if handler { "RUNNING HANDLER" } else { "TASK" };
        self.banner(&format!("{kind} [{name}]"));
        self.start_spinner(name);
    }

    fn host_result(&mut self, r: &HostResult, verbosity: u8, diff: bool) {
        // Results arrive together at the end of a task (in host order).
        self.stop_spinner();
        let host = match &r.delegated {
            Some(d) => format!("{} -> {d}", r.host),
            None => r.host.clone(),
        };
        let res = visible(r);
        let code = Self::color_for(r.status, r.ignored);
        if !r.items.is_empty() {
            for it in &r.items {
                // no_log hides diffs too: they show the content.
                if diff && !r.no_log {
                    self.print_diff(&it.result);
                }
                let word = match it.status {
                    Status::Failed => "failed",
                    s => s.word(),
                };
                // Ansible's wording; the label may be the secret itself.
                let label = if r.no_log {
                    "(censored due to no_log)"
                } else {
                    it.label.as_str()
                };
                let mut line = format!("{word}: [{host}] => (item={label})");
                if it.status == Status::Failed || verbosity > 0 || r.show {
                    let mut shown = if r.no_log {
                        res.clone()
                    } else {
                        it.result.clone()
                    };
                    shown.remove("ansible_loop_var");
                    line.push_str(&format!(
                        " => {}",
                        if r.show {
                            pretty(&shown)
                        } else {
                            compact(&shown)
                        }
                    ));
                }
                let c = Self::color_for(it.status, r.ignored);
                let painted = self.paint(c, &line);
                let _ = writeln!(self.out, "{painted}");
            }
            if r.status == Status::Failed {
                let line = format!("fatal: [{host}]: FAILED! => {}", compact(&res));
                let painted = self.paint(code, &line);
                let _ = writeln!(self.out, "{painted}");
            } else if r.status == Status::Skipped {
                let painted = self.paint(code, &format!("skipping: [{host}]"));
                let _ = writeln!(self.out, "{painted}");
            }
        } else {
            if diff && !r.no_log {
                self.print_diff(&r.result);
            }
            let line = match r.status {
                Status::Failed => format!("fatal: [{host}]: FAILED! => {}", compact(&res)),
                Status::Unreachable => {
                    format!("fatal: [{host}]: UNREACHABLE! => {}", compact(&res))
                }
                Status::Skipped if verbosity == 0 => format!("skipping: [{host}]"),
                s if r.show => {
                    let mut shown = res.clone();
                    shown.remove("changed");
                    format!("{}: [{host}] => {}", s.word(), pretty(&shown))
                }
                s if verbosity > 0 => format!("{}: [{host}] => {}", s.word(), compact(&res)),
                s => format!("{}: [{host}]", s.word()),
            };
            let painted = self.paint(code, &line);
            let _ = writeln!(self.out, "{painted}");
        }
        if r.ignored {
            let painted = self.paint("36", "...ignoring");
            let _ = writeln!(self.out, "{painted}");
        }
    }

    fn retry(&mut self, host: &str, task: &str, left: u64) {
        let line = format!("FAILED - RETRYING: [{host}]: {task} ({left} retries left).");
        let painted = self.paint("33", &line);
        let _ = writeln!(self.out, "{painted}");
    }

    fn note(&mut self, msg: &str) {
        let _ = writeln!(self.out, "{msg}");
    }

    fn recap(&mut self, stats: &IndexMap<String, Stats>) {
        self.banner("PLAY RECAP");
        for (h, s) in stats {
            let code = if s.failures > 0 || s.unreachable > 0 {
                "31"
            } else if s.changed > 0 {
                "33"
            } else {
                "32"
            };
            let host = self.paint(code, &format!("{h:<26}"));
            let _ = writeln!(
                self.out,
                "{host} : ok={:<4} changed={:<4} unreachable={:<4} failed={:<4} skipped={:<4} rescued={:<4} ignored={}",
                s.ok, s.changed, s.unreachable, s.failures, s.skipped, s.rescued, s.ignored
            );
        }
        let _ = writeln!(self.out);
        let _ = self.out.flush();
    }
}

impl Human {
    fn print_diff(&mut self, result: &serde_json::Map<String, Value>) {
        let diffs: Vec<Value> = match result.get("diff") {
            Some(Value::Array(a)) => a.clone(),
            Some(d @ Value::Object(_)) => vec![d.clone()],
            _ => return,
        };
        for d in diffs {
            let get = |k: &str| {
                d.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            let diff = crate::modules::Diff {
                before: get("before"),
                after: get("after"),
                before_header: get("before_header"),
                after_header: get("after_header"),
            };
            let text = crate::modules::util::unified(&diff);
            for line in text.lines() {
                let c = if line.starts_with('+') && !line.starts_with("+++") {
                    "32"
                } else if line.starts_with('-') && !line.starts_with("---") {
                    "31"
                } else if line.starts_with("@@") {
                    "36"
                } else {
                    "0"
                };
                let painted = self.paint(c, line);
                let _ = writeln!(self.out, "{painted}");
            }
        }
    }
}
