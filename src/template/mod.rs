//! Templating: minijinja with Ansible's filters, tests and lookups, lazy
//! variable resolution and "native" results for whole-expression strings.

pub mod filters;
mod lookups;
mod pyrepr;
pub mod vars;

use std::sync::Arc;

use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value as JValue};
use serde_json::Value;

pub use vars::{Facts, HostVarsSource, Scope};

/// Placeholder Ansible uses for `omit`: module arguments equal to it are dropped.
pub const OMIT: &str = "__omit_place_holder__ferry";
/// Bound on nested lazy variable rendering (a variable that refers to itself).
const MAX_DEPTH: usize = 40;

/// Shared, immutable template environment.
#[derive(Clone)]
pub struct Templar {
    env: Arc<Environment<'static>>,
    /// Same, with `trim_blocks` (what the `template` module uses, like Ansible).
    file_env: Arc<Environment<'static>>,
    /// ansible.cfg's `ansible_managed` format (None: `Ansible managed`).
    managed: Option<Arc<str>>,
}

impl Default for Templar {
    fn default() -> Self {
        Self::new()
    }
}

impl Templar {
    pub fn new() -> Templar {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Ansible's Templar uses trim_blocks for every template, not only files.
        env.set_syntax(syntax(true));
        // No HTML escaping, whatever the template's file name (`job.xml.j2`).
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.set_recursion_limit(200);
        // Bounds the work of one render: a runaway template fails instead of hanging.
        env.set_fuel(Some(200_000_000));
        // Templates referenced by absolute path (template module, lookup('template')).
        env.set_loader(|name| {
            let p = std::path::Path::new(name);
            if p.is_absolute() {
                match std::fs::read_to_string(p) {
                    Ok(s) => Ok(Some(s)),
                    Err(_) => Ok(None),
                }
            } else {
                Ok(None)
            }
        });
        env.set_path_join_callback(|name, parent| {
            let parent = std::path::Path::new(parent);
            if std::path::Path::new(name).is_absolute() {
                return name.to_string().into();
            }
            match parent.parent() {
                Some(dir) => dir.join(name).to_string_lossy().into_owned().into(),
                None => name.to_string().into(),
            }
        });
        filters::register(&mut env);
        lookups::register(&mut env);
        env.add_global("omit", OMIT);
        let mut file_env = env.clone();
        file_env.set_syntax(syntax(true));
        Templar {
            env: Arc::new(env),
            file_env: Arc::new(file_env),
            managed: None,
        }
    }

    /// Sets the `ansible_managed` format templates see.
    pub fn managed(mut self, format: Option<String>) -> Templar {
        self.managed = format.map(Arc::from);
        self
    }

    /// The `ansible_managed` format (placeholders `{host}`, `{uid}`, `{file}`, strftime codes).
    pub fn managed_format(&self) -> &str {
        self.managed.as_deref().unwrap_or("Ansible managed")
    }

