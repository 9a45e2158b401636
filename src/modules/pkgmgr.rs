//! Shared logic of the package-manager modules (`apt`, `dnf`, `yum`,
//! `package`): a small trait whose default methods turn "what is installed"
//! into a plan and the plan into commands. A manager only says how to query
//! its database, how to spell its commands and how to read their output.
//!
//! Flow (two round trips at most): one script reads the state of the wanted
//! packages (`query_script`), `plan` decides what to do, one script runs the
//! commands (or a simulation of them in check mode).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{Ctx, ModError};
use crate::connection::{quote, ExecOut};

/// What the task asks for, per package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Desired {
    Present,
    Latest,
    Absent,
}

impl Desired {
    /// Maps Ansible's state names (`installed`, `removed`, ...) to a desired state.
    pub fn from_state(s: &str) -> Option<Desired> {
        match s {
            "present" | "installed" => Some(Desired::Present),
            "latest" => Some(Desired::Latest),
            "absent" | "removed" => Some(Desired::Absent),
            _ => None,
        }
    }
}

/// Version constraint of a package specifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// `name=1.2*`: the installed version must match (glob allowed).
    Exact(String),
    /// `name>=1.2`: the installed version must be at least this.
    AtLeast(String),
}

/// One package as the task names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// What the user wrote (`nginx=1.18*`).
    pub spec: String,
    /// The key the state is looked up by (`nginx`).
    pub key: String,
    pub pin: Option<Pin>,
    /// What the manager is given to install it (`nginx=1.18*`, or `nginx` for `>=`).
    pub install_arg: String,
}

/// The state of one queried package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pkg {
    /// Installed version (None: not installed).
    pub version: Option<String>,
    pub arch: String,
    /// Removed but configuration files are left (dpkg `rc`): `purge` still has work.
    pub config_files: bool,
    /// A newer version is available (queried for `latest` only).
    pub upgradable: bool,
}

/// What a query found: packages by key, plus manager-specific facts
/// (apt: cache times).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    pub pkgs: BTreeMap<String, Pkg>,
    pub meta: BTreeMap<String, String>,
}

impl State {
    #[cfg(test)]
    pub fn installed(&self, key: &str) -> bool {
        self.pkgs
            .get(key)
            .map(|p| p.version.is_some())
            .unwrap_or(false)
    }
}

/// What has to change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub install: Vec<String>,
    /// Installed packages to bring to their newest version.
    pub upgrade: Vec<String>,
    pub remove: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.install.is_empty() && self.upgrade.is_empty() && self.remove.is_empty()
    }
}

/// Options shared by the managers' planning.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOpts {
    /// `apt purge`: packages with only configuration files left are removed too.
    pub purge: bool,
    /// Only upgrade what is installed; never install new packages.
    pub only_upgrade: bool,
}

/// A package manager: how to query, how to spell commands, how to read output.
pub trait PkgMgr: Send + Sync {
    /// Splits a specifier into lookup key and version pin.
    fn parse_spec(&self, spec: &str) -> Want {
        Want {
            spec: spec.to_string(),
            key: spec.to_string(),
            pin: None,
            install_arg: spec.to_string(),
        }
    }

    /// One script printing the state of `wants` (`latest`: also whether they can be upgraded).
    fn query_script(&self, wants: &[Want], latest: bool) -> String;

    /// Reads what `query_script` printed.
    fn parse_query(&self, out: &ExecOut) -> Result<State, ModError>;

    /// Whether an installed version satisfies a pin.
    fn satisfies(&self, installed: &str, pin: &Pin) -> bool {
        match pin {
            Pin::Exact(p) => {
                installed == p
                    || glob::Pattern::new(p)
                        .map(|g| g.matches(installed))
                        .unwrap_or(false)
            }
            Pin::AtLeast(v) => version_cmp(installed, v) != Ordering::Less,
        }
    }

    /// Query → plan (see `default_plan`).
    fn plan(&self, wants: &[Want], desired: Desired, state: &State, opts: PlanOpts) -> Plan {
        default_plan(self, wants, desired, state, opts)
    }

    /// Command installing packages (also used for pinned versions).
    fn install_cmd(&self, args: &[String], simulate: bool) -> String;

    /// Command upgrading installed packages (default: the install command).
    fn upgrade_cmd(&self, args: &[String], simulate: bool) -> String {
        self.install_cmd(args, simulate)
    }

