//! `docker_container` (community.docker.docker_container): create, start, stop,
//! run to completion (`detach: false`) or remove a container.
//!
//! An existing container is recreated only when an option the task gives
//! differs from what the container has (image id, command, entrypoint, env,
//! mounts, working dir, user, network mode, restart policy, ...), or with
//! `recreate: true`. Options the task does not give are not compared.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{json, Map, Value};

use super::docker_api::{self as api, Engine};
use super::docker_image::inspect_image;
use super::{Args, Ctx, Diff, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["community.docker.docker_container"],
    example: "- community.docker.docker_container:\n    name: train-lda\n    image: ferry/trainer:latest\n    command: [train-lda.py, --model-dir, /data/models]\n    volumes: [/srv/trainer/data:/data]\n    network_mode: none\n    detach: false\n    cleanup: true\n  register: lda\n",
    ..ModuleSpec::new(
        "docker_container",
        "Manage a Docker container: create, start, stop, remove, or run it to completion (detach: false) and return its output.",
        crate::with_docker_params![
            Param::new("name", Kind::Str, "Container name.").required(),
            Param::new("image", Kind::Str, "Image (name[:tag] or id) to create the container from."),
            Param::new("command", Kind::Raw, "Command: a string (split like a shell) or a list."),
            Param::new("entrypoint", Kind::List, "Entrypoint, as a list."),
            Param::new("env", Kind::Dict, "Environment variables."),
            Param::new("volumes", Kind::List, "Volumes: host_path:container_path[:ro|rw] (bind) or name:container_path (named volume)."),
            Param::new("mounts", Kind::List, "Mounts: dicts with source, target, type (bind, volume, tmpfs; default volume), read_only."),
            Param::new("working_dir", Kind::Str, "Working directory in the container."),
            Param::new("user", Kind::Str, "User (name, uid or uid:gid) the command runs as."),
            Param::new("hostname", Kind::Str, "Container host name."),
            Param::new("labels", Kind::Dict, "Labels of the container."),
            Param::new("network_mode", Kind::Str, "Network mode: none, host, bridge, container:<name> or a network name."),
            Param::new("restart_policy", Kind::Str, "Restart policy.").choices(&["no", "on-failure", "always", "unless-stopped"]),
            Param::new("restart_retries", Kind::Int, "Retries with restart_policy on-failure."),
            Param::new("state", Kind::Str, "Desired state.").choices(&["absent", "present", "stopped", "started"]).default("started"),
            Param::new("detach", Kind::Bool, "false: start the container, wait until it exits and return its output (container.Output) and exit code (status); a non-zero exit fails the task.").default("yes"),
            Param::new("cleanup", Kind::Bool, "With detach: false, remove the container after it exited.").default("no"),
            Param::new("recreate", Kind::Bool, "Always remove and recreate an existing container.").default("no"),
            Param::new("pull", Kind::Raw, "Pull the image: no/false/never (default: ferry has no registry), missing, yes/always."),
            Param::new("auto_remove", Kind::Bool, "The daemon removes the container when it exits."),
            Param::new("init", Kind::Bool, "Run an init inside the container."),
            Param::new("tty", Kind::Bool, "Allocate a pseudo-TTY."),
            Param::new("interactive", Kind::Bool, "Keep stdin open."),
            Param::new("privileged", Kind::Bool, "Privileged mode."),
            Param::new("read_only", Kind::Bool, "Mount the container's root filesystem read-only."),
            Param::new("memory", Kind::Str, "Memory limit: a number with an optional unit (B, K, M, G, T)."),
            Param::new("stop_timeout", Kind::Int, "Seconds to wait when stopping before killing."),
            Param::new("force_kill", Kind::Bool, "Kill instead of stop.").aliases(&["forcekill"]).default("no"),
            Param::new("keep_volumes", Kind::Bool, "Keep anonymous volumes when removing.").default("yes"),
            Param::new("output_logs", Kind::Bool, "Accepted for compatibility.").default("no"),
            Param::new("removal_wait_timeout", Kind::Float, "Accepted for compatibility."),
            Param::new("command_handling", Kind::Str, "How command/entrypoint strings are handled.").choices(&["compatibility", "correct"]).default("correct"),
            Param::new("container_default_behavior", Kind::Str, "Accepted for compatibility.").choices(&["compatibility", "no_defaults"]).default("no_defaults"),
        ],
    )
};

