//! Per-host state kept across tasks.

use std::sync::Arc;

use indexmap::IndexSet;
use serde_json::{Map, Value};

use crate::template::Facts;

#[derive(Debug, Clone)]
pub struct HostState {
    pub name: String,
    pub inv_vars: Arc<Map<String, Value>>,
    /// Facts (setup's and other modules'), shown as variables by the scope.
    pub facts: Arc<Facts>,
    /// `set_fact`, `register`, `include_vars`.
    pub vars: Arc<Map<String, Value>>,
    pub failed: bool,
    pub unreachable: bool,
    /// `meta: end_host` or `end_play` for this play.
    pub ended: bool,
    pub notified: IndexSet<String>,
}

impl HostState {
    pub fn new(name: &str, inv_vars: Map<String, Value>) -> HostState {
        HostState {
            name: name.to_string(),
            inv_vars: Arc::new(inv_vars),
            facts: Arc::default(),
            vars: Arc::default(),
            failed: false,
            unreachable: false,
            ended: false,
            notified: IndexSet::new(),
        }
    }

    pub fn active(&self) -> bool {
        !self.failed && !self.unreachable && !self.ended
    }

    pub fn set_var(&mut self, k: &str, v: Value) {
        Arc::make_mut(&mut self.vars).insert(k.to_string(), v);
    }

    /// Adds facts; `plain` also exposes unprefixed names as variables of their own.
    pub fn add_facts(&mut self, new: &Map<String, Value>, plain: bool) {
        Arc::make_mut(&mut self.facts).add(new, plain);
    }

    pub fn clear_facts(&mut self) {
        self.facts = Arc::default();
    }
}