    pub fn env(&self) -> &Environment<'static> {
        &self.env
    }

    /// Renders a value recursively: strings with Jinja markers are rendered; a
    /// string that is exactly one `{{ expr }}` keeps the expression's type.
    pub fn render(&self, v: &Value, scope: &Scope) -> Result<Value, String> {
        self.render_depth(v, scope, 0)
    }

    pub(crate) fn render_depth(
        &self,
        v: &Value,
        scope: &Scope,
        depth: usize,
    ) -> Result<Value, String> {
        match v {
            Value::String(s) => self.render_string(s, scope, depth),
            Value::Array(items) => items
                .iter()
                .map(|i| self.render_depth(i, scope, depth))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(m) => {
                let mut out = serde_json::Map::new();
                for (k, v) in m {
                    let k = if has_template(k) {
                        match self.render_string(k, scope, depth)? {
                            Value::String(s) => s,
                            other => other.to_string(),
                        }
                    } else {
                        k.clone()
                    };
                    out.insert(k, self.render_depth(v, scope, depth)?);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn render_string(&self, s: &str, scope: &Scope, depth: usize) -> Result<Value, String> {
        if !has_template(s) {
            return Ok(Value::String(s.to_string()));
        }
        if depth > MAX_DEPTH {
            return Err(format!("recursive loop detected in template string: {s}"));
        }
        let escaped = escape_backslashes(s);
        let s = escaped.as_ref();
        let ctx = scope.context(self, depth + 1);
        if let Some(expr) = single_expression(s) {
            let compiled = self
                .env
                .compile_expression(expr)
                .map_err(|e| describe(&e, s, scope))?;
            let out = compiled.eval(ctx).map_err(|e| describe(&e, s, scope))?;
            if out.is_undefined() {
                // Strict like Ansible: a bare undefined result is an error.
                let e = minijinja::Error::new(ErrorKind::UndefinedError, "undefined value");
                return Err(describe(&e, s, scope));
            }
            return Ok(lone_result(to_json(&out)));
        }
        let tmpl = self
            .env
            .template_from_str(s)
            .map_err(|e| describe(&e, s, scope))?;
        tmpl.render(ctx)
            .map(Value::String)
            .map_err(|e| describe(&e, s, scope))
    }

    /// Renders a template file's text (the `template` module, Ansible's settings).
    pub fn render_file(&self, name: &str, source: &str, scope: &Scope) -> Result<String, String> {
        let tmpl = self
            .file_env
            .template_from_named_str(name, source)
            .map_err(|e| describe(&e, name, scope))?;
        tmpl.render(scope.context(self, 1))
            .map_err(|e| describe(&e, name, scope))
    }

    /// Evaluates a bare conditional (`when`, `changed_when`, ...).
    pub fn eval_bool(&self, cond: &Value, scope: &Scope) -> Result<bool, String> {
        match cond {
            Value::Bool(b) => Ok(*b),
            Value::Null => Ok(false),
            Value::Number(n) => Ok(n.as_f64().unwrap_or(0.0) != 0.0),
            Value::String(s) => {
                let s = s.trim();
                // Ansible tolerates `when: "{{ x }}"` (with a warning).
                let expr = single_expression(s).unwrap_or(s);
                let compiled = self
                    .env
                    .compile_expression(expr)
                    .map_err(|e| describe(&e, s, scope))?;
                let v = compiled
                    .eval(scope.context(self, 1))
                    .map_err(|e| describe(&e, s, scope))?;
                if v.is_undefined() {
                    let e = minijinja::Error::new(ErrorKind::UndefinedError, "undefined value");
                    return Err(describe(&e, s, scope));
                }
                Ok(truthy(&v))
            }
            other => Ok(!is_empty_json(other)),
        }
    }

    /// Evaluates a bare expression (`loop: x` strings are templates, not this).
    pub fn eval_expr(&self, expr: &str, scope: &Scope) -> Result<Value, String> {
        let compiled = self
            .env
            .compile_expression(expr)
            .map_err(|e| describe(&e, expr, scope))?;
        let v = compiled
            .eval(scope.context(self, 1))
            .map_err(|e| describe(&e, expr, scope))?;
        if v.is_undefined() {
            let e = minijinja::Error::new(ErrorKind::UndefinedError, "undefined value");
            return Err(describe(&e, expr, scope));
        }
        Ok(to_json(&v))
    }
}

fn syntax(trim_blocks: bool) -> minijinja::syntax::SyntaxConfig {
    minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .trim_blocks(trim_blocks)
        .build()
        .expect("default delimiters are valid")
}

fn truthy(v: &JValue) -> bool {
    // Ansible evaluates the string result of a conditional: "False"/"no" are false.
    if let Some(s) = v.as_str() {
        return !matches!(
            s.trim().to_lowercase().as_str(),
            "" | "false" | "no" | "off" | "0" | "none"
        );
    }
    v.is_true()
}

fn is_empty_json(v: &Value) -> bool {
    match v {
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Ansible's `_escape_backslashes`: in playbook values (not template files, not
/// conditionals) every backslash of a string literal inside `{{ }}` is doubled
/// before Jinja reads it, so YAML's `'\1'` reaches `regex_replace` as `\1`,
/// as it would outside the braces.
pub(crate) fn escape_backslashes(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains('\\') || !s.contains("{{") {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    let mut rest = s;
    while let Some(open) = rest.find(['{']) {
        let (before, at) = rest.split_at(open);
        out.push_str(before);
        let (close, escape) = if at.starts_with("{{") {
            ("}}", true)
        } else if let Some(block) = at.strip_prefix("{%") {
            // `{% raw %}`: verbatim up to its `endraw` block.
            let tag = block.trim_start_matches(['-', '+']).trim_start();
            if tag.starts_with("raw")
                && tag[3..]
                    .trim_start()
                    .trim_start_matches(['-', '+'])
                    .starts_with("%}")
            {
                let end = at
                    .find("endraw")
                    .and_then(|e| at[e..].find("%}").map(|c| e + c + 2))
                    .unwrap_or(at.len());
                out.push_str(&at[..end]);
                rest = &at[end..];
                continue;
            }
            ("%}", false)
        } else if at.starts_with("{#") {
            out.push_str(at.find("#}").map_or(at, |e| &at[..e + 2]));
            rest = at.find("#}").map_or("", |e| &at[e + 2..]);
            continue;
        } else {
            out.push('{');
            rest = &at[1..];
            continue;
        };
        out.push_str(&at[..2]);
        rest = copy_block(&at[2..], close, escape, &mut out);
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Copies a `{{ }}`/`{% %}` block body up to and including `close`, string
/// literals whole (a `}}` inside quotes does not end the block), doubling their
/// backslashes when `escape`. Returns what follows the block.
fn copy_block<'a>(body: &'a str, close: &str, escape: bool, out: &mut String) -> &'a str {
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if body[i..].starts_with(close) {
            out.push_str(close);
            return &body[i + close.len()..];
        }
        out.push(c);
        if c == '\'' || c == '"' {
            let quote = c;
            while let Some((_, d)) = chars.next() {
                if d == '\\' {
                    out.push_str(if escape { "\\\\" } else { "\\" });
                    // A backslash takes the next character into the literal.
                    match chars.next() {
                        Some((_, '\\')) if escape => out.push_str("\\\\"),
                        Some((_, e)) => out.push(e),
                        None => {}
                    }
                    continue;
                }
                out.push(d);
                if d == quote {
                    break;
                }
            }
        }
    }
    ""
}

/// What Ansible (with its default, `jinja2_native` off) makes of a value that is
/// one `{{ expr }}`: numbers come back as their text and None as '', while
/// strings, booleans, lists and dicts keep their type (`ansible_eval_concat`).
fn lone_result(v: Value) -> Value {
    match v {
        Value::Number(n) => Value::String(match n.as_f64() {
            Some(f) if !n.is_i64() && !n.is_u64() => filters::py_float_repr(f),
            _ => n.to_string(),
        }),
        Value::Null => Value::String(String::new()),
        other => other,
    }
}

pub fn has_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// `"{{ expr }}"` with nothing around it → `expr`.
fn single_expression(s: &str) -> Option<&str> {
    // Exactly one expression: surrounding text (even a newline) makes it a string.
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    // Reject `{{ a }} and {{ b }}` shapes (handled above) and whitespace-control dashes.
    let inner = inner.trim_start_matches('-').trim_end_matches('-');
    Some(inner.trim())
}

/// A value as Python prints it (loop item labels).
pub fn pyrepr_json(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => pyrepr::repr(&JValue::from(minijinja::value::Serde(other))),
    }
}

/// minijinja value → runtime value.
pub fn to_json(v: &JValue) -> Value {
    if v.is_undefined() {
        return Value::Null;
    }
    serde_json::to_value(v).unwrap_or_else(|_| Value::String(v.to_string()))
}

/// Turns a minijinja error into Ansible-like wording, naming the undefined variable.
fn describe(e: &minijinja::Error, src: &str, scope: &Scope) -> String {
    let mut chain = String::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut first = true;
    while let Some(err) = cur {
        if !first {
            chain.push_str(": ");
        }
        first = false;
        if let Some(me) = err.downcast_ref::<minijinja::Error>() {
            chain.push_str(&me.kind().to_string());
            if let Some(d) = me.detail() {
                chain.push_str(" (");
                chain.push_str(d);
                chain.push(')');
            }
        } else {
            chain.push_str(&err.to_string());
        }
        cur = err.source();
    }
    if e.kind() == ErrorKind::UndefinedError {
        if let Some(inner) = scope.take_inner_error() {
            return inner;
        }
        if let Some(name) = scope.last_missing() {
            return format!("'{name}' is undefined: in template {src:?}");
        }
    }
    let line = e.line().map(|l| format!(" (line {l})")).unwrap_or_default();
    format!("template error in {src:?}{line}: {chain}")
}

#[cfg(test)]
mod tests;