pub struct DockerContainer;

/// What the task asks for, normalized; `None` = not given (not compared).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Wanted {
    pub image: Option<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    /// Normalized mounts: `type|source|target|ro`.
    pub mounts: Option<BTreeSet<String>>,
    pub binds: Vec<String>,
    pub mount_specs: Vec<Value>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub hostname: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    pub network_mode: Option<String>,
    pub restart_policy: Option<String>,
    pub restart_retries: Option<i64>,
    pub auto_remove: Option<bool>,
    pub init: Option<bool>,
    pub tty: Option<bool>,
    pub interactive: Option<bool>,
    pub privileged: Option<bool>,
    pub read_only: Option<bool>,
    pub memory: Option<i64>,
    pub stop_timeout: Option<i64>,
}

/// "512m" → bytes.
pub fn parse_size(s: &str) -> Result<i64, String> {
    let t = s.trim().to_lowercase();
    let t = t
        .strip_suffix('b')
        .filter(|x| !x.is_empty() && x.chars().last().map(|c| c.is_alphabetic()).unwrap_or(false))
        .unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        Some('b') => (&t[..t.len() - 1], 1),
        _ => (t, 1),
    };
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("invalid size {s:?}"))?;
    Ok((n * mult as f64) as i64)
}

fn list_or_split(v: &Value, what: &str) -> Result<Vec<String>, ModError> {
    match v {
        Value::Array(a) => Ok(a.iter().map(api::value_str).collect()),
        Value::String(s) => {
            shlex::split(s).ok_or_else(|| ModError::fail(format!("cannot parse {what}: {s}")))
        }
        other => Ok(vec![api::value_str(other)]),
    }
}

/// Builds `Wanted` from the task's arguments.
pub fn wanted(args: &Args) -> Result<Wanted, ModError> {
    let mut w = Wanted {
        image: args.str("image").map(str::to_string),
        ..Default::default()
    };
    if let Some(c) = args.get("command") {
        w.command = Some(list_or_split(c, "command")?);
    }
    if let Some(e) = args.get("entrypoint") {
        w.entrypoint = Some(list_or_split(e, "entrypoint")?);
    }
    if args.has("env") {
        w.env = Some(api::str_map(args.get("env")));
    }
    if args.has("labels") {
        w.labels = Some(api::str_map(args.get("labels")));
    }
    let mut norm = BTreeSet::new();
    for v in args.list("volumes") {
        let parts: Vec<&str> = v.split(':').collect();
        let (src, dst, mode) = match parts.as_slice() {
            [d] => ("", *d, "rw"),
            [s, d] => (*s, *d, "rw"),
            [s, d, m] => (*s, *d, *m),
            _ => {
                return Err(ModError::fail(format!(
                    "invalid volume {v:?} (src:dest[:mode])"
                )))
            }
        };
        let ro = mode.split(',').any(|m| m == "ro");
        if src.is_empty() {
            norm.insert(format!("volume||{dst}|{ro}"));
            w.mount_specs
                .push(json!({"Type": "volume", "Target": dst, "ReadOnly": ro}));
        } else if src.starts_with('/') {
            norm.insert(format!("bind|{src}|{dst}|{ro}"));
            w.binds
                .push(format!("{src}:{dst}{}", if ro { ":ro" } else { "" }));
        } else {
            norm.insert(format!("volume|{src}|{dst}|{ro}"));
            w.binds
                .push(format!("{src}:{dst}{}", if ro { ":ro" } else { "" }));
        }
    }
    if let Some(Value::Array(ms)) = args.get("mounts") {
        for m in ms {
            let o = m
                .as_object()
                .ok_or_else(|| ModError::fail("mounts entries must be dicts"))?;
            let g = |k: &str| o.get(k).filter(|v| !v.is_null()).map(api::value_str);
            let target = g("target").ok_or_else(|| ModError::fail("mounts: target is required"))?;
            let typ = g("type").unwrap_or_else(|| "volume".into());
            let src = g("source").unwrap_or_default();
            let ro = o.get("read_only").and_then(super::to_bool).unwrap_or(false);
            if !["bind", "volume", "tmpfs"].contains(&typ.as_str()) {
                return Err(ModError::fail(format!(
                    "mounts: type {typ} is not supported (bind, volume, tmpfs)"
                )));
            }
            if typ == "bind" && !src.starts_with('/') {
                return Err(ModError::fail(format!(
                    "mounts: a bind mount needs an absolute source, got {src:?}"
                )));
            }
            norm.insert(format!("{typ}|{src}|{target}|{ro}"));
            let mut spec = json!({"Type": typ, "Target": target, "ReadOnly": ro});
            if !src.is_empty() {
                spec["Source"] = Value::String(src);
            }
            w.mount_specs.push(spec);
        }
    }
    if args.has("volumes") || args.has("mounts") {
        w.mounts = Some(norm);
    }
    w.working_dir = args.str("working_dir").map(str::to_string);
    w.user = args.str("user").map(str::to_string);
    w.hostname = args.str("hostname").map(str::to_string);
    w.network_mode = args.str("network_mode").map(str::to_string);
    w.restart_policy = args.str("restart_policy").map(str::to_string);
    w.restart_retries = args.int("restart_retries");
    let ob = |k: &str| args.get(k).and_then(super::to_bool);
    w.auto_remove = ob("auto_remove");
    w.init = ob("init");
    w.tty = ob("tty");
    w.interactive = ob("interactive");
    w.privileged = ob("privileged");
    w.read_only = ob("read_only");
    w.memory = args
        .str("memory")
        .map(parse_size)
        .transpose()
        .map_err(ModError::fail)?;
    w.stop_timeout = args.int("stop_timeout");
    Ok(w)
}

