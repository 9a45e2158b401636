//! `apt`: Debian/Ubuntu packages through `dpkg-query` and `apt-get` (no
//! python-apt, no aptitude: `upgrade: safe|yes|full` use `apt-get`).
//!
//! Round trips: one script updates the cache when asked (and stale) and reads
//! the state of the named packages with one `dpkg-query -W` (plus
//! `apt-cache policy` for `state: latest`); one script runs `apt-get`. Check
//! mode simulates with `apt-get -s` and never updates the cache (Ansible does
//! update it in check mode); when a cache update was skipped that way, check
//! mode trusts the plan computed from dpkg's state instead.
//!
//! A successful update touches `/var/lib/apt/periodic/update-success-stamp`
//! (as Ubuntu's apt hook does): on Debian the lists directory keeps its mtime
//! when nothing changed upstream, which would make `cache_valid_time` useless.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::Value;

use super::pkgmgr::{self, has_glob, Desired, Pin, PkgMgr, Plan, PlanOpts, State, Want};
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::{quote, ExecOut};

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["ansible.builtin.apt", "ansible.legacy.apt"],
    mutually_exclusive: &[&["deb", "name", "upgrade"]],
    example: "- ansible.builtin.apt:\n    name: [nginx, jq=1.6*]\n    state: present\n    update_cache: true\n    cache_valid_time: 3600\n",
    ..ModuleSpec::new(
        "apt",
        "Manage apt packages (Debian/Ubuntu) with dpkg-query and apt-get.",
        &[
            Param::new("name", Kind::List, "Package names or specifiers (`foo`, `foo=1.0*`, `foo>=1.0`, `foo:i386`); `*` with state=latest upgrades everything.")
                .aliases(&["package", "pkg"]),
            Param::new("state", Kind::Str, "present, latest, absent, fixed (apt-get -f install) or build-dep.")
                .choices(&["absent", "build-dep", "latest", "present", "fixed"])
                .default("present"),
            Param::new("update_cache", Kind::Bool, "Run apt-get update first (when older than cache_valid_time).").aliases(&["update-cache"]),
            Param::new("update_cache_retries", Kind::Int, "Attempts at updating the cache.").default("5"),
            Param::new("update_cache_retry_max_delay", Kind::Int, "Longest delay between attempts (exponential backoff), seconds.").default("12"),
            Param::new("cache_valid_time", Kind::Int, "Update the cache only if older than this many seconds; setting it implies update_cache.").default("0"),
            Param::new("purge", Kind::Bool, "Purge configuration files with state=absent.").default("no"),
            Param::new("default_release", Kind::Str, "apt-get -t: the release to install from.").aliases(&["default-release"]),
            Param::new("install_recommends", Kind::Bool, "yes: install recommended packages; no: --no-install-recommends; unset: the system's default.")
                .aliases(&["install-recommends"]),
            Param::new("force", Kind::Bool, "Allow unauthenticated packages, downgrades, removal of essential and held packages (dangerous).").default("no"),
            Param::new("clean", Kind::Bool, "Run apt-get clean first.").default("no"),
            Param::new("allow_unauthenticated", Kind::Bool, "--allow-unauthenticated.").aliases(&["allow-unauthenticated"]).default("no"),
            Param::new("allow_downgrade", Kind::Bool, "--allow-downgrades: a pinned version may replace a newer one.")
                .aliases(&["allow-downgrade", "allow_downgrades", "allow-downgrades"])
                .default("no"),
            Param::new("allow_change_held_packages", Kind::Bool, "--allow-change-held-packages.").default("no"),
            // Raw: YAML's `upgrade: yes` is a boolean; mapped back to the choice in `upgrade_mode`.
            Param::new("upgrade", Kind::Raw, "no (default), yes/safe: apt-get upgrade --with-new-pkgs; full/dist: apt-get dist-upgrade."),
            Param::new("dpkg_options", Kind::Str, "Comma-separated dpkg options, each passed as -o Dpkg::Options::=--OPT.").default("force-confdef,force-confold"),
            Param::new("deb", Kind::Path, "A .deb file on the target, or a URL (downloaded on the target with curl or wget)."),
            Param::new("autoremove", Kind::Bool, "Remove unused dependency packages.").default("no"),
            Param::new("autoclean", Kind::Bool, "Remove package files that can no longer be downloaded.").default("no"),
            Param::new("policy_rc_d", Kind::Int, "Exit code of a temporary /usr/sbin/policy-rc.d while packages are installed (101: do not start services)."),
            Param::new("only_upgrade", Kind::Bool, "Only upgrade packages that are already installed.").default("no"),
            Param::new("fail_on_autoremove", Kind::Bool, "--no-remove: fail rather than remove packages.").default("no"),
            Param::new("force_apt_get", Kind::Bool, "Accepted for compatibility (apt-get is always used).").default("no"),
            Param::new("lock_timeout", Kind::Int, "Seconds to wait for the dpkg lock (DPkg::Lock::Timeout).").default("60"),
        ],
    )
};

pub struct Apt;

