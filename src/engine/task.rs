//! Running tasks on hosts: scopes, conditionals, loops, module calls,
//! registering, notifying, blocks and includes.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde_json::{Map, Value};

use super::play::{flush, handler_names, PlayCtx};
use super::result::{HostResult, ItemResult, NewFacts, Status};
use super::Run;
use crate::connection::{local::Local, Become, Connection};
use crate::error::{Error, Result};
use crate::modules::{self, to_bool, Ctx, ModError, Outcome};
use crate::playbook::{self, Action, Keywords, Loop, Task};
use crate::template::Scope;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Normal,
    Handler,
    /// `always:` runs on hosts that failed in the block too.
    Always,
}

fn tags_selected(run: &Run, task: &Task) -> bool {
    let tags = &task.kw.tags;
    let cfg = &run.cfg;
    let has = |t: &str| tags.iter().any(|x| x == t);
    if cfg.skip_tags.iter().any(|s| {
        has(s)
            || (s == "tagged" && !tags.is_empty())
            || (s == "untagged" && tags.is_empty())
            || s == "all"
    }) {
        return false;
    }
    // `never` tasks run only when one of their tags (or `never`) is asked for.
    if has("never") && !cfg.tags.iter().any(|t| has(t)) {
        return false;
    }
    if cfg.tags.is_empty() || cfg.tags.iter().any(|t| t == "all") {
        return true;
    }
    if has("always") {
        return true;
    }
    cfg.tags.iter().any(|t| {
        has(t) || (t == "tagged" && !tags.is_empty()) || (t == "untagged" && tags.is_empty())
    })
}

fn block_selected(run: &Run, task: &Task) -> bool {
    match &task.action {
        Action::Block {
            block,
            rescue,
            always,
        } => block
            .iter()
            .chain(rescue)
            .chain(always)
            .any(|t| block_selected(run, t)),
        _ => tags_selected(run, task),
    }
}

/// Runs a task list over `hosts` (linear strategy: each task on all hosts, then the next).
pub fn run_tasks<'a>(
    run: &'a Arc<Run>,
    pc: &'a PlayCtx<'a>,
    tasks: &'a [Task],
    hosts: &'a [String],
    section: Section,
) -> futures::future::BoxFuture<'a, Result<()>> {
    Box::pin(async move {
        for task in tasks {
            if pc.end_play.load(Ordering::SeqCst) {
                return Ok(());
            }
            let active: Vec<String> = hosts
                .iter()
                .filter(|h| {
                    let st = run.host_state(h);
                    // Handlers get the hosts `flush` chose (failed ones too
                    // under force_handlers).
                    if matches!(section, Section::Always | Section::Handler) {
                        !st.unreachable && !st.ended
                    } else {
                        st.active()
                    }
                })
                .cloned()
                .collect();
            if active.is_empty() {
                return Ok(());
            }
            if !block_selected(run, task) {
                continue;
            }
            if !start_at_reached(run, task) {
                continue;
            }
            match &task.action {
                Action::Block {
                    block,
                    rescue,
                    always,
                } => {
                    let failed_before: Vec<bool> =
                        active.iter().map(|h| run.host_state(h).failed).collect();
                    run_tasks(run, pc, block, &active, section).await?;
                    let failed_now: Vec<String> = active
                        .iter()
                        .zip(failed_before)
                        .filter(|(h, before)| {
                            !before && {
                                let s = run.host_state(h);
                                s.failed && !s.unreachable
                            }
                        })
                        .map(|(h, _)| h.clone())
                        .collect();
                    if !rescue.is_empty() && !failed_now.is_empty() {
                        for h in &failed_now {
                            run.update_host(h, |s| s.failed = false);
                            run.stat_mut(h, |s| {
                                s.rescued += 1;
                                s.failures = s.failures.saturating_sub(1);
                            });
                        }
                        run_tasks(run, pc, rescue, &failed_now, section).await?;
                    }
                    if !always.is_empty() {
                        run_tasks(run, pc, always, &active, Section::Always).await?;
                    }
                }
                Action::Meta(m) => run_meta(run, pc, task, m, &active).await?,
                Action::IncludeTasks { .. } | Action::IncludeRole { .. } => {
                    run_include(run, pc, task, &active, section).await?
                }
                _ => run_module_task(run, pc, task, &active, section).await?,
            }
        }
        Ok(())
    })
}

fn start_at_reached(run: &Run, task: &Task) -> bool {
    let mut guard = run.start_at.lock().expect("start_at");
    match guard.as_deref() {
        None => true,
        Some(name) => {
            if matches!(task.action, Action::Block { .. }) {
                return true;
            }
            let dn = task.display_name();
            if task.name.as_deref() == Some(name) || dn == name {
                *guard = None;
                true
            } else {
                false
            }
        }
    }
}