/// The Engine API body for `POST /containers/create`.
pub fn create_body(w: &Wanted, image: &str) -> Value {
    let mut c = Map::new();
    c.insert("Image".into(), image.into());
    if let Some(v) = &w.command {
        c.insert("Cmd".into(), json!(v));
    }
    if let Some(v) = &w.entrypoint {
        c.insert("Entrypoint".into(), json!(v));
    }
    if let Some(env) = &w.env {
        c.insert(
            "Env".into(),
            json!(env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()),
        );
    }
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            c.insert(k.into(), v);
        }
    };
    put("WorkingDir", w.working_dir.clone().map(Value::from));
    put("User", w.user.clone().map(Value::from));
    put("Hostname", w.hostname.clone().map(Value::from));
    put("Labels", w.labels.as_ref().map(|l| json!(l)));
    put("Tty", w.tty.map(Value::from));
    put("OpenStdin", w.interactive.map(Value::from));
    put("StopTimeout", w.stop_timeout.map(Value::from));
    c.insert("AttachStdout".into(), true.into());
    c.insert("AttachStderr".into(), true.into());
    let mut h = Map::new();
    if !w.binds.is_empty() {
        h.insert("Binds".into(), json!(w.binds));
    }
    if !w.mount_specs.is_empty() {
        h.insert("Mounts".into(), json!(w.mount_specs));
    }
    if let Some(n) = &w.network_mode {
        h.insert("NetworkMode".into(), n.clone().into());
    }
    if let Some(p) = &w.restart_policy {
        h.insert(
            "RestartPolicy".into(),
            json!({"Name": p, "MaximumRetryCount": w.restart_retries.unwrap_or(0)}),
        );
    }
    let mut hb = |k: &str, v: Option<bool>| {
        if let Some(v) = v {
            h.insert(k.into(), v.into());
        }
    };
    hb("AutoRemove", w.auto_remove);
    hb("Init", w.init);
    hb("Privileged", w.privileged);
    hb("ReadonlyRootfs", w.read_only);
    if let Some(m) = w.memory {
        h.insert("Memory".into(), m.into());
    }
    c.insert("HostConfig".into(), Value::Object(h));
    Value::Object(c)
}

fn strs(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().map(api::value_str).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn env_map(v: Option<&Value>) -> BTreeMap<String, String> {
    strs(v)
        .into_iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (e, String::new()),
        })
        .collect()
}