/// apt's side of `PkgMgr`: options shared by every apt-get command line.
#[derive(Debug, Clone, Default)]
pub struct AptMgr {
    pub dpkg_options: Vec<String>,
    pub lock_timeout: i64,
    pub install_recommends: Option<bool>,
    pub default_release: Option<String>,
    pub force: bool,
    pub allow_unauthenticated: bool,
    pub allow_downgrade: bool,
    pub allow_change_held: bool,
    pub only_upgrade: bool,
    pub autoremove: bool,
    pub fail_on_autoremove: bool,
    pub purge: bool,
    pub policy_rc_d: Option<i64>,
    /// Update the cache in the query script when older than this (None: no update).
    pub update: Option<i64>,
    pub update_retries: i64,
    pub update_max_delay: i64,
    /// Check mode: never update the cache, only say it would.
    pub check_mode: bool,
}

const ENV: &str = "DEBIAN_FRONTEND=noninteractive DEBIAN_PRIORITY=critical LANG=C LC_ALL=C";
const STAMP: &str = "/var/lib/apt/periodic/update-success-stamp";
const LISTS: &str = "/var/lib/apt/lists";

impl AptMgr {
    pub fn from_args(args: &Args, check_mode: bool) -> AptMgr {
        let valid = args.int("cache_valid_time").unwrap_or(0);
        let update = (args.bool("update_cache") || valid > 0).then_some(valid.max(0));
        AptMgr {
            dpkg_options: args
                .str("dpkg_options")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            lock_timeout: args.int("lock_timeout").unwrap_or(60),
            install_recommends: args.get("install_recommends").and_then(super::to_bool),
            default_release: args.str("default_release").map(str::to_string),
            force: args.bool("force"),
            allow_unauthenticated: args.bool("allow_unauthenticated"),
            allow_downgrade: args.bool("allow_downgrade"),
            allow_change_held: args.bool("allow_change_held_packages"),
            only_upgrade: args.bool("only_upgrade"),
            autoremove: args.bool("autoremove"),
            fail_on_autoremove: args.bool("fail_on_autoremove"),
            purge: args.bool("purge"),
            policy_rc_d: args.int("policy_rc_d"),
            update,
            update_retries: args.int("update_cache_retries").unwrap_or(5).max(1),
            update_max_delay: args
                .int("update_cache_retry_max_delay")
                .unwrap_or(12)
                .max(1),
            check_mode,
        }
    }

    /// `apt-get` with the environment, dpkg options and lock timeout.
    pub fn apt_get(&self, simulate: bool) -> String {
        let mut s = format!("{ENV} apt-get -y");
        for o in &self.dpkg_options {
            s.push_str(&format!(" -o {}", quote(&format!("Dpkg::Options::=--{o}"))));
        }
        s.push_str(&format!(" -o DPkg::Lock::Timeout={}", self.lock_timeout));
        if simulate {
            s.push_str(" -s");
        }
        s
    }

    fn common_flags(&self) -> String {
        let mut f = String::new();
        if self.force {
            f.push_str(" --allow-unauthenticated --allow-downgrades --allow-remove-essential --allow-change-held-packages");
        } else {
            if self.allow_unauthenticated {
                f.push_str(" --allow-unauthenticated");
            }
            if self.allow_downgrade {
                f.push_str(" --allow-downgrades");
            }
            if self.allow_change_held {
                f.push_str(" --allow-change-held-packages");
            }
        }
        if self.fail_on_autoremove {
            f.push_str(" --no-remove");
        }
        f
    }

    fn install_flags(&self) -> String {
        let mut f = String::new();
        match self.install_recommends {
            Some(false) => f.push_str(" --no-install-recommends"),
            Some(true) => f.push_str(" -o APT::Install-Recommends=yes"),
            None => {}
        }
        if let Some(r) = &self.default_release {
            f.push_str(&format!(" -t {}", quote(r)));
        }
        f.push_str(&self.common_flags());
        if self.only_upgrade {
            f.push_str(" --only-upgrade");
        }
        if self.autoremove {
            f.push_str(" --auto-remove");
        }
        f
    }

    /// A whole `apt-get ... <verb> <pkgs>` command line.
    pub fn verb(&self, verb: &str, flags: &str, pkgs: &[String], simulate: bool) -> String {
        let mut s = format!("{}{flags} {verb}", self.apt_get(simulate));
        for p in pkgs {
            s.push(' ');
            s.push_str(&quote(p));
        }
        s
    }

