//! Loading playbooks and task files from YAML nodes, with positions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};

use super::role::{self, RoleRequest};
use super::*;
use crate::error::{Error, Location, Result};
use crate::yaml::{self, Kind, Node};

/// Settings the loader needs: where roles live.
#[derive(Debug, Default)]
pub struct LoadCtx {
    pub roles_path: Vec<PathBuf>,
    /// Handlers of roles pulled in by `import_role`, collected for the play.
    pub extra_handlers: std::sync::Mutex<Vec<Task>>,
}

const MAX_IMPORT_DEPTH: usize = 64;

pub(crate) fn perr(file: &Path, node: &Node, msg: impl Into<String>) -> Error {
    Error::parse(Location::new(file, node.line, node.col), msg).with_snippet()
}

fn loc(file: &Path, node: &Node) -> Location {
    Location::new(file, node.line, node.col)
}

pub fn load_playbook(path: &Path, ctx: &LoadCtx) -> Result<Playbook> {
    let mut pb = Playbook {
        path: path.to_path_buf(),
        plays: Vec::new(),
    };
    load_playbook_into(path, ctx, &mut pb, 0)?;
    Ok(pb)
}

fn load_playbook_into(path: &Path, ctx: &LoadCtx, pb: &mut Playbook, depth: usize) -> Result<()> {
    let docs = yaml::load_file(path)?;
    let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    // Like Ansible: a playbook with no plays is an error, not a silent success.
    let empty = || Error::parse(Location::new(path, 1, 1), "Empty playbook, nothing to do");
    let Some(doc) = docs.first() else {
        return Err(empty());
    };
    if doc.root.is_null() {
        return Err(empty());
    }
    let plays = doc
        .root
        .as_seq()
        .ok_or_else(|| perr(path, &doc.root, "a playbook must be a list of plays"))?;
    if plays.is_empty() {
        return Err(empty());
    }
    for node in plays {
        if let Some(target) = node
            .get("import_playbook")
            .or_else(|| node.get("ansible.builtin.import_playbook"))
        {
            if depth > MAX_IMPORT_DEPTH {
                return Err(perr(
                    path,
                    node,
                    "import_playbook nested too deeply (a loop?)",
                ));
            }
            let rel = target
                .as_str()
                .ok_or_else(|| perr(path, target, "import_playbook takes a file name"))?;
            let sub = base_dir.join(rel);
            if !sub.is_file() {
                return Err(perr(
                    path,
                    target,
                    format!("imported playbook {} does not exist", sub.display()),
                ));
            }
            load_playbook_into(&sub, ctx, pb, depth + 1)?;
            continue;
        }
        pb.plays.push(load_play(node, path, &base_dir, ctx)?);
    }
    Ok(())
}

const PLAY_KEYS: &[&str] = &[
    "hosts",
    "name",
    "vars",
    "vars_files",
    "vars_prompt",
    "gather_facts",
    "gather_subset",
    "gather_timeout",
    "pre_tasks",
    "tasks",
    "post_tasks",
    "roles",
    "handlers",
    "serial",
    "any_errors_fatal",
    "max_fail_percentage",
    "strategy",
    "order",
    "force_handlers",
    "collections",
    "connection",
    "remote_user",
    "port",
    "module_defaults",
    "fact_path",
    "debugger",
    "timeout",
];

