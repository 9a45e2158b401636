//! Modules: one file each, one line each in the registry below.
//!
//! A module declares its argument spec (the single source for load-time
//! validation, type coercion and `ferry doc`) and runs through `Ctx`, which
//! hides the transport and enforces check mode in one place.

mod pyre;
mod spec;
#[cfg(test)]
mod testutil;
mod textfile;
pub use textfile::FileMemo;
pub mod util;

mod alternatives;
mod apt;
mod apt_key;
mod apt_repository;
mod assert;
pub mod async_status;
mod authorized_key;
mod blockinfile;
mod command;
mod copy;
mod cron;
mod deb822_repository;
mod debug;
mod dnf;
mod docker_api;
mod docker_container;
mod docker_container_info;
mod docker_image;
mod docker_image_info;
mod docker_network;
mod dpkg_selections;
mod fetch;
mod file;
mod find;
mod firewalld;
mod get_url;
mod getent;
mod git;
mod group;
mod hostname;
mod ini_file;
mod jenkins_api;
mod jenkins_build;
mod jenkins_job;
mod jenkins_plugin;
mod jenkins_script;
mod lineinfile;
mod mount;
mod netfile;
mod package;
mod package_facts;
mod pause;
mod ping;
mod pkgmgr;
mod replace;
mod rpm_key;
mod script;
mod service;
mod service_facts;
mod set_fact;
mod setup;
mod slurp;
mod stat;
mod sudoers;
mod sysadmin;
mod sysctl;
mod systemd;
mod tempfile;
mod template;
mod ufw;
mod unarchive;
mod uri;
mod user;
mod wait_for;
mod yum;
mod yum_repository;

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Map, Value};

use crate::connection::{Become, ConnError, Connection, ExecOut};
use crate::template::{Scope, Templar};

pub use spec::{to_bool, Args, Kind, ModuleSpec, Param};

/// Every module ferry has. Adding a module: a file above and a line here.
pub fn all() -> &'static [&'static dyn Module] {
    &[
        &alternatives::Alternatives,
        &apt::Apt,
        &apt_key::AptKey,
        &apt_repository::AptRepository,
        &assert::Assert,
        &assert::Fail,
        &async_status::AsyncStatus,
        &authorized_key::AuthorizedKey,
        &blockinfile::BlockInFile,
        &command::Command,
        &command::Raw,
        &command::Shell,
        &copy::Copy,
        &cron::Cron,
        &deb822_repository::Deb822Repository,
        &debug::Debug,
        &dnf::Dnf,
        &docker_container::DockerContainer,
        &docker_container_info::DockerContainerInfo,
        &docker_image::DockerImage,
        &docker_image_info::DockerImageInfo,
        &docker_network::DockerNetwork,
        &dpkg_selections::DpkgSelections,
        &fetch::Fetch,
        &file::File,
        &find::Find,
        &firewalld::Firewalld,
        &get_url::GetUrl,
        &getent::Getent,
        &git::Git,
        &group::Group,
        &hostname::Hostname,
        &ini_file::IniFile,
        &jenkins_build::JenkinsBuild,
        &jenkins_job::JenkinsJob,
        &jenkins_plugin::JenkinsPlugin,
        &jenkins_script::JenkinsScript,
        &lineinfile::LineInFile,
        &mount::Mount,
        &package::Package,
        &package_facts::PackageFacts,
        &pause::Pause,
        &ping::Ping,
        &replace::Replace,
        &rpm_key::RpmKey,
        &script::Script,
        &service::Service,
        &service_facts::ServiceFacts,
        &set_fact::SetFact,
        &setup::Setup,
        &slurp::Slurp,
        &stat::Stat,
        &sudoers::Sudoers,
        &sysctl::Sysctl,
        &systemd::Systemd,
        &tempfile::TempFile,
        &template::Template,
        &ufw::Ufw,
        &unarchive::Unarchive,
        &uri::Uri,
        &user::User,
        &wait_for::WaitFor,
        &yum::Yum,
        &yum_repository::YumRepository,
    ]
}

/// Finds a module by short name, `ansible.builtin.*` or collection name.
pub fn find(name: &str) -> Option<&'static dyn Module> {
    let short = name
        .strip_prefix("ansible.builtin.")
        .or_else(|| name.strip_prefix("ansible.legacy."))
        .unwrap_or(name);
    all()
        .iter()
        .copied()
        .find(|m| m.spec().name == short || m.spec().aliases.contains(&name))
}

pub fn is_free_form(name: &str) -> bool {
    find(name).map(|m| m.spec().free_form).unwrap_or(false)
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    pub before: String,
    pub after: String,
    pub before_header: String,
    pub after_header: String,
}

/// What a module reports; becomes Ansible's result dict.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub changed: bool,
    pub failed: bool,
    pub skipped: bool,
    pub msg: Option<String>,
    pub data: Map<String, Value>,
    pub diff: Vec<Diff>,
    /// Facts to set on the host (`set_fact`, `setup`).
    pub facts: Option<Map<String, Value>>,
}

impl Outcome {
    pub fn ok() -> Outcome {
        Outcome::default()
    }
    pub fn changed(changed: bool) -> Outcome {
        Outcome {
            changed,
            ..Outcome::default()
        }
    }
    pub fn with(mut self, k: &str, v: impl Into<Value>) -> Outcome {
        self.data.insert(k.to_string(), v.into());
        self
    }
    pub fn msg(mut self, m: impl Into<String>) -> Outcome {
        self.msg = Some(m.into());
        self
    }
    pub fn diff(mut self, d: Diff) -> Outcome {
        self.diff.push(d);
        self
    }

