//! Variable scopes: precedence layers resolved lazily, exposed to minijinja as
//! an object so that a variable which refers to other variables is rendered
//! only when it is used (Ansible's lazy templating).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use minijinja::value::{Enumerator, Object, ObjectRepr};
use minijinja::Value as JValue;
use serde_json::{Map, Value};

use super::{has_template, Templar};

/// Gives `hostvars[name]`: another host's scope.
pub trait HostVarsSource: Send + Sync {
    fn host_scope(&self, host: &str) -> Option<Scope>;
    fn host_names(&self) -> Vec<String>;
}

#[derive(Default)]
struct Diag {
    last_missing: Option<String>,
    inner_error: Option<String>,
}

/// A host's facts as variables: `ansible_facts`, each fact as
/// `ansible_<name>`, and facts of modules other than setup also as `<name>`
/// (Ansible injects those) — all views of one stored map, not three copies.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// `Value::Object` of the facts under their short names.
    all: Value,
    plain: indexmap::IndexSet<String>,
}

impl Facts {
    pub fn map(&self) -> Option<&Map<String, Value>> {
        self.all.as_object()
    }

    pub fn is_empty(&self) -> bool {
        self.map().is_none_or(Map::is_empty)
    }

    /// Adds facts (names with or without `ansible_`); `plain` also exposes
    /// the unprefixed names.
    pub fn add(&mut self, new: &Map<String, Value>, plain: bool) {
        if !self.all.is_object() {
            self.all = Value::Object(Map::new());
        }
        let Value::Object(all) = &mut self.all else {
            return;
        };
        for (k, v) in new {
            let short = k.strip_prefix("ansible_").unwrap_or(k);
            all.insert(short.to_string(), v.clone());
            if plain && !k.starts_with("ansible_") {
                self.plain.insert(k.clone());
            }
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        if key == "ansible_facts" {
            return self.map().map(|_| &self.all);
        }
        let all = self.map()?;
        if let Some(v) = key.strip_prefix("ansible_").and_then(|k| all.get(k)) {
            return Some(v);
        }
        all.get(key).filter(|_| self.plain.contains(key))
    }

    fn each(&self, mut f: impl FnMut(String, &Value)) {
        let Some(all) = self.map() else { return };
        for (k, v) in all {
            f(format!("ansible_{k}"), v);
            if self.plain.contains(k) {
                f(k.clone(), v);
            }
        }
        f("ansible_facts".into(), &self.all);
    }
}

#[derive(Clone)]
enum Layer {
    Map(Arc<Map<String, Value>>),
    Facts(Arc<Facts>),
}

impl Layer {
    fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Layer::Map(m) => m.get(key),
            Layer::Facts(f) => f.get(key),
        }
    }
}

/// Ordered variable layers, lowest precedence first.
#[derive(Clone, Default)]
pub struct Scope {
    layers: Vec<Layer>,
    hostvars: Option<Arc<dyn HostVarsSource>>,
    diag: Arc<Mutex<Diag>>,
}

impl Scope {
    pub fn new() -> Scope {
        Scope::default()
    }

    pub fn push(&mut self, layer: Arc<Map<String, Value>>) {
        if !layer.is_empty() {
            self.layers.push(Layer::Map(layer));
        }
    }

    pub fn push_facts(&mut self, facts: Arc<Facts>) {
        if !facts.is_empty() {
            self.layers.push(Layer::Facts(facts));
        }
    }

    pub fn push_map(&mut self, layer: Map<String, Value>) {
        self.push(Arc::new(layer));
    }

    /// A copy with one more layer on top (loop items, task vars).
    pub fn with(&self, layer: Map<String, Value>) -> Scope {
        let mut s = self.clone();
        s.diag = Arc::default();
        s.push_map(layer);
        s
    }

    pub fn set_hostvars(&mut self, src: Arc<dyn HostVarsSource>) {
        self.hostvars = Some(src);
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.layers.iter().rev().find_map(|l| l.get(key))
    }