    /// Script lines: cache mtime, then `apt-get update` when asked and stale.
    pub fn cache_script(&self) -> String {
        let mut s = format!(
            "export LANG=C LC_ALL=C\nferry_cache_mtime() {{ if [ -e {STAMP} ]; then stat -c %Y {STAMP}; elif [ -e {LISTS} ]; then stat -c %Y {LISTS}; else echo 0; fi; }}\n\
m=$(ferry_cache_mtime); now=$(date +%s)\necho \"CACHE|before|$m|$now\"\n"
        );
        if let Some(valid) = self.update {
            s.push_str(&format!("if [ $((m + {valid})) -lt \"$now\" ]; then\n"));
            if self.check_mode {
                s.push_str("  echo 'CACHE|would'\n");
            } else {
                s.push_str(&update_snippet(
                    self.lock_timeout,
                    self.update_retries,
                    self.update_max_delay,
                    "exit 90",
                ));
                // apt leaves the lists directory's mtime alone when nothing
                // changed upstream: record the update where Ansible looks first.
                s.push_str(&format!("  mkdir -p /var/lib/apt/periodic && touch {STAMP}\n  echo \"CACHE|after|$(ferry_cache_mtime)\"\n"));
            }
            s.push_str("fi\n");
        }
        s
    }

    /// Wraps the change commands with a temporary policy-rc.d when asked.
    fn policy_rc_d_prefix(&self) -> Option<String> {
        let code = self.policy_rc_d?;
        Some(format!(
            "prc=/usr/sbin/policy-rc.d; prc_bk=''; if [ -e \"$prc\" ]; then prc_bk=$(mktemp); mv -f \"$prc\" \"$prc_bk\"; fi; printf '#!/bin/sh\\nexit %s\\n' {code} > \"$prc\"; chmod 0755 \"$prc\"; trap 'rm -f \"$prc\"; if [ -n \"$prc_bk\" ]; then mv -f \"$prc_bk\" \"$prc\"; fi' EXIT"
        ))
    }

    /// Change commands (policy-rc.d wrapping included).
    pub fn wrap(&self, cmds: Vec<String>, simulate: bool) -> Vec<String> {
        match (simulate, self.policy_rc_d_prefix()) {
            (false, Some(p)) => std::iter::once(p).chain(cmds).collect(),
            _ => cmds,
        }
    }
}

/// `apt-get update` with retries and exponential backoff (Ansible's
/// update_cache_retries / update_cache_retry_max_delay); runs `on_fail` after the last.
pub fn update_snippet(lock_timeout: i64, retries: i64, max_delay: i64, on_fail: &str) -> String {
    format!(
        "  i=0; d=1\n  until out=$({ENV} apt-get update -q -o DPkg::Lock::Timeout={lock_timeout} -o APT::Update::Error-Mode=any 2>&1); do\n    i=$((i + 1))\n    if [ \"$i\" -ge {retries} ]; then printf 'Failed to update apt cache: %s\\n' \"$out\" >&2; {on_fail}; fi\n    sleep \"$d\"; d=$((d * 2)); [ \"$d\" -gt {max_delay} ] && d={max_delay}\n  done\n"
    )
}

/// Parses `CACHE|...` lines into (before, after, would_update).
fn parse_cache(out: &str, meta: &mut BTreeMap<String, String>) {
    for l in out.lines() {
        let f: Vec<&str> = l.split('|').collect();
        match f.as_slice() {
            ["CACHE", "before", m, now] => {
                meta.insert("cache_before".into(), m.to_string());
                meta.insert("now".into(), now.to_string());
            }
            ["CACHE", "after", m] => {
                meta.insert("cache_after".into(), m.to_string());
            }
            ["CACHE", "would"] => {
                meta.insert("would_update".into(), "1".into());
            }
            _ => {}
        }
    }
}

/// `N upgraded, N newly installed, [N downgraded, ]N to remove`: whether any is non-zero
/// (None when no summary line was printed).
pub fn summary_changed(out: &str) -> Option<bool> {
    let re = regex::Regex::new(
        r"(\d+) upgraded, (\d+) newly installed, (?:(\d+) downgraded, )?(\d+) to remove",
    )
    .expect("regex");
    let mut seen = None;
    for c in re.captures_iter(out) {
        let any = [1, 2, 3, 4]
            .iter()
            .any(|i| c.get(*i).map(|m| m.as_str() != "0").unwrap_or(false));
        seen = Some(seen.unwrap_or(false) || any);
    }
    seen
}

impl PkgMgr for AptMgr {
    fn parse_spec(&self, spec: &str) -> Want {
        let spec = spec.trim();
        if let Some((n, v)) = spec.split_once(">=") {
            return Want {
                spec: spec.into(),
                key: n.trim().into(),
                pin: Some(Pin::AtLeast(v.trim().into())),
                install_arg: n.trim().into(),
            };
        }
        if let Some((n, v)) = spec.split_once('=') {
            return Want {
                spec: spec.into(),
                key: n.into(),
                pin: Some(Pin::Exact(v.into())),
                install_arg: spec.into(),
            };
        }
        Want {
            spec: spec.into(),
            key: spec.into(),
            pin: None,
            install_arg: spec.into(),
        }
    }

