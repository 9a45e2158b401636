//! `dnf` (and the shared Red Hat logic used by `yum`): packages through
//! `rpm -q` and `dnf`/`yum`.
//!
//! No Red Hat host can run on these machines: this path is tested with the
//! recording connection and a RHEL 9 facts fixture only (exact commands,
//! idempotence from recorded "already installed" output, check mode).
//!
//! Round trips: one script reads the installed state with `rpm -q` (plus
//! `dnf check-update` for `state: latest`); one runs `dnf -y ...`. Check mode
//! trusts that plan (dnf has no dry run). Groups (`@name`), local `.rpm`
//! files and URLs are always handed to dnf, which says "Nothing to do" when
//! they are there; in check mode they count as changes.

use async_trait::async_trait;
use serde_json::Value;

use super::pkgmgr::{self, Desired, Pkg, PkgMgr, Plan, PlanOpts, State, Want};
use super::{Args, Ctx, ModError, ModResult, Module, ModuleSpec, Outcome};
use crate::connection::{quote, ExecOut};

/// Parameters shared by `dnf` and `yum` (Ansible's, minus `list`).
#[macro_export]
macro_rules! rpm_pkg_params {
    ($($extra:expr),* $(,)?) => {{
        use $crate::modules::{Kind, Param};
        &[
            Param::new("name", Kind::List, "Package names or specs (`nginx`, `nginx-1.20*`, `@group`, a .rpm path or URL); `*` with state=latest upgrades everything.").aliases(&["pkg"]),
            Param::new("state", Kind::Str, "present/installed, latest, absent/removed (default present; absent with autoremove and no name).")
                .choices(&["absent", "present", "installed", "removed", "latest"]),
            Param::new("enablerepo", Kind::List, "Repositories to enable for this run."),
            Param::new("disablerepo", Kind::List, "Repositories to disable for this run."),
            Param::new("conf_file", Kind::Str, "Alternate configuration file (-c)."),
            Param::new("disable_gpg_check", Kind::Bool, "--nogpgcheck.").default("no"),
            Param::new("installroot", Kind::Str, "--installroot.").default("/"),
            Param::new("releasever", Kind::Str, "--releasever."),
            Param::new("autoremove", Kind::Bool, "Remove leaf packages no longer needed.").default("no"),
            Param::new("exclude", Kind::List, "Packages to exclude (--exclude)."),
            Param::new("skip_broken", Kind::Bool, "--skip-broken.").default("no"),
            Param::new("update_cache", Kind::Bool, "Refresh metadata first (--refresh; makecache without names).").aliases(&["expire-cache"]).default("no"),
            Param::new("update_only", Kind::Bool, "With latest: only upgrade installed packages.").default("no"),
            Param::new("security", Kind::Bool, "With latest: security updates only (--security).").default("no"),
            Param::new("bugfix", Kind::Bool, "With latest: bugfix updates only (--bugfix).").default("no"),
            Param::new("enable_plugin", Kind::List, "--enableplugin."),
            Param::new("disable_plugin", Kind::List, "--disableplugin."),
            Param::new("disable_excludes", Kind::Str, "--disableexcludes (all, main or a repo id)."),
            Param::new("validate_certs", Kind::Bool, "no: --setopt=sslverify=False.").default("yes"),
            Param::new("sslverify", Kind::Bool, "no: --setopt=sslverify=False.").default("yes"),
            Param::new("allow_downgrade", Kind::Bool, "Accepted for compatibility (dnf decides downgrades).").default("no"),
            Param::new("install_repoquery", Kind::Bool, "Accepted for compatibility.").default("yes"),
            Param::new("download_only", Kind::Bool, "--downloadonly.").default("no"),
            Param::new("download_dir", Kind::Str, "--downloaddir (with download_only)."),
            Param::new("lock_timeout", Kind::Int, "Accepted for compatibility (dnf waits for its lock).").default("30"),
            Param::new("install_weak_deps", Kind::Bool, "no: --setopt=install_weak_deps=False.").default("yes"),
            Param::new("cacheonly", Kind::Bool, "-C: only use the cache.").default("no"),
            Param::new("nobest", Kind::Bool, "--nobest.").default("no"),
            Param::new("allowerasing", Kind::Bool, "--allowerasing.").default("no"),
            $($extra,)*
        ]
    }};
}

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["ansible.builtin.dnf", "ansible.legacy.dnf"],
    example: "- ansible.builtin.dnf:\n    name: [nginx, jq]\n    state: present\n    enablerepo: epel\n",
    ..ModuleSpec::new(
        "dnf",
        "Manage packages with dnf (Red Hat family). Tested with recorded commands only: no Red Hat host runs in ferry's test lab.",
        rpm_pkg_params![],
    )
};

