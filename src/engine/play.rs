//! One play: hosts, batches (`serial`), fact gathering, sections and handlers.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use serde_json::{Map, Value};

use super::task::{run_tasks, Section};
use super::Run;
use crate::error::{Error, Result};
use crate::inventory::pattern;
use crate::playbook::{Action, Play, Task};

#[derive(Debug, PartialEq, Eq)]
pub enum PlayEnd {
    Continue,
    Abort,
}

/// What tasks of one play share.
pub struct PlayCtx<'a> {
    pub play: &'a Play,
    pub play_vars: Arc<Map<String, Value>>,
    pub role_defaults: Arc<Map<String, Value>>,
    pub role_vars: Arc<Map<String, Value>>,
    /// `vars_files`, per host (their names may use host variables).
    pub vars_files: Mutex<std::collections::HashMap<String, Arc<Map<String, Value>>>>,
    pub handlers: Mutex<Vec<Task>>,
    pub playbook_dir: String,
    pub end_play: AtomicBool,
}

pub async fn run_play(run: &Arc<Run>, play: &Play, book: &Path) -> Result<PlayEnd> {
    let mut hosts = pattern::select(&run.inv, &play.hosts)?;
    if let Some(limit) = &run.cfg.limit {
        let allowed = limit_hosts(run, limit)?;
        hosts.retain(|h| allowed.contains(h));
    }
    // Hosts that failed or were unreachable in an earlier play sit out.
    hosts.retain(|h| {
        let st = run.host_state(h);
        !st.failed && !st.unreachable
    });
    if play.order.as_deref() == Some("reverse_inventory") {
        hosts.reverse();
    } else if play.order.as_deref() == Some("sorted") {
        hosts.sort();
    } else if play.order.as_deref() == Some("reverse_sorted") {
        hosts.sort();
        hosts.reverse();
    }
    run.reporter
        .lock()
        .expect("reporter")
        .play_start(&play.name);
    if hosts.is_empty() {
        run.reporter
            .lock()
            .expect("reporter")
            .note("skipping: no hosts matched");
        return Ok(PlayEnd::Continue);
    }
    let playbook_dir = book
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .and_then(|p| p.canonicalize().ok())
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| ".".into());
    let mut defaults = Map::new();
    let mut rvars = Map::new();
    for r in &play.roles {
        defaults.extend(r.defaults.as_ref().clone());
        rvars.extend(r.vars.as_ref().clone());
    }
    let mut play_vars = play.kw.vars.clone();
    if !play.vars_prompt.is_empty() {
        play_vars.extend(super::prompt::ask(
            &play.vars_prompt,
            &run.extra_vars,
            &run.templar,
        )?);
    }
    let pc = PlayCtx {
        play,
        play_vars: Arc::new(play_vars),
        role_defaults: Arc::new(defaults),
        role_vars: Arc::new(rvars),
        vars_files: Mutex::new(Default::default()),
        handlers: Mutex::new(play.handlers.clone()),
        playbook_dir: playbook_dir.clone(),
        end_play: AtomicBool::new(false),
    };
    for h in &hosts {
        run.update_host(h, |s| {
            s.ended = false;
            s.notified.clear();
        });
    }
    let batches = batches(&hosts, play.serial.as_ref());
    let mut magic = Map::new();
    magic.insert("playbook_dir".into(), Value::String(playbook_dir));
    magic.insert("ansible_play_name".into(), Value::String(play.name.clone()));
    magic.insert("ansible_play_hosts_all".into(), Value::from(hosts.clone()));
    magic.insert("groups".into(), Value::Object(run.inv.groups_map()));
    magic.insert("omit".into(), Value::String(crate::template::OMIT.into()));
    for batch in batches {
        {
            let mut m = magic.clone();
            m.insert("ansible_play_batch".into(), Value::from(batch.clone()));
            m.insert("ansible_play_hosts".into(), Value::from(batch.clone()));
            *run.play_magic.lock().expect("magic") = Arc::new(m);
        }
        let gather = match &play.gather_facts {
            Some(v) => crate::modules::to_bool(v).unwrap_or(true),
            None => run.cfg.gathering.as_deref() != Some("explicit"),
        };
        if gather {
            let cached = load_fact_cache(run, &batch);
            let smart = run.cfg.gathering.as_deref() == Some("smart");
            let todo: Vec<String> = batch
                .iter()
                .filter(|h| !(smart && cached.contains(*h)))
                .cloned()
                .collect();
            if !todo.is_empty() {
                let task = gather_task(play);
                run_tasks(
                    run,
                    &pc,
                    std::slice::from_ref(&task),
                    &todo,
                    Section::Normal,
                )
                .await?;
                save_fact_cache(run, &todo);
            }
        }
        for h in &batch {
            load_vars_files(run, &pc, h)?;
        }
        let main: Vec<Task> = play
            .role_tasks
            .iter()
            .chain(play.tasks.iter())
            .cloned()
            .collect();
        let sections: [&[Task]; 3] = [&play.pre_tasks, &main, &play.post_tasks];
        if play.strategy.as_deref() == Some("free") {
            // `strategy: free`: every host goes through the play at its own pace.
            let forks = run.cfg.forks.max(1);
            let results: Vec<Result<()>> = futures::stream::iter(batch.iter().cloned())
                .map(|h| {
                    let pc = &pc;
                    async move {
                        let one = [h];
                        for s in sections {
                            run_tasks(run, pc, s, &one, Section::Normal).await?;
                            flush(run, pc, &one).await?;
                        }
                        Ok(())
                    }
                })
                .buffer_unordered(forks)
                .collect()
                .await;
            results.into_iter().collect::<Result<Vec<()>>>()?;
        } else {
            for s in sections {
                run_tasks(run, &pc, s, &batch, Section::Normal).await?;
                flush(run, &pc, &batch).await?;
            }
        }
        if let Some(max) = play.max_fail_percentage.as_ref().and_then(Value::as_f64) {
            let failed = batch.iter().filter(|h| run.host_state(h).failed).count();
            if (failed as f64) * 100.0 / (batch.len() as f64) > max {
                run.reporter
                    .lock()
                    .expect("reporter")
                    .note("NO MORE HOSTS LEFT (max_fail_percentage exceeded)");
                return Ok(PlayEnd::Abort);
            }
        }
        if pc.end_play.load(Ordering::SeqCst) {
            break;
        }
        if batch.iter().all(|h| !run.host_state(h).active()) && play.serial.is_some() {
            run.reporter
                .lock()
                .expect("reporter")
                .note("NO MORE HOSTS LEFT");
            return Ok(PlayEnd::Abort);
        }
    }
    Ok(PlayEnd::Continue)
}