    fn query_script(&self, wants: &[Want], latest: bool) -> String {
        let mut s = self.cache_script();
        if !wants.is_empty() {
            let names: Vec<String> = wants.iter().map(|w| quote(&w.key)).collect();
            s.push_str(&format!(
                "dpkg-query -W -f='PKG|${{Package}}|${{Architecture}}|${{Version}}|${{db:Status-Status}}\\n' -- {} 2>/dev/null\n",
                names.join(" ")
            ));
            if latest {
                let rel = self
                    .default_release
                    .as_ref()
                    .map(|r| format!(" -o {}", quote(&format!("APT::Default-Release={r}"))))
                    .unwrap_or_default();
                s.push_str(&format!(
                    "apt-cache{rel} policy -- {} 2>/dev/null | sed 's/^/POL|/'\n",
                    names.join(" ")
                ));
            }
        }
        s.push_str("exit 0\n");
        s
    }

    fn parse_query(&self, out: &ExecOut) -> Result<State, ModError> {
        let text = out.stdout_str();
        if out.rc != 0 {
            let err = out.stderr_str();
            return Err(ModError::fail(if err.trim().is_empty() {
                format!("reading the package state failed (rc={})", out.rc)
            } else {
                err.trim().to_string()
            }));
        }
        let mut st = State::default();
        parse_cache(&text, &mut st.meta);
        for l in text.lines() {
            let Some(rest) = l.strip_prefix("PKG|") else {
                continue;
            };
            let f: Vec<&str> = rest.split('|').collect();
            if f.len() < 4 {
                continue;
            }
            let (name, arch, version, status) = (f[0], f[1], f[2], f[3]);
            let installed =
                !matches!(status, "not-installed" | "config-files") && !version.is_empty();
            let pkg = pkgmgr::Pkg {
                version: installed.then(|| version.to_string()),
                arch: arch.to_string(),
                config_files: status == "config-files",
                upgradable: false,
            };
            for key in [name.to_string(), format!("{name}:{arch}")] {
                let e = st.pkgs.entry(key).or_default();
                if e.version.is_none() {
                    *e = pkg.clone();
                }
            }
        }
        // apt-cache policy: "name:\n  Installed: v\n  Candidate: v".
        let mut cur: Option<String> = None;
        let mut inst: Option<String> = None;
        for l in text.lines() {
            let Some(p) = l.strip_prefix("POL|") else {
                continue;
            };
            if !p.starts_with(' ') && p.ends_with(':') {
                cur = Some(p.trim_end_matches(':').to_string());
                inst = None;
            } else if let Some(v) = p.trim().strip_prefix("Installed: ") {
                inst = (v != "(none)").then(|| v.to_string());
            } else if let (Some(v), Some(name)) = (p.trim().strip_prefix("Candidate: "), &cur) {
                if let Some(i) = &inst {
                    if v != "(none)" && pkgmgr::version_cmp(v, i) == std::cmp::Ordering::Greater {
                        for (k, pkg) in st.pkgs.iter_mut() {
                            if k == name || k.split(':').next() == Some(name.as_str()) {
                                pkg.upgradable = true;
                            }
                        }
                    }
                }
            }
        }
        Ok(st)
    }

    fn install_cmd(&self, args: &[String], simulate: bool) -> String {
        self.verb("install", &self.install_flags(), args, simulate)
    }

    fn remove_cmd(&self, args: &[String], simulate: bool) -> String {
        let mut flags = String::new();
        if self.purge {
            flags.push_str(" --purge");
        }
        if self.force {
            flags.push_str(" --allow-remove-essential --allow-change-held-packages");
        } else if self.allow_change_held {
            flags.push_str(" --allow-change-held-packages");
        }
        if self.autoremove {
            flags.push_str(" --auto-remove");
        }
        self.verb("remove", &flags, args, simulate)
    }

    fn can_simulate(&self) -> bool {
        true
    }

    fn commands(&self, plan: &Plan, simulate: bool) -> Vec<String> {
        let mut cmds = Vec::new();
        if !plan.remove.is_empty() {
            cmds.push(self.remove_cmd(&plan.remove, simulate));
        }
        // New and upgraded packages in one apt-get run.
        let all: Vec<String> = plan
            .install
            .iter()
            .chain(plan.upgrade.iter())
            .cloned()
            .collect();
        if !all.is_empty() {
            cmds.push(self.install_cmd(&all, simulate));
        }
        self.wrap(cmds, simulate)
    }

    fn changed_by(&self, stdout: &str) -> Option<bool> {
        summary_changed(stdout)
    }
}

/// (cache time before, after, whether an update changed it).
fn cache_times(st: &State) -> (i64, i64, bool) {
    let before: i64 = st
        .meta
        .get("cache_before")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let after: Option<i64> = st.meta.get("cache_after").and_then(|s| s.parse().ok());
    (
        before,
        after.unwrap_or(before),
        after.map(|a| a != before).unwrap_or(false),
    )
}

fn cache_fields(o: Outcome, st: &State) -> Outcome {
    let (_, time, updated) = cache_times(st);
    o.with("cache_updated", updated)
        .with("cache_update_time", time)
}

fn with_output(mut o: Outcome, stdout: &str, stderr: &str) -> Outcome {
    o = o.with("stdout", stdout).with("stderr", stderr);
    o.with("stdout_lines", pkgmgr::lines(stdout))
        .with("stderr_lines", pkgmgr::lines(stderr))
}

