//! Command line: flags are turned once into a validated `RunConfig`;
//! every usage error is found here, before any host is touched.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};
use serde_json::{Map, Value};

use crate::engine::{self, Run, RunConfig};
use crate::error::{Error, Result};
use crate::inventory::{pattern, Inventory};
use crate::playbook::{Action, Task};
use crate::report::{self, Reporter};

#[derive(Parser, Debug)]
#[command(
    name = "ferry",
    version,
    about = "Agentless, Ansible-compatible provisioning over SSH",
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run playbooks (like ansible-playbook).
    Playbook(PlaybookArgs),
    /// Show the inventory (like ansible-inventory).
    Inventory(InventoryArgs),
    /// Run one module on matching hosts (like ansible).
    Run(AdhocArgs),
    /// List modules, or document one.
    Doc(DocArgs),
    /// Encrypt and decrypt Ansible Vault files and strings (like ansible-vault).
    Vault(crate::vault_cli::VaultCmd),
}

#[derive(ClapArgs, Debug, Clone)]
pub struct Common {
    /// Inventory file, directory or comma-separated host list (repeatable).
    #[arg(short = 'i', long = "inventory", env = "FERRY_INVENTORY")]
    pub inventory: Vec<String>,
    /// Set variables: key=value, @file.yml or a JSON/YAML mapping (repeatable).
    #[arg(short = 'e', long = "extra-vars")]
    pub extra_vars: Vec<String>,
    /// Limit to hosts matching this pattern (or @file with one host per line).
    #[arg(short = 'l', long = "limit")]
    pub limit: Option<String>,
    /// Maximum hosts worked on in parallel (default 50, or ansible.cfg's forks).
    #[arg(short = 'f', long = "forks")]
    pub forks: Option<usize>,
    /// More output (-v, -vv, -vvv).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Don't change anything; report what would change.
    #[arg(short = 'C', long = "check")]
    pub check: bool,
    /// Show the differences in files and templates.
    #[arg(short = 'D', long = "diff")]
    pub diff: bool,
    /// Run operations with become (sudo).
    #[arg(short = 'b', long = "become")]
    pub r#become: bool,
    /// Ask for the privilege escalation password.
    #[arg(short = 'K', long = "ask-become-pass")]
    pub ask_become_pass: bool,
    /// Read the become password from this file.
    #[arg(long = "become-password-file")]
    pub become_password_file: Option<PathBuf>,
    /// Connect as this user (inventory variables win, as in Ansible).
    #[arg(short = 'u', long = "user", value_name = "REMOTE_USER")]
    pub user: Option<String>,
    /// Connection type: ssh or local.
    #[arg(short = 'c', long = "connection")]
    pub connection: Option<String>,
    /// SSH private key file.
    #[arg(
        long = "private-key",
        visible_alias = "key-file",
        value_name = "PRIVATE_KEY_FILE"
    )]
    pub private_key: Option<PathBuf>,
    /// Connection timeout in seconds.
    #[arg(short = 'T', long = "timeout")]
    pub timeout: Option<u64>,
    /// Arguments for every ssh connection (sftp/scp too in Ansible).
    #[arg(long = "ssh-common-args", allow_hyphen_values = true)]
    pub ssh_common_args: Option<String>,
    /// Extra arguments for ssh only.
    #[arg(long = "ssh-extra-args", allow_hyphen_values = true)]
    pub ssh_extra_args: Option<String>,
    /// Become this user (default root).
    #[arg(long = "become-user")]
    pub become_user: Option<String>,
    /// Privilege escalation method: sudo or su.
    #[arg(long = "become-method")]
    pub become_method: Option<String>,
    /// Output format: human (default) or json.
    #[arg(
        long = "output",
        value_enum,
        env = "FERRY_OUTPUT",
        default_value = "human"
    )]
    pub output: Output,
    /// Also write a JUnit XML report to this file.
    #[arg(long = "junit")]
    pub junit: Option<PathBuf>,
    /// Extra roles directories (also FERRY_ROLES_PATH / ANSIBLE_ROLES_PATH, ':'-separated).
    #[arg(long = "roles-path")]
    pub roles_path: Vec<PathBuf>,
    #[command(flatten)]
    pub vault: crate::vault_cli::VaultArgs,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Human,
    Json,
}