pub struct Dnf;

/// The rpm side of `PkgMgr`: `dnf` or `yum` with their global flags.
#[derive(Debug, Clone)]
pub struct RpmMgr {
    pub bin: String,
    pub flags: String,
}

/// Groups, module streams, files and URLs: handed to dnf as they are.
fn special(spec: &str) -> bool {
    spec.starts_with('@') || spec.contains('/') || spec.ends_with(".rpm")
}

impl RpmMgr {
    pub fn from_args(args: &Args, bin: &str) -> RpmMgr {
        let mut f = String::new();
        let mut push = |s: String| {
            f.push(' ');
            f.push_str(&s);
        };
        if args.bool("update_cache") {
            push("--refresh".into());
        }
        if let Some(c) = args.str("conf_file") {
            push(format!("-c {}", quote(c)));
        }
        if let Some(r) = args.str("installroot").filter(|r| *r != "/") {
            push(quote(&format!("--installroot={r}")));
        }
        if let Some(r) = args.str("releasever") {
            push(quote(&format!("--releasever={r}")));
        }
        let list = |k: &str| args.list(k).join(",");
        // Disable first, then enable: `disablerepo: '*'` + `enablerepo: x` works.
        if args.has("disablerepo") {
            push(quote(&format!("--disablerepo={}", list("disablerepo"))));
        }
        if args.has("enablerepo") {
            push(quote(&format!("--enablerepo={}", list("enablerepo"))));
        }
        if args.has("exclude") {
            push(quote(&format!("--exclude={}", list("exclude"))));
        }
        if let Some(d) = args.str("disable_excludes") {
            push(quote(&format!("--disableexcludes={d}")));
        }
        if args.has("enable_plugin") {
            push(quote(&format!("--enableplugin={}", list("enable_plugin"))));
        }
        if args.has("disable_plugin") {
            push(quote(&format!(
                "--disableplugin={}",
                list("disable_plugin")
            )));
        }
        if args.bool("disable_gpg_check") {
            push("--nogpgcheck".into());
        }
        if args.bool("skip_broken") {
            push("--skip-broken".into());
        }
        if args
            .get("install_weak_deps")
            .map(|v| super::to_bool(v) == Some(false))
            .unwrap_or(false)
        {
            push("--setopt=install_weak_deps=False".into());
        }
        if args.get("validate_certs").and_then(super::to_bool) == Some(false)
            || args.get("sslverify").and_then(super::to_bool) == Some(false)
        {
            push("--setopt=sslverify=False".into());
        }
        if args.bool("cacheonly") {
            push("-C".into());
        }
        if args.bool("nobest") {
            push("--nobest".into());
        }
        if args.bool("allowerasing") {
            push("--allowerasing".into());
        }
        if args.bool("security") {
            push("--security".into());
        }
        if args.bool("bugfix") {
            push("--bugfix".into());
        }
        if args.bool("download_only") {
            push("--downloadonly".into());
            if let Some(d) = args.str("download_dir") {
                push(quote(&format!("--downloaddir={d}")));
            }
        }
        RpmMgr {
            bin: bin.to_string(),
            flags: f,
        }
    }