/// Runs change commands (or their simulation); fails with apt's output.
async fn run_cmds(ctx: &Ctx<'_>, cmds: &[String]) -> Result<ExecOut, ModError> {
    let out = ctx.sh(&pkgmgr::script_of(cmds)).await?;
    if out.rc != 0 {
        let (so, se) = (out.stdout_str(), out.stderr_str());
        let mut data = serde_json::Map::new();
        data.insert("rc".into(), out.rc.into());
        data.insert("stdout".into(), so.clone().into());
        data.insert("stderr".into(), se.clone().into());
        data.insert("stdout_lines".into(), pkgmgr::lines(&so));
        data.insert("stderr_lines".into(), pkgmgr::lines(&se));
        let why = if se.trim().is_empty() {
            so.trim().to_string()
        } else {
            se.trim().to_string()
        };
        return Err(ModError::Failed {
            msg: format!("'{}' failed: {why}", cmds.join("; ")),
            data,
        });
    }
    Ok(out)
}

#[async_trait]
impl Module for Apt {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let mgr = AptMgr::from_args(args, ctx.check_mode);
        let state = args.str("state").unwrap_or("present");
        let names = args.list("name");
        let all = names.iter().any(|n| n.trim() == "*");
        let packages: Vec<String> = names
            .iter()
            .map(|n| n.trim().to_string())
            .filter(|n| n != "*" && !n.is_empty())
            .collect();
        for p in &packages {
            if p.matches('=').count() > 1 || p.starts_with('-') {
                return Err(ModError::fail(format!("invalid package spec: {p}")));
            }
            if has_glob(p.split(['=', '>']).next().unwrap_or(p)) && state != "absent" {
                return Err(ModError::fail(format!(
                    "name wildcards ({p}) are only supported with state=absent"
                )));
            }
        }
        let upgrade = upgrade_mode(args.get("upgrade"))?;
        let upgrade = if all && state == "latest" {
            if !packages.is_empty() {
                return Err(ModError::fail(
                    "unable to install additional packages when upgrading all installed packages",
                ));
            }
            Some("yes".to_string())
        } else {
            upgrade
        };
        let deb = args.str("deb").map(str::to_string);
        if deb.is_some() && state != "present" {
            return Err(ModError::fail("deb only supports state=present"));
        }

        // `clean` runs first, as its own step.
        let mut pre = Vec::new();
        if args.bool("clean") && !ctx.check_mode {
            pre.push(format!("{ENV} apt-get clean"));
        }

        // One script: cache (update) + package state.
        let desired = match state {
            "absent" => Desired::Absent,
            "latest" => Desired::Latest,
            _ => Desired::Present,
        };
        let wants: Vec<Want> = packages.iter().map(|p| mgr.parse_spec(p)).collect();
        let query_wants: &[Want] = if matches!(state, "present" | "latest" | "absent") {
            &wants
        } else {
            &[]
        };
        let mut script = String::new();
        for p in &pre {
            script.push_str(p);
            script.push_str(" >/dev/null || exit $?\n");
        }
        script.push_str(&mgr.query_script(query_wants, desired == Desired::Latest));
        let out = ctx.sh(&script).await?;
        let st = mgr.parse_query(&out)?;
        let cache_pending = st.meta.contains_key("would_update");
        let cache_changed = cache_times(&st).2;
        let base = |changed: bool| cache_fields(Outcome::changed(changed), &st);

        if let Some(mode) = upgrade {
            let mut flags = mgr.common_flags();
            if mgr.autoremove {
                flags.push_str(" --auto-remove");
            }
            if let Some(r) = &mgr.default_release {
                flags.push_str(&format!(" -t {}", quote(r)));
            }
            let cmd = match mode.as_str() {
                "dist" | "full" => mgr.verb("dist-upgrade", &flags, &[], ctx.check_mode),
                _ => mgr.verb("upgrade --with-new-pkgs", &flags, &[], ctx.check_mode),
            };
            let out = run_cmds(ctx, &mgr.wrap(vec![cmd], ctx.check_mode)).await?;
            let (so, se) = (out.stdout_str(), out.stderr_str());
            let changed = summary_changed(&so).unwrap_or(true);
            return Ok(with_output(base(changed), &so, &se).msg(so.clone()));
        }

        if let Some(deb) = deb {
            return install_deb(&mgr, ctx, &deb)
                .await
                .map(|o| cache_fields(o, &st));
        }

        if packages.is_empty() {
            // Cache maintenance only: autoclean / autoremove, or just the update.
            let mut cmds = Vec::new();
            if args.bool("autoclean") {
                cmds.push(mgr.verb("autoclean", "", &[], ctx.check_mode));
            }
            if args.bool("autoremove") {
                let flags = if mgr.purge { " --purge" } else { "" };
                cmds.push(mgr.verb("autoremove", flags, &[], ctx.check_mode));
            }
            if state == "fixed" {
                cmds.push(mgr.verb(
                    "install",
                    &format!(" --fix-broken{}", mgr.install_flags()),
                    &[],
                    ctx.check_mode,
                ));
            }
            if cmds.is_empty() {
                // Ansible reports `clean` alone as a change.
                let changed =
                    cache_changed || (ctx.check_mode && cache_pending) || args.bool("clean");
                return Ok(base(changed));
            }
            let out = run_cmds(ctx, &cmds).await?;
            let (so, se) = (out.stdout_str(), out.stderr_str());
            let changed = cache_changed
                || summary_changed(&so).unwrap_or(false)
                || so.lines().any(|l| l.starts_with("Del "));
            return Ok(with_output(base(changed), &so, &se));
        }