    fn remove_cmd(&self, args: &[String], simulate: bool) -> String;

    /// Whether the manager can simulate (`apt-get -s`); otherwise check mode
    /// trusts the plan computed from the installed state.
    fn can_simulate(&self) -> bool {
        false
    }

    /// Plan → commands, in order: remove, install, upgrade.
    fn commands(&self, plan: &Plan, simulate: bool) -> Vec<String> {
        let mut cmds = Vec::new();
        if !plan.remove.is_empty() {
            cmds.push(self.remove_cmd(&plan.remove, simulate));
        }
        if !plan.install.is_empty() {
            cmds.push(self.install_cmd(&plan.install, simulate));
        }
        if !plan.upgrade.is_empty() {
            cmds.push(self.upgrade_cmd(&plan.upgrade, simulate));
        }
        cmds
    }

    /// Reads a command's output for "nothing was done" (None: trust the plan).
    fn changed_by(&self, _stdout: &str) -> Option<bool> {
        None
    }
}

/// Query → plan: what to install, upgrade and remove. Name wildcards
/// (`lib*`) with `absent` remove every installed package they match.
pub fn default_plan<M: PkgMgr + ?Sized>(
    mgr: &M,
    wants: &[Want],
    desired: Desired,
    state: &State,
    opts: PlanOpts,
) -> Plan {
    let mut plan = Plan::default();
    let mut expanded: Vec<Want> = Vec::new();
    for w in wants {
        match glob::Pattern::new(&w.key) {
            Ok(g) if has_glob(&w.key) && desired == Desired::Absent => {
                for (k, p) in &state.pkgs {
                    if !k.contains(':')
                        && g.matches(k)
                        && (p.version.is_some() || (opts.purge && p.config_files))
                    {
                        expanded.push(Want {
                            spec: k.clone(),
                            key: k.clone(),
                            pin: None,
                            install_arg: k.clone(),
                        });
                    }
                }
            }
            _ => expanded.push(w.clone()),
        }
    }
    for w in &expanded {
        let pkg = state.pkgs.get(&w.key);
        let installed = pkg.and_then(|p| p.version.as_deref());
        match desired {
            Desired::Absent => {
                if installed.is_some()
                    || (opts.purge && pkg.map(|p| p.config_files).unwrap_or(false))
                {
                    push_unique(&mut plan.remove, &w.key);
                }
            }
            Desired::Present | Desired::Latest => match installed {
                None if opts.only_upgrade => {}
                None => push_unique(&mut plan.install, &w.install_arg),
                Some(v) => {
                    if let Some(pin) = &w.pin {
                        if !mgr.satisfies(v, pin) {
                            push_unique(&mut plan.install, &w.install_arg);
                        }
                    } else if desired == Desired::Latest
                        && pkg.map(|p| p.upgradable).unwrap_or(false)
                    {
                        push_unique(&mut plan.upgrade, &w.install_arg);
                    }
                }
            },
        }
    }
    plan
}

/// Whether a package name is a shell-style wildcard.
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

fn push_unique(v: &mut Vec<String>, s: &str) {
    if !v.iter().any(|x| x == s) {
        v.push(s.to_string());
    }
}

/// What `apply` did.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub plan: Plan,
    pub changed: bool,
    /// Whether commands (or a simulation) ran.
    pub ran: bool,
    pub rc: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the commands of a plan as one script, stopping at the first failure.
pub fn script_of(cmds: &[String]) -> String {
    let mut s = String::new();
    for c in cmds {
        s.push_str(c);
        s.push_str(" || exit $?\n");
    }
    s
}

