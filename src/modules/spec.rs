//! Argument specs: declared once per module, used for load-time key checks,
//! run-time type coercion (Ansible's rules) and `ferry doc`.

use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Str,
    Bool,
    Int,
    Float,
    /// A list; a comma-separated string is split, like Ansible's `type: list`.
    List,
    Dict,
    Path,
    /// File mode: an int (already octal from YAML) or a string ("0644", "u+rwx").
    Mode,
    Raw,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Str => "str",
            Kind::Bool => "bool",
            Kind::Int => "int",
            Kind::Float => "float",
            Kind::List => "list",
            Kind::Dict => "dict",
            Kind::Path => "path",
            Kind::Mode => "raw (mode)",
            Kind::Raw => "raw",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub aliases: &'static [&'static str],
    pub required: bool,
    /// Default as YAML text (`"yes"`, `"0"`, `"present"`).
    pub default: Option<&'static str>,
    pub choices: &'static [&'static str],
    pub doc: &'static str,
}

impl Param {
    pub const fn new(name: &'static str, kind: Kind, doc: &'static str) -> Param {
        Param {
            name,
            kind,
            aliases: &[],
            required: false,
            default: None,
            choices: &[],
            doc,
        }
    }
    pub const fn aliases(mut self, a: &'static [&'static str]) -> Param {
        self.aliases = a;
        self
    }
    pub const fn required(mut self) -> Param {
        self.required = true;
        self
    }
    pub const fn default(mut self, d: &'static str) -> Param {
        self.default = Some(d);
        self
    }
    pub const fn choices(mut self, c: &'static [&'static str]) -> Param {
        self.choices = c;
        self
    }
}

#[derive(Debug)]
pub struct ModuleSpec {
    pub name: &'static str,
    /// Other accepted names (collection FQCNs, old names).
    pub aliases: &'static [&'static str],
    pub description: &'static str,
    pub params: &'static [Param],
    /// Takes a free-form command (`command: ls -l`), stored in `_raw_params`.
    pub free_form: bool,
    /// Parameters that may not be given together.
    pub mutually_exclusive: &'static [&'static [&'static str]],
    /// At least one of each group is required.
    pub required_one_of: &'static [&'static [&'static str]],
    /// Any extra keys are accepted (set_fact, debug-style modules).
    pub open_keys: bool,
    pub example: &'static str,
}

impl ModuleSpec {
    pub const fn new(
        name: &'static str,
        description: &'static str,
        params: &'static [Param],
    ) -> ModuleSpec {
        ModuleSpec {
            name,
            aliases: &[],
            description,
            params,
            free_form: false,
            mutually_exclusive: &[],
            required_one_of: &[],
            open_keys: false,
            example: "",
        }
    }

    fn param(&self, key: &str) -> Option<&Param> {
        self.params
            .iter()
            .find(|p| p.name == key || p.aliases.contains(&key))
    }

    /// Keys that name no parameter of the module.
    pub fn unknown_keys<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        if self.open_keys {
            return Vec::new();
        }
        keys.into_iter()
            .filter(|k| !(self.free_form && *k == "_raw_params") && self.param(k).is_none())
            .collect()
    }

    /// Load-time check: every key is a known parameter (values may be templates).
    pub fn check_keys(&self, args: &Map<String, Value>) -> Result<(), String> {
        let unknown = self.unknown_keys(args.keys().map(String::as_str));
        if unknown.is_empty() {
            return Ok(());
        }
        let mut supported: Vec<&str> = self
            .params
            .iter()
            .flat_map(|p| std::iter::once(p.name).chain(p.aliases.iter().copied()))
            .collect();
        supported.sort();
        Err(format!(
            "Unsupported parameters for ({}) module: {}. Supported parameters include: {}.",
            self.name,
            unknown.join(", "),
            supported.join(", ")
        ))
    }

    /// Run-time validation of rendered arguments: aliases, types, defaults, choices.
    pub fn validate(&self, raw: Map<String, Value>) -> Result<Args, String> {
        self.check_keys(&raw)?;
        let mut out = Map::new();
        for (k, v) in raw {
            if v.as_str() == Some(crate::template::OMIT) {
                continue;
            }
            match self.param(&k) {
                Some(p) => {
                    if out.contains_key(p.name) {
                        return Err(format!(
                            "parameter '{}' was given more than once (through an alias)",
                            p.name
                        ));
                    }
                    let v = if v.is_null() { v } else { coerce(p, v)? };
                    out.insert(p.name.to_string(), v);
                }
                None => {
                    out.insert(k, v);
                }
            }
        }
        // Exclusions apply to what the user gave, before defaults fill in.
        let given = |k: &str| out.get(k).map(|v| !v.is_null()).unwrap_or(false);
        for group in self.mutually_exclusive {
            let set: Vec<&str> = group.iter().copied().filter(|k| given(k)).collect();
            if set.len() > 1 {
                return Err(format!(
                    "parameters are mutually exclusive: {}",
                    set.join("|")
                ));
            }
        }
        for p in self.params {
            let missing = out.get(p.name).map(Value::is_null).unwrap_or(true);
            if missing {
                if let Some(d) = p.default {
                    out.insert(p.name.to_string(), coerce(p, default_value(p.kind, d))?);
                } else if p.required {
                    return Err(format!("missing required arguments: {}", p.name));
                }
            }
            if let (Some(Value::String(s)), false) =
                (out.get(p.name).cloned(), p.choices.is_empty())
            {
                if let Some(mapped) = bool_choice(&s, p.choices) {
                    out.insert(p.name.to_string(), Value::String(mapped));
                } else if !p.choices.contains(&s.as_str()) {
                    return Err(format!(
                        "value of {} must be one of: {}, got: {}",
                        p.name,
                        p.choices.join(", "),
                        s
                    ));
                }
            }
        }
        let given = |k: &str| out.get(k).map(|v| !v.is_null()).unwrap_or(false);
        for group in self.required_one_of {
            if !group.iter().any(|k| given(k)) {
                return Err(format!(
                    "one of the following is required: {}",
                    group.join(", ")
                ));
            }
        }
        Ok(Args { map: out })
    }
}

