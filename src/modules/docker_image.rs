//! `docker_image` (community.docker.docker_image): build, load, import, pull or
//! remove an image in the host's Docker Engine.
//!
//! A build is skipped when the image already carries the hash of the same
//! context (files after `.dockerignore`, Dockerfile name, build args, target,
//! labels) in its `ferry.context.sha256` label; unlike Ansible, a changed
//! context rebuilds without `force_source`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::{Map, Value};

use super::docker_api::{self as api, Engine, Entry, EntryKind, Ignore};
use super::{util, Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["community.docker.docker_image"],
    example: "- community.docker.docker_image:\n    name: ferry/trainer\n    tag: latest\n    source: build\n    build:\n      path: /srv/trainer/app\n      args:\n        BASE_IMAGE: local/debian12-sklearn\n        INSTALL_REQUIREMENTS: '0'\n",
    ..ModuleSpec::new(
        "docker_image",
        "Build, load, import or pull a Docker image, or remove it. Builds are skipped when the context, Dockerfile and build args are unchanged (hash in the image label ferry.context.sha256).",
        crate::with_docker_params![
            Param::new("name", Kind::Str, "Image name (repository), optionally with :tag.").required(),
            Param::new("tag", Kind::Str, "Tag of the image; ignored when name has a tag.").default("latest"),
            Param::new("source", Kind::Str, "Where the image comes from (import: ferry extension, a rootfs tarball at load_path like `docker import`).").choices(&["build", "load", "pull", "local", "import"]),
            Param::new("state", Kind::Str, "present or absent.").choices(&["present", "absent"]).default("present"),
            Param::new("force_source", Kind::Bool, "Build/load/import/pull even when the image exists and is up to date.").default("no"),
            Param::new("force_absent", Kind::Bool, "With state=absent, remove the image even when containers or other tags use it.").default("no"),
            Param::new("force_tag", Kind::Bool, "Accepted for compatibility.").default("no"),
            Param::new("build", Kind::Dict, "Build options: path (context directory on the host, as in Ansible; with remote: false, a ferry extension, on the controller, searched in the role's files/), dockerfile, args, nocache, pull, rm, network, target, labels, platform, remote."),
            Param::new("load_path", Kind::Path, "With source=load: an image archive (docker save) on the host; with source=import: a rootfs tarball (.tar, .tar.gz, .tar.xz) on the host."),
            Param::new("archive_path", Kind::Path, "Not supported by ferry yet."),
            Param::new("push", Kind::Bool, "Push the image: not supported by ferry (no registry).").default("no"),
            Param::new("repository", Kind::Str, "Not supported by ferry yet."),
            Param::new("pull", Kind::Dict, "Pull options (platform)."),
        ],
    )
};

pub struct DockerImage;

const BUILD_KEYS: &[&str] = &[
    "path",
    "dockerfile",
    "args",
    "nocache",
    "pull",
    "rm",
    "network",
    "target",
    "labels",
    "platform",
    "remote",
    "cache_from",
    "container_limits",
    "etc_hosts",
    "use_config_proxy",
    "http_timeout",
    "shm_size",
    "secrets",
    "outputs",
];

/// Build options from the `build` dict.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BuildOpts {
    pub path: String,
    pub dockerfile: String,
    pub args: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub nocache: bool,
    pub pull: bool,
    pub rm: bool,
    pub network: Option<String>,
    pub target: Option<String>,
    pub platform: Option<String>,
    pub remote: bool,
}

pub fn build_opts(v: Option<&Value>) -> Result<BuildOpts, String> {
    let m = match v {
        Some(Value::Object(m)) => m.clone(),
        None => Map::new(),
        Some(other) => return Err(format!("build must be a dict, got {other}")),
    };
    if let Some(k) = m.keys().find(|k| !BUILD_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "Unsupported parameters for (docker_image) module: build.{k}. Supported: {}",
            BUILD_KEYS.join(", ")
        ));
    }
    let s = |k: &str| m.get(k).filter(|v| !v.is_null()).map(api::value_str);
    let b = |k: &str, d: bool| m.get(k).and_then(super::to_bool).unwrap_or(d);
    Ok(BuildOpts {
        path: s("path").ok_or("build.path is required when source=build")?,
        dockerfile: s("dockerfile").unwrap_or_else(|| "Dockerfile".into()),
        args: api::str_map(m.get("args")),
        labels: api::str_map(m.get("labels")),
        nocache: b("nocache", false),
        pull: b("pull", false),
        rm: b("rm", true),
        network: s("network"),
        target: s("target"),
        platform: s("platform"),
        remote: b("remote", true),
    })
}

