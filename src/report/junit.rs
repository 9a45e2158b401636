//! `--junit FILE`: JUnit XML, one testcase per task and host, for Jenkins.

use indexmap::IndexMap;

use super::{visible, Reporter};
use crate::engine::{HostResult, Stats, Status};

pub struct Junit {
    path: std::path::PathBuf,
    play: String,
    task: String,
    cases: Vec<String>,
    failures: usize,
    skipped: usize,
}

impl Junit {
    pub fn new(path: std::path::PathBuf) -> Junit {
        Junit {
            path,
            play: String::new(),
            task: String::new(),
            cases: Vec::new(),
            failures: 0,
            skipped: 0,
        }
    }
}

fn esc(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || matches!(c, '\n' | '\t' | '\r'))
        .collect::<String>()
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

impl Reporter for Junit {
    fn play_start(&mut self, name: &str) {
        self.play = name.to_string();
    }
    fn task_start(&mut self, name: &str, _h: bool, _m: &str) {
        self.task = name.to_string();
    }
    fn host_result(&mut self, r: &HostResult, _v: u8, _d: bool) {
        let body = serde_json::to_string_pretty(&visible(r)).unwrap_or_default();
        let inner = match r.status {
            Status::Failed | Status::Unreachable if !r.ignored => {
                self.failures += 1;
                let msg = r
                    .result
                    .get("msg")
                    .and_then(|m| m.as_str())
                    .unwrap_or("failed");
                let msg = if r.no_log { "hidden (no_log)" } else { msg };
                format!(
                    "<failure message=\"{}\" type=\"{}\">{}</failure>",
                    esc(msg),
                    r.status.word(),
                    esc(&body)
                )
            }
            Status::Skipped => {
                self.skipped += 1;
                "<skipped/>".to_string()
            }
            _ => format!("<system-out>{}</system-out>", esc(&body)),
        };
        self.cases.push(format!(
            "    <testcase classname=\"{}\" name=\"[{}] {}\">{inner}</testcase>",
            esc(&self.play),
            esc(&r.host),
            esc(&self.task)
        ));
    }
    fn recap(&mut self, _stats: &IndexMap<String, Stats>) {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<testsuites>\n  <testsuite name=\"ferry\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\">\n{}\n  </testsuite>\n</testsuites>\n",
            self.cases.len(),
            self.failures,
            self.skipped,
            self.cases.join("\n")
        );
        if let Err(e) = std::fs::write(&self.path, xml) {
            eprintln!(
                "ferry: cannot write JUnit report {}: {e}",
                self.path.display()
            );
        }
    }
}