fn load_play(node: &Node, file: &Path, base_dir: &Path, ctx: &LoadCtx) -> Result<Play> {
    let map = node.as_map().ok_or_else(|| {
        perr(
            file,
            node,
            format!("a play must be a mapping, found a {}", node.type_name()),
        )
    })?;
    let mut play = Play {
        loc: loc(file, node),
        base_dir: base_dir.to_path_buf(),
        ..Play::default()
    };
    for (k, v) in map {
        let key = k.key_str();
        if parse_keyword(&mut play.kw, &key, v, file)? {
            continue;
        }
        match key.as_str() {
            "hosts" => {
                play.hosts = match &v.kind {
                    Kind::Str(s) => s.clone(),
                    Kind::Seq(items) => items
                        .iter()
                        .map(Node::key_str)
                        .collect::<Vec<_>>()
                        .join(":"),
                    _ => return Err(perr(file, v, "hosts must be a pattern string or a list")),
                }
            }
            "name" => play.name = scalar_string(v),
            "vars_files" => {
                play.vars_files = match yaml::to_json(v) {
                    Value::Array(a) => a,
                    Value::Null => Vec::new(),
                    other => vec![other],
                }
            }
            "vars_prompt" => {
                let items: Vec<&Node> = match &v.kind {
                    Kind::Seq(items) => items.iter().collect(),
                    Kind::Null => Vec::new(),
                    _ => vec![v],
                };
                for item in items {
                    match yaml::to_json(item) {
                        Value::Object(m) if m.get("name").is_some_and(Value::is_string) => {
                            play.vars_prompt.push(m)
                        }
                        _ => {
                            return Err(perr(
                                file,
                                item,
                                "a vars_prompt entry must be a mapping with a name",
                            ))
                        }
                    }
                }
            }
            "gather_facts" => play.gather_facts = Some(yaml::to_json(v)),
            "gather_subset" => play.gather_subset = Some(yaml::to_json(v)),
            "gather_timeout" => play.gather_timeout = Some(yaml::to_json(v)),
            "fact_path" => play.fact_path = Some(yaml::to_json(v)),
            "serial" => play.serial = Some(yaml::to_json(v)),
            "max_fail_percentage" => play.max_fail_percentage = Some(yaml::to_json(v)),
            "strategy" => play.strategy = Some(scalar_string(v)),
            "order" => play.order = Some(scalar_string(v)),
            "force_handlers" => play.force_handlers = matches!(v.kind, Kind::Bool(true)),
            "pre_tasks" | "tasks" | "post_tasks" | "handlers" | "roles" => {}
            k2 if PLAY_KEYS.contains(&k2) => {}
            other => {
                return Err(perr(
                    file,
                    k,
                    format!("'{other}' is not a valid attribute for a Play"),
                ));
            }
        }
    }
    if play.hosts.is_empty() {
        return Err(perr(
            file,
            node,
            "the field 'hosts' is required but was not set",
        ));
    }
    if play.name.is_empty() {
        play.name = play.hosts.clone();
    }
    let section = |name: &str| -> Result<Vec<Task>> {
        match node.get(name) {
            Some(n) if !n.is_null() => load_tasks(n, file, base_dir, None, ctx, 0),
            _ => Ok(Vec::new()),
        }
    };
    play.pre_tasks = section("pre_tasks")?;
    play.tasks = section("tasks")?;
    play.post_tasks = section("post_tasks")?;
    play.handlers = section("handlers")?;
    play.handlers
        .extend(ctx.extra_handlers.lock().expect("handlers").drain(..));
    if let Some(roles) = node.get("roles").filter(|n| !n.is_null()) {
        let items = roles
            .as_seq()
            .ok_or_else(|| perr(file, roles, "roles must be a list"))?;
        let mut seen = Vec::new();
        let mut role_handlers = Vec::new();
        for r in items {
            let req = RoleRequest::from_node(r, file)?;
            let loaded = role::load(&req, base_dir, ctx, &mut seen, 0)?;
            play.role_tasks.extend(loaded.tasks);
            role_handlers.extend(loaded.handlers);
            play.roles.extend(loaded.roles);
        }
        // Ansible lists the roles' handlers before the play's own.
        role_handlers.append(&mut play.handlers);
        play.handlers = role_handlers;
    }
    // Play keywords flow into every task.
    for t in play
        .pre_tasks
        .iter_mut()
        .chain(play.role_tasks.iter_mut())
        .chain(play.tasks.iter_mut())
        .chain(play.post_tasks.iter_mut())
    {
        inherit_deep(t, &play_inheritable(&play.kw));
    }
    for h in play.handlers.iter_mut() {
        inherit_deep(h, &play_inheritable(&play.kw));
    }
    Ok(play)
}

/// Play vars live in their own precedence layer, so they are not copied into tasks.
fn play_inheritable(kw: &Keywords) -> Keywords {
    let mut k = kw.clone();
    k.vars = Map::new();
    k.when = Vec::new();
    k
}

/// Keywords flow into a task and, for blocks, into every task inside them
/// (the block's own keywords were already pushed into its children).
pub fn inherit_deep(t: &mut Task, parent: &Keywords) {
    t.kw.inherit(parent);
    if let Action::Block {
        block,
        rescue,
        always,
    } = &mut t.action
    {
        for c in block
            .iter_mut()
            .chain(rescue.iter_mut())
            .chain(always.iter_mut())
        {
            inherit_deep(c, parent);
        }
    }
}

fn scalar_string(n: &Node) -> String {
    match &n.kind {
        Kind::Str(s) => s.clone(),
        Kind::Null => String::new(),
        _ => n.key_str(),
    }
}