/// Mounts of an inspected container, normalized like `Wanted::mounts`.
pub fn actual_mounts(container: &Value) -> BTreeSet<String> {
    let mut s = BTreeSet::new();
    if let Some(Value::Array(ms)) = container.get("Mounts") {
        for m in ms {
            let g = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let typ = g("Type");
            let ro = !m.get("RW").and_then(Value::as_bool).unwrap_or(true);
            let src = match typ.as_str() {
                "bind" => g("Source"),
                // Anonymous volumes have generated names: compare by target only.
                "volume"
                    if g("Name").len() == 64
                        && g("Name").chars().all(|c| c.is_ascii_hexdigit()) =>
                {
                    String::new()
                }
                "volume" => g("Name"),
                _ => g("Source"),
            };
            s.insert(format!("{typ}|{src}|{}|{ro}", g("Destination")));
        }
    }
    s
}

/// Which wanted options differ from the container (inspect JSON); `image_id`
/// is the wanted image's id, `image_cfg` that image's inspect JSON (for the
/// env and labels it brings).
pub fn differences(
    w: &Wanted,
    container: &Value,
    image_id: Option<&str>,
    image_cfg: Option<&Value>,
) -> Vec<String> {
    let mut d = Vec::new();
    let cfg = container.get("Config").cloned().unwrap_or(Value::Null);
    let hc = container.get("HostConfig").cloned().unwrap_or(Value::Null);
    let cs = |k: &str| cfg.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    if let Some(id) = image_id {
        if container.get("Image").and_then(Value::as_str) != Some(id) {
            d.push("image".into());
        }
    }
    if let Some(c) = &w.command {
        if &strs(cfg.get("Cmd")) != c {
            d.push("command".into());
        }
    }
    if let Some(e) = &w.entrypoint {
        if &strs(cfg.get("Entrypoint")) != e {
            d.push("entrypoint".into());
        }
    }
    if let Some(env) = &w.env {
        let actual = env_map(cfg.get("Env"));
        let from_image = env_map(image_cfg.and_then(|i| i.pointer("/Config/Env")));
        let mut expected = from_image.clone();
        expected.extend(env.clone());
        if actual != expected {
            d.push("env".into());
        }
    }
    if let Some(m) = &w.mounts {
        if &actual_mounts(container) != m {
            d.push("mounts".into());
        }
    }
    if let Some(v) = &w.working_dir {
        if &cs("WorkingDir") != v {
            d.push("working_dir".into());
        }
    }
    if let Some(v) = &w.user {
        if &cs("User") != v {
            d.push("user".into());
        }
    }
    if let Some(v) = &w.hostname {
        if &cs("Hostname") != v {
            d.push("hostname".into());
        }
    }
    if let Some(l) = &w.labels {
        let actual: BTreeMap<String, String> = cfg
            .get("Labels")
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), api::value_str(v)))
                    .collect()
            })
            .unwrap_or_default();
        if l.iter().any(|(k, v)| actual.get(k) != Some(v)) {
            d.push("labels".into());
        }
    }
    if let Some(n) = &w.network_mode {
        let a = hc
            .get("NetworkMode")
            .and_then(Value::as_str)
            .unwrap_or("default");
        let same = a == n || (n == "default" && a == "bridge") || (n == "bridge" && a == "default");
        if !same {
            d.push("network_mode".into());
        }
    }
    if let Some(p) = &w.restart_policy {
        let a = hc
            .pointer("/RestartPolicy/Name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if a != p && !(p == "no" && a.is_empty()) {
            d.push("restart_policy".into());
        }
    }
    if let Some(r) = w.restart_retries {
        if hc
            .pointer("/RestartPolicy/MaximumRetryCount")
            .and_then(Value::as_i64)
            .unwrap_or(0)
            != r
        {
            d.push("restart_retries".into());
        }
    }
    let hbool = |k: &str| hc.get(k).and_then(Value::as_bool).unwrap_or(false);
    let cbool = |k: &str| cfg.get(k).and_then(Value::as_bool).unwrap_or(false);
    for (name, want, got) in [
        ("auto_remove", w.auto_remove, hbool("AutoRemove")),
        ("init", w.init, hbool("Init")),
        ("privileged", w.privileged, hbool("Privileged")),
        ("read_only", w.read_only, hbool("ReadonlyRootfs")),
        ("tty", w.tty, cbool("Tty")),
        ("interactive", w.interactive, cbool("OpenStdin")),
    ] {
        if let Some(v) = want {
            if v != got {
                d.push(name.into());
            }
        }
    }
    if let Some(m) = w.memory {
        if hc.get("Memory").and_then(Value::as_i64).unwrap_or(0) != m {
            d.push("memory".into());
        }
    }
    d
}

