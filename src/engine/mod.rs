//! The executor: plays over hosts, tasks over hosts (linear strategy), with
//! Ansible's variable precedence, conditionals, loops, blocks and handlers.

mod host;
mod play;
mod prompt;
mod result;
mod task;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use indexmap::IndexMap;
use serde_json::{Map, Value};

use crate::connection::Connection;
use crate::error::{Error, Result};
use crate::inventory::Inventory;
use crate::playbook::{self, LoadCtx};
use crate::report::Reporter;
use crate::template::{HostVarsSource, Scope, Templar};

pub use host::HostState;
pub use result::{HostResult, Stats, Status};

/// Validated settings for one run (built by the CLI).
#[derive(Debug, Clone, Default)]
pub struct RunConfig {
    pub inventory: Vec<String>,
    pub playbooks: Vec<PathBuf>,
    pub check: bool,
    pub diff: bool,
    pub limit: Option<String>,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub extra_vars: Map<String, Value>,
    pub forks: usize,
    pub verbosity: u8,
    pub start_at_task: Option<String>,
    pub become_password: Option<String>,
    pub roles_path: Vec<PathBuf>,
    /// Force `become` for every task (`-b` on the ad-hoc command).
    pub force_become: bool,
    pub connection_timeout: Option<u64>,
    /// ansible.cfg's host_key_checking (variables and the environment win).
    pub host_key_checking: Option<bool>,
    /// Defaults from ansible.cfg as variables (lowest precedence).
    pub config_vars: Map<String, Value>,
    /// `gathering`: implicit (default), explicit or smart.
    pub gathering: Option<String>,
    /// JSON fact cache directory and timeout in seconds (`fact_caching = jsonfile`).
    pub fact_cache: Option<(PathBuf, u64)>,
    /// ansible.cfg's `ansible_managed` (None: Ansible's default string).
    pub ansible_managed: Option<String>,
    /// `--force-handlers`: as if every play said `force_handlers: true`.
    pub force_handlers: bool,
}

/// Shared state of one run.
pub struct Run {
    pub cfg: RunConfig,
    pub inv: Inventory,
    pub templar: Templar,
    pub extra_vars: Arc<Map<String, Value>>,
    pub hosts: Mutex<HashMap<String, HostState>>,
    pub conns: tokio::sync::Mutex<HashMap<String, Arc<dyn Connection>>>,
    /// Per-host locks held while a host's connection is being opened.
    pub opening: tokio::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Per host: the text files this run has seen there.
    memos: std::sync::Mutex<HashMap<String, Arc<crate::modules::FileMemo>>>,
    pub reporter: Mutex<Box<dyn Reporter>>,
    pub stats: Mutex<IndexMap<String, Stats>>,
    pub load_ctx: LoadCtx,
    /// Variables of the current play for `hostvars` (play vars are not host vars,
    /// but magic variables are).
    pub(crate) play_magic: Mutex<Arc<Map<String, Value>>>,
    pub(crate) start_at: Mutex<Option<String>>,
}

/// `hostvars[h]`: a host's inventory variables, facts and host-level variables.
struct HostVars(std::sync::Weak<Run>);

impl HostVarsSource for HostVars {
    fn host_scope(&self, host: &str) -> Option<Scope> {
        let run = self.0.upgrade()?;
        if !run.inv.hosts.contains_key(host) {
            return None;
        }
        Some(run.host_base_scope(host))
    }

    fn host_names(&self) -> Vec<String> {
        self.0
            .upgrade()
            .map(|r| r.inv.hosts.keys().cloned().collect())
            .unwrap_or_default()
    }
}

impl Run {
    pub fn new(cfg: RunConfig, inv: Inventory, reporter: Box<dyn Reporter>) -> Arc<Run> {
        let extra = Arc::new(cfg.extra_vars.clone());
        let load_ctx = LoadCtx {
            roles_path: cfg.roles_path.clone(),
            ..LoadCtx::default()
        };
        let start_at = cfg.start_at_task.clone();
        let templar = Templar::new().managed(cfg.ansible_managed.clone());
        Arc::new(Run {
            cfg,
            inv,
            templar,
            extra_vars: extra,
            hosts: Mutex::new(HashMap::new()),
            conns: tokio::sync::Mutex::new(HashMap::new()),
            opening: Default::default(),
            memos: Default::default(),
            reporter: Mutex::new(reporter),
            stats: Mutex::new(IndexMap::new()),
            load_ctx,
            play_magic: Mutex::new(Arc::default()),
            start_at: Mutex::new(start_at),
        })
    }

    /// Inventory vars + facts + host-level vars + magic vars + extra vars.
    pub fn host_base_scope(self: &Arc<Self>, host: &str) -> Scope {
        let mut s = Scope::new();
        s.set_hostvars(Arc::new(HostVars(Arc::downgrade(self))));
        let st = self.host_state(host);
        s.push_map(self.cfg.config_vars.clone());
        s.push(st.inv_vars.clone());
        s.push_facts(st.facts.clone());
        s.push(st.vars.clone());
        s.push(self.play_magic());
        s.push(Arc::new(self.magic(host)));
        s.push(self.extra_vars.clone());
        s
    }

    /// A snapshot of a host's state (cheap: layers are shared).
    pub fn host_state(&self, host: &str) -> HostState {
        let mut hosts = self.hosts.lock().expect("hosts lock");
        hosts
            .entry(host.to_string())
            .or_insert_with(|| HostState::new(host, self.inv.host_vars(host)))
            .clone()
    }

