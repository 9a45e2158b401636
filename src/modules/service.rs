//! `service`: on hosts running systemd, the `systemd_service` logic (as
//! Ansible's service action does); elsewhere Ansible's Linux fallback:
//! `service NAME status|start|stop|reload` (or `/etc/init.d/NAME`) for the
//! state and `update-rc.d` (Debian), `chkconfig` (Red Hat) or `insserv` for
//! `enabled`. The manager comes from `ansible_service_mgr` when facts were
//! gathered, otherwise it is detected in the same script that reads the state.

use async_trait::async_trait;
use serde_json::Value;

use super::sysadmin::{check_rc, Sections};
use super::systemd::{self, Unit};
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    required_one_of: &[&["state", "enabled", "masked", "daemon_reload", "daemon_reexec"]],
    example: "- ansible.builtin.service:\n    name: cron\n    state: started\n    enabled: true\n",
    ..ModuleSpec::new(
        "service",
        "Manage services: systemd units on systemd hosts, otherwise SysV init scripts (service/update-rc.d/chkconfig).",
        &[
            Param::new("name", Kind::Str, "Name of the service.").required(),
            Param::new("state", Kind::Str, "started/stopped are idempotent; restarted always bounces; reloaded always reloads (starting a stopped service).")
                .choices(&["reloaded", "restarted", "started", "stopped"]),
            Param::new("enabled", Kind::Bool, "Whether the service starts on boot."),
            Param::new("sleep", Kind::Int, "SysV: seconds between stop and start when restarting."),
            Param::new("pattern", Kind::Str, "SysV: a substring of `ps auxww` output that means the service runs (instead of `status`)."),
            Param::new("arguments", Kind::Str, "SysV: extra arguments for the init script.").aliases(&["args"]).default(""),
            Param::new("runlevel", Kind::Str, "OpenRC runlevel (accepted; OpenRC is not supported).").default("default"),
            Param::new("use", Kind::Str, "auto (ansible_service_mgr, else detected), systemd, sysvinit or service.").default("auto"),
            Param::new("daemon_reload", Kind::Bool, "systemd only: run daemon-reload first.").aliases(&["daemon-reload"]),
            Param::new("daemon_reexec", Kind::Bool, "systemd only: run daemon-reexec first.").aliases(&["daemon-reexec"]),
            Param::new("masked", Kind::Bool, "systemd only: whether the unit is masked."),
            Param::new("scope", Kind::Str, "systemd only: system, user or global.").choices(&["system", "user", "global"]),
            Param::new("no_block", Kind::Bool, "systemd only: --no-block."),
            Param::new("force", Kind::Bool, "systemd only: --force."),
        ],
    )
};

pub struct Service;

const SYSTEMD_ONLY: &[&str] = &[
    "daemon_reload",
    "daemon_reexec",
    "masked",
    "scope",
    "no_block",
    "force",
];
const SYSV_ONLY: &[&str] = &["pattern", "runlevel", "sleep", "arguments"];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mgr {
    Systemd,
    Sysv,
    Detect,
}

