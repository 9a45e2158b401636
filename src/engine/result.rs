//! Results of a task on a host, and the recap counters.

use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Changed,
    Skipped,
    Failed,
    Unreachable,
}

impl Status {
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Changed => "changed",
            Status::Skipped => "skipping",
            Status::Failed => "failed",
            Status::Unreachable => "unreachable",
        }
    }
}

/// One loop item's outcome, for display.
#[derive(Debug, Clone, Serialize)]
pub struct ItemResult {
    pub label: String,
    pub status: Status,
    pub result: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostResult {
    pub host: String,
    pub status: Status,
    /// Ansible's result dict (what `register` stores).
    pub result: Map<String, Value>,
    pub items: Vec<ItemResult>,
    /// Failed, but `ignore_errors` let the play go on.
    pub ignored: bool,
    pub no_log: bool,
    /// Printed with the task even without -v (debug's msg/var).
    pub show: bool,
    /// Delegated host, shown as `[host -> other]`.
    pub delegated: Option<String>,
    /// Facts the module returned, applied to the host once the task's scope is
    /// gone (so its variables are updated in place, not copied).
    #[serde(skip)]
    pub facts: Option<NewFacts>,
}

/// Where a module's `ansible_facts` go.
#[derive(Debug, Clone)]
pub enum NewFacts {
    /// `set_fact`: host variables.
    Vars(Map<String, Value>),
    /// Other modules: facts; `plain` also shows them without the `ansible_` prefix.
    Facts {
        map: Map<String, Value>,
        plain: bool,
    },
}

impl HostResult {
    pub fn new(host: &str, status: Status, result: Map<String, Value>) -> HostResult {
        HostResult {
            host: host.to_string(),
            status,
            result,
            items: Vec::new(),
            ignored: false,
            no_log: false,
            show: false,
            delegated: None,
            facts: None,
        }
    }

    pub fn skipped(host: &str, reason: &str) -> HostResult {
        let mut m = Map::new();
        m.insert("changed".into(), Value::Bool(false));
        m.insert("skipped".into(), Value::Bool(true));
        m.insert("skip_reason".into(), Value::String(reason.to_string()));
        HostResult::new(host, Status::Skipped, m)
    }

    pub fn failed(host: &str, msg: &str) -> HostResult {
        let mut m = Map::new();
        m.insert("changed".into(), Value::Bool(false));
        m.insert("failed".into(), Value::Bool(true));
        m.insert("msg".into(), Value::String(msg.to_string()));
        HostResult::new(host, Status::Failed, m)
    }

    pub fn unreachable(host: &str, msg: &str) -> HostResult {
        let mut m = Map::new();
        m.insert("changed".into(), Value::Bool(false));
        m.insert("unreachable".into(), Value::Bool(true));
        m.insert("msg".into(), Value::String(msg.to_string()));
        HostResult::new(host, Status::Unreachable, m)
    }
}

/// PLAY RECAP counters (`ok` includes changed tasks, as in Ansible).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    pub ok: u32,
    pub changed: u32,
    pub unreachable: u32,
    pub failures: u32,
    pub skipped: u32,
    pub rescued: u32,
    pub ignored: u32,
}