impl BuildOpts {
    /// Inputs besides files and args that change the resulting image.
    pub fn extra(&self) -> BTreeMap<String, String> {
        let mut e = BTreeMap::new();
        for (k, v) in &self.labels {
            e.insert(format!("label:{k}"), v.clone());
        }
        if let Some(t) = &self.target {
            e.insert("target".into(), t.clone());
        }
        if let Some(p) = &self.platform {
            e.insert("platform".into(), p.clone());
        }
        e
    }
}

/// An image's labels (`Config.Labels`) from its inspect JSON.
pub fn image_label(image: &Value, key: &str) -> Option<String> {
    image
        .pointer("/Config/Labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
        .map(str::to_string)
}

pub async fn inspect_image(
    docker: &bollard::Docker,
    name: &str,
) -> Result<Option<Value>, ModError> {
    match docker.inspect_image(name).await {
        Ok(i) => Ok(Some(api::compact(api::to_json(&i)))),
        Err(e) if api::is_not_found(&e) => Ok(None),
        Err(e) => Err(ModError::fail(format!(
            "inspecting image {name}: {}",
            api::describe(&e)
        ))),
    }
}

#[async_trait]
impl Module for DockerImage {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        for (k, what) in [
            ("push", "push"),
            ("archive_path", "archive_path"),
            ("repository", "repository"),
        ] {
            if args.has(k) && args.get(k) != Some(&Value::Bool(false)) {
                return Err(ModError::fail(format!(
                    "docker_image: {what} is not supported by ferry yet"
                )));
            }
        }
        let eng = Engine::connect(ctx, args).await?;
        let r = run(&eng, args, ctx).await;
        eng.close(ctx).await;
        r
    }
}

async fn run(eng: &Engine, args: &Args, ctx: &Ctx<'_>) -> ModResult {
    let (repo, tag) = api::split_name(args.req_str("name")?, args.str("tag"));
    let full = format!("{repo}:{tag}");
    let existing = inspect_image(&eng.docker, &full).await?;
    if args.str("state") == Some("absent") {
        let Some(img) = existing else {
            return Ok(Outcome::ok()
                .with("image", Map::new())
                .with("actions", Vec::<String>::new()));
        };
        if !ctx.check_mode {
            let opts = bollard::query_parameters::RemoveImageOptions {
                force: args.bool("force_absent"),
                ..Default::default()
            };
            eng.docker
                .remove_image(&full, Some(opts), None)
                .await
                .map_err(|e| {
                    ModError::fail(format!("removing image {full}: {}", api::describe(&e)))
                })?;
        }
        return Ok(Outcome::changed(true)
            .with("image", img)
            .with("actions", vec![format!("Removed image {full}")]));
    }
    let source = args.str("source").unwrap_or(if args.has("build") {
        "build"
    } else if args.has("load_path") {
        "load"
    } else {
        "local"
    });
    let force = args.bool("force_source");
    match source {
        "local" => match existing {
            Some(img) => Ok(Outcome::ok()
                .with("image", img)
                .with("actions", Vec::<String>::new())),
            None => Err(ModError::fail(format!(
                "Cannot find the image {full} locally (source=local)"
            ))),
        },
        "pull" => {
            if let (Some(img), false) = (&existing, force) {
                return Ok(Outcome::ok()
                    .with("image", img.clone())
                    .with("actions", Vec::<String>::new()));
            }
            let action = format!("Pulled image {full}");
            if ctx.check_mode {
                return Ok(Outcome::changed(true)
                    .with("image", existing.unwrap_or_default())
                    .with("actions", vec![action]));
            }
            let opts = bollard::query_parameters::CreateImageOptions {
                from_image: Some(repo.clone()),
                tag: Some(tag.clone()),
                ..Default::default()
            };
            let long = eng.long();
            let mut s = long.create_image(Some(opts), None, None);
            while let Some(item) = s.next().await {
                item.map_err(|e| ModError::fail(format!("pulling {full}: {}", api::describe(&e))))?;
            }
            let img = inspect_image(&eng.docker, &full).await?.unwrap_or_default();
            let changed = existing.as_ref().and_then(|e| e.get("Id")) != img.get("Id");
            Ok(Outcome::changed(changed)
                .with("image", img)
                .with("actions", vec![action]))
        }
        "load" => load(eng, args, ctx, &full, existing, force).await,
        "import" => import(eng, args, ctx, &repo, &tag, existing, force).await,
        "build" => build(eng, args, ctx, &full, existing, force).await,
        other => Err(ModError::fail(format!("unknown source {other}"))),
    }
}