async fn inspect_container(
    docker: &bollard::Docker,
    name: &str,
) -> Result<Option<Value>, ModError> {
    match docker
        .inspect_container(
            name,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
    {
        Ok(c) => Ok(Some(api::compact(api::to_json(&c)))),
        Err(e) if api::is_not_found(&e) => Ok(None),
        Err(e) => Err(ModError::fail(format!(
            "inspecting container {name}: {}",
            api::describe(&e)
        ))),
    }
}

fn running(c: &Value) -> bool {
    c.pointer("/State/Running")
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

#[async_trait]
impl Module for DockerContainer {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let w = wanted(args)?;
        let eng = Engine::connect(ctx, args).await?;
        let r = run(&eng, args, ctx, &w).await;
        eng.close(ctx).await;
        r
    }
}

async fn remove(eng: &Engine, name: &str, keep_volumes: bool) -> Result<(), ModError> {
    let opts = bollard::query_parameters::RemoveContainerOptions {
        force: true,
        v: !keep_volumes,
        ..Default::default()
    };
    match eng.docker.remove_container(name, Some(opts)).await {
        Ok(()) => Ok(()),
        Err(e) if api::is_not_found(&e) => Ok(()),
        // Already being removed (auto_remove) counts as removed.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        Err(e) => Err(ModError::fail(format!(
            "removing container {name}: {}",
            api::describe(&e)
        ))),
    }
}

async fn stop(eng: &Engine, args: &Args, name: &str) -> Result<(), ModError> {
    let r = if args.bool("force_kill") {
        eng.docker
            .kill_container(
                name,
                None::<bollard::query_parameters::KillContainerOptions>,
            )
            .await
    } else {
        let opts = bollard::query_parameters::StopContainerOptions {
            t: args.int("stop_timeout").map(|t| t as i32),
            ..Default::default()
        };
        eng.long().stop_container(name, Some(opts)).await
    };
    r.map_err(|e| ModError::fail(format!("stopping container {name}: {}", api::describe(&e))))
}