#[derive(ClapArgs, Debug)]
pub struct PlaybookArgs {
    /// Playbook files.
    #[arg(required = true)]
    pub playbooks: Vec<PathBuf>,
    #[command(flatten)]
    pub common: Common,
    /// Only run plays and tasks tagged with these tags.
    #[arg(short = 't', long = "tags", value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Skip plays and tasks tagged with these tags.
    #[arg(long = "skip-tags", value_delimiter = ',')]
    pub skip_tags: Vec<String>,
    /// List the hosts each play would run on, and stop.
    #[arg(long = "list-hosts")]
    pub list_hosts: bool,
    /// List the tasks each play would run, and stop.
    #[arg(long = "list-tasks")]
    pub list_tasks: bool,
    /// List the tags, and stop.
    #[arg(long = "list-tags")]
    pub list_tags: bool,
    /// Check the playbook's syntax, and stop.
    #[arg(long = "syntax-check")]
    pub syntax_check: bool,
    /// Start at the task with this name.
    #[arg(long = "start-at-task")]
    pub start_at_task: Option<String>,
    /// Run notified handlers even if a task fails (every play's force_handlers).
    #[arg(long = "force-handlers")]
    pub force_handlers: bool,
    /// Clear the fact cache of every host in the inventory first.
    #[arg(long = "flush-cache")]
    pub flush_cache: bool,
}

#[derive(ClapArgs, Debug)]
pub struct InventoryArgs {
    #[arg(
        short = 'i',
        long = "inventory",
        env = "FERRY_INVENTORY",
        required = true
    )]
    pub inventory: Vec<String>,
    /// Print all hosts and groups as JSON (ansible-inventory --list).
    #[arg(long)]
    pub list: bool,
    /// Print a tree of groups and hosts (from GROUP, default `all`).
    #[arg(long, value_name = "GROUP", num_args = 0..=1, default_missing_value = "all")]
    pub graph: Option<String>,
    /// Print one host's variables.
    #[arg(long)]
    pub host: Option<String>,
    #[command(flatten)]
    pub vault: crate::vault_cli::VaultArgs,
}

#[derive(ClapArgs, Debug)]
pub struct AdhocArgs {
    /// Host pattern.
    pub pattern: String,
    #[command(flatten)]
    pub common: Common,
    /// Module name.
    #[arg(short = 'm', long = "module-name", default_value = "command")]
    pub module: String,
    /// Module arguments: k=v pairs, a free-form command, or JSON.
    #[arg(short = 'a', long = "args")]
    pub args: Option<String>,
}

#[derive(ClapArgs, Debug)]
pub struct DocArgs {
    /// Module to document (omit to list them all).
    pub module: Option<String>,
}

fn parse_extra_vars(items: &[String]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for item in items {
        let item = item.trim();
        if let Some(file) = item.strip_prefix('@') {
            out.extend(crate::inventory::load_vars_file(std::path::Path::new(
                file,
            ))?);
        } else if item.starts_with('{') || item.starts_with('-') || item.starts_with('[') {
            let docs = crate::yaml::parse_str(item, std::path::Path::new("<extra vars>"))?;
            match docs.first().map(|d| crate::yaml::to_json(&d.root)) {
                Some(Value::Object(m)) => out.extend(m),
                _ => {
                    return Err(Error::Usage(format!(
                        "extra vars {item:?} must be a mapping"
                    )))
                }
            }
        } else {
            let m = crate::playbook::parse_kv(item, false)
                .map_err(|e| Error::Usage(format!("-e {item:?}: {e}")))?;
            out.extend(m);
        }
    }
    Ok(out)
}

fn roles_path(extra: &[PathBuf]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = extra.to_vec();
    for var in ["FERRY_ROLES_PATH", "ANSIBLE_ROLES_PATH"] {
        if let Ok(p) = std::env::var(var) {
            v.extend(std::env::split_paths(&p));
        }
    }
    v
}