    /// `LANG=C dnf -y <flags> <verb> <args>`.
    pub fn cmd(&self, verb: &str, args: &[String]) -> String {
        let mut s = format!("LANG=C LC_ALL=C {} -y{} {verb}", self.bin, self.flags);
        for a in args {
            s.push(' ');
            s.push_str(&quote(a));
        }
        s
    }
}

const QF: &str = "'%{NAME}|%{EPOCHNUM}:%{VERSION}-%{RELEASE}|%{ARCH}\\n'";

impl PkgMgr for RpmMgr {
    fn query_script(&self, wants: &[Want], latest: bool) -> String {
        let plain: Vec<String> = wants
            .iter()
            .filter(|w| !special(&w.key))
            .map(|w| quote(&w.key))
            .collect();
        let mut s = String::from("export LANG=C LC_ALL=C\n");
        if !plain.is_empty() {
            s.push_str(&format!(
                "for p in {}; do\n  case \"$p\" in\n    *[*?[]*) rpm -qa --qf {QF} \"$p\" 2>/dev/null | while IFS= read -r l; do printf 'PKG|*|%s\\n' \"$l\"; done ;;\n    *) if o=$(rpm -q --qf {QF} -- \"$p\" 2>/dev/null); then printf '%s\\n' \"$o\" | while IFS= read -r l; do printf 'PKG|%s|%s\\n' \"$p\" \"$l\"; done; fi ;;\n  esac\ndone\n",
                plain.join(" ")
            ));
            if latest {
                s.push_str(&format!(
                    "{} -q{} check-update {} 2>/dev/null | sed 's/^/UPD|/'\n",
                    self.bin,
                    self.flags,
                    plain.join(" ")
                ));
            }
        }
        s.push_str("exit 0\n");
        s
    }

    fn parse_query(&self, out: &ExecOut) -> Result<State, ModError> {
        if out.rc != 0 {
            return Err(ModError::fail(format!(
                "rpm query failed: {}",
                out.stderr_str().trim()
            )));
        }
        let mut st = State::default();
        let text = out.stdout_str();
        for l in text.lines() {
            let Some(rest) = l.strip_prefix("PKG|") else {
                continue;
            };
            let f: Vec<&str> = rest.split('|').collect();
            if f.len() < 4 {
                continue;
            }
            let (key, name, evr, arch) = (f[0], f[1], f[2], f[3]);
            let evr = evr.strip_prefix("0:").unwrap_or(evr);
            let pkg = Pkg {
                version: Some(evr.to_string()),
                arch: arch.to_string(),
                ..Pkg::default()
            };
            if key != "*" {
                st.pkgs
                    .entry(key.to_string())
                    .or_insert_with(|| pkg.clone());
            }
            st.pkgs.entry(name.to_string()).or_insert(pkg);
        }
        for l in text.lines() {
            let Some(rest) = l.strip_prefix("UPD|") else {
                continue;
            };
            let cols: Vec<&str> = rest.split_whitespace().collect();
            if cols.len() != 3 || rest.starts_with(' ') {
                continue;
            }
            let Some((name, arch)) = cols[0].rsplit_once('.') else {
                continue;
            };
            for (k, p) in st.pkgs.iter_mut() {
                if k == name || *k == format!("{name}.{arch}") {
                    p.upgradable = true;
                }
            }
        }
        Ok(st)
    }

    fn plan(&self, wants: &[Want], desired: Desired, state: &State, opts: PlanOpts) -> Plan {
        let (odd, plain): (Vec<Want>, Vec<Want>) =
            wants.iter().cloned().partition(|w| special(&w.key));
        let mut p = pkgmgr::default_plan(self, &plain, desired, state, opts);
        for w in odd {
            match desired {
                Desired::Absent => p.remove.push(w.key),
                Desired::Present => p.install.push(w.key),
                Desired::Latest => p.upgrade.push(w.key),
            }
        }
        p
    }