fn as_list(v: &Node) -> Vec<Value> {
    match yaml::to_json(v) {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn string_list(v: &Node) -> Vec<String> {
    as_list(v)
        .into_iter()
        .map(|x| match x {
            Value::String(s) => s,
            other => other.to_string(),
        })
        .collect()
}

/// A task has one loop: `loop` and `with_*` together (or two `with_*`) is an error.
fn no_second_loop(task: &Task, file: &Path, key: &Node) -> Result<()> {
    match &task.loop_ {
        Some(Loop::With(first, _)) => {
            let first = if first == "loop" {
                "loop".to_string()
            } else {
                format!("with_{first}")
            };
            Err(perr(
                file,
                key,
                format!(
                    "a task takes one loop: '{first}' and '{}' cannot be used together",
                    key.key_str()
                ),
            ))
        }
        _ => Ok(()),
    }
}

/// Parses a keyword shared by plays, blocks and tasks. Returns false when `key` is not one.
fn parse_keyword(kw: &mut Keywords, key: &str, v: &Node, file: &Path) -> Result<bool> {
    let j = || Some(yaml::to_json(v));
    match key {
        "when" => kw.when = as_list(v),
        "tags" => {
            let scalar = |n: &Node| !(n.as_seq().is_some() || n.as_map().is_some());
            if !(scalar(v) || v.as_seq().is_some_and(|items| items.iter().all(scalar))) {
                return Err(perr(file, v, "tags must be a string or a list of strings"));
            }
            kw.tags = string_list(v)
                .into_iter()
                .flat_map(|t| {
                    t.split(',')
                        .map(|s| s.trim().to_string())
                        .collect::<Vec<_>>()
                })
                .filter(|t| !t.is_empty())
                .collect()
        }
        "vars" => match yaml::to_json(v) {
            Value::Object(m) => kw.vars = m,
            Value::Null => {}
            _ => return Err(perr(file, v, "vars must be a mapping")),
        },
        "environment" => match yaml::to_json(v) {
            Value::Object(m) => kw.environment = m,
            Value::Null => {}
            Value::String(s) => {
                kw.environment
                    .insert("__template__".into(), Value::String(s));
            }
            _ => return Err(perr(file, v, "environment must be a mapping")),
        },
        "become" => kw.r#become = j(),
        "become_user" => kw.become_user = j(),
        "become_method" => kw.become_method = j(),
        "become_flags" => kw.become_flags = j(),
        "check_mode" => kw.check_mode = j(),
        "diff" => kw.diff = j(),
        "ignore_errors" => kw.ignore_errors = j(),
        "ignore_unreachable" => kw.ignore_unreachable = j(),
        "no_log" => kw.no_log = j(),
        "delegate_to" => kw.delegate_to = j(),
        "run_once" => kw.run_once = j(),
        "any_errors_fatal" => kw.any_errors_fatal = j(),
        "throttle" => kw.throttle = j(),
        _ => return Ok(false),
    }
    Ok(true)
}

pub(crate) fn load_tasks(
    node: &Node,
    file: &Path,
    base_dir: &Path,
    role: Option<&Arc<Role>>,
    ctx: &LoadCtx,
    depth: usize,
) -> Result<Vec<Task>> {
    if node.is_null() {
        return Ok(Vec::new());
    }
    let items = node.as_seq().ok_or_else(|| {
        perr(
            file,
            node,
            format!("a task list must be a list, found a {}", node.type_name()),
        )
    })?;
    let mut out = Vec::new();
    for item in items {
        out.extend(load_task(item, file, base_dir, role, ctx, depth)?);
    }
    Ok(out)
}

/// Reads a task file (for `import_tasks`, roles and `include_tasks` at run time).
pub fn load_task_file(
    path: &Path,
    role: Option<&Arc<Role>>,
    ctx: &LoadCtx,
    depth: usize,
) -> Result<Vec<Task>> {
    if depth > MAX_IMPORT_DEPTH {
        return Err(Error::Other(format!(
            "{}: task files included too deeply (a loop?)",
            path.display()
        )));
    }
    let docs = yaml::load_file(path)?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    match docs.first() {
        Some(doc) => load_tasks(&doc.root, path, &base, role, ctx, depth + 1),
        None => Ok(Vec::new()),
    }
}

const TASK_KEYS: &[&str] = &[
    "name",
    "loop",
    "loop_control",
    "register",
    "until",
    "retries",
    "delay",
    "changed_when",
    "failed_when",
    "notify",
    "listen",
    "args",
    "action",
    "local_action",
    "block",
    "rescue",
    "always",
    "delegate_facts",
    "timeout",
    "collections",
    "module_defaults",
    "debugger",
    "connection",
    "port",
    "remote_user",
    "become_exe",
    "async",
    "poll",
];

const IGNORED_KEYS: &[&str] = &[
    "delegate_facts",
    "collections",
    "module_defaults",
    "debugger",
    "connection",
    "port",
    "remote_user",
    "become_exe",
];

fn canonical_action(name: &str) -> &str {
    name.strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name)
}

fn load_task(
    node: &Node,
    file: &Path,
    base_dir: &Path,
    role: Option<&Arc<Role>>,
    ctx: &LoadCtx,
    depth: usize,
) -> Result<Vec<Task>> {
    let map = node.as_map().ok_or_else(|| {
        perr(
            file,
            node,
            format!("a task must be a mapping, found a {}", node.type_name()),
        )
    })?;
    let mut kw = Keywords::default();
    let mut task = Task {
        role: role.cloned(),
        ..Task::new(
            loc(file, node),
            Action::Meta("noop".into()),
            base_dir.to_path_buf(),
        )
    };
    let mut action: Option<(String, &Node, &Node)> = None;
    let mut extra_args: Map<String, Value> = Map::new();
    let mut is_block = false;
    for (k, v) in map {
        let key = k.key_str();
        if parse_keyword(&mut kw, &key, v, file)? {
            continue;
        }
        match key.as_str() {
            "name" => task.name = Some(scalar_string(v)),
            "loop" => {
                no_second_loop(&task, file, k)?;
                task.loop_ = Some(Loop::With("loop".into(), yaml::to_json(v)))
            }
            "loop_control" => task.loop_control = parse_loop_control(v, file)?,
            "register" => {
                let r = scalar_string(v);
                if !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || r.is_empty() {
                    return Err(perr(
                        file,
                        v,
                        format!("invalid variable name in 'register': {r:?}"),
                    ));
                }
                task.register = Some(r)
            }
            "until" => task.until = Some(yaml::to_json(v)),
            "retries" => task.retries = Some(yaml::to_json(v)),
            "delay" => task.delay = Some(yaml::to_json(v)),
            "timeout" => task.timeout = Some(yaml::to_json(v)),
            "changed_when" => task.changed_when = Some(as_list(v)),
            "failed_when" => task.failed_when = Some(as_list(v)),
            "notify" => task.notify = string_list(v),
            "listen" => task.listen = string_list(v),
            "args" => match yaml::to_json(v) {
                Value::Object(m) => extra_args = m,
                Value::Null => {}
                _ => return Err(perr(file, v, "args must be a mapping")),
            },
            "block" | "rescue" | "always" => is_block = true,
            "async" => task.async_ = Some(yaml::to_json(v)),
            "poll" => task.poll = Some(yaml::to_json(v)),
            "action" | "local_action" => {
                let (name, rest) = match &v.kind {
                    Kind::Str(s) => {
                        let s = s.trim();
                        match s.split_once(char::is_whitespace) {
                            Some((m, r)) => (m.to_string(), Some(r.to_string())),
                            None => (s.to_string(), None),
                        }
                    }
                    Kind::Map(_) => (
                        v.get("module")
                            .map(scalar_string)
                            .ok_or_else(|| perr(file, v, "action needs a module"))?,
                        None,
                    ),
                    _ => return Err(perr(file, v, "action must be a string or a mapping")),
                };
                if key == "local_action" {
                    kw.delegate_to = Some(Value::String("localhost".into()));
                }
                if let Some(m) = v.as_map() {
                    for (ak, av) in m {
                        if ak.key_str() != "module" {
                            extra_args.insert(ak.key_str(), yaml::to_json(av));
                        }
                    }
                }
                if let Some(r) = rest {
                    let free = crate::modules::is_free_form(canonical_action(&name));
                    extra_args.extend(parse_kv(&r, free).map_err(|e| perr(file, v, e))?);
                }
                // Arguments are already in `extra_args`: the key node stands for "none".
                action = Some((name, k, k));
            }
            k2 if k2.starts_with("with_") => {
                no_second_loop(&task, file, k)?;
                task.loop_ = Some(Loop::With(
                    k2["with_".len()..].to_string(),
                    yaml::to_json(v),
                ));
            }
            k2 if IGNORED_KEYS.contains(&k2) || TASK_KEYS.contains(&k2) => {}
            _ => {
                if let Some((prev, _, _)) = &action {
                    return Err(perr(
                        file,
                        k,
                        format!("conflicting action statements: {prev}, {key} (or '{key}' is not a valid task keyword)"),
                    ));
                }
                action = Some((key, k, v));
            }
        }
    }
    task.kw = kw;
    if is_block {
        if let Some((name, k, _)) = action {
            return Err(perr(
                file,
                k,
                format!("a block cannot also call a module ('{name}')"),
            ));
        }
        let sec = |n: &str| match node.get(n) {
            Some(x) => load_tasks(x, file, base_dir, role, ctx, depth),
            None => Ok(Vec::new()),
        };
        let (mut block, mut rescue, mut always) = (sec("block")?, sec("rescue")?, sec("always")?);
        // Block keywords flow into its tasks; the block keeps them for display only.
        let parent = task.kw.clone();
        for t in block
            .iter_mut()
            .chain(rescue.iter_mut())
            .chain(always.iter_mut())
        {
            inherit_deep(t, &parent);
        }
        task.kw = Keywords::default();
        task.action = Action::Block {
            block,
            rescue,
            always,
        };
        return Ok(vec![task]);
    }
    let Some((name, knode, vnode)) = action else {
        return Err(perr(file, node, "no module/action detected in task"));
    };
    let canon = canonical_action(&name).to_string();
    let raw_args = |free: bool| -> Result<Map<String, Value>> {
        let mut args = if std::ptr::eq(knode, vnode) {
            Map::new()
        } else {
            match &vnode.kind {
                Kind::Null => Map::new(),
                Kind::Map(_) => match yaml::to_json(vnode) {
                    Value::Object(m) => m,
                    _ => Map::new(),
                },
                Kind::Str(s) => parse_kv(s, free).map_err(|e| perr(file, vnode, e))?,
                _ if free => {
                    let mut m = Map::new();
                    m.insert("_raw_params".into(), yaml::to_json(vnode));
                    m
                }
                _ => {
                    return Err(perr(
                        file,
                        vnode,
                        format!("arguments of '{name}' must be a mapping or k=v string"),
                    ))
                }
            }
        };
        args.extend(extra_args.clone());
        Ok(args)
    };
    match canon.as_str() {
        "import_tasks" | "include" => {
            let args = raw_args(true)?;
            let rel = args
                .get("_raw_params")
                .or_else(|| args.get("file"))
                .and_then(Value::as_str)
                .ok_or_else(|| perr(file, vnode, "import_tasks needs a file name"))?;
            if crate::template::has_template(rel) {
                return Err(perr(file, vnode, "import_tasks is static: its file name cannot use variables (use include_tasks)"));
            }
            let path = resolve_task_path(rel, base_dir, role);
            if !path.is_file() {
                return Err(perr(
                    file,
                    vnode,
                    format!("could not find imported task file {}", path.display()),
                ));
            }
            let mut tasks = load_task_file(&path, role, ctx, depth)?;
            for t in &mut tasks {
                inherit_deep(t, &task.kw);
            }
            Ok(tasks)
        }
        "include_tasks" => {
            let args = raw_args(true)?;
            let file_v = args
                .get("_raw_params")
                .or_else(|| args.get("file"))
                .cloned()
                .ok_or_else(|| perr(file, vnode, "include_tasks needs a file name"))?;
            let apply = match args.get("apply") {
                Some(Value::Object(m)) => {
                    let mut k = Keywords::default();
                    for (ak, av) in m {
                        let n = json_node(av);
                        if !parse_keyword(&mut k, ak, &n, file)? {
                            return Err(perr(
                                file,
                                vnode,
                                format!("'{ak}' is not valid in include_tasks apply"),
                            ));
                        }
                    }
                    Some(Box::new(k))
                }
                _ => None,
            };
            task.action = Action::IncludeTasks {
                file: file_v,
                apply,
            };
            Ok(vec![task])
        }
        "import_role" => {
            let args = raw_args(false)?;
            let mut req = RoleRequest::from_args(&args).map_err(|e| perr(file, vnode, e))?;
            req.loc = Some(Location::new(file, vnode.line, vnode.col));
            let mut seen = Vec::new();
            let loaded = role::load(&req, base_dir, ctx, &mut seen, depth + 1)?;
            let mut tasks = loaded.tasks;
            for t in &mut tasks {
                inherit_deep(t, &task.kw);
            }
            // Handlers of statically imported roles join the play's handlers.
            ctx.extra_handlers
                .lock()
                .expect("handlers")
                .extend(loaded.handlers);
            Ok(tasks)
        }
        "include_role" => {
            task.action = Action::IncludeRole {
                args: raw_args(false)?,
            };
            Ok(vec![task])
        }
        "include_vars" => {
            task.action = Action::IncludeVars {
                args: raw_args(true)?,
            };
            Ok(vec![task])
        }
        "meta" => {
            let args = raw_args(true)?;
            let m = args
                .get("_raw_params")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    perr(
                        file,
                        vnode,
                        "meta needs an action (flush_handlers, end_play, ...)",
                    )
                })?;
            const METAS: &[&str] = &[
                "flush_handlers",
                "end_play",
                "end_host",
                "end_batch",
                "clear_facts",
                "clear_host_errors",
                "noop",
                "refresh_inventory",
                "reset_connection",
            ];
            if !METAS.contains(&m) {
                return Err(perr(file, vnode, format!("invalid meta action {m:?}")));
            }
            task.action = Action::Meta(m.to_string());
            Ok(vec![task])
        }
        _ => {
            let module = crate::modules::find(&canon).ok_or_else(|| {
                perr(file, knode, format!("couldn't resolve module/action '{name}'. This often indicates a misspelling, missing collection, or incorrect module path."))
            })?;
            let args = raw_args(module.spec().free_form)?;
            module.spec().check_keys(&args).map_err(|e| {
                // Point at the first unknown key when the arguments are a mapping.
                let at = match &vnode.kind {
                    Kind::Map(entries) => entries
                        .iter()
                        .map(|(k, _)| k)
                        .find(|k| match &k.kind {
                            Kind::Str(s) => !module.spec().unknown_keys([s.as_str()]).is_empty(),
                            _ => false,
                        })
                        .unwrap_or(vnode),
                    _ => vnode,
                };
                perr(file, at, format!("{name}: {e}"))
            })?;
            task.action = Action::Module {
                module: module.spec().name.to_string(),
                args,
            };
            Ok(vec![task])
        }
    }
}