/// The whole flow: query, plan, run (or simulate in check mode).
pub async fn apply(
    mgr: &dyn PkgMgr,
    ctx: &Ctx<'_>,
    wants: &[Want],
    desired: Desired,
    opts: PlanOpts,
) -> Result<Applied, ModError> {
    let out = ctx
        .sh(&mgr.query_script(wants, desired == Desired::Latest))
        .await?;
    let state = mgr.parse_query(&out)?;
    let plan = mgr.plan(wants, desired, &state, opts);
    let mut done = Applied {
        plan,
        ..Applied::default()
    };
    if done.plan.is_empty() {
        return Ok(done);
    }
    if ctx.check_mode && !mgr.can_simulate() {
        done.changed = true;
        return Ok(done);
    }
    let cmds = mgr.commands(&done.plan, ctx.check_mode);
    let out = ctx.sh(&script_of(&cmds)).await?;
    done.ran = true;
    done.rc = out.rc;
    done.stdout = out.stdout_str();
    done.stderr = out.stderr_str();
    if out.rc != 0 {
        let mut data = Map::new();
        data.insert("rc".into(), out.rc.into());
        data.insert("stdout".into(), done.stdout.clone().into());
        data.insert("stderr".into(), done.stderr.clone().into());
        data.insert("stdout_lines".into(), lines(&done.stdout));
        data.insert("stderr_lines".into(), lines(&done.stderr));
        let why = if done.stderr.trim().is_empty() {
            done.stdout.trim().to_string()
        } else {
            done.stderr.trim().to_string()
        };
        return Err(ModError::Failed {
            msg: format!("'{}' failed: {}", cmds.join("; "), why),
            data,
        });
    }
    done.changed = mgr.changed_by(&done.stdout).unwrap_or(true);
    Ok(done)
}

pub fn lines(s: &str) -> Value {
    Value::Array(s.lines().map(|l| Value::String(l.to_string())).collect())
}

/// The package manager of a host: `ansible_pkg_mgr` when facts were gathered,
/// else found on the host (one round trip).
pub async fn detect(ctx: &Ctx<'_>) -> Result<String, ModError> {
    if let Some(Value::String(m)) = ctx.var("ansible_pkg_mgr") {
        if !m.is_empty() && m != "unknown" {
            return Ok(m);
        }
    }
    let out = ctx.sh(DETECT).await?;
    let m = out.stdout_str().trim().to_string();
    if m.is_empty() {
        return Err(ModError::fail(
            "could not detect the package manager of the host (no apt-get, dnf or yum)",
        ));
    }
    Ok(m)
}

/// Same order as Ansible's facts: apt, dnf (dnf5 counts as dnf), yum, then others.
pub const DETECT: &str = "PATH=\"$PATH:/usr/sbin:/sbin\"; for m in apt-get dnf5 dnf yum zypper apk pacman; do if command -v \"$m\" >/dev/null 2>&1; then case $m in apt-get) echo apt;; dnf5) echo dnf5;; *) echo \"$m\";; esac; exit 0; fi; done";

/// Shell snippet downloading `url` to the file in `$var` with curl or wget.
pub fn download_snippet(url: &str, var: &str, validate_certs: bool) -> String {
    let (ck, wk) = if validate_certs {
        ("", "")
    } else {
        (" -k", " --no-check-certificate")
    };
    format!(
        "if command -v curl >/dev/null 2>&1; then curl -fsSL{ck} -o \"${var}\" {u} || {{ echo \"failed to download {e}\" >&2; exit 81; }}; \
elif command -v wget >/dev/null 2>&1; then wget -q{wk} -O \"${var}\" {u} || {{ echo \"failed to download {e}\" >&2; exit 81; }}; \
else echo 'neither curl nor wget is installed on the host' >&2; exit 82; fi",
        u = quote(url),
        e = url.replace(['"', '\\', '$', '`'], "")
    )
}