#[async_trait]
impl Module for Service {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let mgr = match args.str("use").unwrap_or("auto") {
            "auto" => match ctx
                .var("ansible_service_mgr")
                .as_ref()
                .and_then(Value::as_str)
            {
                Some("systemd") => Mgr::Systemd,
                Some(_) => Mgr::Sysv,
                None => Mgr::Detect,
            },
            "systemd" => Mgr::Systemd,
            "sysvinit" | "service" | "sysv" => Mgr::Sysv,
            other => {
                return Err(ModError::fail(format!(
                    "use={other} is not supported by ferry (auto, systemd, sysvinit, service)"
                )))
            }
        };
        let unit = Unit {
            name: args.str("name"),
            state: args.str("state"),
            enabled: args.get("enabled").map(|_| args.bool("enabled")),
            masked: args.get("masked").map(|_| args.bool("masked")),
            daemon_reload: args.bool("daemon_reload"),
            daemon_reexec: args.bool("daemon_reexec"),
            scope: args.str("scope").unwrap_or("system"),
            no_block: args.bool("no_block"),
            force: args.bool("force"),
        };
        let sysv = Sysv::from_args(args);
        let script = match mgr {
            Mgr::Systemd => unit.read_script(ctx.check_mode),
            Mgr::Sysv => sysv.read_script(),
            Mgr::Detect => format!(
                "if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then\necho @@MGR=systemd\n{}else\necho @@MGR=sysv\n{}fi\n",
                unit.read_script(ctx.check_mode),
                sysv.read_script()
            ),
        };
        let out = ctx.sh(&script).await?;
        check_rc(&out)?;
        let stdout = out.stdout_str();
        let systemd = match mgr {
            Mgr::Detect => Sections::parse(&stdout).val("MGR") == Some("systemd"),
            m => m == Mgr::Systemd,
        };
        if systemd {
            let ignored: Vec<String> = SYSV_ONLY
                .iter()
                .filter(|k| match **k {
                    "arguments" => args.str("arguments").is_some_and(|v| !v.is_empty()),
                    "runlevel" => args.str("runlevel").is_some_and(|v| v != "default"),
                    other => args.get(other).is_some(),
                })
                .map(|k| format!("Ignoring \"{k}\" as it is not used in \"systemd\""))
                .collect();
            // Which manager did the work (the result's shape says it too: `status` is systemd's).
            let mut o = systemd::finish_unit(&unit, ctx, &stdout)
                .await?
                .with("service_mgr", "systemd");
            if !ignored.is_empty() {
                let mut all = ignored;
                if let Some(Value::Array(w)) = o.data.get("warnings") {
                    all.extend(w.iter().filter_map(Value::as_str).map(str::to_string));
                }
                o = o.with("warnings", all);
            }
            return Ok(o);
        }
        let extra: Vec<&str> = SYSTEMD_ONLY
            .iter()
            .copied()
            .filter(|k| args.get(k).is_some())
            .collect();
        if !extra.is_empty() {
            return Err(ModError::fail(format!(
                "Unsupported parameters for (service) module: {}. These are systemd options and this host does not run systemd.",
                extra.join(", ")
            )));
        }
        if sysv.state.is_none() && sysv.enabled.is_none() {
            return Err(ModError::fail(
                "one of the following is required: state, enabled",
            ));
        }
        let obs = SysvObserved::parse(&stdout);
        let plan = sysv.decide(&obs)?;
        let changed = !plan.script.is_empty();
        if changed && !ctx.check_mode {
            let out = ctx
                .sh(&format!("{}{}", sysv.functions(), plan.script))
                .await?;
            check_rc(&out)?;
        }
        let mut o = Outcome::changed(changed)
            .with("name", sysv.name.clone())
            .with("service_mgr", "sysvinit");
        if let Some(e) = sysv.enabled {
            o = o.with("enabled", e);
        }
        if let Some(s) = &sysv.state {
            o = o.with("state", if s == "stopped" { "stopped" } else { "started" });
        }
        Ok(o)
    }
}

/// A SysV-style request.
#[derive(Debug, Clone, Default)]
pub struct Sysv {
    pub name: String,
    pub state: Option<String>,
    pub enabled: Option<bool>,
    pub pattern: Option<String>,
    pub arguments: Vec<String>,
    pub sleep: i64,
}

/// What the SysV read script saw.
#[derive(Debug, Clone, Default)]
pub struct SysvObserved {
    pub service: Option<String>,
    pub update_rc_d: Option<String>,
    pub insserv: Option<String>,
    pub chkconfig: Option<String>,
    pub initscript: Option<String>,
    pub slink: bool,
    pub klink: bool,
    pub chk_list: String,
    pub status_rc: Option<i64>,
    pub status_out: String,
    pub ps: Option<String>,
}

impl SysvObserved {
    pub fn parse(out: &str) -> SysvObserved {
        let s = Sections::parse(out);
        let tool = |t: &str| {
            s.val(&format!("TOOL_{t}"))
                .filter(|p| !p.is_empty())
                .map(str::to_string)
        };
        let mut status_out = s.body("STATUS").unwrap_or("").to_string();
        if status_out.ends_with('\n') {
            status_out.pop();
        }
        SysvObserved {
            service: tool("service"),
            update_rc_d: tool("update-rc.d"),
            insserv: tool("insserv"),
            chkconfig: tool("chkconfig"),
            initscript: s.val("INITSCRIPT").map(str::to_string),
            slink: s.has("SLINK"),
            klink: s.has("KLINK"),
            chk_list: s.body("CHKLIST").unwrap_or("").to_string(),
            status_rc: s.int("STATUSRC"),
            status_out,
            ps: s.body("PS").map(str::to_string),
        }
    }
}

/// Marks our own processes in `ps` output so `pattern` does not find itself.
const PS_SELF: &str = "FERRY_SERVICE_PS_SELF";

/// Commands to run, as one script (empty: nothing to change).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SysvPlan {
    pub script: String,
    pub running: Option<bool>,
}

