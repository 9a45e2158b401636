//! Shared by the `docker_*` modules: reaching a host's Docker Engine through
//! the connection (a forwarded Unix socket, with a root relay for `become`),
//! build contexts (`.dockerignore`, content hash, tar) and small JSON helpers.
//!
//! The engine is spoken to with `bollard` from the controller; nothing but the
//! socket (and `socat` for an escalated task) is needed on the target.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::{Args, Ctx, ModError};
use crate::connection::quote;

/// Label holding the hash of the build context, Dockerfile and build args.
pub const CONTEXT_LABEL: &str = "ferry.context.sha256";
/// Label holding the sha256 of an imported rootfs tarball.
pub const IMPORT_LABEL: &str = "ferry.import.sha256";
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Parameters every docker module accepts (community.docker's common options).
#[macro_export]
macro_rules! with_docker_params {
    ($($p:expr),* $(,)?) => {&[$($p,)*
    $crate::modules::Param::new("docker_host", $crate::modules::Kind::Str, "The engine's socket on the target, unix:///path (default unix:///var/run/docker.sock, or DOCKER_HOST from the task's environment).").aliases(&["docker_url"]),
    $crate::modules::Param::new("api_version", $crate::modules::Kind::Str, "Docker API version to speak; auto negotiates with the daemon.").aliases(&["docker_api_version"]).default("auto"),
    $crate::modules::Param::new("timeout", $crate::modules::Kind::Int, "Seconds to wait for an API response (builds and runs are not bounded by it).").default("60"),
    $crate::modules::Param::new("tls", $crate::modules::Kind::Bool, "TLS to the engine: not supported by ferry (the socket is reached through the connection).").default("no"),
    $crate::modules::Param::new("validate_certs", $crate::modules::Kind::Bool, "TLS verification: not supported by ferry.").aliases(&["tls_verify"]).default("no"),
    $crate::modules::Param::new("ca_path", $crate::modules::Kind::Path, "Accepted for compatibility (TLS is not supported).").aliases(&["ca_cert", "tls_ca_cert", "cacert_path"]),
    $crate::modules::Param::new("client_cert", $crate::modules::Kind::Path, "Accepted for compatibility (TLS is not supported).").aliases(&["tls_client_cert", "cert_path"]),
    $crate::modules::Param::new("client_key", $crate::modules::Kind::Path, "Accepted for compatibility (TLS is not supported).").aliases(&["tls_client_key", "key_path"]),
    $crate::modules::Param::new("tls_hostname", $crate::modules::Kind::Str, "Accepted for compatibility (TLS is not supported)."),
    $crate::modules::Param::new("use_ssh_client", $crate::modules::Kind::Bool, "Accepted for compatibility: ferry always goes through its own connection.").default("no"),
    $crate::modules::Param::new("debug", $crate::modules::Kind::Bool, "Accepted for compatibility.").default("no"),
    ]};
}

/// A live API client for one task; `close` removes the relay and the forward.
pub struct Engine {
    pub docker: Docker,
    relay: Option<(String, String)>,
    forward_dir: Option<PathBuf>,
}

fn api_err(what: &str, e: bollard::errors::Error) -> ModError {
    ModError::fail(format!("{what}: {}", describe(&e)))
}

/// A readable message for a bollard error (the daemon's own message when it sent one).
pub fn describe(e: &bollard::errors::Error) -> String {
    use bollard::errors::Error as E;
    match e {
        E::DockerResponseServerError {
            status_code,
            message,
        } => format!("{message} (HTTP {status_code})"),
        E::DockerStreamError { error } => error.clone(),
        E::DockerContainerWaitError { error, code } => format!("{error} (exit code {code})"),
        other => other.to_string(),
    }
}

/// Whether the error is the daemon's 404 (no such image/container/network).
pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The socket path on the target from `docker_host`, `DOCKER_HOST` or the default.
pub fn socket_path(args: &Args, env: &[(String, String)]) -> Result<String, ModError> {
    let host = args
        .str("docker_host")
        .map(str::to_string)
        .or_else(|| {
            env.iter()
                .find(|(k, _)| k == "DOCKER_HOST")
                .map(|(_, v)| v.clone())
        })
        .unwrap_or_else(|| format!("unix://{DEFAULT_SOCKET}"));
    match host.strip_prefix("unix://") {
        Some(p) if p.starts_with('/') => Ok(p.to_string()),
        _ if host.starts_with('/') => Ok(host),
        _ => Err(ModError::fail(format!(
            "docker_host {host:?} is not supported: ferry reaches the engine through its connection to the host, so give the socket as unix:///path"
        ))),
    }
}

impl Engine {
    /// Connects to the engine of the task's host. When the task escalates, a
    /// `socat` relay started as the become user (normally root) in a private
    /// 0700 directory stands in for the root-only socket.
    pub async fn connect(ctx: &Ctx<'_>, args: &Args) -> Result<Engine, ModError> {
        if args.bool("tls") || args.bool("validate_certs") {
            return Err(ModError::fail("TLS to the Docker daemon is not supported by ferry: the engine's Unix socket is reached through the connection"));
        }
        let sock = socket_path(args, &ctx.env)?;
        let escalated = ctx
            .escalate
            .as_ref()
            .filter(|b| Some(b.user.as_str()) != ctx.conn.remote_user());
        let mut relay = None;
        let target_sock = match escalated {
            Some(b) => {
                let user = ctx.conn.remote_user().map(str::to_string);
                let (pid, dir) = start_relay(ctx, &sock, user.as_deref(), &b.user).await?;
                let path = format!("{dir}/docker.sock");
                relay = Some((pid, dir));
                path
            }
            None => sock.clone(),
        };
        let local = match ctx.conn.forward_unix(&target_sock).await {
            Ok(p) => p,
            Err(e) => {
                cleanup(ctx, relay.as_ref(), None).await;
                return Err(ModError::fail(format!(
                    "cannot reach {sock} on the host: {e}"
                )));
            }
        };
        let forward_dir = (local != Path::new(&target_sock))
            .then(|| local.parent().map(Path::to_path_buf))
            .flatten();
        let timeout = args.int("timeout").unwrap_or(60).max(1) as u64;
        let res = async {
            let local_str = local.to_str().ok_or_else(|| ModError::fail("socket path is not UTF-8"))?;
            let docker = Docker::connect_with_unix(local_str, timeout, bollard::API_DEFAULT_VERSION)
                .map_err(|e| api_err(&format!("cannot open {sock}"), e))?;
            let docker = match args.str("api_version").unwrap_or("auto") {
                "auto" | "" => docker.negotiate_version().await.map_err(|e| {
                    ModError::fail(format!("cannot talk to the Docker daemon at {sock} on the host (is it installed and running, and may this user open its socket?): {}", describe(&e)))
                })?,
                v => {
                    let (ma, mi) = v.split_once('.').ok_or_else(|| ModError::fail(format!("bad api_version {v:?}")))?;
                    let cv = bollard::ClientVersion {
                        major_version: ma.parse().map_err(|_| ModError::fail(format!("bad api_version {v:?}")))?,
                        minor_version: mi.parse().map_err(|_| ModError::fail(format!("bad api_version {v:?}")))?,
                    };
                    Docker::connect_with_unix(local_str, timeout, &cv).map_err(|e| api_err("docker", e))?
                }
            };
            Ok::<Docker, ModError>(docker)
        }
        .await;
        match res {
            Ok(docker) => Ok(Engine {
                docker,
                relay,
                forward_dir,
            }),
            Err(e) => {
                cleanup(ctx, relay.as_ref(), forward_dir.as_deref()).await;
                Err(e)
            }
        }
    }

    /// The same client with a longer request timeout (builds, imports, runs).
    pub fn long(&self) -> Docker {
        self.docker
            .clone()
            .with_timeout(Duration::from_secs(24 * 3600))
    }

    /// Stops the relay and removes the local end of the forward.
    pub async fn close(self, ctx: &Ctx<'_>) {
        cleanup(ctx, self.relay.as_ref(), self.forward_dir.as_deref()).await;
    }
}

async fn cleanup(ctx: &Ctx<'_>, relay: Option<&(String, String)>, forward_dir: Option<&Path>) {
    if let Some((pid, dir)) = relay {
        let _ = ctx.sh(&relay_stop_script(pid, dir)).await;
    }
    if let Some(d) = forward_dir {
        if d.file_name()
            .map(|n| n.to_string_lossy().starts_with("ferry-fwd"))
            .unwrap_or(false)
        {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// The script that starts the relay; prints `RELAY|pid|dir`.
pub fn relay_start_script(sock: &str, owner: Option<&str>) -> String {
    let chown = owner
        .map(|u| format!("chown {} \"$d\"\n", quote(u)))
        .unwrap_or_default();
    let user_opt = owner.map(|u| format!(",user={u}")).unwrap_or_default();
    format!(
        r#"s={sock}
command -v socat >/dev/null 2>&1 || {{ echo "socat is needed on the host to reach $s with become (or add the remote user to the docker group and drop become)" >&2; exit 3; }}
[ -S "$s" ] || {{ echo "$s: no such socket (is the Docker daemon installed and running?)" >&2; exit 4; }}
d=$(mktemp -d /tmp/ferry-docker.XXXXXXXX) || exit 5
{chown}chmod 700 "$d"
setsid socat UNIX-LISTEN:"$d"/docker.sock,fork,mode=600{user_opt} UNIX-CONNECT:"$s" </dev/null >/dev/null 2>&1 &
pid=$!
i=0
while [ ! -S "$d/docker.sock" ]; do
  i=$((i+1))
  if [ $i -gt 200 ] || ! kill -0 $pid 2>/dev/null; then kill $pid 2>/dev/null; rm -rf "$d"; echo "the socket relay did not start" >&2; exit 6; fi
  sleep 0.02
done
echo "RELAY|$pid|$d"
"#,
        sock = quote(sock)
    )
}

pub fn relay_stop_script(pid: &str, dir: &str) -> String {
    format!(
        "kill -- -{pid} 2>/dev/null || kill {pid} 2>/dev/null\nrm -rf -- {}\nexit 0\n",
        quote(dir)
    )
}

async fn start_relay(
    ctx: &Ctx<'_>,
    sock: &str,
    ssh_user: Option<&str>,
    become_user: &str,
) -> Result<(String, String), ModError> {
    // The ssh user must own the relay's socket; only root can hand it over.
    let owner = if become_user == "root" {
        ssh_user.filter(|u| *u != "root")
    } else {
        None
    };
    if become_user != "root" {
        return Err(ModError::fail(format!(
            "become_user {become_user} for a docker module: only become_user root is supported (the relay must hand its socket to the connection user)"
        )));
    }
    let out = ctx.sh(&relay_start_script(sock, owner)).await?;
    let line = out
        .stdout_str()
        .lines()
        .find_map(|l| l.strip_prefix("RELAY|").map(str::to_string));
    match (out.rc, line) {
        (0, Some(l)) => {
            let (pid, dir) = l
                .split_once('|')
                .ok_or_else(|| ModError::fail("relay: bad output"))?;
            Ok((pid.to_string(), dir.to_string()))
        }
        _ => Err(ModError::fail(format!(
            "cannot reach the Docker socket as {become_user}: {}",
            out.stderr_str().trim()
        ))),
    }
}

// ---------------------------------------------------------------------------
// Build contexts
// ---------------------------------------------------------------------------

/// One entry of a build context.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Relative path, `/`-separated, no leading `./`.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits.
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum EntryKind {
    Dir,
    /// A regular file and the sha256 of its content (filled in once hashed).
    File(String),
    Link(String),
}

/// `.dockerignore` rules (Docker's semantics: patterns in order, `!` re-includes,
/// a pattern that matches a parent directory matches everything below it).
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    rules: Vec<(glob::Pattern, usize, bool)>,
}

impl Ignore {
    pub fn parse(text: &str) -> Ignore {
        let mut rules = Vec::new();
        for line in text.lines() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (neg, pat) = match l.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, l),
            };
            let clean = clean_path(pat);
            if clean.is_empty() {
                continue;
            }
            if let Ok(p) = glob::Pattern::new(&clean) {
                let depth = clean.split('/').count();
                rules.push((p, depth, neg));
            }
        }
        Ignore { rules }
    }

    pub fn excluded(&self, path: &str) -> bool {
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        let parts: Vec<&str> = path.split('/').collect();
        let mut matched = false;
        for (p, depth, neg) in &self.rules {
            if *neg != matched {
                continue;
            }
            let mut m = p.matches_with(path, opts);
            if !m && parts.len() > 1 && *depth < parts.len() {
                m = p.matches_with(&parts[..*depth].join("/"), opts);
            }
            if !m && p.as_str().contains("**") {
                // `**` may stand for a whole subtree: try every parent too.
                m = (1..parts.len()).any(|i| p.matches_with(&parts[..i].join("/"), opts));
            }
            if m {
                matched = !neg;
            }
        }
        matched
    }
}