    /// All variables merged (raw, unrendered), top layer winning.
    pub fn flatten(&self) -> Map<String, Value> {
        let mut out = Map::new();
        for l in &self.layers {
            match l {
                Layer::Map(m) => {
                    for (k, v) in m.iter() {
                        out.insert(k.clone(), v.clone());
                    }
                }
                Layer::Facts(f) => f.each(|k, v| {
                    out.insert(k, v.clone());
                }),
            }
        }
        out
    }

    pub(crate) fn context(&self, templar: &Templar, depth: usize) -> JValue {
        JValue::from_object(VarsObj {
            scope: self.clone(),
            templar: templar.clone(),
            depth,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn last_missing(&self) -> Option<String> {
        self.diag.lock().ok()?.last_missing.clone()
    }

    pub(crate) fn take_inner_error(&self) -> Option<String> {
        self.diag.lock().ok()?.inner_error.take()
    }

    fn note_missing(&self, key: &str) {
        if let Ok(mut d) = self.diag.lock() {
            d.last_missing = Some(key.to_string());
        }
    }

    fn note_error(&self, e: String) {
        if let Ok(mut d) = self.diag.lock() {
            if d.inner_error.is_none() {
                d.inner_error = Some(e);
            }
        }
    }

    /// A variable rendered to its final value (lazy templating applied).
    pub fn resolve(&self, templar: &Templar, key: &str) -> Result<Option<Value>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if value_has_template(v) => templar.render_depth(v, self, 1).map(Some),
            Some(v) => Ok(Some(v.clone())),
        }
    }
}

pub fn value_has_template(v: &Value) -> bool {
    match v {
        Value::String(s) => has_template(s),
        Value::Array(a) => a.iter().any(value_has_template),
        Value::Object(m) => m.values().any(value_has_template),
        _ => false,
    }
}

struct VarsObj {
    scope: Scope,
    templar: Templar,
    depth: usize,
    cache: Mutex<HashMap<String, JValue>>,
}

impl std::fmt::Debug for VarsObj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<vars>")
    }
}

impl Object for VarsObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        let k = key.as_str()?;
        if let Some(v) = self.cache.lock().ok()?.get(k) {
            return Some(v.clone());
        }
        let v = match self.scope.get(k) {
            Some(raw) if value_has_template(raw) => {
                match self.templar.render_depth(raw, &self.scope, self.depth) {
                    Ok(v) => JValue::from(minijinja::value::Serde(&v)),
                    Err(e) => {
                        self.scope
                            .note_error(format!("error while templating variable '{k}': {e}"));
                        return None;
                    }
                }
            }
            Some(raw) => JValue::from(minijinja::value::Serde(raw)),
            None => match k {
                "vars" => JValue::from_dyn_object(self.clone()),
                "hostvars" => match &self.scope.hostvars {
                    Some(src) => JValue::from_object(HostVarsObj {
                        src: src.clone(),
                        templar: self.templar.clone(),
                    }),
                    None => return None,
                },
                _ => {
                    self.scope.note_missing(k);
                    return None;
                }
            },
        };
        self.cache.lock().ok()?.insert(k.to_string(), v.clone());
        Some(v)
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        let keys: Vec<JValue> = self
            .scope
            .flatten()
            .keys()
            .map(|k| JValue::from(k.as_str()))
            .collect();
        Enumerator::Values(keys)
    }
}

struct HostVarsObj {
    src: Arc<dyn HostVarsSource>,
    templar: Templar,
}

impl std::fmt::Debug for HostVarsObj {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<hostvars>")
    }
}

impl Object for HostVarsObj {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &JValue) -> Option<JValue> {
        let scope = self.src.host_scope(key.as_str()?)?;
        Some(scope.context(&self.templar, 1))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Values(
            self.src
                .host_names()
                .into_iter()
                .map(JValue::from)
                .collect(),
        )
    }
}