/// Loads fresh cached facts (`fact_caching = jsonfile`); returns the hosts that had them.
fn load_fact_cache(run: &Run, hosts: &[String]) -> Vec<String> {
    let Some((dir, timeout)) = &run.cfg.fact_cache else {
        return Vec::new();
    };
    let mut loaded = Vec::new();
    for h in hosts {
        let p = dir.join(h);
        let fresh = std::fs::metadata(&p)
            .and_then(|m| m.modified())
            .map(|t| {
                t.elapsed()
                    .map(|e| e.as_secs() < *timeout || *timeout == 0)
                    .unwrap_or(false)
            })
            .unwrap_or(false);
        if !fresh {
            continue;
        }
        if let Ok(Value::Object(f)) = std::fs::read_to_string(&p)
            .map_err(|_| ())
            .and_then(|t| serde_json::from_str(&t).map_err(|_| ()))
        {
            run.update_host(h, |s| s.add_facts(&f, false));
            loaded.push(h.clone());
        }
    }
    loaded
}

fn save_fact_cache(run: &Run, hosts: &[String]) {
    let Some((dir, _)) = &run.cfg.fact_cache else {
        return;
    };
    if std::fs::create_dir_all(dir).is_err() {
        return;
    }
    for h in hosts {
        let state = run.host_state(h);
        let Some(facts) = state.facts.map().filter(|f| !f.is_empty()) else {
            continue;
        };
        let tmp = dir.join(format!(".{h}.tmp"));
        let text = serde_json::to_string(facts).unwrap_or_default();
        if std::fs::write(&tmp, text).is_ok() {
            let _ = std::fs::rename(&tmp, dir.join(h));
        }
    }
}

fn limit_hosts(run: &Run, limit: &str) -> Result<Vec<String>> {
    if let Some(file) = limit.strip_prefix('@') {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Error::Usage(format!("--limit @{file}: {e}")))?;
        return Ok(text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect());
    }
    pattern::select(&run.inv, limit)
}

fn gather_task(play: &Play) -> Task {
    let mut args = Map::new();
    for (k, v) in [
        ("gather_subset", &play.gather_subset),
        ("gather_timeout", &play.gather_timeout),
        ("fact_path", &play.fact_path),
    ] {
        if let Some(v) = v {
            args.insert(k.into(), v.clone());
        }
    }
    let action = if crate::modules::find("setup").is_some() {
        Action::Module {
            module: "setup".into(),
            args,
        }
    } else {
        Action::Meta("noop".into())
    };
    Task {
        name: Some("Gathering Facts".into()),
        kw: crate::playbook::Keywords {
            tags: vec!["always".into()],
            ..Default::default()
        },
        ..Task::new(play.loc.clone(), action, play.base_dir.clone())
    }
}