/// Debian's version ordering (`dpkg --compare-versions`), also fine for
/// RPM-style `version-release` strings in the common cases.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (u64, &str, &str) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) if e.chars().all(|c| c.is_ascii_digit()) => (e.parse().unwrap_or(0), r),
            _ => (0, v),
        };
        match rest.rsplit_once('-') {
            Some((u, r)) => (epoch, u, r),
            None => (epoch, rest, ""),
        }
    }
    fn order(c: Option<char>) -> i32 {
        match c {
            None => 0,
            Some('~') => -1,
            Some(c) if c.is_ascii_alphabetic() => c as i32,
            Some(c) => c as i32 + 256,
        }
    }
    fn part(a: &str, b: &str) -> Ordering {
        let (mut a, mut b) = (a, b);
        while !a.is_empty() || !b.is_empty() {
            // Non-digit prefix.
            let na = a.find(|c: char| c.is_ascii_digit()).unwrap_or(a.len());
            let nb = b.find(|c: char| c.is_ascii_digit()).unwrap_or(b.len());
            let (sa, sb) = (&a[..na], &b[..nb]);
            let (mut ia, mut ib) = (sa.chars(), sb.chars());
            loop {
                let (ca, cb) = (ia.next(), ib.next());
                if ca.is_none() && cb.is_none() {
                    break;
                }
                let (oa, ob) = (order(ca), order(cb));
                if oa != ob {
                    return oa.cmp(&ob);
                }
            }
            a = &a[na..];
            b = &b[nb..];
            // Digit run.
            let da = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
            let db = b.find(|c: char| !c.is_ascii_digit()).unwrap_or(b.len());
            let va: u128 = a[..da].parse().unwrap_or(0);
            let vb: u128 = b[..db].parse().unwrap_or(0);
            if va != vb {
                return va.cmp(&vb);
            }
            a = &a[da..];
            b = &b[db..];
        }
        Ordering::Equal
    }
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| part(ua, ub))
        .then_with(|| part(ra, rb))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;
    impl PkgMgr for Fake {
        fn query_script(&self, _: &[Want], _: bool) -> String {
            String::new()
        }
        fn parse_query(&self, _: &ExecOut) -> Result<State, ModError> {
            Ok(State::default())
        }
        fn install_cmd(&self, a: &[String], _: bool) -> String {
            format!("inst {}", a.join(" "))
        }
        fn remove_cmd(&self, a: &[String], _: bool) -> String {
            format!("rm {}", a.join(" "))
        }
    }

    fn state(pkgs: &[(&str, Option<&str>, bool)]) -> State {
        let mut s = State::default();
        for (n, v, up) in pkgs {
            s.pkgs.insert(
                n.to_string(),
                Pkg {
                    version: v.map(str::to_string),
                    upgradable: *up,
                    ..Pkg::default()
                },
            );
        }
        s
    }

    fn want(spec: &str, pin: Option<Pin>) -> Want {
        let key = spec.split(['=', '>']).next().unwrap().to_string();
        Want {
            spec: spec.into(),
            key: key.clone(),
            pin,
            install_arg: spec.into(),
        }
    }

    #[test]
    fn plans() {
        let st = state(&[
            ("a", Some("1.0"), false),
            ("b", None, false),
            ("c", Some("2.0-1"), true),
        ]);
        let w = [want("a", None), want("b", None), want("c", None)];
        let p = Fake.plan(&w, Desired::Present, &st, PlanOpts::default());
        assert_eq!(
            p,
            Plan {
                install: vec!["b".into()],
                ..Plan::default()
            }
        );
        let p = Fake.plan(&w, Desired::Latest, &st, PlanOpts::default());
        assert_eq!(
            p,
            Plan {
                install: vec!["b".into()],
                upgrade: vec!["c".into()],
                remove: vec![]
            }
        );
        let p = Fake.plan(
            &w,
            Desired::Latest,
            &st,
            PlanOpts {
                only_upgrade: true,
                ..PlanOpts::default()
            },
        );
        assert_eq!(p.install, Vec::<String>::new());
        let p = Fake.plan(&w, Desired::Absent, &st, PlanOpts::default());
        assert_eq!(p.remove, vec!["a", "c"]);
        assert_eq!(Fake.commands(&p, false), vec!["rm a c"]);
        let pinned = [
            want("c=2.0*", Some(Pin::Exact("2.0*".into()))),
            want("a=1.1", Some(Pin::Exact("1.1".into()))),
        ];
        let p = Fake.plan(&pinned, Desired::Present, &st, PlanOpts::default());
        assert_eq!(p.install, vec!["a=1.1"]);
        let ge = [want("a>=0.9", Some(Pin::AtLeast("0.9".into())))];
        assert!(Fake
            .plan(&ge, Desired::Present, &st, PlanOpts::default())
            .is_empty());
    }

    #[test]
    fn debian_versions() {
        use Ordering::*;
        assert_eq!(version_cmp("1.0", "1.0"), Equal);
        assert_eq!(version_cmp("1.0~rc1", "1.0"), Less);
        assert_eq!(version_cmp("1:1.0", "2.0"), Greater);
        assert_eq!(version_cmp("1.10", "1.9"), Greater);
        assert_eq!(version_cmp("1.6-2.1+deb12u3", "1.6-2.1+deb12u2"), Greater);
        assert_eq!(version_cmp("2.36-9+deb12u4", "2.36-9"), Greater);
        assert_eq!(version_cmp("1.0a", "1.0+"), Less);
    }

    #[test]
    fn desired_names() {
        assert_eq!(Desired::from_state("installed"), Some(Desired::Present));
        assert_eq!(Desired::from_state("removed"), Some(Desired::Absent));
        assert_eq!(Desired::from_state("fixed"), None);
    }
}