fn become_password(c: &Common) -> Result<Option<String>> {
    if let Some(f) = &c.become_password_file {
        let s = std::fs::read_to_string(f)
            .map_err(|e| Error::Usage(format!("--become-password-file {}: {e}", f.display())))?;
        return Ok(Some(s.trim_end_matches(['\n', '\r']).to_string()));
    }
    if c.ask_become_pass {
        if std::io::stdin().is_terminal() {
            eprint!("BECOME password: ");
        }
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| Error::Usage(format!("cannot read the become password: {e}")))?;
        return Ok(Some(line.trim_end_matches(['\n', '\r']).to_string()));
    }
    Ok(None)
}

fn load_inventory(sources: &[String], acfg: &crate::config::AnsibleCfg) -> Result<Inventory> {
    let mut inv = if sources.is_empty() {
        Inventory::new()
    } else {
        Inventory::load_with(sources, &acfg.inventory_ignore()?)?
    };
    inv.ensure_implicit_localhost();
    Ok(inv)
}

fn config(c: &Common, acfg: &crate::config::AnsibleCfg) -> Result<RunConfig> {
    // Vault passwords first: extra vars files, inventories and playbooks may be vaulted.
    crate::vault_cli::setup(&c.vault, acfg)?;
    let forks = c.forks.or(acfg.forks).unwrap_or(50);
    if forks == 0 {
        return Err(Error::Usage("--forks must be at least 1".into()));
    }
    let mut roles = roles_path(&c.roles_path);
    roles.extend(acfg.roles_path.iter().cloned());
    let fact_cache = match (acfg.fact_caching.as_deref(), &acfg.fact_caching_connection) {
        (Some("jsonfile"), Some(dir)) => {
            Some((dir.clone(), acfg.fact_caching_timeout.unwrap_or(86400)))
        }
        _ => None,
    };
    // Connection options on the command line: over ansible.cfg, under the
    // inventory's variables (Ansible's precedence for command-line options).
    let mut config_vars = acfg.vars.clone();
    let private_key = c
        .private_key
        .as_ref()
        .map(|p| p.to_string_lossy().into_owned());
    for (var, value) in [
        ("ansible_user", c.user.clone()),
        ("ansible_connection", c.connection.clone()),
        ("ansible_ssh_private_key_file", private_key),
        ("ansible_ssh_common_args", c.ssh_common_args.clone()),
        ("ansible_ssh_extra_args", c.ssh_extra_args.clone()),
        ("ansible_become_user", c.become_user.clone()),
        ("ansible_become_method", c.become_method.clone()),
    ] {
        if let Some(v) = value {
            config_vars.insert(var.into(), Value::String(v));
        }
    }
    Ok(RunConfig {
        inventory: c.inventory.clone(),
        config_vars,
        ansible_managed: acfg.ansible_managed.clone(),
        host_key_checking: acfg.host_key_checking,
        gathering: acfg.gathering.clone(),
        fact_cache,
        connection_timeout: c.timeout.or(acfg.timeout),
        check: c.check,
        diff: c.diff,
        limit: c.limit.clone(),
        extra_vars: parse_extra_vars(&c.extra_vars)?,
        forks,
        verbosity: c.verbose,
        become_password: become_password(c)?,
        roles_path: roles,
        force_become: c.r#become,
        ..RunConfig::default()
    })
}

fn reporter(c: &Common) -> Box<dyn Reporter> {
    let main: Box<dyn Reporter> = match c.output {
        Output::Human => Box::new(report::Human::stdout()),
        Output::Json => Box::new(report::Json::new(None)),
    };
    match &c.junit {
        Some(p) => Box::new(report::Tee(vec![
            main,
            Box::new(report::Junit::new(p.clone())),
        ])),
        None => main,
    }
}

/// Prints to stdout; a closed pipe (`| head`) is not an error.
fn out(s: &str) {
    use std::io::Write;
    let _ = std::io::stdout().write_all(s.as_bytes());
}

