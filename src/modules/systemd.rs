//! `systemd_service` (alias `systemd`): units through `systemctl`, with
//! Ansible's rules: `show` for the state, `is-enabled` for enablement and
//! masking, then only the commands that change something. `service` uses
//! the same code on hosts that run systemd.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::sysadmin::{check_rc, failed_with, Sections};
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["systemd", "ansible.builtin.systemd", "ansible.builtin.systemd_service", "ansible.legacy.systemd"],
    required_one_of: &[&["state", "enabled", "masked", "daemon_reload", "daemon_reexec"]],
    example: "- ansible.builtin.systemd_service:\n    name: nginx\n    state: started\n    enabled: true\n    daemon_reload: true\n",
    ..ModuleSpec::new(
        "systemd_service",
        "Control systemd units: start/stop/restart/reload, enable at boot, mask, daemon-reload.",
        &[
            Param::new("name", Kind::Str, "Unit name (e.g. nginx or nginx.service).").aliases(&["service", "unit"]),
            Param::new("state", Kind::Str, "started/stopped are idempotent; restarted and reloaded always act (starting a stopped unit).")
                .choices(&["reloaded", "restarted", "started", "stopped"]),
            Param::new("enabled", Kind::Bool, "Whether the unit starts on boot."),
            Param::new("force", Kind::Bool, "Pass --force to systemctl (overrides existing symlinks)."),
            Param::new("masked", Kind::Bool, "Whether the unit is masked (cannot be started)."),
            Param::new("daemon_reload", Kind::Bool, "Run daemon-reload before anything else (not in check mode).").aliases(&["daemon-reload"]).default("no"),
            Param::new("daemon_reexec", Kind::Bool, "Run daemon-reexec before anything else (not in check mode).").aliases(&["daemon-reexec"]).default("no"),
            Param::new("scope", Kind::Str, "The systemd manager: system, user (--user) or global (--global).").choices(&["system", "user", "global"]).default("system"),
            Param::new("no_block", Kind::Bool, "Do not wait for the job to finish (--no-block).").default("no"),
        ],
    )
};

pub struct Systemd;

#[async_trait]
impl Module for Systemd {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let unit = Unit::from_args(args);
        for (p, given) in [
            ("state", unit.state.is_some()),
            ("enabled", unit.enabled.is_some()),
            ("masked", unit.masked.is_some()),
        ] {
            if given && unit.name.is_none() {
                return Err(ModError::fail(format!(
                    "{p} is {} but all of the following are missing: name",
                    if p == "state" {
                        unit.state.unwrap_or_default().to_string()
                    } else {
                        "set".into()
                    }
                )));
            }
        }
        run_unit(&unit, ctx).await
    }
}

/// What is asked of one unit.
#[derive(Debug, Clone, Default)]
pub struct Unit<'a> {
    pub name: Option<&'a str>,
    pub state: Option<&'a str>,
    pub enabled: Option<bool>,
    pub masked: Option<bool>,
    pub daemon_reload: bool,
    pub daemon_reexec: bool,
    pub scope: &'a str,
    pub no_block: bool,
    pub force: bool,
}

impl<'a> Unit<'a> {
    pub fn from_args(args: &'a Args) -> Unit<'a> {
        Unit {
            name: args.str("name"),
            state: args.str("state"),
            enabled: args.get("enabled").map(|_| args.bool("enabled")),
            masked: args.get("masked").map(|_| args.bool("masked")),
            daemon_reload: args.bool("daemon_reload"),
            daemon_reexec: args.bool("daemon_reexec"),
            scope: args.str("scope").unwrap_or("system"),
            no_block: args.bool("no_block"),
            force: args.bool("force"),
        }
    }

    /// `systemctl` with the scope/--no-block/--force switches.
    pub fn systemctl(&self) -> String {
        let mut s = String::from("systemctl");
        if !self.scope.is_empty() && self.scope != "system" {
            s.push_str(&format!(" --{}", self.scope));
        }
        if self.no_block {
            s.push_str(" --no-block");
        }
        if self.force {
            s.push_str(" --force");
        }
        s
    }

    /// One script: daemon-reload/reexec (unless checking), then what the unit looks like.
    /// `--user` needs the user's runtime directory, as Ansible sets it.
    pub fn env_prefix(&self) -> &'static str {
        if self.scope == "user" {
            "export XDG_RUNTIME_DIR=\"${XDG_RUNTIME_DIR:-/run/user/$(id -u)}\"\n"
        } else {
            ""
        }
    }

