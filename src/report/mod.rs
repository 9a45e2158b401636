//! Reporters: events in, output out. One reporter sits behind one lock, so
//! output from parallel hosts never interleaves.

mod adhoc;
mod human;
mod json;
mod junit;

use indexmap::IndexMap;

use crate::engine::{HostResult, Stats};

pub use adhoc::AdHoc;
pub use human::Human;
pub use json::Json;
pub use junit::Junit;

pub trait Reporter: Send {
    fn play_start(&mut self, name: &str);
    fn task_start(&mut self, name: &str, handler: bool, module: &str);
    fn host_result(&mut self, r: &HostResult, verbosity: u8, diff: bool);
    fn retry(&mut self, _host: &str, _task: &str, _left: u64) {}
    fn note(&mut self, _msg: &str) {}
    fn recap(&mut self, stats: &IndexMap<String, Stats>);
}

/// Several reporters fed the same events (e.g. human output + a JUnit file).
pub struct Tee(pub Vec<Box<dyn Reporter>>);

impl Reporter for Tee {
    fn play_start(&mut self, name: &str) {
        self.0.iter_mut().for_each(|r| r.play_start(name));
    }
    fn task_start(&mut self, name: &str, handler: bool, module: &str) {
        self.0
            .iter_mut()
            .for_each(|r| r.task_start(name, handler, module));
    }
    fn host_result(&mut self, res: &HostResult, verbosity: u8, diff: bool) {
        self.0
            .iter_mut()
            .for_each(|r| r.host_result(res, verbosity, diff));
    }
    fn retry(&mut self, host: &str, task: &str, left: u64) {
        self.0.iter_mut().for_each(|r| r.retry(host, task, left));
    }
    fn note(&mut self, msg: &str) {
        self.0.iter_mut().for_each(|r| r.note(msg));
    }
    fn recap(&mut self, stats: &IndexMap<String, Stats>) {
        self.0.iter_mut().for_each(|r| r.recap(stats));
    }
}

/// The result as the user may see it (`no_log` hides it).
pub fn visible(r: &HostResult) -> serde_json::Map<String, serde_json::Value> {
    if r.no_log {
        let mut m = serde_json::Map::new();
        m.insert(
            "censored".into(),
            "the output has been hidden due to the fact that 'no_log: true' was specified for this result".into(),
        );
        m.insert(
            "changed".into(),
            r.result.get("changed").cloned().unwrap_or(false.into()),
        );
        return m;
    }
    r.result.clone()
}