async fn load(
    eng: &Engine,
    args: &Args,
    ctx: &Ctx<'_>,
    full: &str,
    existing: Option<Value>,
    force: bool,
) -> ModResult {
    let path = args
        .str("load_path")
        .ok_or_else(|| ModError::fail("source is load but the following are missing: load_path"))?;
    if let (Some(img), false) = (&existing, force) {
        return Ok(Outcome::ok()
            .with("image", img.clone())
            .with("actions", Vec::<String>::new()));
    }
    let action = format!("Loaded image {full} from {path}");
    if ctx.check_mode {
        return Ok(Outcome::changed(true)
            .with("image", existing.unwrap_or_default())
            .with("actions", vec![action]));
    }
    let data = util::read(ctx, path).await?.ok_or_else(|| {
        ModError::fail(format!(
            "Error loading image {full}: {path} not found on the host"
        ))
    })?;
    let long = eng.long();
    let mut s = long.import_image(
        bollard::query_parameters::ImportImageOptions {
            quiet: true,
            ..Default::default()
        },
        bollard::body_full(data.into()),
        None,
    );
    let mut log = String::new();
    while let Some(item) = s.next().await {
        let info = item.map_err(|e| {
            ModError::fail(format!(
                "Error loading image {full} from {path}: {}",
                api::describe(&e)
            ))
        })?;
        if let Some(t) = info.stream {
            log.push_str(&t);
        }
    }
    let img = inspect_image(&eng.docker, full).await?.ok_or_else(|| {
        ModError::fail(format!(
            "The archive {path} did not contain the image {full}: {}",
            log.trim()
        ))
    })?;
    let changed =
        existing.as_ref().and_then(|e| e.get("Id")) != img.get("Id") || existing.is_none();
    Ok(Outcome::changed(changed || force)
        .with("image", img)
        .with("actions", vec![action])
        .with("stdout", log))
}

async fn import(
    eng: &Engine,
    args: &Args,
    ctx: &Ctx<'_>,
    repo: &str,
    tag: &str,
    existing: Option<Value>,
    force: bool,
) -> ModResult {
    let full = format!("{repo}:{tag}");
    let path = args.str("load_path").ok_or_else(|| {
        ModError::fail("source is import but the following are missing: load_path")
    })?;
    let out = ctx.sh(&format!("p={}\n[ -f \"$p\" ] || {{ echo \"$p: no such file on the host\" >&2; exit 3; }}\nsha256sum -- \"$p\"", quote(path))).await?;
    if out.rc == 3 && ctx.check_mode {
        // An earlier task (skipped in check mode) would have put it there.
        return Ok(Outcome::changed(true)
            .with("image", existing.unwrap_or_default())
            .with(
                "actions",
                vec![format!("Imported image {full} from {path}")],
            )
            .msg(format!("{path} is not on the host yet")));
    }
    if out.rc != 0 {
        return Err(ModError::fail(format!(
            "Error importing {full}: {}",
            out.stderr_str().trim()
        )));
    }
    let sum = out
        .stdout_str()
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let current = existing
        .as_ref()
        .and_then(|i| image_label(i, api::IMPORT_LABEL));
    if existing.is_some() && current.as_deref() == Some(sum.as_str()) && !force {
        return Ok(Outcome::ok()
            .with("image", existing.unwrap_or_default())
            .with("actions", Vec::<String>::new()));
    }
    let action = format!("Imported image {full} from {path}");
    if ctx.check_mode {
        return Ok(Outcome::changed(true)
            .with("image", existing.unwrap_or_default())
            .with("actions", vec![action]));
    }
    let data = util::read(ctx, path)
        .await?
        .ok_or_else(|| ModError::fail(format!("{path} vanished")))?;
    let opts = bollard::query_parameters::CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(repo.to_string()),
        tag: Some(tag.to_string()),
        changes: vec![format!("LABEL {}={sum}", api::IMPORT_LABEL)],
        ..Default::default()
    };
    let long = eng.long();
    let mut s = long.create_image(Some(opts), Some(bollard::body_full(data.into())), None);
    while let Some(item) = s.next().await {
        item.map_err(|e| {
            ModError::fail(format!(
                "Error importing {full} from {path}: {}",
                api::describe(&e)
            ))
        })?;
    }
    let img = inspect_image(&eng.docker, &full)
        .await?
        .ok_or_else(|| ModError::fail(format!("{full} not found after import")))?;
    Ok(Outcome::changed(true)
        .with("image", img)
        .with("actions", vec![action]))
}