        if state == "build-dep" || state == "fixed" {
            let (verb, extra) = if state == "build-dep" {
                ("build-dep", String::new())
            } else {
                ("install", " --fix-broken".to_string())
            };
            let cmd = mgr.verb(
                verb,
                &format!("{extra}{}", mgr.install_flags()),
                &packages,
                ctx.check_mode,
            );
            let out = run_cmds(ctx, &mgr.wrap(vec![cmd], ctx.check_mode)).await?;
            let (so, se) = (out.stdout_str(), out.stderr_str());
            let changed = summary_changed(&so).unwrap_or(true);
            return Ok(with_output(base(changed), &so, &se));
        }

        // Packages given: like Ansible, `changed` reports package changes only
        // (a cache update alone does not count).
        let opts = PlanOpts {
            purge: mgr.purge,
            only_upgrade: mgr.only_upgrade,
        };
        let plan = mgr.plan(&wants, desired, &st, opts);
        if plan.is_empty() {
            return Ok(base(false));
        }
        let names = plan
            .install
            .iter()
            .chain(&plan.upgrade)
            .chain(&plan.remove)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if ctx.check_mode && cache_pending {
            // The cache would be updated first: a simulation against the stale
            // cache says little, so trust the plan.
            return Ok(base(true).msg(format!("would run apt-get for: {names}")));
        }
        let out = run_cmds(ctx, &mgr.commands(&plan, ctx.check_mode)).await?;
        let (so, se) = (out.stdout_str(), out.stderr_str());
        let changed = mgr.changed_by(&so).unwrap_or(true);
        Ok(with_output(base(changed), &so, &se))
    }
}

/// `upgrade:` as one of Ansible's choices (None for `no`); YAML booleans map to yes/no.
fn upgrade_mode(v: Option<&Value>) -> Result<Option<String>, ModError> {
    let s = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_string(),
        Some(Value::String(s)) => match super::to_bool(&Value::String(s.clone())) {
            Some(b) if !matches!(s.as_str(), "dist" | "full" | "safe") => {
                if b { "yes" } else { "no" }.to_string()
            }
            _ => s.clone(),
        },
        Some(other) => other.to_string(),
    };
    match s.as_str() {
        "no" => Ok(None),
        "yes" | "safe" | "full" | "dist" => Ok(Some(s)),
        _ => Err(ModError::fail(format!(
            "value of upgrade must be one of: dist, full, no, safe, yes, got: {s}"
        ))),
    }
}

