//! Ansible lookups: `lookup('file', ...)`, `query(...)`/`q(...)`.
//! Relative paths resolve like Ansible's: the role's `files/` or `templates/`,
//! the role, then the playbook directory.

use std::path::{Path, PathBuf};

use minijinja::value::{Kwargs, Rest};
use minijinja::{Environment, Error, ErrorKind, State, Value};

pub fn register(env: &mut Environment<'static>) {
    env.add_function(
        "lookup",
        |state: &State, name: String, args: Rest<Value>| {
            let (terms, kwargs) = split_kwargs(args.0);
            let wantlist = kwargs
                .as_ref()
                .and_then(|k| k.get::<Option<bool>>("wantlist").ok().flatten())
                .unwrap_or(false);
            let items = run(state, &name, &terms, kwargs.as_ref())?;
            if wantlist {
                return Ok(Value::from(items));
            }
            // Ansible joins string results with commas when not asked for a list.
            Ok(match items.len() {
                0 => Value::from(()),
                1 => items.into_iter().next().unwrap_or_default(),
                _ if items.iter().all(|v| v.as_str().is_some()) => Value::from(
                    items
                        .iter()
                        .map(|v| v.as_str().unwrap_or_default().to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                ),
                _ => Value::from(items),
            })
        },
    );
    let query = |state: &State, name: String, args: Rest<Value>| {
        let (terms, kwargs) = split_kwargs(args.0);
        run(state, &name, &terms, kwargs.as_ref()).map(Value::from)
    };
    env.add_function("query", query);
    env.add_function("q", query);
}

fn split_kwargs(mut args: Vec<Value>) -> (Vec<Value>, Option<Kwargs>) {
    let kw = match args.last() {
        Some(v) if v.is_kwargs() => args.pop().and_then(|v| Kwargs::try_from(v).ok()),
        _ => None,
    };
    (args, kw)
}

fn err(msg: String) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg)
}

/// Terms flattened one level, as Ansible passes them to lookup plugins.
fn flat_terms(terms: &[Value]) -> Vec<Value> {
    let mut out = Vec::new();
    for t in terms {
        if t.as_str().is_none()
            && t.try_iter().is_ok()
            && t.kind() == minijinja::value::ValueKind::Seq
        {
            out.extend(t.try_iter().into_iter().flatten());
        } else {
            out.push(t.clone());
        }
    }
    out
}

fn str_var(state: &State, name: &str) -> Option<String> {
    state
        .lookup(name)
        .and_then(|v| v.as_str().map(str::to_string))
}

/// Search order for a relative path: role `subdir`, role, playbook `subdir`, playbook.
pub fn search_path(state: &State, subdir: &str, rel: &str) -> Option<PathBuf> {
    let p = Path::new(rel);
    if p.is_absolute() {
        return p.exists().then(|| p.to_path_buf());
    }
    let mut bases = Vec::new();
    if let Some(r) = str_var(state, "role_path") {
        bases.push(Path::new(&r).join(subdir));
        bases.push(PathBuf::from(&r));
    }
    if let Some(d) = str_var(state, "playbook_dir") {
        bases.push(Path::new(&d).join(subdir));
        bases.push(PathBuf::from(&d));
    }
    bases.push(PathBuf::from("."));
    bases.into_iter().map(|b| b.join(p)).find(|c| c.exists())
}