    fn install_cmd(&self, args: &[String], _simulate: bool) -> String {
        self.cmd("install", args)
    }

    fn upgrade_cmd(&self, args: &[String], _simulate: bool) -> String {
        self.cmd("upgrade", args)
    }

    fn remove_cmd(&self, args: &[String], _simulate: bool) -> String {
        self.cmd("remove", args)
    }

    fn changed_by(&self, stdout: &str) -> Option<bool> {
        if stdout.contains("Complete!") {
            Some(true)
        } else if stdout.contains("Nothing to do") || stdout.contains("No packages marked for") {
            Some(false)
        } else {
            None
        }
    }
}

/// The `dnf`/`yum` module body, shared.
pub async fn run_rpm(args: &Args, ctx: &Ctx<'_>, bin: &str) -> ModResult {
    let mgr = RpmMgr::from_args(args, bin);
    let names: Vec<String> = args
        .list("name")
        .into_iter()
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
        .collect();
    let autoremove = args.bool("autoremove");
    let state = args
        .str("state")
        .unwrap_or(if autoremove && names.is_empty() {
            "absent"
        } else {
            "present"
        });
    let desired = Desired::from_state(state)
        .ok_or_else(|| ModError::fail(format!("unsupported state {state}")))?;
    for n in &names {
        if n.starts_with('-') {
            return Err(ModError::fail(format!("invalid package spec: {n}")));
        }
    }
    let done = |changed: bool, msg: &str, results: Vec<String>| {
        Outcome::changed(changed)
            .with("msg", msg)
            .with("rc", 0)
            .with("results", results)
            .with("failures", Vec::<String>::new())
    };

    if names.is_empty() {
        if autoremove {
            if ctx.check_mode {
                let out = ctx
                    .sh(&format!(
                        "LANG=C {} -q{} repoquery --unneeded 2>/dev/null",
                        mgr.bin, mgr.flags
                    ))
                    .await?;
                let leaves: Vec<String> = out
                    .stdout_str()
                    .lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| format!("Removed: {}", l.trim()))
                    .collect();
                return Ok(done(
                    !leaves.is_empty(),
                    if leaves.is_empty() {
                        "Nothing to do"
                    } else {
                        "Check mode: no changes made, but would have if not in check mode"
                    },
                    leaves,
                ));
            }
            let out = super::util::run_ok(ctx, &mgr.cmd("autoremove", &[])).await?;
            let so = out.stdout_str();
            let changed = mgr.changed_by(&so).unwrap_or(true);
            return Ok(
                done(changed, if changed { "" } else { "Nothing to do" }, vec![])
                    .with("stdout", so),
            );
        }
        if args.bool("update_cache") {
            if !ctx.check_mode {
                super::util::run_ok(
                    ctx,
                    &format!(
                        "LANG=C LC_ALL=C {}{} makecache",
                        mgr.bin,
                        mgr.flags.replace(" --refresh", "")
                    ),
                )
                .await?;
            }
            return Ok(done(false, "Cache updated", vec![]));
        }
        return Err(ModError::fail("missing required arguments: name"));
    }

    if names.iter().any(|n| n == "*") && desired == Desired::Latest {
        // Upgrade everything.
        let check = ctx
            .sh(&format!(
                "LANG=C LC_ALL=C {} -q{} check-update",
                mgr.bin, mgr.flags
            ))
            .await?;
        let pending = check.rc == 100;
        if check.rc != 0 && check.rc != 100 {
            return Err(ModError::fail(format!(
                "{} check-update failed: {}",
                mgr.bin,
                check.stderr_str().trim()
            )));
        }
        let ups: Vec<String> = check
            .stdout_str()
            .lines()
            .filter(|l| !l.starts_with(' ') && l.split_whitespace().count() == 3)
            .map(|l| format!("Installed: {}", l.split_whitespace().next().unwrap_or("")))
            .collect();
        if !pending || ctx.check_mode {
            return Ok(done(
                pending,
                if pending {
                    "Check mode: no changes made, but would have if not in check mode"
                } else {
                    "Nothing to do"
                },
                ups,
            ));
        }
        let out = super::util::run_ok(ctx, &mgr.cmd("upgrade", &[])).await?;
        return Ok(done(
            mgr.changed_by(&out.stdout_str()).unwrap_or(true),
            "",
            ups,
        ));
    }

    let wants: Vec<Want> = names
        .iter()
        .filter(|n| n.as_str() != "*")
        .map(|n| mgr.parse_spec(n))
        .collect();
    let opts = PlanOpts {
        purge: false,
        only_upgrade: args.bool("update_only"),
    };
    let applied = pkgmgr::apply(&mgr, ctx, &wants, desired, opts).await?;
    let mut results: Vec<String> = Vec::new();
    results.extend(
        applied
            .plan
            .install
            .iter()
            .map(|p| format!("Installed: {p}")),
    );
    results.extend(
        applied
            .plan
            .upgrade
            .iter()
            .map(|p| format!("Installed: {p}")),
    );
    results.extend(applied.plan.remove.iter().map(|p| format!("Removed: {p}")));
    let msg = if !applied.changed {
        "Nothing to do"
    } else if ctx.check_mode {
        "Check mode: no changes made, but would have if not in check mode"
    } else {
        ""
    };
    if !applied.changed {
        results.clear();
    }
    let mut o = done(applied.changed, msg, results);
    if applied.ran {
        o = o
            .with("stdout", applied.stdout.clone())
            .with("stderr", applied.stderr.clone());
    }
    Ok(o)
}