/// `deb:`: one script downloads (URL), reads the control fields, compares with
/// dpkg's state and installs with `apt-get install /path.deb` (which pulls
/// dependencies) unless that version is already installed.
async fn install_deb(mgr: &AptMgr, ctx: &Ctx<'_>, deb: &str) -> ModResult {
    let mut s =
        String::from("export LANG=C LC_ALL=C\ntmpd=$(mktemp -d)\ntrap 'rm -rf \"$tmpd\"' EXIT\n");
    if deb.contains("://") {
        let base = deb
            .rsplit('/')
            .next()
            .filter(|b| b.ends_with(".deb"))
            .unwrap_or("package.deb");
        s.push_str(&format!("f=\"$tmpd\"/{}\n", quote(base)));
        s.push_str(&pkgmgr::download_snippet(deb, "f", true));
        s.push('\n');
    } else {
        let p = if deb.contains('/') {
            deb.to_string()
        } else {
            format!("./{deb}")
        };
        s.push_str(&format!("f={}\n[ -f \"$f\" ] || {{ echo \"Unable to install package: $f does not exist\" >&2; exit 83; }}\n", quote(&p)));
    }
    s.push_str(
        "pkg=$(dpkg-deb -f \"$f\" Package) && ver=$(dpkg-deb -f \"$f\" Version) && arch=$(dpkg-deb -f \"$f\" Architecture) || exit 84\n\
cur=$(dpkg-query -W -f='${db:Status-Status}|${Version}' -- \"$pkg\" 2>/dev/null | head -n 1)\n\
echo \"DEB|$pkg|$ver|$arch|$cur\"\n\
if [ \"$cur\" = \"installed|$ver\" ]; then exit 0; fi\n\
echo 'DEB|install'\n",
    );
    let cmd = format!(
        "{}{} install \"$f\"",
        mgr.apt_get(ctx.check_mode),
        mgr.install_flags()
    );
    for c in mgr.wrap(vec![cmd], ctx.check_mode) {
        s.push_str(&c);
        s.push_str(" || exit $?\n");
    }
    let out = ctx.sh(&s).await?;
    let (so, se) = (out.stdout_str(), out.stderr_str());
    if out.rc != 0 {
        let mut data = serde_json::Map::new();
        data.insert("rc".into(), out.rc.into());
        data.insert("stdout".into(), so.clone().into());
        data.insert("stderr".into(), se.clone().into());
        return Err(ModError::Failed {
            msg: format!(
                "installing {deb} failed: {}",
                if se.trim().is_empty() {
                    so.trim()
                } else {
                    se.trim()
                }
            ),
            data,
        });
    }
    let changed = so.lines().any(|l| l == "DEB|install") && summary_changed(&so).unwrap_or(true);
    let clean: String = so
        .lines()
        .filter(|l| !l.starts_with("DEB|"))
        .map(|l| format!("{l}\n"))
        .collect();
    Ok(with_output(Outcome::changed(changed), &clean, &se))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use crate::modules::testutil::{ctx_on, facts_scope};
    use crate::template::Templar;
    use serde_json::json;

    fn args(v: serde_json::Value) -> Args {
        SPEC.validate(v.as_object().unwrap().clone()).unwrap()
    }

    #[test]
    fn command_lines() {
        let m = AptMgr::from_args(
            &args(
                json!({"name": "x", "install_recommends": false, "default_release": "bookworm-backports"}),
            ),
            false,
        );
        let c = m.install_cmd(&["jq=1.6*".into(), "hello".into()], false);
        assert_eq!(
            c,
            "DEBIAN_FRONTEND=noninteractive DEBIAN_PRIORITY=critical LANG=C LC_ALL=C apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold -o DPkg::Lock::Timeout=60 --no-install-recommends -t bookworm-backports install 'jq=1.6*' hello"
        );
        let m = AptMgr::from_args(
            &args(json!({"name": "x", "purge": true, "dpkg_options": "force-confnew"})),
            false,
        );
        assert_eq!(
            m.remove_cmd(&["hello".into()], true),
            "DEBIAN_FRONTEND=noninteractive DEBIAN_PRIORITY=critical LANG=C LC_ALL=C apt-get -y -o Dpkg::Options::=--force-confnew -o DPkg::Lock::Timeout=60 -s --purge remove hello"
        );
    }

    #[test]
    fn specs() {
        let m = AptMgr::default();
        assert_eq!(m.parse_spec("jq=1.6*").pin, Some(Pin::Exact("1.6*".into())));
        let w = m.parse_spec("nginx>=1.18");
        assert_eq!((w.key.as_str(), w.install_arg.as_str()), ("nginx", "nginx"));
        assert_eq!(w.pin, Some(Pin::AtLeast("1.18".into())));
        assert_eq!(m.parse_spec("libc6:i386").key, "libc6:i386");
    }

    #[test]
    fn upgrade_modes() {
        assert_eq!(
            upgrade_mode(Some(&json!(true))).unwrap().as_deref(),
            Some("yes")
        );
        assert_eq!(upgrade_mode(Some(&json!("no"))).unwrap(), None);
        assert_eq!(
            upgrade_mode(Some(&json!("dist"))).unwrap().as_deref(),
            Some("dist")
        );
        assert!(upgrade_mode(Some(&json!("sometimes"))).is_err());
    }

    #[test]
    fn summaries() {
        assert_eq!(
            summary_changed("x\n0 upgraded, 0 newly installed, 0 to remove and 3 not upgraded.\n"),
            Some(false)
        );
        assert_eq!(
            summary_changed("0 upgraded, 2 newly installed, 0 to remove and 0 not upgraded."),
            Some(true)
        );
        assert_eq!(
            summary_changed(
                "0 upgraded, 0 newly installed, 1 downgraded, 0 to remove and 0 not upgraded."
            ),
            Some(true)
        );
        assert_eq!(summary_changed("nothing"), None);
    }

    const QUERY: &str = "CACHE|before|1700000000|1700000100\nPKG|hello|amd64|2.10-3|installed\nPKG|tree||2.1.0-1|config-files\nPKG|jq|amd64|1.6-2.1+deb12u2|installed\nPOL|jq:\nPOL|  Installed: 1.6-2.1+deb12u2\nPOL|  Candidate: 1.6-2.1+deb12u3\nPOL|hello:\nPOL|  Installed: 2.10-3\nPOL|  Candidate: 2.10-3\n";

    #[test]
    fn query_parse_and_plan() {
        let m = AptMgr::default();
        let st = m
            .parse_query(&ExecOut {
                rc: 0,
                stdout: QUERY.into(),
                stderr: vec![],
            })
            .unwrap();
        assert!(st.installed("hello") && st.installed("hello:amd64") && !st.installed("tree"));
        assert!(st.pkgs["tree"].config_files);
        assert!(st.pkgs["jq"].upgradable && !st.pkgs["hello"].upgradable);
        let w: Vec<Want> = ["hello", "jq", "tree"]
            .iter()
            .map(|s| m.parse_spec(s))
            .collect();
        let p = m.plan(&w, Desired::Latest, &st, PlanOpts::default());
        assert_eq!(
            (p.install, p.upgrade),
            (vec!["tree".to_string()], vec!["jq".to_string()])
        );
        let p = m.plan(&w, Desired::Absent, &st, PlanOpts::default());
        assert_eq!(p.remove, vec!["hello", "jq"]);
        let p = m.plan(
            &w,
            Desired::Absent,
            &st,
            PlanOpts {
                purge: true,
                ..PlanOpts::default()
            },
        );
        assert_eq!(p.remove, vec!["hello", "jq", "tree"]);
        let p = m.plan(
            &[m.parse_spec("h*")],
            Desired::Absent,
            &st,
            PlanOpts::default(),
        );
        assert_eq!(p.remove, vec!["hello"]);
        let p = m.plan(
            &[
                m.parse_spec("jq=1.6-2.1+deb12u2"),
                m.parse_spec("hello=2.9*"),
            ],
            Desired::Present,
            &st,
            PlanOpts::default(),
        );
        assert_eq!(p.install, vec!["hello=2.9*"]);
    }

    #[test]
    fn query_script_reads_state_once() {
        let m = AptMgr::from_args(
            &args(json!({"name": "x", "update_cache": true, "cache_valid_time": 3600})),
            false,
        );
        let s = m.query_script(&[m.parse_spec("hello"), m.parse_spec("jq=1.6*")], false);
        assert_eq!(s.matches("dpkg-query -W").count(), 1);
        assert!(s.contains("-- hello jq 2>/dev/null"), "{s}");
        assert!(s.contains("if [ $((m + 3600)) -lt \"$now\" ]"), "{s}");
        assert!(s.contains("apt-get update -q"), "{s}");
        let c = AptMgr::from_args(&args(json!({"name": "x", "update_cache": true})), true);
        let s = c.query_script(&[], false);
        assert!(
            !s.contains("apt-get update") && s.contains("CACHE|would"),
            "{s}"
        );
    }

    fn run(rec: &Recording, a: serde_json::Value, check: bool) -> ModResult {
        let templar = Templar::new();
        let scope = facts_scope(json!({"os_family": "Debian", "pkg_mgr": "apt"}));
        let ctx = ctx_on(rec, &templar, &scope, check, false);
        let a = args(a);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(Apt.run(&a, &ctx))
    }

    #[test]
    fn policy_rc_d_wraps_real_runs_only() {
        let m = AptMgr::from_args(&args(json!({"name": "x", "policy_rc_d": 101})), false);
        let plan = Plan {
            install: vec!["nginx".into()],
            ..Plan::default()
        };
        let real = m.commands(&plan, false);
        assert_eq!(real.len(), 2);
        assert!(
            real[0].contains("printf '#!/bin/sh\\nexit %s\\n' 101 > \"$prc\"")
                && real[0].contains("trap"),
            "{}",
            real[0]
        );
        assert_eq!(m.commands(&plan, true).len(), 1);
    }

    #[test]
    fn check_mode_with_a_stale_cache_trusts_dpkg() {
        let rec = Recording::new();
        rec.on("dpkg-query -W", 0, "CACHE|before|1|5000\nCACHE|would\n");
        let o = run(&rec, json!({"name": "hello", "update_cache": true}), true).unwrap();
        assert!(o.changed);
        assert_eq!(rec.scripts().len(), 1, "no apt-get run at all");
        assert!(!rec.scripts()[0].contains("apt-get update"));
        // Cache only: would update.
        let rec = Recording::new();
        rec.on("CACHE", 0, "CACHE|before|1|5000\nCACHE|would\n");
        assert!(
            run(&rec, json!({"update_cache": true}), true)
                .unwrap()
                .changed
        );
    }

    #[test]
    fn recorded_install_then_idempotent() {
        let rec = Recording::new();
        rec.on("dpkg-query -W", 0, "CACHE|before|1|2\n");
        rec.on(
            "install hello",
            0,
            "Setting up hello\n0 upgraded, 1 newly installed, 0 to remove and 0 not upgraded.\n",
        );
        let o = run(&rec, json!({"name": "hello"}), false).unwrap();
        assert!(o.changed);
        assert_eq!(rec.scripts().len(), 2);
        let rec = Recording::new();
        rec.on(
            "dpkg-query -W",
            0,
            "CACHE|before|1|2\nPKG|hello|amd64|2.10-3|installed\n",
        );
        let o = run(&rec, json!({"name": "hello"}), false).unwrap();
        assert!(!o.changed);
        assert_eq!(rec.scripts().len(), 1, "no apt-get when installed");
        // Check mode simulates.
        let rec = Recording::new();
        rec.on("dpkg-query -W", 0, "CACHE|before|1|2\n");
        rec.on(
            "-s",
            0,
            "Inst hello\n0 upgraded, 1 newly installed, 0 to remove and 0 not upgraded.\n",
        );
        let o = run(&rec, json!({"name": "hello"}), true).unwrap();
        assert!(o.changed);
        assert!(rec.scripts()[1].contains(" -s ") && rec.scripts()[1].contains("install hello"));
    }
}
