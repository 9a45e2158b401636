//! `ferry run` output, shaped like `ansible`'s ad-hoc output:
//! `host | CHANGED | rc=0 >>` and the command's output, or `host | SUCCESS => {...}`.

use std::io::Write;

use indexmap::IndexMap;
use serde_json::Value;

use super::{visible, Reporter};
use crate::engine::{HostResult, Stats, Status};

#[derive(Default)]
pub struct AdHoc;

impl Reporter for AdHoc {
    fn play_start(&mut self, _name: &str) {}
    fn task_start(&mut self, _name: &str, _handler: bool, _module: &str) {}

    fn host_result(&mut self, r: &HostResult, _verbosity: u8, _diff: bool) {
        let res = visible(r);
        let word = match r.status {
            Status::Ok => "SUCCESS",
            Status::Changed => "CHANGED",
            Status::Skipped => "SKIPPED",
            Status::Failed => "FAILED",
            Status::Unreachable => "UNREACHABLE!",
        };
        let mut out = std::io::stdout();
        // Command-like results print their output as text, like `ansible`.
        if let (Some(rc), Some(stdout)) = (
            res.get("rc").and_then(Value::as_i64),
            res.get("stdout").and_then(Value::as_str),
        ) {
            let stderr = res
                .get("stderr")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let _ = writeln!(out, "{} | {word} | rc={rc} >>\n{stdout}", r.host);
            if !stderr.is_empty() {
                let _ = writeln!(out, "{stderr}");
            }
            return;
        }
        let text = serde_json::to_string_pretty(&res).unwrap_or_default();
        let _ = writeln!(out, "{} | {word} => {text}", r.host);
    }

    fn recap(&mut self, _stats: &IndexMap<String, Stats>) {}
}