    pub fn read_script(&self, check_mode: bool) -> String {
        let sc = self.systemctl();
        let mut s = format!(
            "{}command -v systemctl >/dev/null 2>&1 || {{ echo 'Failed to find required executable \"systemctl\" in paths' >&2; exit 2; }}\n",
            self.env_prefix()
        );
        for (want, what) in [
            (self.daemon_reload, "daemon-reload"),
            (self.daemon_reexec, "daemon-reexec"),
        ] {
            if want && !check_mode {
                s.push_str(&format!(
                    "if ! ferry_err=$({sc} {what} 2>&1); then printf 'failure when executing systemctl {what}: %s' \"$ferry_err\" >&2; exit 1; fi\n"
                ));
            }
        }
        if let Some(name) = self.name {
            let u = quote(name);
            s.push_str(&format!(
                "echo @@SHOW\n{sc} show {u} 2>/dev/null\necho \"@@SHOWRC=$?\"\n"
            ));
            if self.enabled.is_some() || self.masked.is_some() {
                s.push_str(&format!("echo @@ISENABLED\n{sc} is-enabled {u} -l 2>/dev/null\necho \"@@ISENABLEDRC=$?\"\n"));
            }
            // A SysV script of the same name (systemd's sysv generator).
            let base = name.strip_suffix(".service").unwrap_or(name);
            s.push_str(&format!(
                "if [ -x /etc/init.d/{b} ]; then echo @@INITD=1; for f in /etc/rc?.d/S??{b}; do [ -e \"$f\" ] && {{ echo @@SYSVENABLED=1; break; }}; done; fi\n",
                b = quote(base)
            ));
        }
        s
    }
}

/// `systemctl show` output as Ansible parses it (multi-line values only for Exec*).
pub fn parse_show(out: &str) -> Map<String, Value> {
    let mut parsed = Map::new();
    let mut multival: Vec<&str> = Vec::new();
    let mut key: Option<&str> = None;
    for line in out.lines() {
        match key {
            None => {
                if let Some((k, v)) = line.split_once('=') {
                    if k.starts_with("Exec")
                        && v.trim_start().starts_with('{')
                        && !v.trim_end().ends_with('}')
                    {
                        multival.push(v);
                        key = Some(k);
                        continue;
                    }
                    parsed.insert(k.to_string(), Value::String(v.trim().to_string()));
                }
            }
            Some(k) => {
                multival.push(line);
                if line.trim_end().ends_with('}') {
                    parsed.insert(
                        k.to_string(),
                        Value::String(multival.join("\n").trim().to_string()),
                    );
                    multival.clear();
                    key = None;
                }
            }
        }
    }
    parsed
}

/// What the read script saw.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub status: Map<String, Value>,
    pub is_enabled: String,
    pub is_enabled_rc: i64,
    pub initd: bool,
    pub sysv_enabled: bool,
}

impl Observed {
    pub fn parse(out: &str) -> Observed {
        let s = Sections::parse(out);
        let show_rc = s.int("SHOWRC").unwrap_or(1);
        Observed {
            status: if show_rc == 0 {
                parse_show(s.body("SHOW").unwrap_or(""))
            } else {
                Map::new()
            },
            is_enabled: s.body("ISENABLED").unwrap_or("").trim().to_string(),
            is_enabled_rc: s.int("ISENABLEDRC").unwrap_or(1),
            initd: s.has("INITD"),
            sysv_enabled: s.has("SYSVENABLED"),
        }
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.status.get(k).and_then(Value::as_str)
    }
}

/// The commands to run (`systemctl <action> <unit>`) and the result fields.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    pub actions: Vec<&'static str>,
    pub enabled: Option<bool>,
    pub state: Option<String>,
}

