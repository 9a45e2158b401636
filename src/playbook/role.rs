//! Roles: `defaults/ vars/ tasks/ handlers/ templates/ files/ meta/`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::load::{load_task_file, perr, LoadCtx};
use super::Task;
use crate::error::{Error, Result};
use crate::yaml::{self, Node};

#[derive(Debug, Clone)]
pub struct Role {
    pub name: String,
    pub path: PathBuf,
    pub defaults: Arc<Map<String, Value>>,
    pub vars: Arc<Map<String, Value>>,
    /// Parameters given where the role is used (`- role: x` + keys, or `vars:`).
    pub params: Arc<Map<String, Value>>,
}

/// A role as named in `roles:`, `import_role` or `include_role`.
#[derive(Debug, Clone, Default)]
pub struct RoleRequest {
    pub name: String,
    pub params: Map<String, Value>,
    pub when: Vec<Value>,
    pub tags: Vec<String>,
    pub tasks_from: Option<String>,
    pub vars_from: Option<String>,
    pub defaults_from: Option<String>,
    pub handlers_from: Option<String>,
    pub keywords: Map<String, Value>,
    /// Where the request was written, for errors.
    pub loc: Option<crate::error::Location>,
}

const ROLE_KEYWORDS: &[&str] = &[
    "become",
    "become_user",
    "become_method",
    "check_mode",
    "diff",
    "ignore_errors",
    "no_log",
    "environment",
    "delegate_to",
    "run_once",
    "any_errors_fatal",
];

impl RoleRequest {
    pub fn from_node(n: &Node, file: &Path) -> Result<RoleRequest> {
        let mut req = match yaml::to_json(n) {
            Value::String(s) => RoleRequest {
                name: s,
                ..Default::default()
            },
            Value::Object(m) => RoleRequest::from_args(&m).map_err(|e| perr(file, n, e))?,
            _ => {
                return Err(perr(
                    file,
                    n,
                    "a role must be a name or a mapping with 'role:'",
                ))
            }
        };
        req.loc = Some(crate::error::Location::new(file, n.line, n.col));
        Ok(req)
    }

    pub fn from_args(m: &Map<String, Value>) -> std::result::Result<RoleRequest, String> {
        let mut r = RoleRequest::default();
        for (k, v) in m {
            let s = || {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("'{k}' must be a string"))
            };
            match k.as_str() {
                "role" | "name" => r.name = s()?,
                "vars" => {
                    if let Value::Object(vm) = v {
                        r.params.extend(vm.clone())
                    }
                }
                "when" => {
                    r.when = match v {
                        Value::Array(a) => a.clone(),
                        other => vec![other.clone()],
                    }
                }
                "tags" => {
                    r.tags = match v {
                        Value::Array(a) => a
                            .iter()
                            .map(|x| {
                                x.as_str()
                                    .map(str::to_string)
                                    .unwrap_or_else(|| x.to_string())
                            })
                            .collect(),
                        Value::String(s) => s.split(',').map(|x| x.trim().to_string()).collect(),
                        other => vec![other.to_string()],
                    }
                }
                "tasks_from" => r.tasks_from = Some(s()?),
                "vars_from" => r.vars_from = Some(s()?),
                "defaults_from" => r.defaults_from = Some(s()?),
                "handlers_from" => r.handlers_from = Some(s()?),
                "public" | "allow_duplicates" | "rolespec_validate" | "apply" => {}
                k2 if ROLE_KEYWORDS.contains(&k2) => {
                    r.keywords.insert(k.clone(), v.clone());
                }
                // Anything else is a role parameter (old style `- {role: x, port: 1}`).
                _ => {
                    r.params.insert(k.clone(), v.clone());
                }
            }
        }
        if r.name.is_empty() {
            return Err("role name is missing ('role:' or 'name:')".into());
        }
        Ok(r)
    }
}

pub struct Loaded {
    pub tasks: Vec<Task>,
    pub handlers: Vec<Task>,
    pub roles: Vec<Arc<Role>>,
}

/// Finds a role directory: `roles/` beside the playbook (or role), the roles
/// path, then the name as a path.
pub fn find_dir(name: &str, base_dir: &Path, ctx: &LoadCtx) -> Option<PathBuf> {
    let mut cands = vec![base_dir.join("roles").join(name)];
    // A role's dependencies are looked up beside it too.
    if let Some(parent) = base_dir.parent() {
        cands.push(parent.join(name));
    }
    cands.extend(ctx.roles_path.iter().map(|p| p.join(name)));
    cands.push(base_dir.join(name));
    cands.push(PathBuf::from(name));
    cands
        .into_iter()
        .find(|c| {
            c.join("tasks").is_dir()
                || c.join("meta").is_dir()
                || c.join("defaults").is_dir()
                || c.join("handlers").is_dir()
        })
        // role_path is absolute in Ansible: `{{ role_path }}/files` must work from any cwd.
        .map(|c| c.canonicalize().unwrap_or(c))
}

/// A `main.yml`-style file of a role directory, with Ansible's extensions.
pub fn role_file(dir: &Path, sub: &str, name: &str) -> Option<PathBuf> {
    let base = dir.join(sub);
    [
        format!("{name}.yml"),
        format!("{name}.yaml"),
        format!("{name}.json"),
        name.to_string(),
    ]
    .into_iter()
    .map(|n| base.join(n))
    .find(|p| p.is_file())
}