/// A declared default, read as the parameter's kind (a mode "0644" stays a string,
/// so it is octal; a `Str` "no" stays "no").
fn default_value(kind: Kind, d: &str) -> Value {
    match kind {
        Kind::Bool => Value::Bool(matches!(d, "true" | "yes" | "True" | "on" | "1")),
        Kind::Int => d
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(d.to_string())),
        Kind::Float => d
            .parse::<f64>()
            .map(|f| serde_json::json!(f))
            .unwrap_or_else(|_| Value::String(d.to_string())),
        _ => Value::String(d.to_string()),
    }
}

/// Ansible accepts YAML booleans for yes/no-style choices (`upgrade: yes`).
fn bool_choice(s: &str, choices: &[&str]) -> Option<String> {
    let family: &[&str] = match s {
        "True" | "true" => &["yes", "true", "on"],
        "False" | "false" => &["no", "false", "off"],
        _ => return None,
    };
    family
        .iter()
        .find(|c| choices.contains(c))
        .map(|c| c.to_string())
}

/// Ansible's boolean strings.
pub fn to_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::Number(n) => Some(n.as_f64() != Some(0.0)),
        Value::String(s) => match s.trim().to_lowercase().as_str() {
            "yes" | "on" | "1" | "true" | "y" | "t" | "1.0" => Some(true),
            "no" | "off" | "0" | "false" | "n" | "f" | "0.0" | "" => Some(false),
            _ => None,
        },
        Value::Null => Some(false),
        _ => None,
    }
}

