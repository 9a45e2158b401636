//! Playbooks, plays, blocks, tasks and roles, loaded with positions and checked
//! (every keyword, module name and module argument) before any host is touched.

mod args;
mod load;
pub mod loops;
mod role;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::Location;

pub use args::parse_kv;
pub use load::{inherit_deep, load_playbook, load_task_file, resolve_task_path, LoadCtx};
pub use role::{load as load_role, Role, RoleRequest};

#[derive(Debug, Clone, Default)]
pub struct Playbook {
    pub path: PathBuf,
    pub plays: Vec<Play>,
}

/// Keywords that plays, blocks, roles and tasks share and children inherit.
#[derive(Debug, Clone, Default)]
pub struct Keywords {
    pub when: Vec<Value>,
    pub tags: Vec<String>,
    pub vars: Map<String, Value>,
    pub environment: Map<String, Value>,
    pub r#become: Option<Value>,
    pub become_user: Option<Value>,
    pub become_method: Option<Value>,
    pub become_flags: Option<Value>,
    pub check_mode: Option<Value>,
    pub diff: Option<Value>,
    pub ignore_errors: Option<Value>,
    pub ignore_unreachable: Option<Value>,
    pub no_log: Option<Value>,
    pub delegate_to: Option<Value>,
    pub run_once: Option<Value>,
    pub any_errors_fatal: Option<Value>,
    pub throttle: Option<Value>,
}

impl Keywords {
    /// `self` (the child) inherits what it does not set from `parent`.
    pub fn inherit(&mut self, parent: &Keywords) {
        let mut when = parent.when.clone();
        when.append(&mut self.when);
        self.when = when;
        for t in &parent.tags {
            if !self.tags.contains(t) {
                self.tags.push(t.clone());
            }
        }
        let mut vars = parent.vars.clone();
        vars.extend(std::mem::take(&mut self.vars));
        self.vars = vars;
        let mut env = parent.environment.clone();
        env.extend(std::mem::take(&mut self.environment));
        self.environment = env;
        macro_rules! or {
            ($($f:ident),*) => { $( if self.$f.is_none() { self.$f = parent.$f.clone(); } )* };
        }
        or!(
            r#become,
            become_user,
            become_method,
            become_flags,
            check_mode,
            diff,
            ignore_errors,
            ignore_unreachable,
            no_log,
            delegate_to,
            run_once,
            any_errors_fatal,
            throttle
        );
    }
}

#[derive(Debug, Clone)]
pub enum Loop {
    /// `loop:` or `with_items`-style lookups, as (lookup name, raw terms).
    With(String, Value),
}

#[derive(Debug, Clone, Default)]
pub struct LoopControl {
    pub loop_var: Option<String>,
    pub index_var: Option<String>,
    pub label: Option<Value>,
    pub pause: Option<f64>,
    pub extended: bool,
}

#[derive(Debug, Clone)]
pub enum Action {
    /// A module call: canonical module name and raw (unrendered) arguments.
    Module {
        module: String,
        args: Map<String, Value>,
    },
    Block {
        block: Vec<Task>,
        rescue: Vec<Task>,
        always: Vec<Task>,
    },
    /// `include_tasks` (dynamic): file expression and its base directory.
    IncludeTasks {
        file: Value,
        apply: Option<Box<Keywords>>,
    },
    /// `include_role` (dynamic).
    IncludeRole {
        args: Map<String, Value>,
    },
    IncludeVars {
        args: Map<String, Value>,
    },
    Meta(String),
}

#[derive(Debug, Clone)]
pub struct Task {
    pub name: Option<String>,
    pub loc: Location,
    pub action: Action,
    pub kw: Keywords,
    pub loop_: Option<Loop>,
    pub loop_control: LoopControl,
    pub register: Option<String>,
    pub until: Option<Value>,
    pub retries: Option<Value>,
    pub delay: Option<Value>,
    /// `timeout:` in seconds for the task on each host.
    pub timeout: Option<Value>,
    /// `async:` (seconds the task may take) and `poll:` (0: leave it running).
    pub async_: Option<Value>,
    pub poll: Option<Value>,
    pub changed_when: Option<Vec<Value>>,
    pub failed_when: Option<Vec<Value>>,
    pub notify: Vec<String>,
    pub listen: Vec<String>,
    /// Directory of the file the task came from (relative includes).
    pub base_dir: PathBuf,
    pub role: Option<Arc<Role>>,
}

impl Task {
    /// A task doing `action`, every other field empty.
    pub fn new(loc: Location, action: Action, base_dir: PathBuf) -> Task {
        Task {
            name: None,
            loc,
            action,
            kw: Keywords::default(),
            loop_: None,
            loop_control: LoopControl::default(),
            register: None,
            until: None,
            retries: None,
            delay: None,
            timeout: None,
            async_: None,
            poll: None,
            changed_when: None,
            failed_when: None,
            notify: Vec::new(),
            listen: Vec::new(),
            base_dir,
            role: None,
        }
    }

    /// Name shown in output: the task's name, or `role : module`.
    pub fn display_name(&self) -> String {
        let base = match (&self.name, &self.action) {
            (Some(n), _) => n.clone(),
            (None, Action::Module { module, .. }) => module.clone(),
            (None, Action::Block { .. }) => "block".into(),
            (None, Action::IncludeTasks { .. }) => "include_tasks".into(),
            (None, Action::IncludeRole { .. }) => "include_role".into(),
            (None, Action::IncludeVars { .. }) => "include_vars".into(),
            (None, Action::Meta(m)) => format!("meta: {m}"),
        };
        match &self.role {
            Some(r) => format!("{} : {base}", r.name),
            None => base,
        }
    }

    pub fn module(&self) -> Option<&str> {
        match &self.action {
            Action::Module { module, .. } => Some(module),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Play {
    pub name: String,
    pub hosts: String,
    pub loc: Location,
    pub kw: Keywords,
    pub vars_files: Vec<Value>,
    /// `vars_prompt` entries (mappings with at least `name`), asked at play start.
    pub vars_prompt: Vec<Map<String, Value>>,
    pub gather_facts: Option<Value>,
    pub gather_subset: Option<Value>,
    pub gather_timeout: Option<Value>,
    pub fact_path: Option<Value>,
    pub pre_tasks: Vec<Task>,
    /// Tasks of `roles:`, already expanded (dependencies first).
    pub role_tasks: Vec<Task>,
    pub tasks: Vec<Task>,
    pub post_tasks: Vec<Task>,
    pub handlers: Vec<Task>,
    pub roles: Vec<Arc<Role>>,
    pub serial: Option<Value>,
    pub max_fail_percentage: Option<Value>,
    pub strategy: Option<String>,
    pub order: Option<String>,
    pub force_handlers: bool,
    pub base_dir: PathBuf,
}