    /// Ansible's result shape.
    pub fn to_value(&self) -> Map<String, Value> {
        let mut m = self.data.clone();
        m.insert("changed".into(), Value::Bool(self.changed));
        if self.failed {
            m.insert("failed".into(), Value::Bool(true));
        }
        if self.skipped {
            m.insert("skipped".into(), Value::Bool(true));
        }
        if let Some(msg) = &self.msg {
            m.insert("msg".into(), Value::String(msg.clone()));
        }
        if let Some(f) = &self.facts {
            m.insert("ansible_facts".into(), Value::Object(f.clone()));
        }
        if !self.diff.is_empty() {
            let d: Vec<Value> = self
                .diff
                .iter()
                .map(|d| {
                    serde_json::json!({"before": d.before, "after": d.after,
                        "before_header": d.before_header, "after_header": d.after_header})
                })
                .collect();
            m.insert(
                "diff".into(),
                if d.len() == 1 {
                    d[0].clone()
                } else {
                    Value::Array(d)
                },
            );
        }
        m
    }
}

/// Why a module did not produce an outcome.
#[derive(Debug, thiserror::Error)]
pub enum ModError {
    /// The task failed; `data` keeps fields such as rc/stdout for `register`.
    #[error("{msg}")]
    Failed {
        msg: String,
        data: Map<String, Value>,
    },
    #[error("{0}")]
    Unreachable(String),
    /// A remembered view of this file no longer holds; the module runs again
    /// on the file as it is now (`textfile::settle`).
    #[error("{0} changed on the host while the task ran")]
    Stale(String),
}

impl ModError {
    pub fn fail(msg: impl Into<String>) -> ModError {
        ModError::Failed {
            msg: msg.into(),
            data: Map::new(),
        }
    }
}

impl From<ConnError> for ModError {
    fn from(e: ConnError) -> Self {
        match e {
            ConnError::Unreachable(m) => ModError::Unreachable(m),
            other => ModError::fail(other.to_string()),
        }
    }
}

pub type ModResult = Result<Outcome, ModError>;

/// Everything a module may use while it runs on one host.
pub struct Ctx<'a> {
    pub host: &'a str,
    pub conn: &'a dyn Connection,
    pub escalate: Option<Become>,
    pub check_mode: bool,
    pub diff_mode: bool,
    pub templar: &'a Templar,
    pub scope: &'a Scope,
    /// `environment:` for commands run by this task.
    pub env: Vec<(String, String)>,
    /// Where `src:` and template files are searched, most specific first.
    pub search_dirs: Vec<PathBuf>,
    pub timeout: Option<Duration>,
    /// `no_log`: keep the scripts (which may hold secrets) out of trace logs too.
    pub no_log: bool,
    /// Text files this run has seen on the host (None: read every time).
    pub memo: Option<&'a FileMemo>,
}

impl Ctx<'_> {
    /// Runs a POSIX script on the host (escalated if the task asks for it).
    pub async fn sh(&self, script: &str) -> Result<ExecOut, ModError> {
        self.sh_in(script, None).await
    }

    pub async fn sh_in(&self, script: &str, stdin: Option<&[u8]>) -> Result<ExecOut, ModError> {
        let script = self.prepared(script);
        Ok(self
            .conn
            .exec(&script, stdin, self.escalate.as_ref(), self.timeout)
            .await?)
    }

    /// Runs a script whose stdin is `input`, read while it is sent (a large
    /// file never held whole in memory).
    pub async fn sh_stream(
        &self,
        script: &str,
        input: &mut (dyn tokio::io::AsyncRead + Send + Unpin + 'static),
    ) -> Result<ExecOut, ModError> {
        let script = self.prepared(script);
        let stdin = crate::connection::Stdin {
            pieces: Vec::new(),
            tail: Some(input),
        };
        Ok(crate::connection::exec_input(
            self.conn,
            &script,
            stdin,
            self.escalate.as_ref(),
            self.timeout,
        )
        .await?)
    }

    /// The task's environment exported before `script`; traced unless no_log.
    fn prepared(&self, script: &str) -> String {
        let script = if self.env.is_empty() {
            script.to_string()
        } else {
            let mut s = String::new();
            for (k, v) in &self.env {
                s.push_str(&format!("export {}={}\n", k, crate::connection::quote(v)));
            }
            s.push_str(script);
            s
        };
        if self.no_log {
            tracing::trace!(host = self.host, "exec (script hidden: no_log)");
        } else {
            tracing::trace!(host = self.host, script = %script, "exec");
        }
        script
    }

    /// A controller-side file named by a task (`copy src:`, `template src:`),
    /// searched like Ansible: role `files/`|`templates/`, role, playbook dir.
    pub fn find_file(&self, kind: &str, rel: &str) -> Option<PathBuf> {
        let p = std::path::Path::new(rel);
        if p.is_absolute() {
            return p.exists().then(|| p.to_path_buf());
        }
        for d in &self.search_dirs {
            for c in [d.join(kind).join(p), d.join(p)] {
                if c.exists() {
                    return Some(c);
                }
            }
        }
        None
    }

    /// A variable's final (rendered) value.
    pub fn var(&self, name: &str) -> Option<Value> {
        self.scope.resolve(self.templar, name).ok().flatten()
    }
}

#[async_trait]
pub trait Module: Send + Sync {
    fn spec(&self) -> &'static ModuleSpec;
    /// Runs on one host. Must not change anything when `ctx.check_mode`.
    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult;
}