/// Turns a runtime value back into a node (for `apply:` keywords).
fn json_node(v: &Value) -> Node {
    let kind = match v {
        Value::Null => Kind::Null,
        Value::Bool(b) => Kind::Bool(*b),
        Value::Number(n) => n
            .as_i64()
            .map(Kind::Int)
            .unwrap_or_else(|| Kind::Float(n.as_f64().unwrap_or(0.0))),
        Value::String(s) => Kind::Str(s.clone()),
        Value::Array(a) => Kind::Seq(a.iter().map(json_node).collect()),
        Value::Object(m) => Kind::Map(
            m.iter()
                .map(|(k, v)| (json_node(&Value::String(k.clone())), json_node(v)))
                .collect(),
        ),
    };
    Node {
        kind,
        line: 0,
        col: 0,
        tag: None,
    }
}

/// Where a relative task file is found: the including file's dir, then the role's `tasks/`.
pub fn resolve_task_path(rel: &str, base_dir: &Path, role: Option<&Arc<Role>>) -> PathBuf {
    let p = Path::new(rel);
    if p.is_absolute() {
        return p.to_path_buf();
    }
    let mut cands = vec![base_dir.join(p)];
    if let Some(r) = role {
        cands.push(r.path.join("tasks").join(p));
        cands.push(r.path.join(p));
    }
    cands
        .iter()
        .find(|c| c.is_file())
        .cloned()
        .unwrap_or_else(|| cands.remove(0))
}

fn parse_loop_control(v: &Node, file: &Path) -> Result<LoopControl> {
    let mut lc = LoopControl::default();
    let map = v
        .as_map()
        .ok_or_else(|| perr(file, v, "loop_control must be a mapping"))?;
    for (k, val) in map {
        match k.key_str().as_str() {
            "loop_var" => lc.loop_var = Some(scalar_string(val)),
            "index_var" => lc.index_var = Some(scalar_string(val)),
            "label" => lc.label = Some(yaml::to_json(val)),
            "pause" => lc.pause = yaml::to_json(val).as_f64(),
            "extended" => lc.extended = matches!(val.kind, Kind::Bool(true)),
            "extended_allitems" => {}
            other => {
                return Err(perr(
                    file,
                    k,
                    format!("'{other}' is not a valid loop_control option"),
                ))
            }
        }
    }
    Ok(lc)
}