/// Runs the command; returns the exit code.
pub async fn run(cli: Cli) -> Result<i32> {
    match cli.cmd {
        Cmd::Playbook(a) => playbook(a).await,
        Cmd::Inventory(a) => {
            let acfg = crate::config::load();
            crate::vault_cli::setup(&a.vault, &acfg)?;
            let inv = Inventory::load_with(&a.inventory, &acfg.inventory_ignore()?)?;
            if let Some(h) = a.host {
                if !inv.hosts.contains_key(&h) {
                    return Err(Error::Usage(format!(
                        "you must pass a single valid host to --host; {h} is not in the inventory"
                    )));
                }
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&inv.host_vars(&h)).unwrap_or_default()
                ));
            } else if let Some(group) = a.graph {
                if !inv.groups.contains_key(&group) {
                    return Err(Error::Usage(format!(
                        "Pattern must be valid group name when using --graph; {group} is not a group"
                    )));
                }
                out(&inv.graph(&group));
            } else {
                out(&format!(
                    "{}\n",
                    serde_json::to_string_pretty(&inv.to_list_json()).unwrap_or_default()
                ));
            }
            Ok(0)
        }
        Cmd::Run(a) => adhoc(a).await,
        Cmd::Vault(a) => crate::vault_cli::run(a),
        Cmd::Doc(a) => {
            match a.module {
                None => print!("{}", crate::doc::list()),
                Some(m) => print!(
                    "{}",
                    crate::doc::module(&m)
                        .ok_or_else(|| Error::Usage(format!("module {m} not found")))?
                ),
            }
            Ok(0)
        }
    }
}

/// `-i` sources, or ansible.cfg's inventory when none is given.
fn inventory_sources(c: &Common, acfg: &crate::config::AnsibleCfg) -> Vec<String> {
    if c.inventory.is_empty() {
        acfg.inventory.clone()
    } else {
        c.inventory.clone()
    }
}

async fn playbook(a: PlaybookArgs) -> Result<i32> {
    let acfg = crate::config::load();
    let mut cfg = config(&a.common, &acfg)?;
    cfg.playbooks = a.playbooks.clone();
    cfg.tags = a.tags.clone();
    cfg.skip_tags = a.skip_tags.clone();
    cfg.start_at_task = a.start_at_task.clone();
    cfg.force_handlers = a.force_handlers;
    let inv = load_inventory(&inventory_sources(&a.common, &acfg), &acfg)?;
    if a.flush_cache {
        if let Some((dir, _)) = &cfg.fact_cache {
            for h in inv.hosts.keys() {
                // Host names become file names: never a path.
                if !h.contains('/') && !h.starts_with('.') {
                    let _ = std::fs::remove_file(dir.join(h));
                }
            }
        }
    }
    let books = engine::load_all(&cfg)?;
    if a.syntax_check {
        for p in &cfg.playbooks {
            println!("\nplaybook: {}", p.display());
        }
        return Ok(0);
    }
    if a.list_hosts || a.list_tasks || a.list_tags {
        for pb in &books {
            println!("\nplaybook: {}", pb.path.display());
            for (i, play) in pb.plays.iter().enumerate() {
                println!(
                    "\n  play #{} ({}): {}\tTAGS: [{}]",
                    i + 1,
                    play.hosts,
                    play.name,
                    play.kw.tags.join(", ")
                );
                if a.list_hosts {
                    let mut hosts = pattern::select(&inv, &play.hosts)?;
                    if let Some(l) = &cfg.limit {
                        let allowed = pattern::select(&inv, l)?;
                        hosts.retain(|h| allowed.contains(h));
                    }
                    println!(
                        "    pattern: ['{}']\n    hosts ({}):",
                        play.hosts,
                        hosts.len()
                    );
                    for h in hosts {
                        println!("      {h}");
                    }
                }
                if a.list_tasks || a.list_tags {
                    let mut all_tags: Vec<String> = Vec::new();
                    if a.list_tasks {
                        println!("    tasks:");
                    }
                    let sections = [
                        &play.pre_tasks,
                        &play.role_tasks,
                        &play.tasks,
                        &play.post_tasks,
                    ];
                    for t in sections.iter().flat_map(|s| s.iter()) {
                        list_task(t, a.list_tasks, &mut all_tags, 6);
                    }
                    if a.list_tags {
                        all_tags.sort();
                        all_tags.dedup();
                        println!("      TASK TAGS: [{}]", all_tags.join(", "));
                    }
                }
            }
        }
        return Ok(0);
    }
    drop(books);
    let run = Run::new(cfg, inv, reporter(&a.common));
    run_with_interrupt(run).await
}