/// Ansible's decisions, from what was observed.
pub fn decide(unit: &Unit<'_>, obs: &Observed) -> Result<Plan, ModError> {
    let mut plan = Plan::default();
    let Some(name) = unit.name else {
        return Ok(plan);
    };
    for g in ['*', '?', '['] {
        if name.contains(g) {
            return Err(ModError::fail(format!("This module does not currently support using glob patterns, found '{g}' in service name: {name}")));
        }
    }
    let load = obs.get("LoadState");
    let is_systemd = load.is_some() && load != Some("not-found");
    let is_masked = load == Some("masked");
    if is_systemd && !is_masked {
        if let Some(e) = obs.get("LoadError").filter(|e| !e.is_empty()) {
            return Err(ModError::fail(format!(
                "Error loading unit file '{name}': {e}"
            )));
        }
    }
    let found = is_systemd || obs.initd;
    let missing = || ModError::fail(format!("Could not find the requested service {name}: host"));

    if let Some(want) = unit.masked {
        let masked = obs.is_enabled == "masked";
        if masked != want {
            plan.actions.push(if want { "mask" } else { "unmask" });
        }
    }
    if let Some(want) = unit.enabled {
        if !found {
            return Err(missing());
        }
        let mut enabled = false;
        if obs.is_enabled_rc == 0 {
            enabled = !matches!(
                obs.is_enabled.as_str(),
                "enabled-runtime" | "indirect" | "alias"
            );
        } else if obs.is_enabled_rc == 1
            && unit.scope == "system"
            && obs.initd
            && !obs.is_enabled.ends_with("disabled")
            && obs.sysv_enabled
        {
            enabled = true;
        }
        if enabled != want {
            plan.actions.push(if want { "enable" } else { "disable" });
        }
        plan.enabled = Some(want);
    }
    if let Some(state) = unit.state {
        if !found {
            return Err(missing());
        }
        let Some(active) = obs.get("ActiveState") else {
            return Err(failed_with(
                "Service is in unknown state",
                &[("status", Value::Object(obs.status.clone()))],
            ));
        };
        let running = matches!(active, "active" | "activating");
        let mut result_state = state.to_string();
        let action = match state {
            "started" => (!running).then_some("start"),
            "stopped" => (running || active == "deactivating").then_some("stop"),
            other => {
                result_state = "started".into();
                Some(if !running {
                    "start"
                } else if other == "restarted" {
                    "restart"
                } else {
                    "reload"
                })
            }
        };
        plan.actions.extend(action);
        plan.state = Some(result_state);
    }
    Ok(plan)
}

/// The change script: each action in order, failing with Ansible's message.
pub fn change_script(unit: &Unit<'_>, actions: &[&str]) -> String {
    let sc = unit.systemctl();
    let u = quote(unit.name.unwrap_or_default());
    let mut s = unit.env_prefix().to_string();
    for a in actions {
        s.push_str(&format!(
            "if ! ferry_err=$({sc} {a} {u} 2>&1 >/dev/null); then printf 'Unable to {a} service %s: %s' {u} \"$ferry_err\" >&2; exit 1; fi\n"
        ));
    }
    s
}

/// Runs the unit logic on a host (used by `systemd_service` and `service`).
pub async fn run_unit(unit: &Unit<'_>, ctx: &Ctx<'_>) -> ModResult {
    let out = ctx.sh(&unit.read_script(ctx.check_mode)).await?;
    check_rc(&out)?;
    finish_unit(unit, ctx, &out.stdout_str()).await
}

/// The rest of `run_unit`, from the read script's output.
pub async fn finish_unit(unit: &Unit<'_>, ctx: &Ctx<'_>, read_out: &str) -> ModResult {
    let obs = Observed::parse(read_out);
    let plan = decide(unit, &obs)?;
    let changed = !plan.actions.is_empty();
    if changed && !ctx.check_mode {
        let out = ctx.sh(&change_script(unit, &plan.actions)).await?;
        check_rc(&out)?;
    }
    let mut o = Outcome::changed(changed)
        .with("name", unit.name.map(Value::from).unwrap_or(Value::Null))
        .with("status", Value::Object(obs.status.clone()));
    if let Some(e) = plan.enabled {
        o = o.with("enabled", e);
    }
    if let Some(s) = plan.state {
        o = o.with("state", s);
    }
    let load = obs.get("LoadState");
    if let (Some(name), true) = (
        unit.name,
        obs.initd && (load.is_none() || load == Some("not-found")),
    ) {
        o = o.with(
            "warnings",
            vec![format!("The service ({name}) is actually an init script but the system is managed by systemd")],
        );
    }
    Ok(o)
}