/// `filepath.Clean` for ignore patterns: no leading `/` or `./`, no trailing `/`.
fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.join("/")
}

/// Keeps the entries a build should see: not ignored, plus the Dockerfile and
/// `.dockerignore` always (as the docker CLI does).
pub fn filter_entries(entries: Vec<Entry>, ignore: &Ignore, dockerfile: &str) -> Vec<Entry> {
    let df = clean_path(dockerfile);
    let mut kept: Vec<Entry> = entries
        .into_iter()
        .filter(|e| e.path == df || e.path == ".dockerignore" || !ignore.excluded(&e.path))
        .collect();
    kept.sort_by(|a, b| a.path.cmp(&b.path));
    kept
}

/// The hash stored in the image label: entries (path, type, mode, content),
/// the Dockerfile's name, build args and any other build inputs, in a
/// canonical order. Independent of mtimes, owners and where the context lives.
pub fn context_hash(
    entries: &[Entry],
    dockerfile: &str,
    args: &BTreeMap<String, String>,
    extra: &BTreeMap<String, String>,
) -> String {
    let mut h = Sha256::new();
    h.update(b"ferry-context-v1\n");
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    for e in sorted {
        let line = match &e.kind {
            EntryKind::Dir => format!("D {:o} {}\n", e.mode, e.path.len()),
            EntryKind::File(sum) => format!("F {:o} {sum} {}\n", e.mode, e.path.len()),
            EntryKind::Link(t) => format!("L {} {} {}\n", t.len(), t, e.path.len()),
        };
        h.update(line.as_bytes());
        h.update(e.path.as_bytes());
        h.update(b"\n");
    }
    h.update(format!("dockerfile {}\n", clean_path(dockerfile)).as_bytes());
    for (k, v) in args {
        h.update(format!("arg {} {}\n{k}={v}\n", k.len(), v.len()).as_bytes());
    }
    for (k, v) in extra {
        h.update(format!("opt {} {}\n{k}={v}\n", k.len(), v.len()).as_bytes());
    }
    hex::encode(h.finalize())
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Walks a controller directory (symlinks are not followed) and hashes its files.
pub fn walk_local(root: &Path) -> std::io::Result<Vec<Entry>> {
    use std::os::unix::fs::PermissionsExt;
    fn rec(root: &Path, dir: &Path, out: &mut Vec<Entry>) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let p = e.path();
            let md = std::fs::symlink_metadata(&p)?;
            let rel = p
                .strip_prefix(root)
                .unwrap_or(&p)
                .to_string_lossy()
                .replace('\\', "/");
            let mode = md.permissions().mode() & 0o7777;
            if md.file_type().is_symlink() {
                let t = std::fs::read_link(&p)?.to_string_lossy().into_owned();
                out.push(Entry {
                    path: rel,
                    kind: EntryKind::Link(t),
                    mode,
                });
            } else if md.is_dir() {
                out.push(Entry {
                    path: rel,
                    kind: EntryKind::Dir,
                    mode,
                });
                rec(root, &p, out)?;
            } else if md.is_file() {
                let data = std::fs::read(&p)?;
                out.push(Entry {
                    path: rel,
                    kind: EntryKind::File(sha256_hex(&data)),
                    mode,
                });
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    rec(root, root, &mut out)?;
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Tars the kept entries of a controller directory (the build context sent to the API).
pub fn tar_local(root: &Path, entries: &[Entry]) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.mode(tar::HeaderMode::Deterministic);
    for e in entries {
        let p = root.join(&e.path);
        match e.kind {
            EntryKind::Dir => b.append_dir(&e.path, &p)?,
            _ => b.append_path_with_name(&p, &e.path)?,
        }
    }
    b.into_inner()
}

/// Parses the target-side listing: `type|mode|path|link` lines (GNU find `-printf '%y|%m|%P|%l\n'`).
pub fn parse_listing(out: &str) -> Vec<Entry> {
    let mut v = Vec::new();
    for line in out.lines() {
        let mut it = line.splitn(4, '|');
        let (Some(t), Some(m), Some(p), l) = (it.next(), it.next(), it.next(), it.next()) else {
            continue;
        };
        if p.is_empty() {
            continue;
        }
        let mode = u32::from_str_radix(m, 8).unwrap_or(0o644);
        let kind = match t {
            "d" => EntryKind::Dir,
            "f" => EntryKind::File(String::new()),
            "l" => EntryKind::Link(l.unwrap_or("").to_string()),
            _ => continue,
        };
        v.push(Entry {
            path: p.to_string(),
            kind,
            mode,
        });
    }
    v.sort_by(|a, b| a.path.cmp(&b.path));
    v
}

/// Fills file hashes from `sha256sum` output (`<sum>  ./path` lines).
pub fn apply_sums(entries: &mut [Entry], out: &str) {
    let sums: BTreeMap<&str, &str> = out
        .lines()
        .filter_map(|l| {
            l.split_once("  ")
                .map(|(s, p)| (p.trim_start_matches("./"), s))
        })
        .collect();
    for e in entries.iter_mut() {
        if let EntryKind::File(s) = &mut e.kind {
            if let Some(sum) = sums.get(e.path.as_str()) {
                *s = sum.to_string();
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/// `name[:tag]` split like Docker: a `:` after the last `/` starts the tag.
pub fn split_name(name: &str, tag: Option<&str>) -> (String, String) {
    if let Some((repo, t)) = name.rsplit_once(':') {
        if !t.contains('/') && !name.contains('@') {
            return (repo.to_string(), t.to_string());
        }
    }
    (
        name.to_string(),
        tag.filter(|t| !t.is_empty())
            .unwrap_or("latest")
            .to_string(),
    )
}

/// A serde value of any bollard model (Docker's own key names).
pub fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A dict parameter's values as strings (Docker wants strings: `1` → "1", true → "True"? no: "true").
pub fn str_map(v: Option<&Value>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    if let Some(Value::Object(o)) = v {
        for (k, v) in o {
            m.insert(k.clone(), value_str(v));
        }
    }
    m
}

pub fn value_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Removes null fields recursively (bollard models serialize every Option).
pub fn compact(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, compact(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(compact).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(path: &str, sum: &str) -> Entry {
        Entry {
            path: path.into(),
            kind: EntryKind::File(sum.into()),
            mode: 0o644,
        }
    }

    #[test]
    fn dockerignore_follows_docker_rules() {
        let ig = Ignore::parse(
            "# data\n*.csv\nmodels/\n__pycache__/\n*.pyc\n!keep.csv\n/abs/\n**/*.tmp\n",
        );
        assert!(ig.excluded("train.csv"));
        assert!(!ig.excluded("sub/train.csv"), "* does not cross /");
        assert!(!ig.excluded("keep.csv"));
        assert!(ig.excluded("models"));
        assert!(ig.excluded("models/lda.joblib"));
        assert!(ig.excluded("__pycache__/x.pyc"));
        assert!(ig.excluded("abs/x"));
        assert!(ig.excluded("a/b/c.tmp"));
        assert!(ig.excluded("x.tmp"));
        assert!(!ig.excluded("train-lda.py"));
        assert!(!ig.excluded("Dockerfile"));
    }

    #[test]
    fn filter_keeps_dockerfile_and_ignore_file() {
        let ig = Ignore::parse("*\n");
        let kept = filter_entries(
            vec![
                f("Dockerfile", "a"),
                f(".dockerignore", "b"),
                f("x.py", "c"),
            ],
            &ig,
            "./Dockerfile",
        );
        let names: Vec<&str> = kept.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(names, vec![".dockerignore", "Dockerfile"]);
    }

    #[test]
    fn context_hash_changes_only_with_inputs() {
        let args: BTreeMap<String, String> = [("A".to_string(), "1".to_string())].into();
        let none = BTreeMap::new();
        let base = context_hash(&[f("a", "1"), f("b", "2")], "Dockerfile", &args, &none);
        // Order of entries does not matter.
        assert_eq!(
            base,
            context_hash(&[f("b", "2"), f("a", "1")], "Dockerfile", &args, &none)
        );
        // Content, names, modes, args, Dockerfile name all do.
        assert_ne!(
            base,
            context_hash(&[f("a", "1"), f("b", "3")], "Dockerfile", &args, &none)
        );
        assert_ne!(
            base,
            context_hash(&[f("a", "1"), f("c", "2")], "Dockerfile", &args, &none)
        );
        let mut exec = f("a", "1");
        exec.mode = 0o755;
        assert_ne!(
            base,
            context_hash(&[exec, f("b", "2")], "Dockerfile", &args, &none)
        );
        let args2: BTreeMap<String, String> = [("A".to_string(), "2".to_string())].into();
        assert_ne!(
            base,
            context_hash(&[f("a", "1"), f("b", "2")], "Dockerfile", &args2, &none)
        );
        assert_ne!(
            base,
            context_hash(&[f("a", "1"), f("b", "2")], "Dockerfile.dev", &args, &none)
        );
        let extra: BTreeMap<String, String> = [("target".to_string(), "x".to_string())].into();
        assert_ne!(
            base,
            context_hash(&[f("a", "1"), f("b", "2")], "Dockerfile", &args, &extra)
        );
        // No ambiguity between a path and the next line.
        assert_ne!(
            context_hash(&[f("a\nF 644 x 1", "1")], "Dockerfile", &none, &none),
            context_hash(&[f("a", "1"), f("x", "1")], "Dockerfile", &none, &none)
        );
    }

    #[test]
    fn local_walk_hash_and_tar() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(d.path().join(".dockerignore"), "*.csv\n").unwrap();
        std::fs::write(d.path().join("train.csv"), "1,2\n").unwrap();
        std::fs::create_dir(d.path().join("pkg")).unwrap();
        std::fs::write(d.path().join("pkg/a.py"), "print(1)\n").unwrap();
        let all = walk_local(d.path()).unwrap();
        let ig = Ignore::parse(&std::fs::read_to_string(d.path().join(".dockerignore")).unwrap());
        let kept = filter_entries(all.clone(), &ig, "Dockerfile");
        let names: Vec<&str> = kept.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            names,
            vec![".dockerignore", "Dockerfile", "pkg", "pkg/a.py"]
        );
        let none = BTreeMap::new();
        let h1 = context_hash(&kept, "Dockerfile", &none, &none);
        // An ignored file changing does not change the hash; a kept one does.
        std::fs::write(d.path().join("train.csv"), "3,4\n").unwrap();
        let kept2 = filter_entries(walk_local(d.path()).unwrap(), &ig, "Dockerfile");
        assert_eq!(h1, context_hash(&kept2, "Dockerfile", &none, &none));
        std::fs::write(d.path().join("pkg/a.py"), "print(2)\n").unwrap();
        let kept3 = filter_entries(walk_local(d.path()).unwrap(), &ig, "Dockerfile");
        assert_ne!(h1, context_hash(&kept3, "Dockerfile", &none, &none));
        // The tar holds exactly the kept entries.
        let data = tar_local(d.path(), &kept3).unwrap();
        let mut ar = tar::Archive::new(&data[..]);
        let mut paths: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| {
                e.unwrap()
                    .path()
                    .unwrap()
                    .to_string_lossy()
                    .trim_end_matches('/')
                    .to_string()
            })
            .collect();
        paths.sort();
        assert_eq!(
            paths,
            vec![".dockerignore", "Dockerfile", "pkg", "pkg/a.py"]
        );
    }

    #[test]
    fn remote_listing_and_sums_give_the_same_hash_as_local() {
        let listing =
            "f|644|Dockerfile|\nd|755|pkg|\nf|755|pkg/run.sh|\nl|777|link|pkg/run.sh\nx|0|weird|\n";
        let mut e = parse_listing(listing);
        assert_eq!(e.len(), 4);
        apply_sums(&mut e, "aaa  ./Dockerfile\nbbb  ./pkg/run.sh\n");
        assert_eq!(e[0], f("Dockerfile", "aaa"));
        assert_eq!(e[3].kind, EntryKind::File("bbb".into()));
        assert_eq!(e[3].mode, 0o755);
        assert_eq!(e[1].kind, EntryKind::Link("pkg/run.sh".into()));
    }

    #[test]
    fn names_and_sockets() {
        assert_eq!(
            split_name("ferry/trainer", None),
            ("ferry/trainer".into(), "latest".into())
        );
        assert_eq!(
            split_name("ferry/trainer:v1", Some("x")),
            ("ferry/trainer".into(), "v1".into())
        );
        assert_eq!(
            split_name("reg:5000/a", Some("2")),
            ("reg:5000/a".into(), "2".into())
        );
        let a = Args::default();
        assert_eq!(socket_path(&a, &[]).unwrap(), "/var/run/docker.sock");
        assert_eq!(
            socket_path(&a, &[("DOCKER_HOST".into(), "unix:///run/d.sock".into())]).unwrap(),
            "/run/d.sock"
        );
        let mut m = Map::new();
        m.insert("docker_host".into(), "tcp://1.2.3.4:2375".into());
        assert!(socket_path(&Args { map: m }, &[]).is_err());
    }

    #[test]
    fn relay_script_quotes_and_hands_over_the_socket() {
        let s = relay_start_script("/var/run/docker.sock", Some("deploy"));
        assert!(s.contains("chown deploy \"$d\""));
        assert!(s.contains("mode=600,user=deploy"));
        assert!(s.contains("UNIX-CONNECT:\"$s\""));
        let s = relay_start_script("/run/my sock", None);
        assert!(s.contains("s='/run/my sock'"));
        assert!(!s.contains("chown"));
        assert!(relay_stop_script("42", "/tmp/ferry-docker.x").contains("kill -- -42"));
    }
}