fn run(
    state: &State,
    name: &str,
    terms: &[Value],
    kwargs: Option<&Kwargs>,
) -> Result<Vec<Value>, Error> {
    let name = name.strip_prefix("ansible.builtin.").unwrap_or(name);
    let kw_str = |k: &str| kwargs.and_then(|kw| kw.get::<Option<String>>(k).ok().flatten());
    match name {
        "file" => flat_terms(terms)
            .iter()
            .map(|t| {
                let rel = t.to_string();
                let path = search_path(state, "files", &rel)
                    .ok_or_else(|| err(format!("lookup('file'): could not find {rel:?}")))?;
                let text = crate::vault::read_string(&path)
                    .map_err(|e| err(format!("lookup('file'): {e}")))?;
                let keep = kwargs.and_then(|k| k.get::<Option<bool>>("rstrip").ok().flatten())
                    == Some(false);
                Ok(Value::from(if keep {
                    text
                } else {
                    text.trim_end().to_string()
                }))
            })
            .collect(),
        "env" => Ok(flat_terms(terms)
            .iter()
            .map(|t| {
                Value::from(
                    std::env::var(t.to_string())
                        .unwrap_or_else(|_| kw_str("default").unwrap_or_default()),
                )
            })
            .collect()),
        "vars" => flat_terms(terms)
            .iter()
            .map(|t| {
                let n = t.to_string();
                match state.lookup(&n) {
                    Some(v) if !v.is_undefined() => Ok(v),
                    _ => {
                        match kwargs.and_then(|k| k.get::<Option<Value>>("default").ok().flatten())
                        {
                            Some(d) => Ok(d),
                            None => Err(err(format!("lookup('vars'): '{n}' is undefined"))),
                        }
                    }
                }
            })
            .collect(),
        "template" => flat_terms(terms)
            .iter()
            .map(|t| {
                let rel = t.to_string();
                let path = search_path(state, "templates", &rel)
                    .ok_or_else(|| err(format!("lookup('template'): could not find {rel:?}")))?;
                let tmpl = state.env().get_template(&path.to_string_lossy())?;
                let ctx = state.lookup("vars").unwrap_or_default();
                Ok(Value::from(tmpl.render(ctx)?))
            })
            .collect(),
        "first_found" => {
            let mut candidates: Vec<String> = Vec::new();
            let mut paths: Vec<String> = Vec::new();
            for t in flat_terms(terms) {
                if t.kind() == minijinja::value::ValueKind::Map {
                    for key in ["files", "paths"] {
                        if let Ok(v) = t.get_attr(key) {
                            let list: Vec<String> = match v.as_str() {
                                Some(s) => s.split([',', ';']).map(str::to_string).collect(),
                                None => v
                                    .try_iter()
                                    .into_iter()
                                    .flatten()
                                    .map(|x| x.to_string())
                                    .collect(),
                            };
                            if key == "files" {
                                candidates.extend(list)
                            } else {
                                paths.extend(list)
                            }
                        }
                    }
                } else {
                    candidates.push(t.to_string());
                }
            }
            for c in &candidates {
                let found = if paths.is_empty() {
                    search_path(state, "files", c)
                } else {
                    paths
                        .iter()
                        .map(|p| {
                            search_path(state, "files", &Path::new(p).join(c).to_string_lossy())
                        })
                        .find_map(|x| x)
                };
                if let Some(p) = found {
                    return Ok(vec![Value::from(p.to_string_lossy().into_owned())]);
                }
            }
            let skip = kwargs
                .and_then(|k| k.get::<Option<bool>>("skip").ok().flatten())
                .unwrap_or(false);
            if skip {
                Ok(vec![])
            } else {
                Err(err(format!(
                    "lookup('first_found'): none of {candidates:?} was found"
                )))
            }
        }
        "fileglob" => {
            let mut out = Vec::new();
            for t in flat_terms(terms) {
                let pat = t.to_string();
                let (dir, file) = match pat.rsplit_once('/') {
                    Some((d, f)) => (d.to_string(), f.to_string()),
                    None => (String::new(), pat.clone()),
                };
                let base = if Path::new(&pat).is_absolute() {
                    Some(PathBuf::from(&dir))
                } else {
                    search_path(state, "files", if dir.is_empty() { "." } else { &dir })
                };
                if let Some(base) = base {
                    let full = base.join(&file);
                    if let Ok(paths) = glob::glob(&full.to_string_lossy()) {
                        let mut v: Vec<String> = paths
                            .flatten()
                            .filter(|p| p.is_file())
                            .map(|p| p.to_string_lossy().into_owned())
                            .collect();
                        v.sort();
                        out.extend(v.into_iter().map(Value::from));
                    }
                }
            }
            Ok(out)
        }
        "pipe" => flat_terms(terms)
            .iter()
            .map(|t| {
                let out = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(t.to_string())
                    .output()
                    .map_err(|e| err(format!("lookup('pipe'): {e}")))?;
                if !out.status.success() {
                    return Err(err(format!(
                        "lookup('pipe'): {:?} exited with {}",
                        t.to_string(),
                        out.status
                    )));
                }
                Ok(Value::from(
                    String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
                ))
            })
            .collect(),
        "lines" => {
            let mut out = Vec::new();
            for t in flat_terms(terms) {
                let o = std::process::Command::new("sh")
                    .arg("-c")
                    .arg(t.to_string())
                    .output()
                    .map_err(|e| err(format!("lookup('lines'): {e}")))?;
                out.extend(
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .map(|l| Value::from(l.to_string())),
                );
            }
            Ok(out)
        }
        "items" | "list" => Ok(flat_terms(terms)),
        "indexed_items" => Ok(flat_terms(terms)
            .into_iter()
            .enumerate()
            .map(|(i, v)| Value::from(vec![Value::from(i), v]))
            .collect()),
        "dict" => {
            let mut out = Vec::new();
            for t in terms {
                if let Ok(keys) = t.try_iter() {
                    for k in keys {
                        let v = t.get_item(&k).unwrap_or_default();
                        out.push(Value::from_iter([("key", k), ("value", v)]));
                    }
                }
            }
            Ok(out)
        }
        "sequence" => {
            let mut out = Vec::new();
            for t in flat_terms(terms) {
                out.extend(
                    super::super::playbook::loops::sequence(&t.to_string())
                        .map_err(err)?
                        .into_iter()
                        .map(Value::from),
                );
            }
            Ok(out)
        }
        other => Err(err(format!(
            "lookup plugin {other:?} is not supported by ferry"
        ))),
    }
}