/// `serial`: a number, a percentage, or a list of them (the last repeats).
pub fn batches(hosts: &[String], serial: Option<&Value>) -> Vec<Vec<String>> {
    let sizes: Vec<Value> = match serial {
        None | Some(Value::Null) => return vec![hosts.to_vec()],
        Some(Value::Array(a)) => a.clone(),
        Some(v) => vec![v.clone()],
    };
    let size_of = |v: &Value| -> usize {
        let n = match v {
            Value::Number(n) => n.as_f64().unwrap_or(0.0),
            Value::String(s) if s.trim().ends_with('%') => {
                let pct: f64 = s.trim().trim_end_matches('%').parse().unwrap_or(100.0);
                ((hosts.len() as f64) * pct / 100.0).floor()
            }
            Value::String(s) => s.trim().parse().unwrap_or(0.0),
            _ => 0.0,
        };
        let n = n as usize;
        if n == 0 {
            if matches!(v, Value::String(s) if s.ends_with('%')) {
                1
            } else {
                hosts.len().max(1)
            }
        } else {
            n
        }
    };
    let mut out = Vec::new();
    let mut i = 0;
    let mut k = 0;
    while i < hosts.len() {
        let size = size_of(&sizes[k.min(sizes.len() - 1)]).max(1);
        out.push(hosts[i..(i + size).min(hosts.len())].to_vec());
        i += size;
        k += 1;
    }
    out
}

fn load_vars_files(run: &Arc<Run>, pc: &PlayCtx<'_>, host: &str) -> Result<()> {
    if pc.play.vars_files.is_empty() {
        return Ok(());
    }
    let mut scope = run.host_base_scope(host);
    scope.push(pc.play_vars.clone());
    let mut merged = Map::new();
    for entry in &pc.play.vars_files {
        // A list inside vars_files means "the first of these that exists".
        let candidates: Vec<Value> = match entry {
            Value::Array(a) => a.clone(),
            other => vec![other.clone()],
        };
        let mut found = false;
        for c in &candidates {
            let name = run
                .templar
                .render(c, &scope)
                .map_err(|e| Error::Other(format!("{}: vars_files: {e}", pc.play.loc)))?;
            let name = name.as_str().unwrap_or_default().to_string();
            let path = if Path::new(&name).is_absolute() {
                name.clone().into()
            } else {
                Path::new(&pc.playbook_dir).join(&name)
            };
            if path.is_file() {
                merged.extend(crate::inventory::load_vars_file(&path)?);
                found = true;
                break;
            }
        }
        if !found {
            return Err(Error::Other(format!(
                "{}: vars file {} was not found",
                pc.play.loc,
                serde_json::to_string(entry).unwrap_or_default()
            )));
        }
    }
    pc.vars_files
        .lock()
        .expect("vars_files")
        .insert(host.to_string(), Arc::new(merged));
    Ok(())
}

/// Runs notified handlers, in the order they are defined.
pub async fn flush(run: &Arc<Run>, pc: &PlayCtx<'_>, hosts: &[String]) -> Result<()> {
    loop {
        let handlers = pc.handlers.lock().expect("handlers").clone();
        let mut ran = false;
        for h in &handlers {
            let names = handler_names(h);
            let targets: Vec<String> = hosts
                .iter()
                .filter(|host| {
                    let st = run.host_state(host);
                    (st.active()
                        || ((pc.play.force_handlers || run.cfg.force_handlers) && !st.unreachable))
                        && names.iter().any(|n| st.notified.contains(n))
                })
                .cloned()
                .collect();
            if targets.is_empty() {
                continue;
            }
            for t in &targets {
                run.update_host(t, |s| s.notified.retain(|n| !names.contains(n)));
            }
            ran = true;
            run_tasks(run, pc, std::slice::from_ref(h), &targets, Section::Handler).await?;
        }
        // A handler may notify another handler: go round until quiet.
        if !ran {
            return Ok(());
        }
    }
}

/// Names a handler answers to: its name, `role : name`, and its `listen` topics.
pub fn handler_names(h: &Task) -> Vec<String> {
    let mut v = Vec::new();
    if let Some(n) = &h.name {
        v.push(n.clone());
        if let Some(r) = &h.role {
            v.push(format!("{} : {n}", r.name));
        }
    }
    v.extend(h.listen.iter().cloned());
    v
}

#[cfg(test)]
mod tests {
    use super::batches;
    use serde_json::json;

    fn hosts(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("h{i}")).collect()
    }

    #[test]
    fn serial_batches() {
        let sizes = |v| {
            batches(&hosts(10), Some(&v))
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>()
        };
        assert_eq!(sizes(json!(3)), vec![3, 3, 3, 1]);
        assert_eq!(sizes(json!("50%")), vec![5, 5]);
        assert_eq!(sizes(json!([1, 2, "50%"])), vec![1, 2, 5, 2]);
        assert_eq!(batches(&hosts(4), None).len(), 1);
    }
}