fn coerce(p: &Param, v: Value) -> Result<Value, String> {
    let bad = |v: &Value| {
        format!(
            "argument '{}' is of type {} and we were unable to convert to {}: {}",
            p.name,
            json_type(v),
            p.kind.name(),
            v
        )
    };
    Ok(match p.kind {
        Kind::Str | Kind::Path => match v {
            Value::String(s) => Value::String(if p.kind == Kind::Path {
                expand_user(&s)
            } else {
                s
            }),
            Value::Bool(b) => Value::String(if b { "True" } else { "False" }.into()),
            Value::Number(n) => Value::String(n.to_string()),
            other => return Err(bad(&other)),
        },
        Kind::Bool => Value::Bool(to_bool(&v).ok_or_else(|| bad(&v))?),
        Kind::Int => match &v {
            Value::Number(n) if n.is_i64() => v,
            Value::Number(n) => Value::from(
                n.as_f64()
                    .filter(|f| f.fract() == 0.0)
                    .ok_or_else(|| bad(&v))? as i64,
            ),
            Value::String(s) => Value::from(s.trim().parse::<i64>().map_err(|_| bad(&v))?),
            _ => return Err(bad(&v)),
        },
        Kind::Float => match &v {
            Value::Number(_) => v,
            Value::String(s) => serde_json::json!(s.trim().parse::<f64>().map_err(|_| bad(&v))?),
            _ => return Err(bad(&v)),
        },
        Kind::List => match v {
            Value::Array(_) => v,
            Value::String(s) => Value::Array(
                s.split(',')
                    .map(|x| x.trim())
                    .filter(|x| !x.is_empty())
                    .map(|x| Value::String(x.into()))
                    .collect(),
            ),
            other @ (Value::Number(_) | Value::Bool(_)) => {
                Value::Array(vec![Value::String(match &other {
                    Value::Bool(b) => {
                        if *b {
                            "True".into()
                        } else {
                            "False".into()
                        }
                    }
                    o => o.to_string(),
                })])
            }
            other => return Err(bad(&other)),
        },
        Kind::Dict => match v {
            Value::Object(_) => v,
            Value::String(s) => {
                // Ansible accepts JSON or k=v strings for dicts.
                if let Ok(j @ Value::Object(_)) = serde_json::from_str::<Value>(&s) {
                    j
                } else {
                    Value::Object(
                        crate::playbook::parse_kv(&s, false)
                            .map_err(|_| bad(&Value::String(s.clone())))?,
                    )
                }
            }
            other => return Err(bad(&other)),
        },
        Kind::Mode | Kind::Raw => v,
    })
}

fn expand_user(s: &str) -> String {
    // `~` on the target is expanded by the remote shell; keep it as written.
    s.to_string()
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int",
        Value::Number(_) => "float",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// Validated, coerced module arguments.
#[derive(Debug, Clone, Default)]
pub struct Args {
    pub map: Map<String, Value>,
}

impl Args {
    pub fn get(&self, k: &str) -> Option<&Value> {
        self.map.get(k).filter(|v| !v.is_null())
    }
    pub fn str(&self, k: &str) -> Option<&str> {
        self.get(k).and_then(Value::as_str)
    }
    pub fn req_str(&self, k: &str) -> Result<&str, super::ModError> {
        self.str(k)
            .ok_or_else(|| super::ModError::fail(format!("missing required arguments: {k}")))
    }
    pub fn bool(&self, k: &str) -> bool {
        self.get(k).and_then(to_bool).unwrap_or(false)
    }
    pub fn int(&self, k: &str) -> Option<i64> {
        self.get(k).and_then(Value::as_i64)
    }
    pub fn float(&self, k: &str) -> Option<f64> {
        self.get(k).and_then(Value::as_f64)
    }
    pub fn list(&self, k: &str) -> Vec<String> {
        match self.get(k) {
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                })
                .collect(),
            Some(Value::String(s)) => vec![s.clone()],
            _ => Vec::new(),
        }
    }
    pub fn has(&self, k: &str) -> bool {
        self.get(k).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static P: &[Param] = &[
        Param::new("path", Kind::Path, "")
            .aliases(&["dest", "name"])
            .required(),
        Param::new("force", Kind::Bool, "").default("no"),
        Param::new("state", Kind::Str, "")
            .choices(&["present", "absent"])
            .default("present"),
        Param::new("groups", Kind::List, ""),
        Param::new("count", Kind::Int, ""),
    ];
    static S: ModuleSpec = ModuleSpec::new("t", "test", P);

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn coercion_aliases_defaults() {
        let a = S
            .validate(m(
                json!({"dest": "/x", "force": "yes", "groups": "a, b", "count": "3"}),
            ))
            .unwrap();
        assert_eq!(a.str("path"), Some("/x"));
        assert!(a.bool("force"));
        assert_eq!(a.list("groups"), vec!["a", "b"]);
        assert_eq!(a.int("count"), Some(3));
        assert_eq!(a.str("state"), Some("present"));
    }

    #[test]
    fn errors() {
        assert!(S
            .validate(m(json!({})))
            .unwrap_err()
            .contains("missing required arguments: path"));
        assert!(S
            .validate(m(json!({"path": "/x", "state": "gone"})))
            .unwrap_err()
            .contains("must be one of"));
        assert!(S
            .validate(m(json!({"path": "/x", "bogus": 1})))
            .unwrap_err()
            .contains("Unsupported parameters for (t) module: bogus"));
        assert!(S
            .validate(m(json!({"path": "/x", "force": "maybe"})))
            .unwrap_err()
            .contains("unable to convert to bool"));
        assert!(S
            .validate(m(json!({"path": "/x", "count": "three"})))
            .is_err());
    }
}