async fn run_meta(
    run: &Arc<Run>,
    pc: &PlayCtx<'_>,
    task: &Task,
    m: &str,
    hosts: &[String],
) -> Result<()> {
    let mut targets = Vec::new();
    for h in hosts {
        let scope = task_scope(run, pc, task, h, None);
        if eval_when(run, &task.kw.when, &scope).unwrap_or(false) {
            targets.push(h.clone());
        }
    }
    match m {
        "flush_handlers" => flush(run, pc, &targets).await?,
        "end_play" if !targets.is_empty() => {
            pc.end_play.store(true, Ordering::SeqCst);
            for h in hosts {
                run.update_host(h, |s| s.ended = true);
            }
        }
        "end_host" | "end_batch" => {
            let all = m == "end_batch";
            for h in if all && !targets.is_empty() {
                hosts
            } else {
                &targets[..]
            } {
                run.update_host(h, |s| s.ended = true);
            }
        }
        "clear_facts" => {
            for h in &targets {
                run.update_host(h, |s| s.clear_facts());
            }
        }
        "clear_host_errors" => {
            for h in run.inv.hosts.keys() {
                run.update_host(h, |s| s.failed = false);
            }
        }
        "reset_connection" => {
            let mut conns = run.conns.lock().await;
            for h in &targets {
                if let Some(c) = conns.remove(h) {
                    c.close().await;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The variable scope of a task on a host, lowest precedence first.
pub fn task_scope(
    run: &Arc<Run>,
    pc: &PlayCtx<'_>,
    task: &Task,
    host: &str,
    extra: Option<&Map<String, Value>>,
) -> Scope {
    let st = run.host_state(host);
    let mut s = Scope::new();
    s.set_hostvars(Arc::new(super::HostVars(Arc::downgrade(run))));
    s.push_map(run.cfg.config_vars.clone());
    s.push(pc.role_defaults.clone());
    if let Some(r) = &task.role {
        s.push(r.defaults.clone());
    }
    s.push(st.inv_vars.clone());
    s.push_facts(st.facts.clone());
    s.push(pc.play_vars.clone());
    if let Some(vf) = pc.vars_files.lock().expect("vars_files").get(host) {
        s.push(vf.clone());
    }
    s.push(pc.role_vars.clone());
    if let Some(r) = &task.role {
        s.push(r.vars.clone());
    }
    s.push_map(task.kw.vars.clone());
    s.push(st.vars.clone());
    if let Some(r) = &task.role {
        s.push(r.params.clone());
    }
    if let Some(e) = extra {
        s.push_map(e.clone());
    }
    s.push(run.play_magic());
    let mut magic = run.magic(host);
    if let Some(r) = &task.role {
        magic.insert(
            "role_path".into(),
            Value::String(r.path.to_string_lossy().into_owned()),
        );
        magic.insert("role_name".into(), Value::String(r.name.clone()));
    }
    s.push_map(magic);
    s.push(run.extra_vars.clone());
    s
}

fn eval_when(run: &Run, when: &[Value], scope: &Scope) -> std::result::Result<bool, String> {
    for c in when {
        // Ansible stops at the first false condition.
        if !run.templar.eval_bool(c, scope)? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn render_bool(
    run: &Run,
    v: &Option<Value>,
    scope: &Scope,
) -> std::result::Result<Option<bool>, String> {
    match v {
        None => Ok(None),
        Some(v) => {
            let r = run.templar.render(v, scope)?;
            Ok(Some(to_bool(&r).unwrap_or(false)))
        }
    }
}

fn render_str(
    run: &Run,
    v: &Option<Value>,
    scope: &Scope,
) -> std::result::Result<Option<String>, String> {
    match v {
        None => Ok(None),
        Some(v) => match run.templar.render(v, scope)? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            other => Ok(Some(other.to_string())),
        },
    }
}

async fn run_module_task(
    run: &Arc<Run>,
    pc: &PlayCtx<'_>,
    task: &Task,
    hosts: &[String],
    section: Section,
) -> Result<()> {
    let is_handler = section == Section::Handler;
    let title = {
        // Names may use variables; like Ansible, render them when that works.
        let raw = task.display_name();
        if crate::template::has_template(&raw) {
            let scope = task_scope(run, pc, task, &hosts[0], None);
            match run.templar.render(&Value::String(raw.clone()), &scope) {
                Ok(Value::String(s)) => s,
                _ => raw,
            }
        } else {
            raw
        }
    };
    run.reporter.lock().expect("reporter").task_start(
        &title,
        is_handler,
        task.module().unwrap_or(""),
    );
    let run_once = {
        let scope = task_scope(run, pc, task, &hosts[0], None);
        render_bool(run, &task.kw.run_once, &scope)
            .unwrap_or(None)
            .unwrap_or(false)
    };
    let exec_hosts: &[String] = if run_once { &hosts[..1] } else { hosts };
    let forks = throttle(run, task, pc, &hosts[0]);
    let results: Vec<HostResult> = stream::iter(exec_hosts.iter().cloned())
        .map(|h| async move { run_on_host(run, pc, task, &h).await })
        .buffered(forks)
        .collect()
        .await;
    if run_once {
        // The one result stands for every host (Ansible's run_once).
        let first = results[0].clone();
        for h in &hosts[1..] {
            if let Some(reg) = &task.register {
                run.update_host(h, |s| s.set_var(reg, Value::Object(first.result.clone())));
            }
            if matches!(first.status, Status::Changed) {
                notify(run, pc, task, h, &task_scope(run, pc, task, h, None));
            }
            if let Some(f) = first.result.get("ansible_facts").and_then(Value::as_object) {
                if task.module() == Some("set_fact") {
                    for (k, v) in f {
                        run.update_host(h, |s| s.set_var(k, v.clone()));
                    }
                }
            }
        }
    }
    let mut any_failed = false;
    for r in &results {
        match r.status {
            Status::Failed if !r.ignored => {
                any_failed = true;
                run.update_host(&r.host, |s| s.failed = true);
                run.stat_mut(&r.host, |s| s.failures += 1);
            }
            Status::Failed => run.stat_mut(&r.host, |s| s.ignored += 1),
            Status::Unreachable if !r.ignored => {
                run.update_host(&r.host, |s| s.unreachable = true);
                run.stat_mut(&r.host, |s| s.unreachable += 1);
            }
            Status::Unreachable => run.stat_mut(&r.host, |s| s.ignored += 1),
            Status::Skipped => run.stat_mut(&r.host, |s| s.skipped += 1),
            Status::Changed => run.stat_mut(&r.host, |s| {
                s.ok += 1;
                s.changed += 1
            }),
            Status::Ok => run.stat_mut(&r.host, |s| s.ok += 1),
        }
        // Vault values are shown as ******** (the registered result keeps them).
        let masked;
        let r = if crate::vault::masking() {
            let mut m = r.clone();
            m.result.values_mut().for_each(crate::vault::mask_json);
            for it in &mut m.items {
                it.result.values_mut().for_each(crate::vault::mask_json);
                crate::vault::mask_str(&mut it.label);
            }
            masked = m;
            &masked
        } else {
            r
        };
        run.reporter
            .lock()
            .expect("reporter")
            .host_result(r, run.cfg.verbosity, run.cfg.diff);
    }
    let fatal = {
        let scope = task_scope(run, pc, task, &hosts[0], None);
        render_bool(run, &task.kw.any_errors_fatal, &scope)
            .unwrap_or(None)
            .unwrap_or(false)
    };
    if any_failed && fatal {
        for h in run.inv.hosts.keys() {
            run.update_host(h, |s| {
                if s.active() {
                    s.failed = true;
                }
            });
        }
        pc.end_play.store(true, Ordering::SeqCst);
    }
    Ok(())
}

fn throttle(run: &Run, task: &Task, _pc: &PlayCtx<'_>, _host: &str) -> usize {
    let forks = run.cfg.forks.max(1);
    match task.kw.throttle.as_ref().and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    }) {
        Some(t) if t > 0 => forks.min(t as usize),
        _ => forks,
    }
}

/// Loop items of a task for a host.
fn loop_items(
    run: &Run,
    task: &Task,
    scope: &Scope,
) -> std::result::Result<Option<Vec<Value>>, String> {
    let Some(Loop::With(kind, terms)) = &task.loop_ else {
        return Ok(None);
    };
    const LOOKUPS: &[&str] = &[
        "fileglob",
        "first_found",
        "file",
        "lines",
        "env",
        "template",
        "pipe",
        "vars",
        "inventory_hostnames",
    ];
    if LOOKUPS.contains(&kind.as_str()) {
        let rendered = run.templar.render(terms, scope)?;
        let mut inner = scope.clone();
        let mut m = Map::new();
        m.insert("__ferry_terms".into(), rendered);
        inner = inner.with(m);
        let v = run
            .templar
            .eval_expr(&format!("query('{kind}', __ferry_terms)"), &inner)?;
        return Ok(Some(match v {
            Value::Array(a) => a,
            other => vec![other],
        }));
    }
    let rendered = run.templar.render(terms, scope)?;
    // `with_items: "{{ x }}"` where x is a plain string gives one item.
    playbook::loops::with_items(kind, rendered).map(Some)
}

fn loop_layer(
    task: &Task,
    item: &Value,
    index: usize,
    total: usize,
    items: &[Value],
) -> Map<String, Value> {
    let var = task
        .loop_control
        .loop_var
        .clone()
        .unwrap_or_else(|| "item".into());
    let mut m = Map::new();
    m.insert(var.clone(), item.clone());
    m.insert("ansible_loop_var".into(), Value::String(var));
    if let Some(iv) = &task.loop_control.index_var {
        m.insert(iv.clone(), Value::from(index));
        m.insert("ansible_index_var".into(), Value::String(iv.clone()));
    }
    if task.loop_control.extended {
        m.insert(
            "ansible_loop".into(),
            serde_json::json!({
                "index": index + 1, "index0": index, "revindex": total - index, "revindex0": total - index - 1,
                "first": index == 0, "last": index + 1 == total, "length": total,
                "previtem": if index > 0 { items[index - 1].clone() } else { Value::Null },
                "nextitem": items.get(index + 1).cloned().unwrap_or(Value::Null),
                "allitems": items,
            }),
        );
    }
    m
}

async fn run_on_host(run: &Arc<Run>, pc: &PlayCtx<'_>, task: &Task, host: &str) -> HostResult {
    let scope = task_scope(run, pc, task, host, None);
    let no_log = render_bool(run, &task.kw.no_log, &scope)
        .ok()
        .flatten()
        .unwrap_or(false);
    let mut res = run_on_host_inner(run, pc, task, host, &scope).await;
    res.no_log = no_log;
    if res.status == Status::Failed && !res.ignored {
        // Failures before the module ran (bad arguments, become) are ignorable too.
        res.ignored = render_bool(run, &task.kw.ignore_errors, &scope)
            .ok()
            .flatten()
            .unwrap_or(false);
    }
    if task.module() == Some("debug") {
        res.show = true;
    }
    let notify_failed = match res.status {
        Status::Changed => notify(run, pc, task, host, &scope),
        _ => None,
    };
    // The scope shares the host's variables: without it they change in place.
    drop(scope);
    if let Some(f) = res.facts.take() {
        apply_facts(run, host, f);
    }
    if let Some(reg) = &task.register {
        let v = Value::Object(res.result.clone());
        run.update_host(host, |s| s.set_var(reg, v));
    }
    match notify_failed {
        Some(msg) => HostResult::failed(host, &msg),
        None => res,
    }
}

fn apply_facts(run: &Run, host: &str, f: NewFacts) {
    run.update_host(host, |s| match f {
        NewFacts::Vars(vars) => {
            for (k, v) in vars {
                s.set_var(&k, v);
            }
        }
        NewFacts::Facts { map, plain } => s.add_facts(&map, plain),
    });
}

/// Records handler notifications; an unknown handler name is an error.
fn notify(run: &Run, pc: &PlayCtx<'_>, task: &Task, host: &str, scope: &Scope) -> Option<String> {
    if task.notify.is_empty() {
        return None;
    }
    let handlers = pc.handlers.lock().expect("handlers");
    for n in &task.notify {
        let name = match run.templar.render(&Value::String(n.clone()), scope) {
            Ok(Value::String(s)) => s,
            _ => n.clone(),
        };
        if !handlers.iter().any(|h| handler_names(h).contains(&name)) {
            return Some(format!("The requested handler '{name}' was not found in either the main handlers list nor in the listening handlers list"));
        }
        run.update_host(host, |s| {
            s.notified.insert(name.clone());
        });
    }
    None
}

async fn run_on_host_inner(
    run: &Arc<Run>,
    pc: &PlayCtx<'_>,
    task: &Task,
    host: &str,
    scope: &Scope,
) -> HostResult {
    let fail_at = |msg: String| {
        HostResult::failed(
            host,
            &format!("{msg}\n\nThe error appears to be in '{}'", task.loc),
        )
    };
    let items = match loop_items(run, task, scope) {
        Ok(i) => i,
        Err(e) => {
            // With a false `when`, a broken loop expression does not matter.
            if let Ok(false) = eval_when(run, &task.kw.when, scope) {
                return HostResult::skipped(host, "Conditional result was False");
            }
            return fail_at(e);
        }
    };
    let Some(items) = items else {
        match eval_when(run, &task.kw.when, scope) {
            Ok(true) => {}
            Ok(false) => {
                let mut r = HostResult::skipped(host, "Conditional result was False");
                r.result.insert(
                    "false_condition".into(),
                    task.kw.when.iter().last().cloned().unwrap_or(Value::Null),
                );
                return r;
            }
            Err(e) => {
                return fail_at(format!(
                    "The conditional check '{}' failed. The error was: {e}",
                    when_text(&task.kw.when)
                ))
            }
        }
        return exec_once(run, pc, task, host, scope).await;
    };
    if items.is_empty() {
        let mut r = HostResult::skipped(host, "No items in the list");
        r.result.insert("results".into(), Value::Array(Vec::new()));
        return r;
    }
    let total = items.len();
    let mut results = Vec::new();
    let mut item_results = Vec::new();
    let (mut changed, mut failed, mut all_skipped) = (false, false, true);
    // Facts set by one item are seen by the next (`x: "{{ x + [item] }}"`).
    let mut fresh: Option<Scope> = None;
    for (i, item) in items.iter().enumerate() {
        let layer = loop_layer(task, item, i, total, &items);
        let iscope = fresh.as_ref().unwrap_or(scope).with(layer.clone());
        let label = match &task.loop_control.label {
            Some(l) => match run.templar.render(l, &iscope) {
                Ok(Value::String(s)) => s,
                Ok(v) => v.to_string(),
                Err(_) => l.to_string(),
            },
            None => crate::template::pyrepr_json(item),
        };
        let mut r = match eval_when(run, &task.kw.when, &iscope) {
            Ok(true) => exec_once(run, pc, task, host, &iscope).await,
            Ok(false) => HostResult::skipped(host, "Conditional result was False"),
            Err(e) => HostResult::failed(
                host,
                &format!(
                    "The conditional check '{}' failed. The error was: {e}",
                    when_text(&task.kw.when)
                ),
            ),
        };
        drop(iscope);
        if let Some(f) = r.facts.take() {
            apply_facts(run, host, f);
            fresh = Some(task_scope(run, pc, task, host, None));
        }
        let mut rv = r.result.clone();
        for (k, v) in &layer {
            if !k.starts_with("ansible_loop") || k == "ansible_loop_var" {
                rv.insert(k.clone(), v.clone());
            }
        }
        if r.status != Status::Skipped {
            all_skipped = false;
        }
        changed |= r.status == Status::Changed;
        failed |= r.status == Status::Failed && !r.ignored;
        if r.status == Status::Unreachable {
            return r;
        }
        item_results.push(ItemResult {
            label,
            status: r.status,
            result: rv.clone(),
        });
        results.push(Value::Object(rv));
        if let Some(p) = task.loop_control.pause {
            tokio::time::sleep(Duration::from_secs_f64(p)).await;
        }
    }
    let mut m = Map::new();
    m.insert("changed".into(), Value::Bool(changed));
    m.insert(
        "msg".into(),
        Value::String(if failed {
            "One or more items failed".into()
        } else {
            "All items completed".into()
        }),
    );
    if failed {
        m.insert("failed".into(), Value::Bool(true));
    }
    if all_skipped {
        m.insert("skipped".into(), Value::Bool(true));
    }
    m.insert("results".into(), Value::Array(results));
    let status = if failed {
        Status::Failed
    } else if all_skipped {
        Status::Skipped
    } else if changed {
        Status::Changed
    } else {
        Status::Ok
    };
    let mut hr = HostResult::new(host, status, m);
    hr.items = item_results;
    if failed {
        let ignore = render_bool(run, &task.kw.ignore_errors, scope)
            .ok()
            .flatten()
            .unwrap_or(false);
        hr.ignored = ignore;
    }
    hr
}

fn when_text(when: &[Value]) -> String {
    when.iter()
        .map(|w| {
            w.as_str()
                .map(str::to_string)
                .unwrap_or_else(|| w.to_string())
        })
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Gets (or opens) the connection for a host.
async fn connection(
    run: &Arc<Run>,
    host: &str,
    scope: &Scope,
    delegate: Option<&str>,
) -> std::result::Result<Arc<dyn Connection>, String> {
    let target = delegate.unwrap_or(host);
    // One connect at a time per host, but hosts connect in parallel: the shared map
    // is never locked across a connect (that serialised every SSH handshake).
    let opening = run
        .opening
        .lock()
        .await
        .entry(target.to_string())
        .or_default()
        .clone();
    let _one = opening.lock().await;
    if let Some(c) = run.conns.lock().await.get(target) {
        return Ok(c.clone());
    }
    let kind = if delegate.is_some() {
        let dscope = run.host_base_scope(target);
        match dscope.resolve(&run.templar, "ansible_connection") {
            Ok(Some(Value::String(s))) => s,
            _ if target == "localhost" || target == "127.0.0.1" => "local".into(),
            _ => "ssh".into(),
        }
    } else {
        match scope.resolve(&run.templar, "ansible_connection") {
            Ok(Some(Value::String(s))) => s,
            _ if target == "localhost" && run.inv.implicit_localhost => "local".into(),
            _ => "ssh".into(),
        }
    };
    let conn: Arc<dyn Connection> = match kind.as_str() {
        "local" => Arc::new(Local::new()),
        other => {
            crate::connection::open(
                other,
                target,
                &run.host_base_scope(target),
                &run.templar,
                &run.cfg,
            )
            .await?
        }
    };
    run.conns
        .lock()
        .await
        .insert(target.to_string(), conn.clone());
    Ok(conn)
}

fn escalation(
    run: &Run,
    task: &Task,
    scope: &Scope,
) -> std::result::Result<Option<Become>, String> {
    let var_bool = |k: &str| {
        scope
            .resolve(&run.templar, k)
            .ok()
            .flatten()
            .and_then(|v| to_bool(&v))
    };
    let var_str = |k: &str| {
        scope
            .resolve(&run.templar, k)
            .ok()
            .flatten()
            .and_then(|v| v.as_str().map(str::to_string))
    };
    let on = render_bool(run, &task.kw.r#become, scope)?
        .or_else(|| var_bool("ansible_become"))
        .unwrap_or(false)
        || run.cfg.force_become;
    if !on {
        return Ok(None);
    }
    let user = render_str(run, &task.kw.become_user, scope)?
        .or_else(|| var_str("ansible_become_user"))
        .unwrap_or_else(|| "root".into());
    let method = render_str(run, &task.kw.become_method, scope)?
        .or_else(|| var_str("ansible_become_method"))
        .unwrap_or_else(|| "sudo".into());
    if method != "sudo" && method != "su" {
        return Err(format!(
            "become_method {method} is not supported (sudo, su)"
        ));
    }
    let password = run
        .cfg
        .become_password
        .clone()
        .or_else(|| var_str("ansible_become_password"))
        .or_else(|| var_str("ansible_become_pass"));
    let flags = render_str(run, &task.kw.become_flags, scope)?
        .or_else(|| var_str("ansible_become_flags"))
        .unwrap_or_default();
    Ok(Some(Become {
        method,
        user,
        password,
        flags,
    }))
}

/// Runs the task's module once (one item) on a host.
async fn exec_once(
    run: &Arc<Run>,
    pc: &PlayCtx<'_>,
    task: &Task,
    host: &str,
    scope: &Scope,
) -> HostResult {
    let fail = |msg: String| HostResult::failed(host, &msg);
    match &task.action {
        Action::IncludeVars { args } => return include_vars(run, task, host, scope, args),
        Action::Module { .. } => {}
        _ => return HostResult::new(host, Status::Ok, Map::new()),
    }
    let Action::Module { module, args } = &task.action else {
        unreachable!()
    };
    let Some(m) = modules::find(module) else {
        return fail(format!("module {module} is not available"));
    };
    let rendered = match run.templar.render(&Value::Object(args.clone()), scope) {
        Ok(Value::Object(a)) => a,
        Ok(_) => Map::new(),
        Err(e) => return fail(format!("{e}\n\nThe error appears to be in '{}'", task.loc)),
    };
    let margs = match m.spec().validate(rendered) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let check = match render_bool(run, &task.kw.check_mode, scope) {
        Ok(Some(b)) => b,
        Ok(None) => run.cfg.check,
        Err(e) => return fail(e),
    };
    let diff = match render_bool(run, &task.kw.diff, scope) {
        Ok(Some(b)) => b,
        Ok(None) => run.cfg.diff,
        Err(e) => return fail(e),
    };
    let delegate = match render_str(run, &task.kw.delegate_to, scope) {
        Ok(d) => d.filter(|d| d != host),
        Err(e) => return fail(e),
    };
    // `async: SECS`: with `poll: 0` the job is left running (command, shell);
    // otherwise ferry waits for it, as Ansible's polling does, at most SECS.
    let seconds = |v: &Option<Value>, what: &str| match render_str(run, v, scope) {
        Ok(None) => Ok(None),
        Ok(Some(t)) => t
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| format!("{what} must be a whole number of seconds, got {t:?}")),
        Err(e) => Err(e),
    };
    let async_secs = match seconds(&task.async_, "async") {
        Ok(s) => s.filter(|s| *s > 0),
        Err(e) => return fail(e),
    };
    let poll = match seconds(&task.poll, "poll") {
        Ok(p) => p.unwrap_or(15),
        Err(e) => return fail(e),
    };
    let esc = match escalation(run, task, scope) {
        Ok(b) => b,
        Err(e) => return fail(e),
    };
    let mut env = Vec::new();
    if !task.kw.environment.is_empty() {
        match run
            .templar
            .render(&Value::Object(task.kw.environment.clone()), scope)
        {
            Ok(Value::Object(m)) => {
                for (k, v) in m {
                    if k == "__template__" {
                        continue;
                    }
                    env.push((
                        k,
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string()),
                    ));
                }
            }
            Ok(_) => {}
            Err(e) => return fail(e),
        }
    }
    let needs_conn = !matches!(
        m.spec().name,
        "debug" | "set_fact" | "assert" | "fail" | "pause"
    );
    let conn: Arc<dyn Connection> = if needs_conn {
        match connection(run, host, scope, delegate.as_deref()).await {
            Ok(c) => c,
            Err(e) => return HostResult::unreachable(host, &e),
        }
    } else {
        Arc::new(Local::new())
    };
    let mut search_dirs: Vec<PathBuf> = Vec::new();
    if let Some(r) = &task.role {
        search_dirs.push(r.path.clone());
    }
    search_dirs.push(task.base_dir.clone());
    search_dirs.push(PathBuf::from(&pc.playbook_dir));
    search_dirs.dedup();
    let memo = needs_conn.then(|| run.memo(delegate.as_deref().unwrap_or(host)));
    let ctx = Ctx {
        host,
        memo: memo.as_deref(),
        conn: conn.as_ref(),
        escalate: esc,
        check_mode: check,
        diff_mode: diff,
        templar: &run.templar,
        scope,
        env,
        search_dirs,
        timeout: match render_str(run, &task.timeout, scope) {
            Ok(Some(t)) => match t.trim().parse::<f64>() {
                Ok(secs) if secs > 0.0 => Some(Duration::from_secs_f64(secs)),
                _ => return fail(format!("timeout must be a number of seconds, got {t:?}")),
            },
            Ok(None) => None,
            Err(e) => return fail(e),
        }
        .into_iter()
        .chain(async_secs.map(Duration::from_secs))
        .min(),
        no_log: render_bool(run, &task.kw.no_log, scope)
            .ok()
            .flatten()
            .unwrap_or(false),
    };
    let retries = task
        .retries
        .as_ref()
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(3);
    let delay = task
        .delay
        .as_ref()
        .and_then(|v| {
            v.as_f64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .unwrap_or(5.0);
    let attempts_max = if task.until.is_some() { retries + 1 } else { 1 };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let started = std::time::Instant::now();
        let outcome = match async_secs {
            Some(secs) if poll == 0 && !ctx.check_mode => {
                modules::async_status::start(m.spec().name, &margs, &ctx, secs).await
            }
            Some(secs) => {
                let o = m.run(&margs, &ctx).await;
                async_waited(o, secs, started.elapsed())
            }
            None => m.run(&margs, &ctx).await,
        };
        let mut hr = match outcome {
            Ok(o) => outcome_result(host, o),
            Err(ModError::Unreachable(msg)) => {
                let mut r = HostResult::unreachable(host, &msg);
                r.ignored = render_bool(run, &task.kw.ignore_unreachable, scope)
                    .ok()
                    .flatten()
                    .unwrap_or(false);
                return r;
            }
            Err(ModError::Stale(path)) => HostResult::failed(
                host,
                &format!("{path} changed on the host while the task ran"),
            ),
            Err(ModError::Failed { msg, data }) => {
                let mut r = HostResult::failed(host, &msg);
                for (k, v) in data {
                    r.result.entry(k).or_insert(v);
                }
                r
            }
        };
        if let Some(d) = &delegate {
            hr.delegated = Some(d.clone());
        }
        // changed_when / failed_when see the result under the register name.
        if task.changed_when.is_some() || task.failed_when.is_some() || task.until.is_some() {
            let mut layer = Map::new();
            let rv = Value::Object(hr.result.clone());
            if let Some(reg) = &task.register {
                layer.insert(reg.clone(), rv.clone());
            }
            for (k, v) in &hr.result {
                layer.entry(k.clone()).or_insert(v.clone());
            }
            let rscope = scope.with(layer);
            if let Some(cw) = &task.changed_when {
                match eval_when(run, cw, &rscope) {
                    Ok(c) => {
                        hr.result.insert("changed".into(), Value::Bool(c));
                        if hr.status == Status::Changed || hr.status == Status::Ok {
                            hr.status = if c { Status::Changed } else { Status::Ok };
                        }
                    }
                    Err(e) => {
                        return fail(format!(
                            "The conditional check '{}' failed. The error was: {e}",
                            when_text(cw)
                        ))
                    }
                }
            }
            if let Some(fw) = &task.failed_when {
                let rscope2 = {
                    let mut l = Map::new();
                    if let Some(reg) = &task.register {
                        l.insert(reg.clone(), Value::Object(hr.result.clone()));
                    }
                    rscope.with(l)
                };
                match fw
                    .iter()
                    .map(|c| run.templar.eval_bool(c, &rscope2))
                    .collect::<std::result::Result<Vec<bool>, _>>()
                {
                    // failed_when items are ORed? No: a list is ANDed like `when`.
                    Ok(v) => {
                        let f = v.iter().all(|b| *b) && !v.is_empty();
                        hr.result
                            .insert("failed_when_result".into(), Value::Bool(f));
                        if f {
                            hr.status = Status::Failed;
                            hr.result.insert("failed".into(), Value::Bool(true));
                        } else if hr.status == Status::Failed {
                            hr.result.remove("failed");
                            let changed = hr
                                .result
                                .get("changed")
                                .and_then(Value::as_bool)
                                .unwrap_or(false);
                            hr.status = if changed { Status::Changed } else { Status::Ok };
                        }
                    }
                    Err(e) => {
                        return fail(format!(
                            "The conditional check '{}' failed. The error was: {e}",
                            when_text(fw)
                        ))
                    }
                }
            }
            if let Some(u) = &task.until {
                let ok = run.templar.eval_bool(u, &rscope).unwrap_or(false);
                hr.result.insert("attempts".into(), Value::from(attempt));
                if !ok && attempt < attempts_max {
                    run.reporter.lock().expect("reporter").retry(
                        host,
                        &task.display_name(),
                        attempts_max - attempt,
                    );
                    tokio::time::sleep(Duration::from_secs_f64(delay)).await;
                    continue;
                }
                if !ok {
                    hr.status = Status::Failed;
                    hr.result.insert("failed".into(), Value::Bool(true));
                    hr.result
                        .entry("msg")
                        .or_insert(Value::String("Retries exceeded".into()));
                }
            }
        }
        if hr.status == Status::Failed {
            hr.ignored = render_bool(run, &task.kw.ignore_errors, scope)
                .ok()
                .flatten()
                .unwrap_or(false);
        }
        // Facts: set_fact goes to host vars, setup to facts (applied by the caller).
        if hr.status != Status::Failed {
            if let Some(f) = hr
                .result
                .get("ansible_facts")
                .and_then(Value::as_object)
                .cloned()
            {
                hr.facts = Some(if m.spec().name == "set_fact" {
                    NewFacts::Vars(f)
                } else {
                    // Facts belong to the task's host, delegated or not (delegate_facts
                    // is accepted but not supported).
                    let plain = !matches!(m.spec().name, "setup");
                    NewFacts::Facts { map: f, plain }
                });
            }
        }
        return hr;
    }
}

/// A task ferry waited for under `async: SECS`: Ansible's job fields, and its
/// words when the time ran out.
fn async_waited(o: modules::ModResult, secs: u64, took: Duration) -> modules::ModResult {
    match o {
        Ok(o) => Ok(o.with("finished", 1).with("started", 1)),
        Err(ModError::Failed { .. }) if took >= Duration::from_secs(secs) => Err(ModError::fail(
            format!("async task did not complete within the requested time - {secs}s"),
        )),
        Err(e) => Err(e),
    }
}

fn outcome_result(host: &str, o: Outcome) -> HostResult {
    let status = if o.failed {
        Status::Failed
    } else if o.skipped {
        Status::Skipped
    } else if o.changed {
        Status::Changed
    } else {
        Status::Ok
    };
    HostResult::new(host, status, o.to_value())
}

fn include_vars(
    run: &Arc<Run>,
    task: &Task,
    host: &str,
    scope: &Scope,
    args: &Map<String, Value>,
) -> HostResult {
    let rendered = match run.templar.render(&Value::Object(args.clone()), scope) {
        Ok(Value::Object(a)) => a,
        _ => return HostResult::failed(host, "include_vars: could not render arguments"),
    };
    let name = rendered
        .get("_raw_params")
        .or_else(|| rendered.get("file"))
        .or_else(|| rendered.get("dir"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if name.is_empty() {
        return HostResult::failed(host, "include_vars needs a file or dir");
    }
    let mut cands: Vec<PathBuf> = Vec::new();
    if Path::new(&name).is_absolute() {
        cands.push(PathBuf::from(&name));
    } else {
        if let Some(r) = &task.role {
            cands.push(r.path.join("vars").join(&name));
            cands.push(r.path.join(&name));
        }
        cands.push(task.base_dir.join("vars").join(&name));
        cands.push(task.base_dir.join(&name));
    }
    let Some(path) = cands.into_iter().find(|p| p.exists()) else {
        return HostResult::failed(host, &format!("Could not find or access '{name}'"));
    };
    let mut vars = Map::new();
    let mut files: Vec<PathBuf> = Vec::new();
    if path.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&path)
            .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        v.retain(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("yml" | "yaml" | "json")
            )
        });
        v.sort();
        files = v;
    } else {
        files.push(path.clone());
    }
    for f in &files {
        match crate::inventory::load_vars_file(f) {
            Ok(m) => vars.extend(m),
            Err(e) => return HostResult::failed(host, &e.to_string()),
        }
    }
    let target: Map<String, Value> = match rendered.get("name").and_then(Value::as_str) {
        Some(n) => {
            let mut m = Map::new();
            m.insert(n.to_string(), Value::Object(vars));
            m
        }
        None => vars,
    };
    run.update_host(host, |s| {
        for (k, v) in &target {
            s.set_var(k, v.clone());
        }
    });
    let mut r = Map::new();
    r.insert("changed".into(), Value::Bool(false));
    r.insert(
        "ansible_included_var_files".into(),
        Value::from(
            files
                .iter()
                .map(|f| f.to_string_lossy().into_owned())
                .collect::<Vec<_>>(),
        ),
    );
    r.insert("ansible_facts".into(), Value::Object(target));
    HostResult::new(host, Status::Ok, r)
}

async fn run_include(
    run: &Arc<Run>,
    pc: &PlayCtx<'_>,
    task: &Task,
    hosts: &[String],
    section: Section,
) -> Result<()> {
    // Each (host, item) may include a different file: group hosts by what they include.
    let mut groups: Vec<(String, Map<String, Value>, Vec<String>)> = Vec::new();
    for h in hosts {
        let scope = task_scope(run, pc, task, h, None);
        let items: Vec<Option<Map<String, Value>>> = match loop_items(run, task, &scope) {
            Ok(Some(items)) => {
                let total = items.len();
                items
                    .iter()
                    .enumerate()
                    .map(|(i, it)| Some(loop_layer(task, it, i, total, &items)))
                    .collect()
            }
            Ok(None) => vec![None],
            Err(e) => return Err(Error::Other(format!("{}: {e}", task.loc))),
        };
        for layer in items {
            let iscope = match &layer {
                Some(l) => scope.with(l.clone()),
                None => scope.clone(),
            };
            if !eval_when(run, &task.kw.when, &iscope)
                .map_err(|e| Error::Other(format!("{}: {e}", task.loc)))?
            {
                continue;
            }
            let key = match &task.action {
                Action::IncludeTasks { file, .. } => run
                    .templar
                    .render(file, &iscope)
                    .map_err(|e| Error::Other(format!("{}: {e}", task.loc)))?,
                Action::IncludeRole { args } => run
                    .templar
                    .render(&Value::Object(args.clone()), &iscope)
                    .map_err(|e| Error::Other(format!("{}: {e}", task.loc)))?,
                _ => Value::Null,
            };
            let key = serde_json::to_string(&key).unwrap_or_default();
            let layer = layer.unwrap_or_default();
            match groups.iter_mut().find(|(k, l, _)| *k == key && *l == layer) {
                Some(g) => g.2.push(h.clone()),
                None => groups.push((key, layer, vec![h.clone()])),
            }
        }
    }
    for (key, layer, ghosts) in groups {
        let spec: Value = serde_json::from_str(&key).unwrap_or(Value::Null);
        let mut parent = Keywords {
            vars: task.kw.vars.clone(),
            ..task.kw.clone()
        };
        // The include's condition was evaluated above; its tags (and those it
        // inherited from a role or block) select the included tasks too.
        parent.when = Vec::new();
        parent.vars.extend(layer);
        let (mut tasks, handlers) = match &task.action {
            Action::IncludeTasks { apply, .. } => {
                let rel = spec.as_str().unwrap_or_default();
                let path = playbook::resolve_task_path(rel, &task.base_dir, task.role.as_ref());
                if !path.is_file() {
                    return Err(Error::Other(format!(
                        "{}: could not find or access included file {}",
                        task.loc,
                        path.display()
                    )));
                }
                let mut ts = playbook::load_task_file(&path, task.role.as_ref(), &run.load_ctx, 1)?;
                if let Some(a) = apply {
                    for t in &mut ts {
                        playbook::inherit_deep(t, a);
                    }
                }
                (ts, Vec::new())
            }
            Action::IncludeRole { .. } => {
                let args = spec.as_object().cloned().unwrap_or_default();
                let req = playbook::RoleRequest::from_args(&args)
                    .map_err(|e| Error::Other(format!("{}: {e}", task.loc)))?;
                let mut seen = Vec::new();
                let loaded =
                    playbook::load_role(&req, &pc.play.base_dir, &run.load_ctx, &mut seen, 1)?;
                (loaded.tasks, loaded.handlers)
            }
            _ => continue,
        };
        for t in &mut tasks {
            playbook::inherit_deep(t, &parent);
        }
        if !handlers.is_empty() {
            pc.handlers.lock().expect("handlers").extend(handlers);
        }
        run_tasks(run, pc, &tasks, &ghosts, section).await?;
    }
    Ok(())
}
