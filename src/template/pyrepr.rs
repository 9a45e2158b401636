//! Python-style printing of values, since Ansible templates are rendered by
//! Python's Jinja2: `True`, `None`, `['a', 'b']`, `{'k': 1}`.

use minijinja::value::ValueKind;
use minijinja::{Error, Output, State, Value};

pub fn formatter(out: &mut Output, _state: &mut State, value: &Value) -> Result<(), Error> {
    let s = match value.kind() {
        ValueKind::String => value.as_str().unwrap_or_default().to_string(),
        // Ansible (2.19) prints a top-level None as nothing.
        ValueKind::Undefined | ValueKind::None => String::new(),
        ValueKind::Number if !value.is_integer() => match f64::try_from(value.clone()) {
            Ok(f) => super::filters::py_float_repr(f),
            Err(_) => value.to_string(),
        },
        _ => repr(value),
    };
    out.write_str(&s).map_err(Error::from)
}

pub fn repr(value: &Value) -> String {
    match value.kind() {
        ValueKind::None | ValueKind::Undefined => "None".into(),
        ValueKind::Bool => if value.is_true() { "True" } else { "False" }.into(),
        ValueKind::String => quote(value.as_str().unwrap_or_default()),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<String> = value
                .try_iter()
                .map(|it| it.map(|v| repr(&v)).collect())
                .unwrap_or_default();
            format!("[{}]", items.join(", "))
        }
        ValueKind::Map => {
            let items: Vec<String> = value
                .try_iter()
                .map(|it| {
                    it.map(|k| {
                        let v = value.get_item(&k).unwrap_or_default();
                        format!("{}: {}", repr(&k), repr(&v))
                    })
                    .collect()
                })
                .unwrap_or_default();
            format!("{{{}}}", items.join(", "))
        }
        _ => value.to_string(),
    }
}

fn quote(s: &str) -> String {
    let q = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(q);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c == q => {
                out.push('\\');
                out.push(c)
            }
            c => out.push(c),
        }
    }
    out.push(q);
    out
}