fn vars_file(dir: &Path, sub: &str, name: &str) -> Result<Map<String, Value>> {
    match role_file(dir, sub, name) {
        Some(p) => crate::inventory::load_vars_file(&p),
        None => Ok(Map::new()),
    }
}

/// Loads a role with its dependencies (dependencies first), once per set of params.
pub fn load(
    req: &RoleRequest,
    base_dir: &Path,
    ctx: &LoadCtx,
    seen: &mut Vec<(String, String)>,
    depth: usize,
) -> Result<Loaded> {
    if depth > 32 {
        return Err(Error::Other(format!(
            "role '{}': dependencies nested too deeply (a cycle?)",
            req.name
        )));
    }
    let dir =
        find_dir(&req.name, base_dir, ctx).ok_or_else(|| {
            // Exit code 1 like Ansible (not a syntax error), but say where it was asked for.
            let at = req
                .loc
                .as_ref()
                .map(|l| format!("{l}: "))
                .unwrap_or_default();
            Error::Other(format!(
            "{at}the role '{}' was not found in {}/roles, the roles path or the current directory",
            req.name,
            if base_dir.as_os_str().is_empty() { Path::new(".") } else { base_dir }.display()
        ))
        })?;
    let mut out = Loaded {
        tasks: Vec::new(),
        handlers: Vec::new(),
        roles: Vec::new(),
    };
    let key = (
        dir.to_string_lossy().into_owned(),
        serde_json::to_string(&req.params).unwrap_or_default()
            + req.tasks_from.as_deref().unwrap_or(""),
    );
    let meta = match role_file(&dir, "meta", "main") {
        Some(p) => yaml::load_file(&p)?.into_iter().next().map(|d| (p, d.root)),
        None => None,
    };
    let allow_dup = meta
        .as_ref()
        .and_then(|(_, m)| m.get("allow_duplicates"))
        .map(|n| matches!(n.kind, yaml::Kind::Bool(true)))
        .unwrap_or(false);
    if seen.contains(&key) && !allow_dup {
        return Ok(out);
    }
    seen.push(key);
    // Dependencies first, each with this role's conditions and tags.
    if let Some((meta_path, m)) = &meta {
        if let Some(deps) = m.get("dependencies").and_then(|d| d.as_seq()) {
            for d in deps {
                let mut dreq = RoleRequest::from_node(d, meta_path)?;
                dreq.when.splice(0..0, req.when.iter().cloned());
                dreq.tags.extend(req.tags.iter().cloned());
                let sub = load(&dreq, &dir, ctx, seen, depth + 1)?;
                out.tasks.extend(sub.tasks);
                out.handlers.extend(sub.handlers);
                out.roles.extend(sub.roles);
            }
        }
    }
    let role = Arc::new(Role {
        name: dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&req.name)
            .to_string(),
        defaults: Arc::new(vars_file(
            &dir,
            "defaults",
            req.defaults_from.as_deref().unwrap_or("main"),
        )?),
        vars: Arc::new(vars_file(
            &dir,
            "vars",
            req.vars_from.as_deref().unwrap_or("main"),
        )?),
        params: Arc::new(req.params.clone()),
        path: dir.clone(),
    });
    let mut kw = super::Keywords {
        when: req.when.clone(),
        tags: req.tags.clone(),
        ..Default::default()
    };
    for (k, v) in &req.keywords {
        match k.as_str() {
            "become" => kw.r#become = Some(v.clone()),
            "become_user" => kw.become_user = Some(v.clone()),
            "become_method" => kw.become_method = Some(v.clone()),
            "check_mode" => kw.check_mode = Some(v.clone()),
            "diff" => kw.diff = Some(v.clone()),
            "ignore_errors" => kw.ignore_errors = Some(v.clone()),
            "no_log" => kw.no_log = Some(v.clone()),
            "delegate_to" => kw.delegate_to = Some(v.clone()),
            "run_once" => kw.run_once = Some(v.clone()),
            "any_errors_fatal" => kw.any_errors_fatal = Some(v.clone()),
            "environment" => {
                if let Value::Object(m) = v {
                    kw.environment = m.clone()
                }
            }
            _ => {}
        }
    }
    let tasks_name = req.tasks_from.as_deref().unwrap_or("main");
    let tasks_name = tasks_name
        .trim_end_matches(".yml")
        .trim_end_matches(".yaml");
    match role_file(&dir, "tasks", tasks_name) {
        Some(p) => {
            let mut tasks = load_task_file(&p, Some(&role), ctx, depth)?;
            for t in &mut tasks {
                super::load::inherit_deep(t, &kw);
            }
            out.tasks.extend(tasks);
        }
        None if req.tasks_from.is_some() => {
            return Err(Error::Other(format!(
                "role '{}': tasks file '{tasks_name}' not found in {}/tasks",
                role.name,
                dir.display()
            )))
        }
        None => {}
    }
    if let Some(p) = role_file(
        &dir,
        "handlers",
        req.handlers_from.as_deref().unwrap_or("main"),
    ) {
        let mut hs = load_task_file(&p, Some(&role), ctx, depth)?;
        for h in &mut hs {
            super::load::inherit_deep(h, &kw);
        }
        out.handlers.extend(hs);
    }
    out.roles.push(role);
    Ok(out)
}