    pub fn update_host<F: FnOnce(&mut HostState)>(&self, host: &str, f: F) {
        let mut hosts = self.hosts.lock().expect("hosts lock");
        let st = hosts
            .entry(host.to_string())
            .or_insert_with(|| HostState::new(host, self.inv.host_vars(host)));
        f(st);
    }

    /// Play-wide magic variables (`groups`, `ansible_play_hosts`, ...), shared by all hosts.
    pub(crate) fn play_magic(&self) -> Arc<Map<String, Value>> {
        self.play_magic.lock().expect("magic lock").clone()
    }

    /// Per-host magic variables (small: built for every task).
    pub(crate) fn magic(&self, host: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("inventory_hostname".into(), Value::String(host.to_string()));
        m.insert(
            "inventory_hostname_short".into(),
            Value::String(host.split('.').next().unwrap_or(host).to_string()),
        );
        m.insert(
            "group_names".into(),
            Value::Array(
                self.inv
                    .group_names(host)
                    .into_iter()
                    .map(Value::String)
                    .collect(),
            ),
        );
        m.insert("ansible_check_mode".into(), Value::Bool(self.cfg.check));
        m.insert("ansible_diff_mode".into(), Value::Bool(self.cfg.diff));
        m.insert("ansible_verbosity".into(), Value::from(self.cfg.verbosity));
        m.insert("ansible_forks".into(), Value::from(self.cfg.forks));
        m.insert(
            "ansible_version".into(),
            serde_json::json!({"full": "2.17.0", "major": 2, "minor": 17, "revision": 0, "string": "2.17.0 (ferry)"}),
        );
        m
    }

    pub fn stat_mut<F: FnOnce(&mut Stats)>(&self, host: &str, f: F) {
        let mut s = self.stats.lock().expect("stats lock");
        f(s.entry(host.to_string()).or_default());
    }

    /// Runs every playbook; returns the process exit code.
    pub async fn run_playbooks(self: &Arc<Self>) -> Result<i32> {
        let mut books = Vec::new();
        for p in &self.cfg.playbooks {
            books.push(playbook::load_playbook(p, &self.load_ctx)?);
        }
        for pb in &books {
            if let Some(dir) = pb.path.parent() {
                // group_vars/host_vars beside the playbook.
                let mut inv = self.inv.clone();
                inv.load_vars_dirs(if dir.as_os_str().is_empty() {
                    std::path::Path::new(".")
                } else {
                    dir
                })?;
                // Only host/group var files changed; swap them in.
                self.merge_playbook_vars(inv);
            }
            for play in &pb.plays {
                if play::run_play(self, play, &pb.path).await? == play::PlayEnd::Abort {
                    break;
                }
            }
        }
        self.close_all().await;
        let stats = self.stats.lock().expect("stats lock").clone();
        {
            use crate::connection::{REMOTE_COMMANDS, SSH_CHANNELS};
            use std::sync::atomic::Ordering::Relaxed;
            tracing::info!(
                target: "ferry::stats",
                remote_commands = REMOTE_COMMANDS.load(Relaxed),
                ssh_channels = SSH_CHANNELS.load(Relaxed),
                "run finished"
            );
        }
        self.reporter.lock().expect("reporter lock").recap(&stats);
        Ok(exit_code(&stats))
    }

    fn merge_playbook_vars(&self, inv: Inventory) {
        let mut hosts = self.hosts.lock().expect("hosts lock");
        for (name, _) in inv.hosts.iter() {
            let vars = Arc::new(inv.host_vars(name));
            hosts
                .entry(name.clone())
                .or_insert_with(|| HostState::new(name, Map::new()))
                .inv_vars = vars;
        }
    }

    /// Stops what still runs on the hosts (Ctrl-C): every connection at once,
    /// bounded so a dead host cannot hold the exit up.
    /// The file memo of a host (made on first use).
    pub fn memo(&self, host: &str) -> Arc<crate::modules::FileMemo> {
        let mut memos = self.memos.lock().unwrap_or_else(|e| e.into_inner());
        memos.entry(host.to_string()).or_default().clone()
    }

    pub async fn interrupt_all(&self) {
        let conns: Vec<Arc<dyn Connection>> = self.conns.lock().await.values().cloned().collect();
        let mut set = tokio::task::JoinSet::new();
        for c in conns {
            set.spawn(async move { c.interrupt().await });
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while set.join_next().await.is_some() {}
        })
        .await;
    }

    pub async fn close_all(&self) {
        let conns: Vec<Arc<dyn Connection>> =
            self.conns.lock().await.drain().map(|(_, c)| c).collect();
        for c in conns {
            c.close().await;
        }
    }
}

pub fn exit_code(stats: &IndexMap<String, Stats>) -> i32 {
    if stats.values().any(|s| s.failures > 0) {
        2
    } else if stats.values().any(|s| s.unreachable > 0) {
        3
    } else {
        0
    }
}

/// Loads and checks playbooks without running them (`--syntax-check`, listings).
pub fn load_all(cfg: &RunConfig) -> Result<Vec<playbook::Playbook>> {
    let ctx = LoadCtx {
        roles_path: cfg.roles_path.clone(),
        ..LoadCtx::default()
    };
    cfg.playbooks
        .iter()
        .map(|p| {
            if !p.is_file() {
                return Err(Error::Usage(format!(
                    "the playbook: {} could not be found",
                    p.display()
                )));
            }
            playbook::load_playbook(p, &ctx)
        })
        .collect()
}