#[async_trait]
impl Module for Dnf {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let bin = match ctx.var("ansible_pkg_mgr") {
            Some(Value::String(m)) if m == "dnf5" => "dnf5",
            _ => "dnf",
        };
        run_rpm(args, ctx, bin).await
    }
}

/// Facts of a RHEL 9 host, for recorded-command tests of the Red Hat paths.
#[cfg(test)]
pub fn rhel9_facts() -> serde_json::Value {
    serde_json::json!({
        "os_family": "RedHat", "distribution": "RedHat", "distribution_major_version": "9",
        "distribution_version": "9.4", "pkg_mgr": "dnf", "service_mgr": "systemd", "architecture": "x86_64"
    })
}

/// Runs a module over a recording connection with the RHEL 9 fixture.
#[cfg(test)]
pub fn run_recorded(
    m: &dyn Module,
    rec: &crate::connection::recording::Recording,
    args: serde_json::Value,
    check: bool,
) -> ModResult {
    let templar = crate::template::Templar::new();
    let scope = super::testutil::facts_scope(rhel9_facts());
    let ctx = super::testutil::ctx_on(rec, &templar, &scope, check, false);
    let a = m
        .spec()
        .validate(args.as_object().cloned().unwrap_or_default())
        .map_err(ModError::fail)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(m.run(&a, &ctx))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use serde_json::json;

    #[test]
    fn flags() {
        let a = SPEC
            .validate(json!({"name": "x", "enablerepo": "epel", "disablerepo": "*", "disable_gpg_check": true, "install_weak_deps": false, "update_cache": true}).as_object().unwrap().clone())
            .unwrap();
        let m = RpmMgr::from_args(&a, "dnf");
        assert_eq!(m.cmd("install", &["nginx".into()]), "LANG=C LC_ALL=C dnf -y --refresh '--disablerepo=*' --enablerepo=epel --nogpgcheck --setopt=install_weak_deps=False install nginx");
    }

    #[test]
    fn install_exact_commands_then_idempotent() {
        let rec = Recording::new();
        rec.on("rpm -q", 0, "");
        rec.on(
            "dnf -y install",
            0,
            "Installed:\n  jq-1.6-15.el9.x86_64\n\nComplete!\n",
        );
        let o = run_recorded(
            &Dnf,
            &rec,
            json!({"name": ["jq", "nginx"], "state": "present"}),
            false,
        )
        .unwrap();
        assert!(o.changed);
        let s = rec.scripts();
        assert_eq!(s.len(), 2);
        assert!(
            s[0].contains("for p in jq nginx; do") && s[0].contains("rpm -q --qf"),
            "{}",
            s[0]
        );
        assert_eq!(s[1], "LANG=C LC_ALL=C dnf -y install jq nginx || exit $?\n");
        assert_eq!(
            o.data["results"],
            json!(["Installed: jq", "Installed: nginx"])
        );

        // Second run: rpm says both are there.
        let rec = Recording::new();
        rec.on(
            "rpm -q",
            0,
            "PKG|jq|jq|0:1.6-15.el9|x86_64\nPKG|nginx|nginx|1:1.20.1-14.el9|x86_64\n",
        );
        let o = run_recorded(&Dnf, &rec, json!({"name": ["jq", "nginx"]}), false).unwrap();
        assert!(!o.changed);
        assert_eq!(o.data["msg"], json!("Nothing to do"));
        assert_eq!(rec.scripts().len(), 1, "no dnf run when installed");
    }

    #[test]
    fn check_mode_runs_no_dnf() {
        let rec = Recording::new();
        rec.on("rpm -q", 0, "PKG|jq|jq|0:1.6-15.el9|x86_64\n");
        let o = run_recorded(&Dnf, &rec, json!({"name": ["jq", "nginx"]}), true).unwrap();
        assert!(o.changed);
        assert!(!rec.ran("dnf -y"), "{:?}", rec.scripts());
        let o = run_recorded(
            &Dnf,
            &rec,
            json!({"name": ["nginx"], "state": "absent"}),
            true,
        )
        .unwrap();
        assert!(!o.changed);
    }

    #[test]
    fn latest_and_absent() {
        let rec = Recording::new();
        rec.on("rpm -q", 0, "PKG|jq|jq|0:1.6-15.el9|x86_64\nPKG|curl|curl|0:7.76.1-29.el9|x86_64\nUPD|curl.x86_64    7.76.1-31.el9    baseos\n");
        rec.on("dnf -y upgrade", 0, "Upgraded:\n  curl\nComplete!\n");
        let o = run_recorded(
            &Dnf,
            &rec,
            json!({"name": ["jq", "curl"], "state": "latest"}),
            false,
        )
        .unwrap();
        assert!(o.changed);
        assert!(rec.scripts()[0].contains("dnf -q check-update jq curl"));
        assert_eq!(
            rec.scripts()[1],
            "LANG=C LC_ALL=C dnf -y upgrade curl || exit $?\n"
        );

        let rec = Recording::new();
        rec.on("rpm -q", 0, "PKG|jq|jq|0:1.6-15.el9|x86_64\n");
        rec.on("dnf -y remove", 0, "Removed:\n  jq\nComplete!\n");
        let o = run_recorded(
            &Dnf,
            &rec,
            json!({"name": ["jq", "nginx"], "state": "removed"}),
            false,
        )
        .unwrap();
        assert!(o.changed);
        assert_eq!(
            rec.scripts()[1],
            "LANG=C LC_ALL=C dnf -y remove jq || exit $?\n"
        );
        assert_eq!(o.data["results"], json!(["Removed: jq"]));
    }

    #[test]
    fn groups_go_to_dnf_and_nothing_to_do_is_unchanged() {
        let rec2 = Recording::new();
        rec2.on(
            "dnf -y install",
            0,
            "Package group already installed.\nNothing to do.\n",
        );
        let o = run_recorded(&Dnf, &rec2, json!({"name": "@Development Tools"}), false).unwrap();
        assert!(!o.changed);
        assert_eq!(
            rec2.scripts()[1],
            "LANG=C LC_ALL=C dnf -y install '@Development Tools' || exit $?\n"
        );
    }
}