/// The context's kept entries, their hash and a way to tar them.
enum Context {
    Local(PathBuf),
    Remote(String),
}

async fn read_context(ctx: &Ctx<'_>, b: &BuildOpts) -> Result<(Context, Vec<Entry>), ModError> {
    if !b.remote {
        let root = ctx.find_file("files", &b.path).filter(|p| p.is_dir()).ok_or_else(|| {
            ModError::fail(format!(
                "build.path {} is not a directory on the controller (searched the role's files/, the role, the playbook dir); build.remote: false builds from the controller",
                b.path
            ))
        })?;
        let all = api::walk_local(&root)
            .map_err(|e| ModError::fail(format!("{}: {e}", root.display())))?;
        let ignore =
            Ignore::parse(&std::fs::read_to_string(root.join(".dockerignore")).unwrap_or_default());
        let kept = api::filter_entries(all, &ignore, &b.dockerfile);
        return Ok((Context::Local(root), kept));
    }
    let script = format!(
        "p={}\n[ -d \"$p\" ] || {{ echo \"build path $p: no such directory on the host\" >&2; exit 3; }}\ncd \"$p\" || exit 3\nfind . -mindepth 1 -printf '%y|%m|%P|%l\\n'\necho '--FERRY-IGNORE--'\n[ ! -f .dockerignore ] || cat .dockerignore\n",
        quote(&b.path)
    );
    let out = util::run_ok(ctx, &script).await?;
    let text = out.stdout_str();
    let (listing, ignore) = text.split_once("--FERRY-IGNORE--\n").unwrap_or((&text, ""));
    let kept = api::filter_entries(
        api::parse_listing(listing),
        &Ignore::parse(ignore),
        &b.dockerfile,
    );
    let files: Vec<u8> = kept
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::File(_)))
        .flat_map(|e| format!("./{}\0", e.path).into_bytes())
        .collect();
    let mut kept = kept;
    if !files.is_empty() {
        let out = ctx
            .sh_in(
                &format!("cd {} && xargs -0 sha256sum --", quote(&b.path)),
                Some(&files),
            )
            .await?;
        if out.rc != 0 {
            return Err(ModError::fail(format!(
                "hashing the build context on the host: {}",
                out.stderr_str().trim()
            )));
        }
        api::apply_sums(&mut kept, &out.stdout_str());
    }
    Ok((Context::Remote(b.path.clone()), kept))
}

async fn tar_context(ctx: &Ctx<'_>, c: &Context, kept: &[Entry]) -> Result<Vec<u8>, ModError> {
    match c {
        Context::Local(root) => api::tar_local(root, kept)
            .map_err(|e| ModError::fail(format!("tar of {}: {e}", root.display()))),
        Context::Remote(path) => {
            let list: Vec<u8> = kept
                .iter()
                .flat_map(|e| format!("./{}\0", e.path).into_bytes())
                .collect();
            let out = ctx
                .sh_in(
                    &format!("cd {} && tar --no-recursion --null -T - -cf -", quote(path)),
                    Some(&list),
                )
                .await?;
            if out.rc != 0 {
                return Err(ModError::fail(format!(
                    "tar of the build context on the host: {}",
                    out.stderr_str().trim()
                )));
            }
            Ok(out.stdout)
        }
    }
}

