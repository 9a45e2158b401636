//! `--output json`: one document with every play, task and host result,
//! shaped like Ansible's json callback.

use std::io::Write;

use indexmap::IndexMap;
use serde_json::{json, Map, Value};

use super::{visible, Reporter};
use crate::engine::{HostResult, Stats};

#[derive(Default)]
pub struct Json {
    plays: Vec<Value>,
    out: Option<std::path::PathBuf>,
}

impl Json {
    /// Writes to stdout, or to a file when given.
    pub fn new(out: Option<std::path::PathBuf>) -> Json {
        Json {
            plays: Vec::new(),
            out,
        }
    }

    fn current_tasks(&mut self) -> Option<&mut Vec<Value>> {
        self.plays.last_mut()?.get_mut("tasks")?.as_array_mut()
    }

    /// Moves the `duration.end` of the current play and task to now.
    fn touch(&mut self) {
        let now = current_time();
        if let Some(play) = self.plays.last_mut() {
            play["play"]["duration"]["end"] = now.clone().into();
        }
        if let Some(t) = self.current_tasks().and_then(|t| t.last_mut()) {
            t["task"]["duration"]["end"] = now.into();
        }
    }
}

/// The json callback's time stamps: UTC, ISO 8601 with microseconds and `Z`.
fn current_time() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

impl Reporter for Json {
    fn play_start(&mut self, name: &str) {
        self.plays.push(json!({
            "play": {"name": name, "duration": {"start": current_time()}},
            "tasks": []
        }));
    }

    fn task_start(&mut self, name: &str, handler: bool, module: &str) {
        if let Some(t) = self.current_tasks() {
            t.push(json!({
                "task": {"name": name, "handler": handler, "action": module,
                         "duration": {"start": current_time()}},
                "hosts": {}
            }));
        }
        self.touch();
    }

    fn host_result(&mut self, r: &HostResult, _v: u8, _d: bool) {
        let mut res = visible(r);
        res.insert(
            "status".into(),
            serde_json::to_value(r.status).unwrap_or_default(),
        );
        if r.ignored {
            res.insert("ignored".into(), Value::Bool(true));
        }
        if let Some(t) = self.current_tasks().and_then(|t| t.last_mut()) {
            if let Some(h) = t.get_mut("hosts").and_then(Value::as_object_mut) {
                h.insert(r.host.clone(), Value::Object(res));
            }
        }
        self.touch();
    }

    fn recap(&mut self, stats: &IndexMap<String, Stats>) {
        let st: Map<String, Value> = stats
            .iter()
            .map(|(h, s)| (h.clone(), serde_json::to_value(s).unwrap_or_default()))
            .collect();
        let doc = json!({"plays": self.plays, "stats": st});
        let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
        match &self.out {
            Some(p) => {
                let _ = std::fs::write(p, text + "\n");
            }
            None => {
                let mut o = std::io::stdout();
                let _ = writeln!(o, "{text}");
            }
        }
    }
}