/// A RHEL 9 host as `setup` describes it (fixture for recorded-command tests).
#[cfg(test)]
pub(crate) fn rhel9_facts() -> Value {
    serde_json::json!({"os_family": "RedHat", "distribution": "RedHat", "distribution_major_version": "9",
        "distribution_version": "9.4", "pkg_mgr": "dnf", "service_mgr": "systemd", "system": "Linux", "hostname": "rhel9"})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use serde_json::json;

    const SHOW_RUNNING: &str = "Id=nginx.service\nLoadState=loaded\nActiveState=active\nSubState=running\nUnitFileState=enabled\nExecStart={ path=/usr/sbin/nginx ; argv[]=/usr/sbin/nginx ;\n status=0/0 }\nDescription=The nginx {HTTP} server\n";
    const SHOW_STOPPED: &str = "Id=nginx.service\nLoadState=loaded\nActiveState=inactive\nSubState=dead\nUnitFileState=disabled\n";

    async fn run(rec: &Recording, args: serde_json::Value, check: bool) -> ModResult {
        crate::modules::testutil::run_on(rec, &Systemd, args, Some(rhel9_facts()), check, false)
            .await
    }

    #[test]
    fn every_name_finds_the_module() {
        for n in [
            "systemd",
            "systemd_service",
            "ansible.builtin.systemd",
            "ansible.builtin.systemd_service",
            "ansible.legacy.systemd",
        ] {
            assert_eq!(
                crate::modules::find(n).map(|m| m.spec().name),
                Some("systemd_service"),
                "{n}"
            );
        }
        for (n, want) in [
            ("ansible.posix.authorized_key", "authorized_key"),
            ("community.general.sudoers", "sudoers"),
            ("ansible.builtin.service_facts", "service_facts"),
            ("ansible.builtin.getent", "getent"),
        ] {
            assert_eq!(
                crate::modules::find(n).map(|m| m.spec().name),
                Some(want),
                "{n}"
            );
        }
    }

    #[test]
    fn show_parsing_keeps_multiline_exec_only() {
        let m = parse_show(SHOW_RUNNING);
        assert_eq!(m["ActiveState"], "active");
        assert_eq!(
            m["ExecStart"],
            "{ path=/usr/sbin/nginx ; argv[]=/usr/sbin/nginx ;\n status=0/0 }"
        );
        assert_eq!(m["Description"], "The nginx {HTTP} server");
    }

    #[tokio::test]
    async fn rhel9_start_enable_then_idempotent() {
        let rec = Recording::new();
        rec.on(
            "systemctl show nginx",
            0,
            &format!("@@SHOW\n{SHOW_STOPPED}@@SHOWRC=0\n@@ISENABLED\ndisabled\n@@ISENABLEDRC=1\n"),
        );
        let o = run(
            &rec,
            json!({"name": "nginx", "state": "started", "enabled": true}),
            false,
        )
        .await
        .unwrap();
        assert!(o.changed);
        assert_eq!(o.data["state"], "started");
        assert_eq!(o.data["enabled"], true);
        assert_eq!(o.data["status"]["ActiveState"], "inactive");
        let scripts = rec.scripts();
        assert_eq!(scripts.len(), 2);
        assert!(
            scripts[0].contains("systemctl show nginx 2>/dev/null")
                && scripts[0].contains("systemctl is-enabled nginx -l")
        );
        assert_eq!(
            scripts[1],
            "if ! ferry_err=$(systemctl enable nginx 2>&1 >/dev/null); then printf 'Unable to enable service %s: %s' nginx \"$ferry_err\" >&2; exit 1; fi\n\
             if ! ferry_err=$(systemctl start nginx 2>&1 >/dev/null); then printf 'Unable to start service %s: %s' nginx \"$ferry_err\" >&2; exit 1; fi\n"
        );

        // Second run: the host now reports running + enabled.
        let rec = Recording::new();
        rec.on(
            "systemctl show nginx",
            0,
            &format!("@@SHOW\n{SHOW_RUNNING}@@SHOWRC=0\n@@ISENABLED\nenabled\n@@ISENABLEDRC=0\n"),
        );
        let o = run(
            &rec,
            json!({"name": "nginx", "state": "started", "enabled": true}),
            false,
        )
        .await
        .unwrap();
        assert!(!o.changed);
        assert_eq!(rec.scripts().len(), 1, "no change script");
    }

    #[tokio::test]
    async fn check_mode_runs_nothing_that_changes() {
        let rec = Recording::new();
        rec.on(
            "systemctl show nginx",
            0,
            &format!("@@SHOW\n{SHOW_RUNNING}@@SHOWRC=0\n@@ISENABLED\nenabled\n@@ISENABLEDRC=0\n"),
        );
        let o = run(
            &rec,
            json!({"name": "nginx", "state": "restarted", "daemon_reload": true, "masked": true}),
            true,
        )
        .await
        .unwrap();
        assert!(o.changed);
        assert_eq!(o.data["state"], "started");
        assert_eq!(rec.scripts().len(), 1);
        assert!(!rec.ran("daemon-reload") && !rec.ran(" restart ") && !rec.ran(" mask "));
    }

    #[tokio::test]
    async fn restart_reload_stop_mask_and_daemon_reload() {
        let rec = Recording::new();
        rec.on(
            " show nginx",
            0,
            &format!("@@SHOW\n{SHOW_RUNNING}@@SHOWRC=0\n@@ISENABLED\nenabled\n@@ISENABLEDRC=0\n"),
        );
        let o = run(&rec, json!({"name": "nginx", "state": "reloaded", "daemon_reload": true, "scope": "user", "no_block": true}), false).await.unwrap();
        assert!(o.changed);
        let s = rec.scripts();
        let lines: Vec<&str> = s[0].lines().collect();
        assert_eq!(
            lines[0],
            "export XDG_RUNTIME_DIR=\"${XDG_RUNTIME_DIR:-/run/user/$(id -u)}\""
        );
        assert!(
            lines[2]
                .starts_with("if ! ferry_err=$(systemctl --user --no-block daemon-reload 2>&1)"),
            "{}",
            s[0]
        );
        assert!(
            s[1].starts_with("export XDG_RUNTIME_DIR=")
                && s[1].contains("systemctl --user --no-block reload nginx")
        );

        let rec = Recording::new();
        rec.on(
            "systemctl show",
            0,
            &format!("@@SHOW\n{SHOW_RUNNING}@@SHOWRC=0\n@@ISENABLED\nenabled\n@@ISENABLEDRC=0\n"),
        );
        run(
            &rec,
            json!({"name": "nginx", "state": "stopped", "masked": true}),
            false,
        )
        .await
        .unwrap();
        let s = rec.scripts();
        assert!(s[1].contains("systemctl mask nginx") && s[1].contains("systemctl stop nginx"));
        assert!(s[1].find("mask nginx").unwrap() < s[1].find("stop nginx").unwrap());

        // Masked and asked to stay masked and stopped: nothing to do.
        let rec = Recording::new();
        rec.on("systemctl show", 0, "@@SHOW\nLoadState=masked\nActiveState=inactive\n@@SHOWRC=0\n@@ISENABLED\nmasked\n@@ISENABLEDRC=1\n");
        let o = run(
            &rec,
            json!({"name": "nginx", "state": "stopped", "masked": true}),
            false,
        )
        .await
        .unwrap();
        assert!(!o.changed);
    }

    #[tokio::test]
    async fn missing_unit_and_glob_fail() {
        let rec = Recording::new();
        rec.on(
            "systemctl show",
            0,
            "@@SHOW\nLoadState=not-found\nActiveState=inactive\n@@SHOWRC=0\n",
        );
        let e = run(&rec, json!({"name": "nope", "state": "started"}), false)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "Could not find the requested service nope: host"
        );
        let e = run(
            &Recording::new(),
            json!({"name": "ng*", "state": "started"}),
            false,
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("glob patterns, found '*'"));
        // A unit that fails to start reports systemctl's message.
        let rec = Recording::new();
        rec.on(
            "systemctl show",
            0,
            &format!("@@SHOW\n{SHOW_STOPPED}@@SHOWRC=0\n"),
        );
        rec.on_err(
            "systemctl start",
            1,
            "Unable to start service nginx: Job for nginx.service failed.",
        );
        let e = run(&rec, json!({"name": "nginx", "state": "started"}), false)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("Job for nginx.service failed"));
    }

    #[test]
    fn enabled_rules() {
        let u = Unit {
            name: Some("x"),
            enabled: Some(true),
            scope: "system",
            ..Unit::default()
        };
        let obs = |out: &str, rc: i64| Observed {
            status: parse_show("LoadState=loaded\nActiveState=active\n"),
            is_enabled: out.into(),
            is_enabled_rc: rc,
            ..Observed::default()
        };
        assert!(decide(&u, &obs("enabled", 0)).unwrap().actions.is_empty());
        assert_eq!(
            decide(&u, &obs("static", 0)).unwrap().actions,
            Vec::<&str>::new()
        );
        assert_eq!(
            decide(&u, &obs("indirect", 0)).unwrap().actions,
            vec!["enable"]
        );
        assert_eq!(
            decide(&u, &obs("disabled", 1)).unwrap().actions,
            vec!["enable"]
        );
        // A SysV script with S links counts as enabled.
        let sysv = Observed {
            initd: true,
            sysv_enabled: true,
            ..obs("", 1)
        };
        assert!(decide(&u, &sysv).unwrap().actions.is_empty());
    }
}