impl Sysv {
    pub fn from_args(args: &Args) -> Sysv {
        Sysv {
            name: args.str("name").unwrap_or_default().to_string(),
            state: args.str("state").map(str::to_string),
            enabled: args.get("enabled").map(|_| args.bool("enabled")),
            pattern: args.str("pattern").map(str::to_string),
            arguments: args
                .str("arguments")
                .and_then(shlex::split)
                .unwrap_or_default(),
            sleep: args.int("sleep").unwrap_or(0),
        }
    }

    fn args_words(&self) -> String {
        self.arguments
            .iter()
            .map(|a| format!(" {}", quote(a)))
            .collect()
    }

    /// Shell functions for the read and change scripts: `ferry_svc ACTION...`
    /// runs `service NAME ACTION` (or the init script); `ferry_do CMD...`
    /// captures rc/out/err without tying the started daemon to our pipes.
    pub fn functions(&self) -> String {
        format!(
            "PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"\nferry_n={}\nferry_service=$(command -v service 2>/dev/null)\n\
             ferry_svc() {{ if [ -n \"$ferry_service\" ]; then \"$ferry_service\" \"$ferry_n\" \"$@\"; else \"/etc/init.d/$ferry_n\" \"$@\"; fi; }}\n\
             ferry_do() {{ ferry_o=$(mktemp); ferry_e=$(mktemp); (cd / && LANG=C LC_ALL=C \"$@\") </dev/null >\"$ferry_o\" 2>\"$ferry_e\"; ferry_rc=$?; ferry_out=$(cat \"$ferry_o\"); ferry_err=$(cat \"$ferry_e\"); rm -f \"$ferry_o\" \"$ferry_e\"; }}\n\
             ferry_fail() {{ if [ -n \"$ferry_err\" ]; then printf '%s' \"$ferry_err\" >&2; else printf '%s' \"$ferry_out\" >&2; fi; exit 1; }}\n",
            quote(&self.name)
        )
    }

    pub fn read_script(&self) -> String {
        let mut s = format!("# {PS_SELF}\n{}", self.functions());
        s.push_str(
            "for ferry_t in service update-rc.d insserv chkconfig; do echo \"@@TOOL_$ferry_t=$(command -v \"$ferry_t\" 2>/dev/null)\"; done\n\
             [ -f \"/etc/init.d/$ferry_n\" ] && echo \"@@INITSCRIPT=/etc/init.d/$ferry_n\"\n",
        );
        if self.enabled.is_some() {
            s.push_str(
                "for ferry_f in /etc/rc?.d/S??\"$ferry_n\"; do [ -e \"$ferry_f\" ] && { echo @@SLINK=1; break; }; done\n\
                 for ferry_f in /etc/rc?.d/K??\"$ferry_n\"; do [ -e \"$ferry_f\" ] && { echo @@KLINK=1; break; }; done\n\
                 if command -v chkconfig >/dev/null 2>&1; then echo @@CHKLIST; LANG=C LC_ALL=C chkconfig --list \"$ferry_n\" 2>&1; fi\n",
            );
        }
        if self.state.is_some() {
            if self.pattern.is_some() {
                s.push_str("echo @@PS\nps auxww\n");
            } else {
                s.push_str(&format!(
                    "if [ -n \"$ferry_service\" ] || [ -f \"/etc/init.d/$ferry_n\" ]; then echo @@STATUS; LANG=C LC_ALL=C ferry_svc status{} </dev/null 2>/dev/null; printf '\\n@@STATUSRC=%s\\n' \"$?\"; fi\n",
                    self.args_words()
                ));
            }
        }
        s
    }

    /// Ansible's LinuxService decisions.
    pub fn decide(&self, obs: &SysvObserved) -> Result<SysvPlan, ModError> {
        let n = quote(&self.name);
        let enable_cmd = obs.initscript.as_ref().and(
            obs.update_rc_d
                .as_ref()
                .map(|_| "update-rc.d")
                .or(obs.insserv.as_ref().map(|_| "insserv"))
                .or(obs.chkconfig.as_ref().map(|_| "chkconfig")),
        );
        let Some(enable_cmd) = enable_cmd else {
            return Err(ModError::fail(format!(
                "Could not find the requested service {}: host",
                self.name
            )));
        };
        if obs.service.is_none() && obs.initscript.is_none() {
            return Err(ModError::fail("cannot find 'service' binary or init script for service,  possible typo in service name?, aborting"));
        }
        let mut script = String::new();
        if let Some(want) = self.enabled {
            let cmds: Vec<String> = match enable_cmd {
                "chkconfig" => {
                    if !obs.chk_list.contains(&self.name) {
                        return Err(ModError::fail(format!(
                            "service {} does not support chkconfig",
                            self.name
                        )));
                    }
                    let action = if want { "on" } else { "off" };
                    if obs.chk_list.contains(&format!("3:{action}"))
                        && obs.chk_list.contains(&format!("5:{action}"))
                    {
                        vec![]
                    } else {
                        vec![format!("chkconfig {n} {action}")]
                    }
                }
                "insserv" => match (want, obs.slink) {
                    (true, false) => vec![format!("insserv {n}")],
                    (false, true) => vec![format!("insserv -r {n}")],
                    _ => vec![],
                },
                _ => match (want, obs.slink) {
                    (true, false) if !obs.klink => vec![
                        format!("update-rc.d {n} defaults"),
                        format!("update-rc.d {n} enable"),
                    ],
                    (true, false) => vec![format!("update-rc.d {n} enable")],
                    (false, true) => vec![format!("update-rc.d {n} disable")],
                    _ => vec![],
                },
            };
            for c in cmds {
                script.push_str(&format!(
                    "ferry_do {c}; [ \"$ferry_rc\" = 0 ] || ferry_fail\n"
                ));
            }
        }
        let mut running = None;
        if let Some(state) = &self.state {
            let r = match &self.pattern {
                Some(p) => {
                    let ps = obs.ps.as_deref().unwrap_or("");
                    Some(ps.lines().any(|l| {
                        l.contains(p.as_str()) && !l.contains(PS_SELF) && !l.contains("pattern=")
                    }))
                }
                None => status_running(&self.name, obs.status_rc, &obs.status_out),
            };
            let Some(r) = r else {
                return Err(ModError::fail(
                    "failed determining service state, possible typo of service name?",
                ));
            };
            running = Some(r);
            let a = self.args_words();
            let action = match state.as_str() {
                "started" if !r => Some("start"),
                "stopped" if r => Some("stop"),
                "reloaded" if !r => Some("start"),
                "reloaded" => Some("reload"),
                "restarted" => Some("restart"),
                _ => None,
            };
            match action {
                Some("restart") => {
                    script.push_str(&format!("ferry_do ferry_svc stop{a}; ferry_r1=$ferry_rc; ferry_o1=$ferry_out; ferry_e1=$ferry_err\n"));
                    if self.sleep > 0 {
                        script.push_str(&format!("sleep {}\n", self.sleep));
                    }
                    script.push_str(&format!(
                        "ferry_do ferry_svc start{a}\nif [ \"$ferry_r1\" != 0 ] && [ \"$ferry_rc\" = 0 ]; then :; elif [ $((ferry_r1 + ferry_rc)) != 0 ]; then ferry_out=\"$ferry_o1$ferry_out\"; ferry_err=\"$ferry_e1$ferry_err\"; case \"$ferry_err\" in *'Job is already running'*) ;; *) ferry_fail;; esac; fi\n"
                    ));
                }
                Some(act) => script.push_str(&format!(
                    "ferry_do ferry_svc {act}{a}\nif [ \"$ferry_rc\" != 0 ]; then case \"$ferry_err\" in *'Job is already running'*) ;; *) ferry_fail;; esac; fi\n"
                )),
                None => {}
            }
        }
        Ok(SysvPlan { script, running })
    }
}

/// Whether `service NAME status` says the service runs (None: cannot tell).
pub fn status_running(name: &str, rc: Option<i64>, stdout: &str) -> Option<bool> {
    let rc = rc?;
    if matches!(rc, 1 | 2 | 3 | 4 | 69) {
        return Some(false);
    }
    if stdout.matches('\n').count() <= 1 {
        let clean = stdout.to_lowercase().replace(&name.to_lowercase(), "");
        if clean.contains("stop") {
            return Some(false);
        } else if clean.contains("run") {
            return Some(!clean.contains("not "));
        } else if clean.contains("start") && !clean.contains("not ") {
            return Some(true);
        } else if [
            "could not access pid file",
            "is dead and pid file exists",
            "dead but subsys locked",
            "dead but pid file exists",
        ]
        .iter()
        .any(|k| clean.contains(k))
        {
            return Some(false);
        }
    }
    if rc == 0 {
        return Some(true);
    }
    if name == "iptables" && stdout.contains("ACCEPT") {
        return Some(true);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use crate::modules::testutil::{ctx_on, facts_scope};
    use crate::template::{Scope, Templar};
    use serde_json::json;

    fn sysv(state: Option<&str>, enabled: Option<bool>) -> Sysv {
        Sysv {
            name: "cron".into(),
            state: state.map(str::to_string),
            enabled,
            ..Sysv::default()
        }
    }

    fn debian(slink: bool, klink: bool, status_rc: i64, out: &str) -> SysvObserved {
        SysvObserved {
            service: Some("/usr/sbin/service".into()),
            update_rc_d: Some("/usr/sbin/update-rc.d".into()),
            initscript: Some("/etc/init.d/cron".into()),
            slink,
            klink,
            status_rc: Some(status_rc),
            status_out: out.into(),
            ..SysvObserved::default()
        }
    }

    #[test]
    fn status_rules() {
        assert_eq!(
            status_running("cron", Some(3), "cron is not running ... failed!"),
            Some(false)
        );
        assert_eq!(
            status_running("cron", Some(0), "cron is running."),
            Some(true)
        );
        assert_eq!(status_running("x", Some(0), ""), Some(true));
        assert_eq!(status_running("x", Some(5), "x: stopped"), Some(false));
        assert_eq!(status_running("x", Some(5), "weird\nmulti\nline"), None);
        assert_eq!(status_running("x", None, ""), None);
    }

    #[test]
    fn debian_enable_and_start() {
        let p = sysv(Some("started"), Some(true))
            .decide(&debian(false, false, 3, "cron is not running ... failed!"))
            .unwrap();
        assert_eq!(
            p.script,
            "ferry_do update-rc.d cron defaults; [ \"$ferry_rc\" = 0 ] || ferry_fail\n\
             ferry_do update-rc.d cron enable; [ \"$ferry_rc\" = 0 ] || ferry_fail\n\
             ferry_do ferry_svc start\nif [ \"$ferry_rc\" != 0 ]; then case \"$ferry_err\" in *'Job is already running'*) ;; *) ferry_fail;; esac; fi\n"
        );
        // K links exist (disabled before): only `enable`.
        let p = sysv(None, Some(true))
            .decide(&debian(false, true, 0, ""))
            .unwrap();
        assert_eq!(
            p.script,
            "ferry_do update-rc.d cron enable; [ \"$ferry_rc\" = 0 ] || ferry_fail\n"
        );
        // Already enabled and running: nothing.
        assert!(sysv(Some("started"), Some(true))
            .decide(&debian(true, false, 0, "cron is running."))
            .unwrap()
            .script
            .is_empty());
        // Stop and disable.
        let p = sysv(Some("stopped"), Some(false))
            .decide(&debian(true, false, 0, "cron is running."))
            .unwrap();
        assert!(
            p.script.contains("update-rc.d cron disable") && p.script.contains("ferry_svc stop")
        );
        // restarted always acts, with sleep between stop and start.
        let s = Sysv {
            sleep: 2,
            arguments: vec!["--x y".into()],
            ..sysv(Some("restarted"), None)
        };
        let p = s
            .decide(&debian(true, false, 0, "cron is running."))
            .unwrap();
        assert!(
            p.script.contains("ferry_svc stop '--x y'")
                && p.script
                    .contains("sleep 2\nferry_do ferry_svc start '--x y'")
        );
        // reloaded starts a stopped service.
        assert!(sysv(Some("reloaded"), None)
            .decide(&debian(true, false, 3, ""))
            .unwrap()
            .script
            .contains("ferry_svc start"));
    }

    #[test]
    fn missing_service_and_pattern() {
        let mut obs = debian(false, false, 0, "");
        obs.initscript = None;
        assert_eq!(
            sysv(Some("started"), None)
                .decide(&obs)
                .unwrap_err()
                .to_string(),
            "Could not find the requested service cron: host"
        );
        let s = Sysv {
            pattern: Some("/usr/sbin/cron".into()),
            ..sysv(Some("started"), None)
        };
        let mut obs = debian(true, false, 0, "");
        obs.ps = Some(format!(
            "root 1 sh -c # {PS_SELF} /usr/sbin/cron\nroot 2 ps auxww\n"
        ));
        assert_eq!(s.decide(&obs).unwrap().running, Some(false));
        obs.ps = Some("root 77 /usr/sbin/cron -f\n".into());
        assert_eq!(s.decide(&obs).unwrap().running, Some(true));
    }

    #[test]
    fn red_hat_sysv_uses_chkconfig() {
        let obs = SysvObserved {
            service: Some("/sbin/service".into()),
            chkconfig: Some("/sbin/chkconfig".into()),
            initscript: Some("/etc/init.d/cron".into()),
            chk_list: "cron  0:off 1:off 2:off 3:off 4:off 5:off 6:off\n".into(),
            ..SysvObserved::default()
        };
        assert_eq!(
            sysv(None, Some(true)).decide(&obs).unwrap().script,
            "ferry_do chkconfig cron on; [ \"$ferry_rc\" = 0 ] || ferry_fail\n"
        );
        let on = SysvObserved {
            chk_list: "cron  0:off 1:off 2:on 3:on 4:on 5:on 6:off\n".into(),
            ..obs
        };
        assert!(sysv(None, Some(true))
            .decide(&on)
            .unwrap()
            .script
            .is_empty());
    }

    async fn run(rec: &Recording, scope: &Scope, args: Value, check: bool) -> ModResult {
        let templar = Templar::new();
        let ctx = ctx_on(rec, &templar, scope, check, false);
        let a = SPEC
            .validate(args.as_object().unwrap().clone())
            .map_err(ModError::fail)?;
        Service.run(&a, &ctx).await
    }

    #[tokio::test]
    async fn rhel9_service_goes_through_systemctl() {
        let scope = facts_scope(crate::modules::systemd::rhel9_facts());
        let rec = Recording::new();
        rec.on("systemctl show httpd", 0, "@@SHOW\nLoadState=loaded\nActiveState=inactive\n@@SHOWRC=0\n@@ISENABLED\ndisabled\n@@ISENABLEDRC=1\n");
        let o = run(
            &rec,
            &scope,
            json!({"name": "httpd", "state": "started", "enabled": "yes", "pattern": "httpd"}),
            false,
        )
        .await
        .unwrap();
        assert!(o.changed);
        assert_eq!(o.data["status"]["ActiveState"], "inactive");
        assert_eq!(
            o.data["warnings"][0],
            "Ignoring \"pattern\" as it is not used in \"systemd\""
        );
        let s = rec.scripts();
        assert!(!s[0].contains("@@MGR"), "the fact decides, no detection");
        assert!(s[1].contains("systemctl enable httpd") && s[1].contains("systemctl start httpd"));
        // Idempotent from the recorded "already there" output.
        let rec = Recording::new();
        rec.on("systemctl show httpd", 0, "@@SHOW\nLoadState=loaded\nActiveState=active\n@@SHOWRC=0\n@@ISENABLED\nenabled\n@@ISENABLEDRC=0\n");
        let o = run(
            &rec,
            &scope,
            json!({"name": "httpd", "state": "started", "enabled": true}),
            false,
        )
        .await
        .unwrap();
        assert!(!o.changed);
        assert_eq!(rec.scripts().len(), 1);
        // Check mode: nothing but the read.
        let rec = Recording::new();
        rec.on(
            "systemctl show httpd",
            0,
            "@@SHOW\nLoadState=loaded\nActiveState=active\n@@SHOWRC=0\n",
        );
        let o = run(
            &rec,
            &scope,
            json!({"name": "httpd", "state": "restarted"}),
            true,
        )
        .await
        .unwrap();
        assert!(o.changed);
        assert_eq!(rec.scripts().len(), 1);
    }

    #[tokio::test]
    async fn without_facts_the_manager_is_detected_in_the_read_script() {
        let rec = Recording::new();
        rec.on("@@MGR", 0, "@@MGR=sysv\n@@TOOL_service=/usr/sbin/service\n@@TOOL_update-rc.d=/usr/sbin/update-rc.d\n@@INITSCRIPT=/etc/init.d/cron\n@@SLINK=1\n@@STATUS\ncron is running.\n\n@@STATUSRC=0\n");
        let o = run(
            &rec,
            &Scope::new(),
            json!({"name": "cron", "state": "started", "enabled": true}),
            false,
        )
        .await
        .unwrap();
        assert!(!o.changed);
        assert_eq!(
            (o.data["state"].as_str(), o.data["enabled"].as_bool()),
            (Some("started"), Some(true))
        );
        assert!(o.data.get("status").is_none());
        assert_eq!(o.data["service_mgr"], "sysvinit");
        let e = run(
            &rec,
            &Scope::new(),
            json!({"name": "cron", "state": "started", "masked": false}),
            false,
        )
        .await
        .unwrap_err();
        assert!(e
            .to_string()
            .contains("Unsupported parameters for (service) module: masked"));
    }
}