async fn build(
    eng: &Engine,
    args: &Args,
    ctx: &Ctx<'_>,
    full: &str,
    existing: Option<Value>,
    force: bool,
) -> ModResult {
    let b = build_opts(args.get("build")).map_err(ModError::fail)?;
    if b.dockerfile.starts_with('/') || b.dockerfile.split('/').any(|c| c == "..") {
        return Err(ModError::fail(
            "build.dockerfile must be a path inside build.path",
        ));
    }
    let (context, kept) = read_context(ctx, &b).await?;
    let df = b.dockerfile.trim_start_matches("./");
    if !kept.iter().any(|e| e.path == df) {
        return Err(ModError::fail(format!(
            "Cannot find the Dockerfile {} in {}",
            b.dockerfile, b.path
        )));
    }
    let hash = api::context_hash(&kept, &b.dockerfile, &b.args, &b.extra());
    let current = existing
        .as_ref()
        .and_then(|i| image_label(i, api::CONTEXT_LABEL));
    if existing.is_some() && current.as_deref() == Some(hash.as_str()) && !force {
        return Ok(Outcome::ok()
            .with("image", existing.unwrap_or_default())
            .with("actions", Vec::<String>::new())
            .with("context_sha256", hash));
    }
    let action = format!("Built image {full} from {}", b.path);
    if ctx.check_mode {
        return Ok(Outcome::changed(true)
            .with("image", existing.unwrap_or_default())
            .with("actions", vec![action])
            .with("context_sha256", hash));
    }
    let tar = tar_context(ctx, &context, &kept).await?;
    let mut labels: HashMap<String, String> = b.labels.clone().into_iter().collect();
    labels.insert(api::CONTEXT_LABEL.into(), hash.clone());
    let opts = bollard::query_parameters::BuildImageOptions {
        dockerfile: df.to_string(),
        t: Some(full.to_string()),
        nocache: b.nocache,
        pull: b.pull.then(|| "1".to_string()),
        rm: b.rm,
        forcerm: b.rm,
        buildargs: Some(b.args.clone().into_iter().collect()),
        labels: Some(labels),
        networkmode: b.network.clone(),
        target: b.target.clone().unwrap_or_default(),
        platform: b.platform.clone().unwrap_or_default(),
        ..Default::default()
    };
    let long = eng.long();
    let mut s = long.build_image(opts, None, Some(bollard::body_full(tar.into())));
    let mut log = String::new();
    while let Some(item) = s.next().await {
        match item {
            Ok(info) => {
                if let Some(t) = info.stream.or(info.status) {
                    log.push_str(&t);
                    if !t.ends_with('\n') {
                        log.push('\n');
                    }
                }
            }
            Err(e) => {
                let tail: Vec<&str> = log
                    .lines()
                    .rev()
                    .take(30)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                let mut data = Map::new();
                data.insert("stdout".into(), log.clone().into());
                return Err(ModError::Failed {
                    msg: format!(
                        "Error building {full} - message: {}\n{}",
                        api::describe(&e),
                        tail.join("\n")
                    ),
                    data,
                });
            }
        }
    }
    let img = inspect_image(&eng.docker, full)
        .await?
        .ok_or_else(|| ModError::fail(format!("{full} not found after the build:\n{log}")))?;
    Ok(Outcome::changed(true)
        .with("image", img)
        .with("actions", vec![action])
        .with("stdout", log)
        .with("context_sha256", hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn build_options_parse_and_reject_unknown_keys() {
        let b = build_opts(Some(&json!({"path": "/srv/app", "args": {"A": 1, "B": "x"}, "remote": "yes", "nocache": true}))).unwrap();
        assert_eq!(b.path, "/srv/app");
        assert_eq!(b.dockerfile, "Dockerfile");
        assert_eq!(b.args.get("A").map(String::as_str), Some("1"));
        assert!(b.remote && b.nocache && b.rm && !b.pull);
        // As in Ansible, the context is on the host unless remote: false says otherwise.
        assert!(build_opts(Some(&json!({"path": "/x"}))).unwrap().remote);
        assert!(
            !build_opts(Some(&json!({"path": "x", "remote": false})))
                .unwrap()
                .remote
        );
        assert!(build_opts(Some(&json!({"path": "x", "bogus": 1})))
            .unwrap_err()
            .contains("build.bogus"));
        assert!(build_opts(Some(&json!({"dockerfile": "x"})))
            .unwrap_err()
            .contains("build.path"));
        let t = build_opts(Some(
            &json!({"path": "x", "target": "t", "labels": {"a": "b"}}),
        ))
        .unwrap();
        assert_eq!(t.extra().len(), 2);
    }

    #[test]
    fn label_lookup() {
        let img = json!({"Config": {"Labels": {"ferry.context.sha256": "abc"}}});
        assert_eq!(
            image_label(&img, api::CONTEXT_LABEL).as_deref(),
            Some("abc")
        );
        assert_eq!(
            image_label(&json!({"Config": {"Labels": null}}), api::CONTEXT_LABEL),
            None
        );
    }

    #[test]
    fn spec_validates() {
        let m = json!({"name": "a", "source": "build", "build": {"path": "."}, "docker_url": "unix:///x.sock"});
        let a = SPEC.validate(m.as_object().unwrap().clone()).unwrap();
        assert_eq!(a.str("docker_host"), Some("unix:///x.sock"));
        assert_eq!(a.str("tag"), Some("latest"));
        assert!(SPEC
            .validate(
                json!({"name": "a", "source": "git"})
                    .as_object()
                    .unwrap()
                    .clone()
            )
            .is_err());
    }
}