fn list_task(t: &Task, print: bool, tags: &mut Vec<String>, indent: usize) {
    if let Action::Block {
        block,
        rescue,
        always,
    } = &t.action
    {
        for c in block.iter().chain(rescue).chain(always) {
            list_task(c, print, tags, indent);
        }
        return;
    }
    tags.extend(t.kw.tags.iter().cloned());
    if print {
        println!(
            "{}{}\tTAGS: [{}]",
            " ".repeat(indent),
            t.display_name(),
            t.kw.tags.join(", ")
        );
    }
}

async fn run_with_interrupt(run: Arc<Run>) -> Result<i32> {
    let r2 = run.clone();
    tokio::select! {
        res = run.run_playbooks() => res,
        _ = tokio::signal::ctrl_c() => {
            eprintln!("\n[ERROR]: User interrupted execution");
            r2.interrupt_all().await;
            r2.close_all().await;
            let stats = r2.stats.lock().expect("stats").clone();
            r2.reporter.lock().expect("reporter").recap(&stats);
            Ok(99)
        }
    }
}

async fn adhoc(a: AdhocArgs) -> Result<i32> {
    let acfg = crate::config::load();
    let cfg = config(&a.common, &acfg)?;
    let inv = load_inventory(&inventory_sources(&a.common, &acfg), &acfg)?;
    let module = crate::modules::find(&a.module)
        .ok_or_else(|| Error::Usage(format!("module {} not found", a.module)))?;
    let args: Map<String, Value> = match a.args.as_deref().map(str::trim) {
        None | Some("") => Map::new(),
        Some(s) if s.starts_with('{') => match serde_json::from_str(s) {
            Ok(Value::Object(m)) => m,
            _ => return Err(Error::Usage(format!("-a {s:?}: invalid JSON"))),
        },
        Some(s) => crate::playbook::parse_kv(s, module.spec().free_form)
            .map_err(|e| Error::Usage(format!("-a: {e}")))?,
    };
    module.spec().check_keys(&args).map_err(Error::Usage)?;
    let dir = tempdir_playbook(&a.pattern, module.spec().name, &args)?;
    let mut cfg = cfg;
    cfg.playbooks = vec![dir.clone()];
    let rep: Box<dyn Reporter> = match a.common.output {
        Output::Human => Box::new(report::AdHoc),
        Output::Json => reporter(&a.common),
    };
    let run = Run::new(cfg, inv, rep);
    let code = run_with_interrupt(run).await;
    if let Some(d) = dir.parent() {
        let _ = std::fs::remove_dir_all(d);
    }
    code
}

/// The ad-hoc task as a one-play playbook in a temp file (same engine path as playbooks).
fn tempdir_playbook(pattern: &str, module: &str, args: &Map<String, Value>) -> Result<PathBuf> {
    let play = serde_json::json!([{
        "name": format!("Ad-hoc {module} on {pattern}"),
        "hosts": pattern,
        "gather_facts": false,
        "tasks": [{ "name": module, module: args }],
    }]);
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    // A private 0700 directory and a new 0600 file: no symlink games in /tmp.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("ferry-adhoc-{}-{nanos}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| Error::Io {
            path: dir.clone(),
            source: e,
        })?;
    let path = dir.join("adhoc.yml");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::Io {
            path: path.clone(),
            source: e,
        })?;
    // JSON is YAML: no serializer needed.
    f.write_all(
        serde_json::to_string_pretty(&play)
            .unwrap_or_default()
            .as_bytes(),
    )
    .map_err(|e| Error::Io {
        path: path.clone(),
        source: e,
    })?;
    Ok(path)
}
