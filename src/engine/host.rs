//! Per-host state kept across tasks.

use std::sync::Arc;

use indexmap::IndexSet;
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct HostState {
    pub name: String,
    pub inv_vars: Arc<Map<String, Value>>,
    /// `ansible_facts` plus each fact as `ansible_<name>`.
    pub facts_layer: Arc<Map<String, Value>>,
    pub facts: Arc<Map<String, Value>>,
    /// Facts that modules other than setup returned (`getent_passwd`, `services`):
    /// Ansible also injects those under their own names.
    pub plain_facts: Arc<indexmap::IndexSet<String>>,
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
            facts_layer: Arc::default(),
            facts: Arc::default(),
            plain_facts: Arc::default(),
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
        let facts = Arc::make_mut(&mut self.facts);
        for (k, v) in new {
            let short = k.strip_prefix("ansible_").unwrap_or(k);
            facts.insert(short.to_string(), v.clone());
            if plain && !k.starts_with("ansible_") {
                Arc::make_mut(&mut self.plain_facts).insert(k.clone());
            }
        }
        self.rebuild_facts_layer();
    }

    pub fn clear_facts(&mut self) {
        self.facts = Arc::default();
        self.plain_facts = Arc::default();
        self.rebuild_facts_layer();
    }

    fn rebuild_facts_layer(&mut self) {
        let mut layer = Map::new();
        for (k, v) in self.facts.iter() {
            layer.insert(format!("ansible_{k}"), v.clone());
            if self.plain_facts.contains(k) {
                layer.insert(k.clone(), v.clone());
            }
        }
        layer.insert("ansible_facts".into(), Value::Object((*self.facts).clone()));
        self.facts_layer = Arc::new(layer);
    }
}