async fn run(eng: &Engine, args: &Args, ctx: &Ctx<'_>, w: &Wanted) -> ModResult {
    let name = args.req_str("name")?;
    let state = args.str("state").unwrap_or("started");
    let mut existing = inspect_container(&eng.docker, name).await?;
    let mut actions: Vec<Value> = Vec::new();
    let mut changed = false;
    let mut o = Outcome::ok();
    if state == "absent" {
        if let Some(c) = &existing {
            changed = true;
            actions.push(json!({"removed": c.get("Id")}));
            if !ctx.check_mode {
                remove(eng, name, args.bool("keep_volumes")).await?;
            }
        }
        return Ok(Outcome::changed(changed)
            .with("container", Map::new())
            .with("actions", actions));
    }
    // The wanted image: resolved to an id to compare and create with.
    let mut image_json = None;
    if let Some(img) = &w.image {
        let pull = args.get("pull").map(|p| match p {
            Value::String(s) => s.to_lowercase(),
            other => {
                if super::to_bool(other).unwrap_or(false) {
                    "always".into()
                } else {
                    "never".into()
                }
            }
        });
        let pull = pull.as_deref().map(|p| match p {
            "yes" | "true" | "always" => "always",
            "missing" => "missing",
            _ => "never",
        });
        image_json = inspect_image(&eng.docker, img).await?;
        let want_pull = match pull {
            Some("always") => true,
            Some("missing") => image_json.is_none(),
            _ => false,
        };
        if want_pull && !ctx.check_mode {
            let (repo, tag) = api::split_name(img, None);
            let opts = bollard::query_parameters::CreateImageOptions {
                from_image: Some(repo),
                tag: Some(tag),
                ..Default::default()
            };
            let long = eng.long();
            let mut s = long.create_image(Some(opts), None, None);
            while let Some(item) = s.next().await {
                item.map_err(|e| ModError::fail(format!("pulling {img}: {}", api::describe(&e))))?;
            }
            let before = image_json.as_ref().and_then(|i| i.get("Id").cloned());
            image_json = inspect_image(&eng.docker, img).await?;
            if before != image_json.as_ref().and_then(|i| i.get("Id").cloned()) {
                changed = true;
                actions.push(json!({"pulled_image": img}));
            }
        }
        // In check mode an earlier (build) task may not have made the image yet.
        if image_json.is_none() && !ctx.check_mode {
            return Err(ModError::fail(format!(
                "Cannot find the image {img} on the host (no registry is used unless pull is set)"
            )));
        }
    }
    let image_id = image_json
        .as_ref()
        .and_then(|i| i.get("Id"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(c) = &existing {
        let diffs = differences(w, c, image_id.as_deref(), image_json.as_ref());
        if args.bool("recreate") || !diffs.is_empty() {
            changed = true;
            actions.push(json!({"recreate": c.get("Id"), "differences": diffs}));
            if ctx.diff_mode {
                o = o.diff(Diff {
                    before: diffs.iter().map(|d| format!("{d}: (current)\n")).collect(),
                    after: diffs.iter().map(|d| format!("{d}: (wanted)\n")).collect(),
                    before_header: name.to_string(),
                    after_header: name.to_string(),
                });
            }
            if ctx.check_mode {
                return Ok(Outcome { changed: true, ..o }
                    .with("container", c.clone())
                    .with("actions", actions));
            }
            remove(eng, name, args.bool("keep_volumes")).await?;
            existing = None;
        }
    }
    let created_now = existing.is_none();
    if created_now {
        let img = match (&w.image, &image_id) {
            (Some(_), Some(id)) => id.clone(),
            (Some(i), None) => i.clone(),
            (None, _) => {
                return Err(ModError::fail(format!(
                    "Cannot create container {name} when image is not specified"
                )))
            }
        };
        changed = true;
        actions.push(json!({"create": name}));
        if ctx.check_mode {
            return Ok(Outcome { changed, ..o }
                .with("container", Map::new())
                .with("actions", actions));
        }
        let body: bollard::models::ContainerCreateBody =
            serde_json::from_value(create_body(w, &img))
                .map_err(|e| ModError::fail(format!("container config: {e}")))?;
        let opts = bollard::query_parameters::CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        eng.docker
            .create_container(Some(opts), body)
            .await
            .map_err(|e| {
                ModError::fail(format!("creating container {name}: {}", api::describe(&e)))
            })?;
        existing = inspect_container(&eng.docker, name).await?;
    }
    let c = existing.unwrap_or_default();
    match state {
        "present" => {}
        "stopped" => {
            if running(&c) {
                changed = true;
                actions.push(json!({"stop": name}));
                if !ctx.check_mode {
                    stop(eng, args, name).await?;
                }
            }
        }
        _ => {
            if !running(&c) {
                changed = true;
                actions.push(json!({"start": name}));
                if ctx.check_mode {
                    return Ok(Outcome { changed, ..o }
                        .with("container", c)
                        .with("actions", actions));
                }
                if !args.bool("detach") {
                    return run_to_completion(eng, args, name, o, actions).await;
                }
                eng.docker
                    .start_container(
                        name,
                        None::<bollard::query_parameters::StartContainerOptions>,
                    )
                    .await
                    .map_err(|e| {
                        ModError::fail(format!("starting container {name}: {}", api::describe(&e)))
                    })?;
            }
        }
    }
    let c = if ctx.check_mode {
        c
    } else {
        inspect_container(&eng.docker, name).await?.unwrap_or(c)
    };
    Ok(Outcome { changed, ..o }
        .with("container", c)
        .with("actions", actions))
}

/// Appends a log chunk to a finished container's output: stdout and stderr
/// interleaved as they came, like community.docker's `container.Output`.
fn push_output(out: &mut String, chunk: bollard::container::LogOutput) {
    use bollard::container::LogOutput as L;
    match chunk {
        L::StdOut { message } | L::Console { message } | L::StdErr { message } => {
            out.push_str(&String::from_utf8_lossy(&message))
        }
        L::StdIn { .. } => {}
    }
}

/// `detach: false`: attach, start, collect the output, wait for the exit code.
async fn run_to_completion(
    eng: &Engine,
    args: &Args,
    name: &str,
    o: Outcome,
    actions: Vec<Value>,
) -> ModResult {
    let long = eng.long();
    let attach_opts = bollard::query_parameters::AttachContainerOptions {
        stdout: true,
        stderr: true,
        stream: true,
        logs: false,
        ..Default::default()
    };
    let attached = long.attach_container(name, Some(attach_opts)).await.ok();
    let start = std::time::Instant::now();
    long.start_container(
        name,
        None::<bollard::query_parameters::StartContainerOptions>,
    )
    .await
    .map_err(|e| ModError::fail(format!("starting container {name}: {}", api::describe(&e))))?;
    let mut out = String::new();
    let mut got_output = false;
    if let Some(mut a) = attached {
        got_output = true;
        while let Some(chunk) = a.output.next().await {
            match chunk {
                Ok(c) => push_output(&mut out, c),
                Err(_) => break,
            }
        }
    }
    let mut status: i64 = 0;
    let mut wait = long.wait_container(
        name,
        Some(bollard::query_parameters::WaitContainerOptions {
            condition: "not-running".into(),
        }),
    );
    while let Some(r) = wait.next().await {
        match r {
            Ok(resp) => status = resp.status_code,
            Err(bollard::errors::Error::DockerContainerWaitError { code, .. }) => status = code,
            Err(e) if api::is_not_found(&e) => break,
            Err(e) => {
                return Err(ModError::fail(format!(
                    "waiting for container {name}: {}",
                    api::describe(&e)
                )))
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if !got_output {
        let opts = bollard::query_parameters::LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut logs = long.logs(name, Some(opts));
        while let Some(Ok(c)) = logs.next().await {
            push_output(&mut out, c);
        }
    }
    let mut c = inspect_container(&eng.docker, name)
        .await?
        .unwrap_or_default();
    if let Some(exit) = c.pointer("/State/ExitCode").and_then(Value::as_i64) {
        status = exit;
    }
    if let Value::Object(m) = &mut c {
        m.insert("Output".into(), out.clone().into());
    }
    if args.bool("cleanup") {
        remove(eng, name, args.bool("keep_volumes")).await?;
    }
    let mut o = Outcome { changed: true, ..o }
        .with("container", c)
        .with("status", status)
        .with("actions", actions)
        .with("elapsed", (elapsed * 1000.0).round() / 1000.0);
    if status != 0 {
        o.failed = true;
        o.msg = Some(if out.trim().is_empty() {
            format!("container {name} exited with status {status}")
        } else {
            out.trim_end().to_string()
        });
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: Value) -> Args {
        SPEC.validate(v.as_object().unwrap().clone()).unwrap()
    }

    fn container() -> Value {
        json!({
            "Id": "c1", "Image": "sha256:img1",
            "Config": {"Cmd": ["train-lda.py", "--model-dir", "/data/models"], "Env": ["PATH=/app:/usr/bin", "A=1"],
                       "WorkingDir": "/data", "User": "", "Labels": {"from.image": "x", "mine": "y"}, "Tty": false},
            "HostConfig": {"NetworkMode": "none", "RestartPolicy": {"Name": "no", "MaximumRetryCount": 0}, "AutoRemove": false},
            "Mounts": [{"Type": "bind", "Source": "/srv/trainer/data", "Destination": "/data", "RW": true}],
            "State": {"Running": false, "ExitCode": 0}
        })
    }

    fn image() -> Value {
        json!({"Id": "sha256:img1", "Config": {"Env": ["PATH=/app:/usr/bin"]}})
    }

    #[test]
    fn same_config_has_no_differences() {
        let w = wanted(&args(json!({"name": "t", "image": "ferry/trainer", "command": "train-lda.py --model-dir /data/models",
            "env": {"A": 1}, "volumes": ["/srv/trainer/data:/data"], "network_mode": "none", "working_dir": "/data",
            "labels": {"mine": "y"}, "restart_policy": "no"}))).unwrap();
        assert_eq!(
            differences(&w, &container(), Some("sha256:img1"), Some(&image())),
            Vec::<String>::new()
        );
        // Options not given are not compared.
        let w = wanted(&args(json!({"name": "t"}))).unwrap();
        assert!(differences(&w, &container(), None, None).is_empty());
    }

    #[test]
    fn each_changed_option_is_reported() {
        let base = json!({"name": "t", "image": "i", "command": ["train-lda.py", "--model-dir", "/data/models"],
            "env": {"A": "1"}, "volumes": ["/srv/trainer/data:/data"], "network_mode": "none"});
        let cases: &[(&str, Value, &str)] = &[
            ("command", json!(["train-nn.py"]), "command"),
            ("env", json!({"A": "2"}), "env"),
            ("env", json!({"A": "1", "B": "2"}), "env"),
            ("volumes", json!(["/srv/trainer/data:/data:ro"]), "mounts"),
            ("volumes", json!(["/other:/data"]), "mounts"),
            ("network_mode", json!("host"), "network_mode"),
            ("working_dir", json!("/app"), "working_dir"),
            ("user", json!("1000"), "user"),
            ("entrypoint", json!(["sh"]), "entrypoint"),
            ("restart_policy", json!("always"), "restart_policy"),
            ("auto_remove", json!(true), "auto_remove"),
            ("labels", json!({"mine": "z"}), "labels"),
        ];
        for (k, v, want) in cases {
            let mut a = base.clone();
            a[*k] = v.clone();
            let w = wanted(&args(a)).unwrap();
            let d = differences(&w, &container(), Some("sha256:img1"), Some(&image()));
            assert_eq!(d, vec![want.to_string()], "{k}={v}");
        }
        let w = wanted(&args(base)).unwrap();
        assert_eq!(
            differences(&w, &container(), Some("sha256:img2"), Some(&image())),
            vec!["image"]
        );
    }

    #[test]
    fn create_body_maps_to_the_engine_api() {
        let w = wanted(&args(json!({"name": "t", "image": "i", "command": "a 'b c'", "env": {"K": "v"},
            "volumes": ["/h:/c:ro", "named:/n"], "mounts": [{"source": "/x", "target": "/y", "type": "bind", "read_only": true}],
            "network_mode": "none", "restart_policy": "on-failure", "restart_retries": 3, "memory": "512m", "auto_remove": false}))).unwrap();
        let b = create_body(&w, "sha256:abc");
        assert_eq!(b["Image"], "sha256:abc");
        assert_eq!(b["Cmd"], json!(["a", "b c"]));
        assert_eq!(b["Env"], json!(["K=v"]));
        assert_eq!(b["HostConfig"]["Binds"], json!(["/h:/c:ro", "named:/n"]));
        assert_eq!(
            b["HostConfig"]["Mounts"],
            json!([{"Type": "bind", "Target": "/y", "ReadOnly": true, "Source": "/x"}])
        );
        assert_eq!(b["HostConfig"]["NetworkMode"], "none");
        assert_eq!(
            b["HostConfig"]["RestartPolicy"],
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(b["HostConfig"]["Memory"], 512 * 1024 * 1024);
        // The body is what bollard expects.
        let typed: bollard::models::ContainerCreateBody = serde_json::from_value(b).unwrap();
        assert_eq!(
            typed.host_config.unwrap().network_mode.as_deref(),
            Some("none")
        );
        assert_eq!(w.mounts.unwrap().len(), 3);
    }

    #[test]
    fn sizes_and_bad_input() {
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("100").unwrap(), 100);
        assert_eq!(parse_size("2MB").unwrap(), 2 << 20);
        assert!(parse_size("lots").is_err());
        assert!(wanted(&args(json!({"name": "t", "volumes": ["a:b:c:d"]}))).is_err());
        assert!(wanted(&args(
            json!({"name": "t", "mounts": [{"target": "/x", "type": "bind", "source": "rel"}]})
        ))
        .is_err());
    }
}
