//! `setup` (and `gather_facts`): facts about the target, gathered by ONE
//! POSIX `sh` script that prints raw material in marked sections (files,
//! `uname`, `ip`, `/proc`, ...). Everything else — Ansible's distribution
//! rules, pkg_mgr/service_mgr choice, network and hardware facts — is pure
//! parsing on the controller, unit-tested against fixture files.
//!
//! Facts are returned WITHOUT the `ansible_` prefix (the engine adds it).

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use regex::Regex;
use serde_json::{json, Map, Value};

use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["gather_facts", "ansible.builtin.gather_facts", "ansible.legacy.gather_facts"],
    example: "- ansible.builtin.setup:\n    gather_subset: ['!all', 'network']\n    filter: ['ansible_default_ipv4', 'ansible_eth*']\n",
    ..ModuleSpec::new(
        "setup",
        "Gathers facts about the target (one remote sh script, parsed on the controller); run automatically by `gather_facts`.",
        &[
            Param::new("gather_subset", Kind::List, "Subsets to collect: all, min, hardware, network, virtual, or a fact group (distribution, date_time, env, ...); `!x` excludes.").default("all"),
            Param::new("gather_timeout", Kind::Int, "Seconds each slow probe (mount sizes, fact scripts, hostname -f) may take.").default("10"),
            Param::new("filter", Kind::List, "Only return facts whose names match one of these shell-style globs (e.g. ansible_eth*)."),
            Param::new("fact_path", Kind::Path, "Directory of local *.fact files (JSON or INI; executable ones are run).").default("/etc/ansible/facts.d"),
            Param::new("parallel", Kind::Bool, "Accepted for compatibility (gather_facts)."),
        ],
    )
};

pub struct Setup;

/// Ansible's minimal subset (python is accepted but never reported: no python on targets).
const MIN: &[&str] = &[
    "apparmor",
    "caps",
    "cmdline",
    "date_time",
    "distribution",
    "dns",
    "env",
    "fips",
    "local",
    "lsb",
    "pkg_mgr",
    "platform",
    "python",
    "selinux",
    "service_mgr",
    "ssh_pub_keys",
    "user",
];
/// Everything else `all` adds.
const EXTRA: &[&str] = &[
    "hardware",
    "devices",
    "dmi",
    "mounts",
    "network",
    "interfaces",
    "virtual",
    "loadavg",
    "ohai",
    "facter",
];

fn valid_subsets() -> BTreeSet<&'static str> {
    MIN.iter().chain(EXTRA.iter()).copied().collect()
}

/// Subsets that a `!x` exclusion also removes (`!hardware` drops dmi, devices, mounts).
fn aliases(s: &str) -> &'static [&'static str] {
    match s {
        "hardware" => &["devices", "dmi", "mounts"],
        "network" => &["interfaces"],
        _ => &[],
    }
}

/// Ansible's `get_collector_names`: min is always in unless `!min`; `all`
/// adds everything; `!x` excludes unless x was asked for explicitly.
pub fn resolve_subsets(gather_subset: &[String]) -> Result<BTreeSet<String>, String> {
    let valid = valid_subsets();
    let min: BTreeSet<&str> = MIN.iter().copied().collect();
    let mut add: BTreeSet<&str> = BTreeSet::new();
    let mut exclude: BTreeSet<&str> = BTreeSet::new();
    let mut explicit: BTreeSet<&str> = BTreeSet::new();
    let given: Vec<String> = if gather_subset.is_empty() {
        vec!["all".into()]
    } else {
        gather_subset.to_vec()
    };
    let all: Vec<String> = std::iter::once("min".to_string()).chain(given).collect();
    for s in &all {
        let s = s.trim();
        match s {
            "min" => add.extend(min.iter().copied()),
            "all" => add.extend(valid.iter().copied()),
            "!min" => exclude.extend(min.iter().copied()),
            "!all" => exclude.extend(valid.difference(&min).copied()),
            _ => {
                if let Some(x) = s.strip_prefix('!') {
                    if let Some(v) = valid.get(x) {
                        exclude.insert(v);
                        exclude.extend(aliases(x).iter().copied());
                    }
                } else if let Some(v) = valid.get(s) {
                    explicit.insert(v);
                    add.insert(v);
                } else {
                    let mut names: Vec<&str> = valid.iter().copied().collect();
                    names.sort();
                    return Err(format!(
                        "Bad subset '{s}' given to Ansible. gather_subset options allowed: all, {}",
                        names.join(", ")
                    ));
                }
            }
        }
    }
    if add.is_empty() {
        add.extend(valid.iter().copied());
    }
    let drop: BTreeSet<&str> = exclude.difference(&explicit).copied().collect();
    Ok(add.difference(&drop).map(|s| s.to_string()).collect())
}

/// Which probes the remote script must run for the selected subsets.
#[derive(Debug, Default, Clone)]
pub struct Needs {
    pub platform: bool,
    pub distribution: bool,
    pub lsb: bool,
    pub pkg_mgr: bool,
    pub service_mgr: bool,
    pub user: bool,
    pub env: bool,
    pub date_time: bool,
    pub selinux: bool,
    pub apparmor: bool,
    pub fips: bool,
    pub dns: bool,
    pub cmdline: bool,
    pub ssh_pub_keys: bool,
    pub local: bool,
    pub hardware: bool,
    pub dmi: bool,
    pub mounts: bool,
    pub network: bool,
    pub virtual_: bool,
    pub loadavg: bool,
}

impl Needs {
    pub fn from(sel: &BTreeSet<String>) -> Needs {
        let h = |s: &str| sel.contains(s);
        let mut n = Needs {
            platform: h("platform"),
            distribution: h("distribution"),
            lsb: h("lsb"),
            pkg_mgr: h("pkg_mgr"),
            service_mgr: h("service_mgr"),
            user: h("user"),
            env: h("env"),
            date_time: h("date_time"),
            selinux: h("selinux"),
            apparmor: h("apparmor"),
            fips: h("fips"),
            dns: h("dns"),
            cmdline: h("cmdline"),
            ssh_pub_keys: h("ssh_pub_keys"),
            local: h("local"),
            hardware: h("hardware"),
            dmi: h("hardware") || h("dmi"),
            mounts: h("hardware") || h("mounts"),
            network: h("network") || h("interfaces"),
            virtual_: h("virtual"),
            loadavg: h("loadavg"),
        };
        // Collector dependencies: pkg_mgr needs the OS family, hardware the architecture.
        if n.pkg_mgr || n.service_mgr || n.virtual_ {
            n.distribution = true;
        }
        if n.hardware || n.distribution {
            n.platform = true;
        }
        n
    }
}

const MARK: &str = "@@ferry@@ ";

const DIST_FILES: &[&str] = &[
    "/etc/os-release",
    "/usr/lib/os-release",
    "/etc/lsb-release",
    "/etc/debian_version",
    "/etc/centos-release",
    "/etc/redhat-release",
    "/etc/system-release",
    "/etc/oracle-release",
    "/etc/altlinux-release",
    "/etc/slackware-version",
    "/etc/openwrt_release",
    "/etc/alpine-release",
    "/etc/arch-release",
    "/etc/SuSE-release",
    "/etc/gentoo-release",
    "/etc/vmware-release",
    "/etc/sourcemage-release",
    "/etc/coreos/update.conf",
    "/etc/flatcar/update.conf",
];

/// Ansible's PKG_MGRS, in its order (the last one present wins).
const PKG_MGRS: &[(&str, &str)] = &[
    ("/usr/bin/rpm-ostree", "atomic_container"),
    ("/usr/bin/yum", "yum"),
    ("/usr/bin/dnf-3", "dnf"),
    ("/usr/bin/dnf5", "dnf5"),
    ("/usr/bin/apt-get", "apt"),
    ("/usr/bin/zypper", "zypper"),
    ("/usr/sbin/urpmi", "urpmi"),
    ("/usr/bin/pacman", "pacman"),
    ("/bin/opkg", "opkg"),
    ("/usr/pkg/bin/pkgin", "pkgin"),
    ("/opt/local/bin/pkgin", "pkgin"),
    ("/opt/tools/bin/pkgin", "pkgin"),
    ("/opt/local/bin/port", "macports"),
    ("/usr/local/bin/brew", "homebrew"),
    ("/opt/homebrew/bin/brew", "homebrew"),
    ("/sbin/apk", "apk"),
    ("/usr/sbin/pkg", "pkgng"),
    ("/usr/sbin/swlist", "swdepot"),
    ("/usr/bin/emerge", "portage"),
    ("/usr/sbin/pkgadd", "svr4pkg"),
    ("/usr/bin/pkg", "pkg5"),
    ("/usr/bin/xbps-install", "xbps"),
    ("/usr/local/sbin/pkg", "pkgng"),
    ("/usr/bin/swupd", "swupd"),
    ("/usr/sbin/sorcery", "sorcery"),
    ("/usr/bin/installp", "installp"),
];

const DMI_KEYS: &[&str] = &[
    "bios_date",
    "bios_vendor",
    "bios_version",
    "board_asset_tag",
    "board_name",
    "board_serial",
    "board_vendor",
    "board_version",
    "chassis_asset_tag",
    "chassis_serial",
    "chassis_type",
    "chassis_vendor",
    "chassis_version",
    "product_family",
    "product_name",
    "product_serial",
    "product_uuid",
    "product_version",
    "sys_vendor",
];

/// The one remote script. Sections: `@@ferry@@ <kind> <args>` lines, each
/// body followed by one extra newline that the parser removes.
pub fn script(n: &Needs, fact_path: &str, timeout: i64) -> String {
    let mut s = String::new();
    s.push_str("sec() { printf '@@ferry@@ %s\\n' \"$*\"; }\n");
    // env first: before this script changes PATH or the locale.
    if n.env {
        s.push_str("sec env; env -0 2>/dev/null || env; echo\n");
    }
    s.push_str("LC_ALL=C; export LC_ALL\nPATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin\"\n");
    s.push_str(&format!("T={}\n", timeout.max(1)));
    s.push_str("tmo() { if command -v timeout >/dev/null 2>&1; then timeout \"$T\" \"$@\"; else \"$@\"; fi; }\n");
    s.push_str("f() { for x in \"$@\"; do if [ -f \"$x\" ] && [ -r \"$x\" ]; then sec file \"$x\"; cat -- \"$x\" 2>/dev/null; echo; fi; done; }\n");
    let mut files: Vec<&str> = Vec::new();
    if n.platform {
        s.push_str("sec uname; uname -s; uname -r; uname -v; uname -m; uname -n; echo\n");
        s.push_str("sec fqdn; h=$(tmo hostname -f 2>/dev/null) || h=; [ -n \"$h\" ] || h=$(hostname 2>/dev/null || uname -n); printf '%s\\n' \"$h\"; echo\n");
        s.push_str("sec bits; getconf LONG_BIT 2>/dev/null; echo\n");
        files.extend(["/var/lib/dbus/machine-id", "/etc/machine-id"]);
    }
    if n.distribution || n.lsb {
        files.extend(DIST_FILES);
    }
    if n.lsb {
        s.push_str("if command -v lsb_release >/dev/null 2>&1; then sec lsbcmd; tmo lsb_release -a 2>/dev/null; echo; fi\n");
    }
    if n.pkg_mgr {
        let list: Vec<&str> = PKG_MGRS
            .iter()
            .map(|(p, _)| *p)
            .chain([
                "/usr/bin/dnf",
                "/usr/bin/microdnf",
                "/run/ostree-booted",
                "/usr/bin/rpm",
            ])
            .collect();
        s.push_str(&format!(
            "sec pkg; for p in {}; do if [ -e \"$p\" ]; then printf '%s|%s\\n' \"$p\" \"$(readlink -f -- \"$p\" 2>/dev/null)\"; fi; done\n",
            list.join(" ")
        ));
        s.push_str("if [ -e /usr/bin/rpm ] && [ -e /usr/bin/apt-get ]; then if /usr/bin/rpm -q --whatprovides /usr/bin/apt-get >/dev/null 2>&1; then echo 'APT_RPM|1'; else echo 'APT_RPM|0'; fi; fi; echo\n");
    }
    if n.service_mgr {
        s.push_str(concat!(
            "sec svc\n",
            "if [ -r /proc/1/comm ]; then printf 'comm|%s\\n' \"$(cat /proc/1/comm 2>/dev/null)\"; else printf 'ps|%s\\n' \"$(ps -p 1 -o comm 2>/dev/null | tail -n 1)\"; fi\n",
            "if [ -L /sbin/init ]; then printf 'init|%s\\n' \"$(readlink /sbin/init)\"; fi\n",
            "if command -v systemctl >/dev/null 2>&1; then echo 'systemctl|1'; fi\n",
            "for c in /run/systemd/system/ /dev/.run/systemd/ /dev/.systemd/; do if [ -e \"$c\" ]; then echo \"canary|$c\"; fi; done\n",
            "if command -v initctl >/dev/null 2>&1 && [ -e /etc/init/ ]; then echo 'upstart|1'; fi\n",
            "if [ -e /sbin/openrc ]; then echo 'openrc|1'; fi\n",
            "if [ -e /etc/init.d/ ]; then echo 'initd|1'; fi\n",
            "if [ -e /etc/dinit.d/ ]; then echo 'dinit|1'; fi\n",
            "echo\n",
        ));
    }
    if n.user {
        s.push_str(concat!(
            "sec user\n",
            "u=${LOGNAME:-${USER:-${LNAME:-${USERNAME:-}}}}; [ -n \"$u\" ] || u=$(id -un 2>/dev/null)\n",
            "printf 'name|%s\\nuid|%s\\ngid|%s\\neuid|%s\\negid|%s\\n' \"$u\" \"$(id -ru)\" \"$(id -rg)\" \"$(id -u)\" \"$(id -g)\"\n",
            "printf 'pw|%s\\n' \"$(getent passwd \"$u\" 2>/dev/null || grep \"^$u:\" /etc/passwd 2>/dev/null | head -n 1)\"\n",
            "echo\n",
        ));
    }
    if n.date_time {
        s.push_str(concat!(
            "sec date; date +'%s|%N|%Y|%m|%d|%H|%M|%S|%Z|%z|%A|%w|%W'\n",
            "y=$(date +%Y); date -d \"$y-01-01 12:00\" +'%Z|%z' 2>/dev/null || echo; date -d \"$y-07-01 12:00\" +'%Z|%z' 2>/dev/null || echo; echo\n",
        ));
    }
    if n.selinux {
        s.push_str(concat!(
            "sec selinux\n",
            "if [ -r /sys/fs/selinux/enforce ]; then printf 'enforce|%s\\n' \"$(cat /sys/fs/selinux/enforce 2>/dev/null)\"; fi\n",
            "if [ -r /sys/fs/selinux/policyvers ]; then printf 'policyvers|%s\\n' \"$(cat /sys/fs/selinux/policyvers 2>/dev/null)\"; fi\n",
            "echo\n",
        ));
        files.push("/etc/selinux/config");
    }
    if n.apparmor {
        s.push_str(
            "sec apparmor; if [ -e /sys/kernel/security/apparmor ]; then echo enabled; fi; echo\n",
        );
    }
    if n.fips {
        files.push("/proc/sys/crypto/fips_enabled");
    }
    if n.dns {
        files.push("/etc/resolv.conf");
    }
    if n.cmdline {
        files.push("/proc/cmdline");
    }
    if n.ssh_pub_keys {
        files.extend([
            "/etc/ssh/ssh_host_dsa_key.pub",
            "/etc/ssh/ssh_host_rsa_key.pub",
            "/etc/ssh/ssh_host_ecdsa_key.pub",
            "/etc/ssh/ssh_host_ed25519_key.pub",
        ]);
    }
    if n.hardware {
        s.push_str("sec cpuinfo; grep -E '^(processor|Processor|vendor_id|model name|cpu|Vendor|physical id|core id|cpu cores|siblings|# processors|ncpus active)[[:space:]]*:' /proc/cpuinfo 2>/dev/null; echo\n");
        s.push_str("sec nproc; nproc 2>/dev/null; echo\n");
        files.extend(["/proc/meminfo", "/proc/uptime"]);
    }
    if n.loadavg {
        files.push("/proc/loadavg");
    }
    let dmi: Vec<String> = DMI_KEYS
        .iter()
        .map(|k| format!("/sys/devices/virtual/dmi/id/{k}"))
        .collect();
    if n.dmi || n.virtual_ {
        files.extend(dmi.iter().map(String::as_str));
    }
    if n.mounts {
        s.push_str(concat!(
            "sec mounts; m=/etc/mtab; [ -r \"$m\" ] || m=/proc/mounts\n",
            "while read -r dev mnt fs opts d p; do\n",
            "  case \"$dev\" in /*|\\\\*) ;; *:/*) ;; *) continue ;; esac\n",
            "  [ \"$fs\" = none ] && continue\n",
            "  mp=$(printf '%b' \"$mnt\")\n",
            "  printf '%s\\t%s\\t%s\\t%s\\t%s\\t%s\\t%s\\n' \"$dev\" \"$mnt\" \"$fs\" \"$opts\" \"${d:-0}\" \"${p:-0}\" \"$(tmo stat -f -c '%S %s %b %f %a %c %d' -- \"$mp\" 2>/dev/null)\"\n",
            "done < \"$m\"; echo\n",
            "sec uuids; for u in /dev/disk/by-uuid/*; do if [ -e \"$u\" ]; then printf '%s|%s\\n' \"$(readlink -f -- \"$u\")\" \"${u##*/}\"; fi; done; echo\n",
        ));
    }
    if n.network {
        s.push_str(concat!(
            "sec link\n",
            "for d in /sys/class/net/*; do [ -d \"$d\" ] || continue; n=${d##*/}\n",
            "  k=; if [ -d \"$d/bridge\" ]; then k=bridge; elif [ -e \"$d/bonding\" ]; then k=bonding; elif [ -e \"$d/bonding_slave\" ]; then k=bonding_slave; fi\n",
            "  mod=; if [ -e \"$d/device/driver/module\" ]; then mod=$(readlink -f -- \"$d/device/driver/module\"); mod=${mod##*/}; fi\n",
            "  printf '%s|%s|%s|%s|%s|%s|%s|%s|%s\\n' \"$n\" \"$(cat \"$d/type\" 2>/dev/null)\" \"$(cat \"$d/operstate\" 2>/dev/null)\" \"$(cat \"$d/address\" 2>/dev/null)\" \"$(cat \"$d/mtu\" 2>/dev/null)\" \"$(cat \"$d/flags\" 2>/dev/null)\" \"$k\" \"$mod\" \"$(cat \"$d/speed\" 2>/dev/null)\"\n",
            "done; echo\n",
            "sec addr4; ip -o -4 addr show 2>/dev/null; echo\n",
            "sec addr6; ip -o -6 addr show 2>/dev/null; echo\n",
            "sec route4; ip -4 route show 2>/dev/null; echo\n",
            "sec route6; ip -6 route show 2>/dev/null; echo\n",
        ));
    }
    if n.virtual_ {
        s.push_str(concat!(
            "sec virt\n",
            "if [ -r /proc/1/environ ]; then tr '\\000' '\\n' < /proc/1/environ 2>/dev/null | grep '^container=' | sed 's/^/env|/'; fi\n",
            "for p in /.dockerenv /.dockerinit /run/.containerenv /proc/xen /proc/vz /proc/lve /proc/bc; do if [ -e \"$p\" ]; then echo \"exists|$p\"; fi; done\n",
            "grep -m1 -E 'QEMU|User Mode Linux|VirtualBox' /proc/cpuinfo 2>/dev/null | sed 's/^/cpu|/'\n",
            "echo\n",
        ));
        files.extend([
            "/proc/1/cgroup",
            "/run/systemd/container",
            "/proc/xen/capabilities",
        ]);
    }
    if !files.is_empty() {
        let mut seen = BTreeSet::new();
        let list: Vec<String> = files
            .into_iter()
            .filter(|f| seen.insert(*f))
            .map(quote)
            .collect();
        s.push_str(&format!("f {}\n", list.join(" ")));
    }
    if n.local {
        s.push_str(&format!(
            concat!(
                "fp={}\n",
                "if [ -d \"$fp\" ]; then sec factdir\necho\n",
                "  for fn in \"$fp\"/*.fact; do [ -e \"$fn\" ] || continue; n=${{fn##*/}}; n=${{n%.fact}}\n",
                "    if [ -x \"$fn\" ]; then ef=$(mktemp 2>/dev/null || echo /dev/null); o=$(tmo \"$fn\" 2>\"$ef\"); rc=$?\n",
                "      sec fact \"$rc\" x \"$n\"; printf '%s\\n' \"$o\"; sec facterr \"$n\"; cat \"$ef\" 2>/dev/null; echo; [ \"$ef\" = /dev/null ] || rm -f \"$ef\"\n",
                "    else sec fact 0 f \"$n\"; cat -- \"$fn\" 2>/dev/null; echo; fi\n",
                "  done\n",
                "fi\n",
            ),
            quote(fact_path)
        ));
    }
    s.push_str("sec end\nexit 0\n");
    s
}

/// The sections the script printed.
#[derive(Debug, Default, Clone)]
pub struct Raw {
    /// `file` sections: path → content.
    pub files: BTreeMap<String, String>,
    /// Other sections: kind → body.
    pub secs: BTreeMap<String, Vec<u8>>,
    /// Local facts: (name, rc, executable, stdout, stderr).
    pub facts: Vec<(String, i32, bool, String, String)>,
    pub fact_dir: bool,
}

impl Raw {
    pub fn file(&self, p: &str) -> Option<&str> {
        self.files.get(p).map(String::as_str)
    }
    pub fn sec(&self, k: &str) -> Option<String> {
        self.secs
            .get(k)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    }
    /// `key|value` lines of a section.
    pub fn kv(&self, k: &str) -> Vec<(String, String)> {
        self.sec(k)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                l.split_once('|')
                    .map(|(a, b)| (a.to_string(), b.to_string()))
            })
            .collect()
    }
}

/// Splits the script's output into sections.
pub fn parse_raw(out: &[u8]) -> Raw {
    let mark = MARK.as_bytes();
    let mut starts: Vec<usize> = Vec::new();
    let mut i = 0;
    while i + mark.len() <= out.len() {
        if (i == 0 || out[i - 1] == b'\n') && &out[i..i + mark.len()] == mark {
            starts.push(i);
            i += mark.len();
        } else {
            i += 1;
        }
    }
    let mut raw = Raw::default();
    let mut pending_fact: Option<usize> = None;
    for (n, &st) in starts.iter().enumerate() {
        let hdr_end = out[st..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|p| st + p)
            .unwrap_or(out.len());
        let header = String::from_utf8_lossy(&out[st + mark.len()..hdr_end]).into_owned();
        let body_start = (hdr_end + 1).min(out.len());
        // The body ends at the newline before the next header (our `echo`).
        let body_end = match starts.get(n + 1) {
            Some(&next) => next.saturating_sub(1).max(body_start),
            None => out.len(),
        };
        let body = &out[body_start..body_end];
        let (kind, rest) = header.split_once(' ').unwrap_or((header.as_str(), ""));
        match kind {
            "file" => {
                raw.files
                    .insert(rest.to_string(), String::from_utf8_lossy(body).into_owned());
            }
            "fact" => {
                let mut it = rest.splitn(3, ' ');
                let rc = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
                let exe = it.next() == Some("x");
                let name = it.next().unwrap_or("").to_string();
                raw.facts.push((
                    name,
                    rc,
                    exe,
                    String::from_utf8_lossy(body).into_owned(),
                    String::new(),
                ));
                pending_fact = Some(raw.facts.len() - 1);
            }
            "facterr" => {
                if let Some(i) = pending_fact.take() {
                    raw.facts[i].4 = String::from_utf8_lossy(body).into_owned();
                }
            }
            "factdir" => raw.fact_dir = true,
            "end" => {}
            k => {
                raw.secs.insert(k.to_string(), body.to_vec());
            }
        }
    }
    raw
}

// ---------------------------------------------------------------- distribution

/// `/etc/os-release` as `distro` reads it (lower-case keys, shell-unquoted values, codename derived).
pub fn parse_os_release(data: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for line in data.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = shlex::split(v)
            .map(|w| w.join(" "))
            .unwrap_or_else(|| v.trim_matches(['"', '\'']).to_string());
        m.insert(k.trim().to_lowercase(), v);
    }
    if let Some(c) = m.get("version_codename").cloned() {
        m.insert("codename".into(), c);
    } else if let Some(c) = m.get("ubuntu_codename").cloned() {
        m.insert("codename".into(), c);
    } else if let Some(v) = m.get("version").cloned() {
        let re = Regex::new(r"(\(\D+\))|,(\s+)?\D+").expect("regex");
        if let Some(mat) = re.find(&v) {
            let c = mat
                .as_str()
                .trim_matches(['(', ')'])
                .trim_matches(',')
                .trim()
                .to_string();
            m.insert("codename".into(), c);
        }
    }
    m
}

/// `distro`'s parse of a `*-release` line: name, version_id, codename.
pub fn parse_release_line(line: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let line = line.lines().next().unwrap_or("").trim();
    let rev: String = line.chars().rev().collect();
    let re = Regex::new(r"^(?:[^)]*\)(.*)\()? *(?:STL )?([\d.+\-a-z]*\d) *(?:esaeler *)?(.+)")
        .expect("regex");
    let unrev = |s: &str| s.chars().rev().collect::<String>();
    if let Some(c) = re.captures(&rev) {
        m.insert(
            "name".into(),
            unrev(c.get(3).map(|x| x.as_str()).unwrap_or("")),
        );
        m.insert(
            "version_id".into(),
            unrev(c.get(2).map(|x| x.as_str()).unwrap_or("")),
        );
        if let Some(cn) = c.get(1) {
            m.insert("codename".into(), unrev(cn.as_str()));
        }
    } else if !line.is_empty() {
        m.insert("name".into(), line.to_string());
    }
    m
}

/// `lsb_release -a` output or `/etc/lsb-release` content → id/description/release/codename.
pub fn parse_lsb(cmd_out: Option<&str>, file: Option<&str>) -> Map<String, Value> {
    let strip = |s: &str| s.trim().trim_matches(['\'', '"', '\\']).to_string();
    let mut m = Map::new();
    if let Some(out) = cmd_out {
        for line in out.lines() {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let key = match k.trim() {
                "Distributor ID" => "id",
                "Description" => "description",
                "Release" => "release",
                "Codename" => "codename",
                _ => continue,
            };
            m.insert(key.into(), Value::String(strip(v)));
        }
    }
    if m.is_empty() {
        if let Some(data) = file {
            for line in data.lines() {
                let Some((k, v)) = line.split_once('=') else {
                    continue;
                };
                let key = match k.trim() {
                    "DISTRIB_ID" => "id",
                    "DISTRIB_RELEASE" => "release",
                    "DISTRIB_DESCRIPTION" => "description",
                    "DISTRIB_CODENAME" => "codename",
                    _ => continue,
                };
                m.insert(key.into(), Value::String(strip(v)));
            }
        }
    }
    if let Some(Value::String(r)) = m.get("release").cloned() {
        m.insert(
            "major_release".into(),
            Value::String(r.split('.').next().unwrap_or("").to_string()),
        );
    }
    m
}

/// Ansible's OS_FAMILY_MAP.
pub fn os_family(dist: &str) -> String {
    const MAP: &[(&str, &[&str])] = &[
        (
            "RedHat",
            &[
                "RedHat",
                "RHEL",
                "Fedora",
                "CentOS",
                "Scientific",
                "SLC",
                "Ascendos",
                "CloudLinux",
                "PSBM",
                "OracleLinux",
                "OVS",
                "OEL",
                "Amazon",
                "Amzn",
                "Virtuozzo",
                "XenServer",
                "Alibaba",
                "EulerOS",
                "openEuler",
                "AlmaLinux",
                "Rocky",
                "TencentOS",
                "EuroLinux",
                "Kylin Linux Advanced Server",
                "MIRACLE",
            ],
        ),
        (
            "Debian",
            &[
                "Debian",
                "Ubuntu",
                "Raspbian",
                "Neon",
                "KDE neon",
                "Linux Mint",
                "SteamOS",
                "Devuan",
                "Kali",
                "Cumulus Linux",
                "Pop!_OS",
                "Parrot",
                "Pardus GNU/Linux",
                "Uos",
                "Deepin",
                "OSMC",
                "Linux Mint Debian Edition",
            ],
        ),
        (
            "Suse",
            &[
                "SuSE",
                "SLES",
                "SLED",
                "openSUSE",
                "openSUSE Tumbleweed",
                "SLES_SAP",
                "SUSE_LINUX",
                "openSUSE Leap",
                "ALP-Dolomite",
                "SL-Micro",
                "openSUSE MicroOS",
            ],
        ),
        ("Archlinux", &["Archlinux", "Antergos", "Manjaro"]),
        ("Mandrake", &["Mandrake", "Mandriva"]),
        (
            "Solaris",
            &["Solaris", "Nexenta", "OmniOS", "OpenIndiana", "SmartOS"],
        ),
        ("Slackware", &["Slackware"]),
        ("Altlinux", &["Altlinux"]),
        ("SMGL", &["SMGL"]),
        ("Gentoo", &["Gentoo", "Funtoo"]),
        ("Alpine", &["Alpine"]),
        ("AIX", &["AIX"]),
        ("HP-UX", &["HPUX"]),
        ("Darwin", &["MacOSX"]),
        ("FreeBSD", &["FreeBSD", "TrueOS"]),
        ("ClearLinux", &["Clear Linux OS", "Clear Linux Mix"]),
        (
            "DragonFly",
            &[
                "DragonflyBSD",
                "DragonFlyBSD",
                "Gentoo/DragonflyBSD",
                "Gentoo/DragonFlyBSD",
            ],
        ),
        ("NetBSD", &["NetBSD"]),
    ];
    MAP.iter()
        .find(|(_, names)| names.contains(&dist))
        .map(|(f, _)| f.to_string())
        .unwrap_or_else(|| dist.to_string())
}

/// Python's `str.capitalize()`.
fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + &c.as_str().to_lowercase(),
        None => String::new(),
    }
}

/// What the `distro` library (as Ansible calls it) guesses before the
/// distribution files are parsed: name, version, major version, release.
fn guess(
    files: &BTreeMap<String, String>,
    lsb_cmd: Option<&str>,
) -> (String, String, String, String) {
    let osr = files
        .get("/etc/os-release")
        .or_else(|| files.get("/usr/lib/os-release"))
        .map(|d| parse_os_release(d))
        .unwrap_or_default();
    let lsb = parse_lsb(lsb_cmd, None);
    let lsb_s = |k: &str| lsb.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let rel_file = [
        "/etc/centos-release",
        "/etc/redhat-release",
        "/etc/oracle-release",
        "/etc/SuSE-release",
        "/etc/altlinux-release",
        "/etc/gentoo-release",
    ]
    .iter()
    .find_map(|p| files.get(*p));
    let dr = rel_file.map(|d| parse_release_line(d)).unwrap_or_default();
    let o = |k: &str| osr.get(k).cloned().unwrap_or_default();
    let mut id = o("id").to_lowercase().replace(' ', "_");
    id = match id.as_str() {
        "ol" => "oracle".into(),
        "opensuse-leap" => "opensuse".into(),
        _ => id,
    };
    if id.is_empty() {
        id = lsb_s("id").to_lowercase().replace(' ', "_");
        id = match id.as_str() {
            "enterpriseenterpriseserver" => "oracle".into(),
            "redhatenterpriseworkstation"
            | "redhatenterpriseserver"
            | "redhatenterprisecomputenode" => "rhel".into(),
            _ => id,
        };
    }
    if id.is_empty() {
        if let Some(n) = dr.get("name") {
            id = n.split_whitespace().next().unwrap_or("").to_lowercase();
            if id == "redhat" {
                id = "rhel".into();
            }
        }
    }
    let like = o("id_like");
    let mut candidates = vec![
        o("version_id"),
        lsb_s("release"),
        dr.get("version_id").cloned().unwrap_or_default(),
    ];
    candidates.push(
        parse_release_line(&o("pretty_name"))
            .get("version_id")
            .cloned()
            .unwrap_or_default(),
    );
    candidates.push(
        parse_release_line(&lsb_s("description"))
            .get("version_id")
            .cloned()
            .unwrap_or_default(),
    );
    if id == "debian" || like.split_whitespace().any(|l| l == "debian") {
        candidates.push(
            files
                .get("/etc/debian_version")
                .map(|s| s.trim().to_string())
                .unwrap_or_default(),
        );
    }
    let first = candidates
        .iter()
        .find(|v| !v.is_empty())
        .cloned()
        .unwrap_or_default();
    let best = {
        let mut b = String::new();
        for v in &candidates {
            if b.is_empty() || v.matches('.').count() > b.matches('.').count() {
                b = v.clone();
            }
        }
        b
    };
    let version = match id.as_str() {
        "centos" if !first.is_empty() => best.split('.').take(2).collect::<Vec<_>>().join("."),
        "debian" if !first.is_empty() => best,
        _ => first,
    };
    let codename = osr
        .get("version_codename")
        .or_else(|| osr.get("ubuntu_codename"))
        .cloned()
        .or_else(|| {
            if id == "ubuntu" && lsb.contains_key("codename") {
                Some(lsb_s("codename"))
            } else {
                None
            }
        })
        .or_else(|| {
            let c = osr
                .get("codename")
                .cloned()
                .filter(|c| !c.is_empty())
                .or_else(|| Some(lsb_s("codename")).filter(|c| !c.is_empty()))
                .or_else(|| dr.get("codename").cloned())
                .unwrap_or_default();
            (!c.is_empty()).then_some(c)
        });
    let name = match capitalize(&id).as_str() {
        "Amzn" => "Amazon".to_string(),
        "Rhel" => "Redhat".to_string(),
        "" => "OtherLinux".to_string(),
        other => other.to_string(),
    };
    let version = if version.is_empty() {
        "NA".to_string()
    } else {
        version
    };
    let major = version
        .split('.')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("NA")
        .to_string();
    (
        name,
        version,
        major,
        codename.unwrap_or_else(|| "NA".into()),
    )
}

/// Ansible's `DistributionFiles.process_dist_files` + `Distribution`: the
/// distribution facts from the release files present on the host.
pub fn distribution_facts(
    files: &BTreeMap<String, String>,
    lsb_cmd: Option<&str>,
) -> Map<String, Value> {
    let (name, version, major, release) = guess(files, lsb_cmd);
    let mut f: BTreeMap<&str, String> = BTreeMap::new();
    f.insert("distribution", name);
    f.insert("distribution_version", version);
    f.insert("distribution_major_version", major);
    f.insert("distribution_release", release);
    const LIST: &[(&str, &str, bool)] = &[
        ("/etc/altlinux-release", "Altlinux", false),
        ("/etc/oracle-release", "OracleLinux", false),
        ("/etc/slackware-version", "Slackware", false),
        ("/etc/centos-release", "CentOS", false),
        ("/etc/redhat-release", "RedHat", false),
        ("/etc/vmware-release", "VMwareESX", true),
        ("/etc/openwrt_release", "OpenWrt", false),
        ("/etc/os-release", "Amazon", false),
        ("/etc/system-release", "Amazon", false),
        ("/etc/alpine-release", "Alpine", false),
        ("/etc/arch-release", "Archlinux", true),
        ("/etc/os-release", "Archlinux", false),
        ("/etc/os-release", "SUSE", false),
        ("/etc/SuSE-release", "SUSE", false),
        ("/etc/gentoo-release", "Gentoo", false),
        ("/etc/os-release", "Debian", false),
        ("/etc/lsb-release", "Debian", false),
        ("/etc/lsb-release", "Mandriva", false),
        ("/etc/sourcemage-release", "SMGL", false),
        ("/usr/lib/os-release", "ClearLinux", false),
        ("/etc/coreos/update.conf", "Coreos", false),
        ("/etc/flatcar/update.conf", "Flatcar", false),
        ("/etc/os-release", "NA", false),
    ];
    let search = |n: &str| match n {
        "OracleLinux" => Some("Oracle Linux"),
        "RedHat" => Some("Red Hat"),
        "Altlinux" => Some("ALT"),
        "SMGL" => Some("Source Mage GNU/Linux"),
        _ => None,
    };
    for (path, nm, allow_empty) in LIST {
        let Some(content) = files.get(*path) else {
            continue;
        };
        if *allow_empty {
            f.insert("distribution", nm.to_string());
            f.insert("distribution_file_path", path.to_string());
            f.insert("distribution_file_variety", nm.to_string());
            break;
        }
        if content.is_empty() {
            continue;
        }
        let data = content.trim_matches(['\'', '"', '\\']);
        let parsed: Option<Vec<(&str, String)>> = if let Some(ss) = search(nm) {
            let d = if data.contains(ss) {
                nm.to_string()
            } else {
                data.split_whitespace().next().unwrap_or("").to_string()
            };
            Some(vec![
                ("distribution", d),
                ("distribution_file_search_string", ss.to_string()),
            ])
        } else if *nm == "Archlinux" && *path == "/etc/os-release" {
            data.contains("Arch Linux")
                .then(|| vec![("distribution", "Archlinux".to_string())])
        } else {
            parse_dist_file(nm, data, path, files, &f)
        };
        if let Some(kv) = parsed {
            f.insert("distribution", nm.to_string());
            f.insert("distribution_file_path", path.to_string());
            f.insert("distribution_file_variety", nm.to_string());
            f.insert("distribution_file_parsed", "true".into());
            for (k, v) in kv {
                f.insert(k, v);
            }
            break;
        }
    }
    let family = os_family(&f["distribution"]);
    let mut out = Map::new();
    for (k, v) in f {
        let v = if k == "distribution_file_parsed" {
            Value::Bool(true)
        } else {
            Value::String(v)
        };
        out.insert(k.to_string(), v);
    }
    out.insert("os_family".into(), Value::String(family));
    out
}

fn re_group(re: &str, data: &str, g: usize) -> Option<String> {
    Regex::new(re)
        .ok()?
        .captures(data)?
        .get(g)
        .map(|m| m.as_str().to_string())
}

/// The `parse_distribution_file_<name>` functions: `None` when the file is not that distribution's.
fn parse_dist_file(
    name: &str,
    data: &str,
    path: &str,
    files: &BTreeMap<String, String>,
    collected: &BTreeMap<&str, String>,
) -> Option<Vec<(&'static str, String)>> {
    let mut v: Vec<(&'static str, String)> = Vec::new();
    match name {
        "Slackware" => {
            if !data.contains("Slackware") {
                return None;
            }
            v.push(("distribution", name.into()));
            if let Some(x) = re_group(r"\w+[.]\w+\+?", data, 0) {
                v.push(("distribution_version", x));
            }
        }
        "CentOS" => {
            if data.contains("CentOS Stream") {
                v.push(("distribution_release", "Stream".into()));
            } else if data.contains("TencentOS Server") {
                v.push(("distribution", "TencentOS".into()));
            } else {
                return None;
            }
        }
        "Amazon" => {
            if !data.contains("Amazon") {
                return None;
            }
            v.push(("distribution", "Amazon".into()));
            if path == "/etc/os-release" {
                if let Some(ver) = re_group(r#"VERSION_ID="(.*)""#, data, 1) {
                    let parts: Vec<&str> = ver.split('.').collect();
                    let (major, minor) = if parts.len() > 1 {
                        (parts[0].to_string(), parts[1].to_string())
                    } else {
                        (parts[0].to_string(), "NA".to_string())
                    };
                    v.push(("distribution_version", ver.clone()));
                    v.push(("distribution_major_version", major));
                    v.push(("distribution_minor_version", minor));
                }
            } else {
                let ver = data
                    .split_whitespace()
                    .find(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_digit()))
                    .unwrap_or("NA");
                v.push(("distribution_version", ver.into()));
            }
        }
        "OpenWrt" => {
            if !data.contains("OpenWrt") {
                return None;
            }
            v.push(("distribution", name.into()));
            if let Some(x) = re_group(r#"DISTRIB_RELEASE="(.*)""#, data, 1) {
                v.push(("distribution_version", x));
            }
            if let Some(x) = re_group(r#"DISTRIB_CODENAME="(.*)""#, data, 1) {
                v.push(("distribution_release", x));
            }
        }
        "Alpine" => {
            v.push(("distribution", "Alpine".into()));
            v.push(("distribution_version", data.to_string()));
        }
        "SUSE" => {
            if !data.to_lowercase().contains("suse") {
                return None;
            }
            if path == "/etc/os-release" {
                for line in data.lines() {
                    if let Some(d) = re_group(r"^NAME=(.*)", line, 1) {
                        v.push(("distribution", d.trim_matches('"').to_string()));
                    }
                    if let Some(ver) = re_group(r#"^VERSION_ID="?([0-9]+\.?[0-9]*)"?"#, line, 1) {
                        v.push((
                            "distribution_major_version",
                            ver.split('.').next().unwrap_or("").to_string(),
                        ));
                        v.push(("distribution_version", ver));
                    }
                    let lower = data.to_lowercase();
                    if lower.contains("open") {
                        if let Some(r) = re_group(r#"^VERSION_ID="?[0-9]+\.?([0-9]*)"?"#, line, 1) {
                            v.push(("distribution_release", r));
                        }
                    } else if lower.contains("enterprise") && line.contains("VERSION_ID") {
                        let r = re_group(r#"^VERSION_ID="?[0-9]+\.?([0-9]*)"?"#, line, 1)
                            .filter(|r| !r.is_empty())
                            .unwrap_or_else(|| "0".into());
                        v.push(("distribution_release", r));
                    }
                }
            }
        }
        "Debian" => {
            if data.contains("Debian") || data.contains("Raspbian") {
                v.push(("distribution", "Debian".into()));
                if let Some(r) = re_group(r"PRETTY_NAME=[^(]+ \(?([^)]+?)\)", data, 1) {
                    v.push(("distribution_release", r));
                }
                if let Some(dv) = files.get("/etc/debian_version") {
                    for line in dv.lines() {
                        if let Some(m) = re_group(r"(\d+)\.(\d+)", line.trim(), 2) {
                            v.push(("distribution_minor_version", m));
                        }
                    }
                }
            } else if data.contains("Ubuntu") {
                v.push(("distribution", "Ubuntu".into()));
            } else if data.contains("SteamOS") {
                v.push(("distribution", "SteamOS".into()));
            } else if (path == "/etc/lsb-release" || path == "/etc/os-release")
                && (data.contains("Kali") || data.contains("Parrot"))
            {
                v.push((
                    "distribution",
                    if data.contains("Kali") {
                        "Kali"
                    } else {
                        "Parrot"
                    }
                    .into(),
                ));
                if let Some(r) = re_group(r"DISTRIB_RELEASE=(.*)", data, 1) {
                    v.push(("distribution_release", r));
                }
            } else if data.contains("Devuan") {
                v.push(("distribution", "Devuan".into()));
                if let Some(r) = re_group(r#"PRETTY_NAME="?[^("]+ \(?([^) "]+)\)?"#, data, 1) {
                    v.push(("distribution_release", r));
                }
                if let Some(ver) = re_group(r#"VERSION_ID="(.*)""#, data, 1) {
                    v.push(("distribution_version", ver.clone()));
                    v.push(("distribution_major_version", ver));
                }
            } else if data.contains("Mint") {
                v.push(("distribution", "Linux Mint".into()));
                if let Some(ver) = re_group(r#"VERSION_ID="(.*)""#, data, 1) {
                    v.push((
                        "distribution_major_version",
                        ver.split('.').next().unwrap_or("").to_string(),
                    ));
                    v.push(("distribution_version", ver));
                }
            } else {
                return None;
            }
        }
        "Mandriva" => {
            if !data.contains("Mandriva") {
                return None;
            }
            v.push(("distribution", "Mandriva".into()));
            if let Some(x) = re_group(r#"DISTRIB_RELEASE="(.*)""#, data, 1) {
                v.push(("distribution_version", x));
            }
            if let Some(x) = re_group(r#"DISTRIB_CODENAME="(.*)""#, data, 1) {
                v.push(("distribution_release", x));
            }
        }
        "NA" => {
            for line in data.lines() {
                if let Some(d) = re_group(r"^NAME=(.*)", line, 1) {
                    v.push((
                        "distribution",
                        d.trim_matches(['\'', '"', '\\']).to_string(),
                    ));
                }
                if let Some(ver) = re_group(r"^VERSION=(.*)", line, 1) {
                    if collected.get("distribution_version").map(String::as_str) == Some("NA") {
                        v.push((
                            "distribution_version",
                            ver.trim_matches(['\'', '"', '\\']).to_string(),
                        ));
                    }
                }
            }
            // `distribution` is set to the parser's name first, then overridden.
            return Some(v);
        }
        _ => return None,
    }
    Some(v)
}

/// Ansible's pkg_mgr collector. `present` holds (path, realpath) of existing files.
pub fn pkg_mgr(os_family: &str, present: &[(String, String)], apt_rpm: Option<bool>) -> String {
    let has = |p: &str| present.iter().any(|(x, _)| x == p);
    let real = |p: &str| {
        present
            .iter()
            .find(|(x, _)| x == p)
            .map(|(_, r)| r.as_str())
            .unwrap_or("")
    };
    let mut name = "unknown".to_string();
    for (p, n) in PKG_MGRS {
        if has(p) {
            name = n.to_string();
        }
    }
    if os_family == "RedHat" {
        name = if has("/run/ostree-booted") {
            "atomic_container".into()
        } else if let Some(b) = ["/usr/bin/dnf", "/usr/bin/microdnf"]
            .iter()
            .find(|b| has(b))
        {
            if real(b) == "/usr/bin/dnf5" {
                "dnf5".into()
            } else {
                "dnf".into()
            }
        } else if has("/usr/bin/yum") {
            "yum".into()
        } else {
            "unknown".into()
        };
    } else if os_family == "Debian" && name != "apt" {
        name = "apt".into();
    } else if os_family == "Altlinux" && name == "apt" {
        name = "apt_rpm".into();
    }
    if name == "apt" && apt_rpm == Some(true) {
        name = "apt_rpm".into();
    }
    name
}

/// Ansible's service_mgr collector from the `svc` section.
pub fn service_mgr(kv: &[(String, String)], system: &str) -> String {
    let get = |k: &str| {
        kv.iter()
            .find(|(a, _)| a == k)
            .map(|(_, b)| b.trim().to_string())
    };
    let mut p1 = get("comm").filter(|s| !s.is_empty());
    if p1.is_none() {
        p1 = get("ps").filter(|s| {
            !s.is_empty() && s != "COMMAND" && !Regex::new(r"^ *[0-9]+ ").expect("re").is_match(s)
        });
    }
    if p1.is_none() {
        p1 = get("init");
    }
    let p1 = p1
        .map(|p| p.rsplit('/').next().unwrap_or("").trim().to_string())
        .filter(|p| !(p == "init" || p.ends_with("sh") || p.is_empty()));
    if let Some(p) = p1 {
        return match p.as_str() {
            "procd" => "openwrt_init",
            "runit-init" => "runit",
            "svscan" => "svc",
            "openrc-init" => "openrc",
            other => other,
        }
        .to_string();
    }
    if system == "Linux" {
        let systemctl = get("systemctl").is_some();
        if systemctl && get("canary").is_some() {
            return "systemd".into();
        }
        if get("upstart").is_some() {
            return "upstart".into();
        }
        if get("openrc").is_some() {
            return "openrc".into();
        }
        if systemctl
            && get("init")
                .map(|i| i.rsplit('/').next() == Some("systemd"))
                .unwrap_or(false)
        {
            return "systemd".into();
        }
        if get("initd").is_some() {
            return "sysvinit".into();
        }
        if get("dinit").is_some() {
            return "dinit".into();
        }
    }
    "service".into()
}

// ---------------------------------------------------------------- network

fn prefix_to_mask(p: u32) -> std::net::Ipv4Addr {
    let m: u32 = if p == 0 {
        0
    } else {
        u32::MAX << (32 - p.min(32))
    };
    std::net::Ipv4Addr::from(m)
}

/// `/sys/class/net` lines plus `ip -o addr` and `ip route` output → Ansible's network facts.
pub fn network_facts(raw: &Raw) -> Map<String, Value> {
    let mut ifaces: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for line in raw.sec("link").unwrap_or_default().lines() {
        let f: Vec<&str> = line.split('|').collect();
        if f.len() < 9 || f[0].is_empty() {
            continue;
        }
        let mut m = Map::new();
        m.insert("device".into(), json!(f[0]));
        let typ = match f[6] {
            "" => match f[1] {
                "1" => "ether",
                "32" => "infiniband",
                "512" => "ppp",
                "772" => "loopback",
                "65534" => "tunnel",
                _ => "unknown",
            },
            k => k,
        };
        m.insert("type".into(), json!(typ));
        if !f[3].is_empty() && f[3] != "00:00:00:00:00:00" {
            m.insert("macaddress".into(), json!(f[3]));
        }
        if let Ok(mtu) = f[4].parse::<i64>() {
            m.insert("mtu".into(), json!(mtu));
        }
        m.insert("active".into(), json!(f[2] != "down"));
        if let Some(fl) = f[5]
            .strip_prefix("0x")
            .and_then(|h| i64::from_str_radix(h, 16).ok())
        {
            m.insert("promisc".into(), json!(fl & 0x100 != 0));
        }
        if !f[7].is_empty() {
            m.insert("module".into(), json!(f[7]));
        }
        if typ == "ether" {
            if let Ok(sp) = f[8].trim().parse::<i64>() {
                m.insert("speed".into(), json!(sp));
            }
        }
        ifaces.insert(f[0].to_string(), m);
    }
    let mut all4: Vec<Value> = Vec::new();
    let mut all6: Vec<Value> = Vec::new();
    // (device, address, label) of primary IPv4 addresses.
    let mut v4info: Vec<(String, Map<String, Value>)> = Vec::new();
    for line in raw.sec("addr4").unwrap_or_default().lines() {
        let line = line.split('\\').next().unwrap_or("");
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 4 {
            continue;
        }
        let dev = w[1]
            .trim_end_matches(':')
            .split('@')
            .next()
            .unwrap_or("")
            .to_string();
        let Some(i) = w.iter().position(|x| *x == "inet") else {
            continue;
        };
        let Some(cidr) = w.get(i + 1) else { continue };
        let (addr, pfx) = cidr.split_once('/').unwrap_or((cidr, "32"));
        let Ok(ip) = addr.parse::<std::net::Ipv4Addr>() else {
            continue;
        };
        let plen: u32 = pfx.parse().unwrap_or(32);
        let mask = prefix_to_mask(plen);
        let net = std::net::Ipv4Addr::from(u32::from(ip) & u32::from(mask));
        let brd = w
            .iter()
            .position(|x| *x == "brd")
            .and_then(|j| w.get(j + 1))
            .map(|s| s.to_string())
            .unwrap_or_default();
        let secondary = w.contains(&"secondary");
        let label = w.last().copied().unwrap_or("");
        let mut a = Map::new();
        a.insert("address".into(), json!(addr));
        a.insert("broadcast".into(), json!(brd));
        a.insert("netmask".into(), json!(mask.to_string()));
        a.insert("network".into(), json!(net.to_string()));
        a.insert("prefix".into(), json!(plen.to_string()));
        if !addr.starts_with("127.") {
            all4.push(json!(addr));
        }
        let e = ifaces.entry(dev.clone()).or_insert_with(|| {
            let mut m = Map::new();
            m.insert("device".into(), json!(dev));
            m
        });
        if secondary || e.contains_key("ipv4") {
            let list = e.entry("ipv4_secondaries").or_insert_with(|| json!([]));
            if let Value::Array(l) = list {
                l.push(Value::Object(a.clone()));
            }
        } else {
            e.insert("ipv4".into(), Value::Object(a.clone()));
        }
        let mut a2 = a;
        a2.insert("alias".into(), json!(label));
        v4info.push((dev, a2));
    }
    let mut v6info: Vec<(String, Map<String, Value>)> = Vec::new();
    for line in raw.sec("addr6").unwrap_or_default().lines() {
        let line = line.split('\\').next().unwrap_or("");
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 4 {
            continue;
        }
        let dev = w[1]
            .trim_end_matches(':')
            .split('@')
            .next()
            .unwrap_or("")
            .to_string();
        let Some(i) = w.iter().position(|x| *x == "inet6") else {
            continue;
        };
        let Some(cidr) = w.get(i + 1) else { continue };
        let (addr, pfx) = cidr.split_once('/').unwrap_or((cidr, "128"));
        let scope = w
            .iter()
            .position(|x| *x == "scope")
            .and_then(|j| w.get(j + 1))
            .copied()
            .unwrap_or("");
        let mut a = Map::new();
        a.insert("address".into(), json!(addr));
        a.insert("prefix".into(), json!(pfx));
        a.insert("scope".into(), json!(scope));
        if addr != "::1" {
            all6.push(json!(addr));
        }
        let e = ifaces.entry(dev.clone()).or_insert_with(|| {
            let mut m = Map::new();
            m.insert("device".into(), json!(dev));
            m
        });
        let list = e.entry("ipv6").or_insert_with(|| json!([]));
        if let Value::Array(l) = list {
            l.push(Value::Object(a.clone()));
        }
        v6info.push((dev, a));
    }
    let default_route = |sec: &str| -> Option<(String, Option<String>, Option<String>)> {
        let mut best: Option<(i64, String, Option<String>, Option<String>)> = None;
        for line in raw.sec(sec).unwrap_or_default().lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            if w.first() != Some(&"default") {
                continue;
            }
            let after = |k: &str| {
                w.iter()
                    .position(|x| *x == k)
                    .and_then(|j| w.get(j + 1))
                    .map(|s| s.to_string())
            };
            let Some(dev) = after("dev") else { continue };
            let metric = after("metric").and_then(|m| m.parse().ok()).unwrap_or(0);
            if best.as_ref().map(|b| metric < b.0).unwrap_or(true) {
                best = Some((metric, dev, after("via"), after("src")));
            }
        }
        best.map(|(_, d, g, s)| (d, g, s))
    };
    let iface_extra = |dev: &str, m: &mut Map<String, Value>| {
        if let Some(i) = ifaces.get(dev) {
            for k in ["macaddress", "mtu", "type"] {
                if let Some(v) = i.get(k) {
                    m.insert(k.into(), v.clone());
                }
            }
            if !m.contains_key("macaddress") {
                m.insert("macaddress".into(), json!("unknown"));
            }
            if !m.contains_key("type") {
                m.insert("type".into(), json!("unknown"));
            }
        }
    };
    let mut def4 = Map::new();
    if let Some((dev, gw, src)) = default_route("route4") {
        def4.insert("interface".into(), json!(dev));
        if let Some(g) = gw {
            def4.insert("gateway".into(), json!(g));
        }
        let pick = v4info
            .iter()
            .find(|(d, a)| {
                *d == dev
                    && src
                        .as_deref()
                        .map(|s| a.get("address") == Some(&json!(s)))
                        .unwrap_or(true)
            })
            .or_else(|| v4info.iter().find(|(d, _)| *d == dev));
        if let Some((_, a)) = pick {
            for (k, v) in a {
                def4.insert(k.clone(), v.clone());
            }
        } else if let Some(s) = src {
            def4.insert("address".into(), json!(s));
        }
        iface_extra(&dev, &mut def4);
    }
    let mut def6 = Map::new();
    if let Some((dev, gw, src)) = default_route("route6") {
        def6.insert("interface".into(), json!(dev));
        if let Some(g) = gw {
            def6.insert("gateway".into(), json!(g));
        }
        let pick = v6info
            .iter()
            .find(|(d, a)| {
                *d == dev
                    && src
                        .as_deref()
                        .map(|s| a.get("address") == Some(&json!(s)))
                        .unwrap_or(a.get("scope") == Some(&json!("global")))
            })
            .or_else(|| v6info.iter().find(|(d, _)| *d == dev));
        if let Some((_, a)) = pick {
            for (k, v) in a {
                def6.insert(k.clone(), v.clone());
            }
        }
        iface_extra(&dev, &mut def6);
    }
    let mut out = Map::new();
    out.insert(
        "interfaces".into(),
        Value::Array(ifaces.keys().map(|k| json!(k)).collect()),
    );
    out.insert("default_ipv4".into(), Value::Object(def4));
    out.insert("default_ipv6".into(), Value::Object(def6));
    out.insert("all_ipv4_addresses".into(), Value::Array(all4));
    out.insert("all_ipv6_addresses".into(), Value::Array(all6));
    for (name, m) in ifaces {
        out.insert(name, Value::Object(m));
    }
    out
}

// ---------------------------------------------------------------- hardware

/// Ansible's Linux `get_cpu_facts` from the filtered `/proc/cpuinfo` lines.
pub fn cpu_facts(cpuinfo: &str, architecture: &str, nproc: Option<i64>) -> Map<String, Value> {
    let mut processor: Vec<Value> = Vec::new();
    let mut i: i64 = 0;
    let (mut vendor_occ, mut model_occ, mut proc_occ) = (0, 0, 0);
    let mut sockets: indexmap::IndexMap<String, i64> = indexmap::IndexMap::new();
    let mut cores: indexmap::IndexMap<String, i64> = indexmap::IndexMap::new();
    let (mut physid, mut coreid) = (String::new(), String::new());
    let mut processor_cores_override: Option<i64> = None;
    for line in cpuinfo.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let key = k.trim();
        let val = v.trim().to_string();
        match key {
            "model name" | "Processor" | "vendor_id" | "cpu" | "Vendor" | "processor" => {
                processor.push(json!(val));
                match key {
                    "vendor_id" => vendor_occ += 1,
                    "model name" => model_occ += 1,
                    "processor" => {
                        proc_occ += 1;
                        i += 1;
                    }
                    _ => {}
                }
            }
            "physical id" => {
                physid = val.clone();
                sockets.entry(val).or_insert(1);
            }
            "core id" => {
                coreid = val.clone();
                cores.entry(val).or_insert(1);
            }
            "cpu cores" => {
                sockets.insert(physid.clone(), val.parse().unwrap_or(1));
            }
            "siblings" => {
                cores.insert(coreid.clone(), val.parse().unwrap_or(1));
            }
            "# processors" => processor_cores_override = val.parse().ok(),
            "ncpus active" => i = val.parse().unwrap_or(i),
            _ => {}
        }
    }
    if vendor_occ > 0 && vendor_occ == model_occ {
        i = vendor_occ;
    }
    if architecture.starts_with("armv")
        || architecture.starts_with("aarch")
        || architecture.starts_with("ppc")
    {
        i = proc_occ;
    }
    let mut m = Map::new();
    m.insert("processor".into(), Value::Array(processor));
    if architecture != "s390x" {
        let count = if sockets.is_empty() {
            i
        } else {
            sockets.len() as i64
        };
        let first_socket = sockets.values().next().copied().unwrap_or(0);
        let pcores = if first_socket > 0 {
            first_socket
        } else {
            processor_cores_override.unwrap_or(1)
        };
        let tpc = if !sockets.is_empty() && first_socket > 0 {
            cores.values().next().copied().unwrap_or(1) / first_socket
        } else {
            1
        };
        let tpc = tpc.max(1);
        m.insert("processor_count".into(), json!(count));
        m.insert("processor_cores".into(), json!(pcores));
        m.insert("processor_threads_per_core".into(), json!(tpc));
        m.insert("processor_vcpus".into(), json!(tpc * count * pcores));
    }
    m.insert("processor_nproc".into(), json!(nproc.unwrap_or(i)));
    m
}

/// `/proc/meminfo` → memtotal_mb, memfree_mb, swaptotal_mb, swapfree_mb and memory_mb.
pub fn memory_facts(meminfo: &str) -> Map<String, Value> {
    let mut st: BTreeMap<String, i64> = BTreeMap::new();
    let mut m = Map::new();
    for line in meminfo.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let Some(val) = v
            .split_whitespace()
            .next()
            .and_then(|x| x.parse::<i64>().ok())
        else {
            continue;
        };
        if ["MemTotal", "SwapTotal", "MemFree", "SwapFree"].contains(&k) {
            m.insert(format!("{}_mb", k.to_lowercase()), json!(val / 1024));
        }
        if [
            "MemTotal",
            "SwapTotal",
            "MemFree",
            "SwapFree",
            "Buffers",
            "Cached",
            "SwapCached",
        ]
        .contains(&k)
        {
            st.insert(k.to_lowercase(), val / 1024);
        }
    }
    let g = |k: &str| st.get(k).copied();
    let real_used = g("memtotal").zip(g("memfree")).map(|(a, b)| a - b);
    let nc_free = match (g("cached"), g("memfree"), g("buffers")) {
        (Some(a), Some(b), Some(c)) => Some(a + b + c),
        _ => None,
    };
    let nc_used = g("memtotal").zip(nc_free).map(|(a, b)| a - b);
    let swap_used = g("swaptotal").zip(g("swapfree")).map(|(a, b)| a - b);
    m.insert(
        "memory_mb".into(),
        json!({
            "real": {"total": g("memtotal"), "used": real_used, "free": g("memfree")},
            "nocache": {"free": nc_free, "used": nc_used},
            "swap": {"total": g("swaptotal"), "free": g("swapfree"), "used": swap_used, "cached": g("swapcached")},
        }),
    );
    m
}

/// `\040`-style escapes of /proc/mounts.
fn unescape_octal(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') as u32 * 64
                + (b[i + 2] - b'0') as u32 * 8
                + (b[i + 3] - b'0') as u32;
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn mount_facts(mounts: &str, uuids: &str) -> Value {
    let uuid: BTreeMap<&str, &str> = uuids.lines().filter_map(|l| l.split_once('|')).collect();
    let mut list = Vec::new();
    for line in mounts.lines() {
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 7 {
            continue;
        }
        let device = unescape_octal(f[0]);
        let mut m = Map::new();
        m.insert("mount".into(), json!(unescape_octal(f[1])));
        m.insert("device".into(), json!(device));
        m.insert("fstype".into(), json!(f[2]));
        m.insert("options".into(), json!(f[3]));
        m.insert("dump".into(), json!(f[4].parse::<i64>().unwrap_or(0)));
        m.insert("passno".into(), json!(f[5].parse::<i64>().unwrap_or(0)));
        let s: Vec<i64> = f[6]
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if s.len() == 7 {
            // %S fragment size, %s block size, %b blocks, %f free, %a avail, %c inodes, %d free inodes
            let (frsize, bsize, blocks, bfree, bavail, files, ffree) =
                (s[0], s[1], s[2], s[3], s[4], s[5], s[6]);
            m.insert("size_total".into(), json!(frsize * blocks));
            m.insert("size_available".into(), json!(frsize * bavail));
            m.insert("block_size".into(), json!(bsize));
            m.insert("block_total".into(), json!(blocks));
            m.insert("block_available".into(), json!(bavail));
            m.insert("block_used".into(), json!(blocks - bfree));
            m.insert("inode_total".into(), json!(files));
            m.insert("inode_available".into(), json!(ffree));
            m.insert("inode_used".into(), json!(files - ffree));
        }
        m.insert(
            "uuid".into(),
            json!(uuid.get(device.as_str()).copied().unwrap_or("N/A")),
        );
        list.push(Value::Object(m));
    }
    Value::Array(list)
}

const FORM_FACTOR: &[&str] = &[
    "Unknown",
    "Other",
    "Unknown",
    "Desktop",
    "Low Profile Desktop",
    "Pizza Box",
    "Mini Tower",
    "Tower",
    "Portable",
    "Laptop",
    "Notebook",
    "Hand Held",
    "Docking Station",
    "All In One",
    "Sub Notebook",
    "Space-saving",
    "Lunch Box",
    "Main Server Chassis",
    "Expansion Chassis",
    "Sub Chassis",
    "Bus Expansion Chassis",
    "Peripheral Chassis",
    "RAID Chassis",
    "Rack Mount Chassis",
    "Sealed-case PC",
    "Multi-system",
    "CompactPCI",
    "AdvancedTCA",
    "Blade",
    "Blade Enclosure",
    "Tablet",
    "Convertible",
    "Detachable",
    "IoT Gateway",
    "Embedded PC",
    "Mini PC",
    "Stick PC",
];

fn dmi(raw: &Raw, k: &str) -> Option<String> {
    raw.file(&format!("/sys/devices/virtual/dmi/id/{k}"))
        .map(|s| s.trim().to_string())
}

pub fn dmi_facts(raw: &Raw) -> Map<String, Value> {
    let mut m = Map::new();
    let keys: &[(&str, &str)] = &[
        ("bios_date", "bios_date"),
        ("bios_vendor", "bios_vendor"),
        ("bios_version", "bios_version"),
        ("board_asset_tag", "board_asset_tag"),
        ("board_name", "board_name"),
        ("board_serial", "board_serial"),
        ("board_vendor", "board_vendor"),
        ("board_version", "board_version"),
        ("chassis_asset_tag", "chassis_asset_tag"),
        ("chassis_serial", "chassis_serial"),
        ("chassis_vendor", "chassis_vendor"),
        ("chassis_version", "chassis_version"),
        ("product_name", "product_name"),
        ("product_serial", "product_serial"),
        ("product_uuid", "product_uuid"),
        ("product_version", "product_version"),
        ("system_vendor", "sys_vendor"),
    ];
    for (fact, file) in keys {
        m.insert(
            fact.to_string(),
            json!(dmi(raw, file).unwrap_or_else(|| "NA".into())),
        );
    }
    let ff = dmi(raw, "chassis_type")
        .and_then(|t| t.parse::<usize>().ok())
        .and_then(|i| FORM_FACTOR.get(i).copied())
        .unwrap_or("NA");
    m.insert("form_factor".into(), json!(ff));
    m
}

/// A trimmed version of Ansible's LinuxVirtual: containers, common hypervisors, else NA.
pub fn virtual_facts(raw: &Raw) -> Map<String, Value> {
    let mut guest: BTreeSet<String> = BTreeSet::new();
    let host: BTreeSet<String> = BTreeSet::new();
    let mut found: Option<(String, String)> = None;
    let mut set = |t: &str, role: &str, guest: &mut BTreeSet<String>| {
        guest.insert(t.to_string());
        if found.is_none() {
            found = Some((t.to_string(), role.to_string()));
        }
    };
    let kv = raw.kv("virt");
    let exists = |p: &str| kv.iter().any(|(k, v)| k == "exists" && v == p);
    if let Some(cg) = raw.file("/proc/1/cgroup") {
        let docker = Regex::new(r"/docker(/|-[0-9a-f]+\.scope)").expect("re");
        for line in cg.lines() {
            if docker.is_match(line) {
                set("docker", "guest", &mut guest);
            }
            if line.contains("/lxc/") || line.contains("/machine.slice/machine-lxc") {
                set("lxc", "guest", &mut guest);
            }
            if line.contains("/system.slice/containerd.service") {
                set("containerd", "guest", &mut guest);
            }
        }
    }
    for (k, v) in &kv {
        if k == "env" {
            if v.contains("container=lxc") {
                set("lxc", "guest", &mut guest);
            }
            if v.contains("container=podman") {
                set("podman", "guest", &mut guest);
            }
            if v.starts_with("container=") && v.len() > "container=".len() {
                set("container", "guest", &mut guest);
            }
        }
    }
    if exists("/proc/vz") && !exists("/proc/lve") {
        set(
            "openvz",
            if exists("/proc/bc") { "host" } else { "guest" },
            &mut guest,
        );
    }
    let systemd_container = raw
        .file("/run/systemd/container")
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    if let Some(c) = &systemd_container {
        set(c, "guest", &mut guest);
    }
    if exists("/.dockerenv") || exists("/.dockerinit") {
        set("docker", "guest", &mut guest);
    }
    if exists("/run/.containerenv") {
        set("podman", "guest", &mut guest);
    }
    if guest
        .iter()
        .any(|t| ["docker", "lxc", "podman", "openvz", "containerd"].contains(&t.as_str()))
        || systemd_container.is_some()
    {
        guest.insert("container".into());
    }
    if exists("/proc/xen") {
        let role = if raw
            .file("/proc/xen/capabilities")
            .map(|c| c.contains("control_d"))
            .unwrap_or(false)
        {
            "host"
        } else {
            "guest"
        };
        set("xen", role, &mut guest);
    }
    let product = dmi(raw, "product_name").unwrap_or_default();
    let vendor = dmi(raw, "sys_vendor").unwrap_or_default();
    let bios = dmi(raw, "bios_vendor").unwrap_or_default();
    let family = dmi(raw, "product_family").unwrap_or_default();
    if ["KVM", "KVM Server", "Bochs", "AHV"].contains(&product.as_str()) {
        set("kvm", "guest", &mut guest);
    }
    if vendor == "oVirt" {
        set("oVirt", "guest", &mut guest);
    }
    if vendor == "Red Hat" {
        set(
            if family == "RHV" { "RHV" } else { "RHEV" },
            "guest",
            &mut guest,
        );
    }
    if product.starts_with("VMware") || vendor.starts_with("VMware") {
        set("VMware", "guest", &mut guest);
    }
    if product == "OpenStack Compute"
        || product == "OpenStack Nova"
        || vendor == "OpenStack Foundation"
    {
        set("openstack", "guest", &mut guest);
    }
    if bios == "Xen" {
        set("xen", "guest", &mut guest);
    }
    if bios == "innotek GmbH" {
        set("virtualbox", "guest", &mut guest);
    }
    if ["Amazon EC2", "DigitalOcean", "Hetzner"].contains(&bios.as_str())
        || [
            "QEMU",
            "Amazon EC2",
            "DigitalOcean",
            "Google",
            "Scaleway",
            "Nutanix",
        ]
        .contains(&vendor.as_str())
    {
        set("kvm", "guest", &mut guest);
    }
    if vendor == "KubeVirt" {
        set("KubeVirt", "guest", &mut guest);
    }
    if vendor == "Microsoft Corporation" {
        set("VirtualPC", "guest", &mut guest);
    }
    if vendor == "Parallels Software International Inc." {
        set("parallels", "guest", &mut guest);
    }
    for (k, v) in &kv {
        if k == "cpu" {
            if v.contains("QEMU") {
                set("kvm", "guest", &mut guest);
            } else if v.contains("User Mode Linux") {
                set("uml", "guest", &mut guest);
            } else if v.contains("VirtualBox") {
                set("virtualbox", "guest", &mut guest);
            }
        }
    }
    let (t, r) = found.unwrap_or_else(|| ("NA".into(), "NA".into()));
    let mut m = Map::new();
    m.insert("virtualization_type".into(), json!(t));
    m.insert("virtualization_role".into(), json!(r));
    m.insert(
        "virtualization_tech_guest".into(),
        json!(guest.into_iter().collect::<Vec<_>>()),
    );
    m.insert(
        "virtualization_tech_host".into(),
        json!(host.into_iter().collect::<Vec<_>>()),
    );
    m
}

// ---------------------------------------------------------------- misc collectors

/// `date +'%s|%N|%Y|%m|%d|%H|%M|%S|%Z|%z|%A|%w|%W'` plus the January/July zone lines.
pub fn date_time_facts(sec: &str) -> Map<String, Value> {
    let mut lines = sec.lines();
    let main = lines.next().unwrap_or("");
    let f: Vec<&str> = main.split('|').collect();
    let mut m = Map::new();
    if f.len() < 13 {
        return m;
    }
    let epoch: i64 = f[0].trim().parse().unwrap_or(0);
    let nanos: String = f[1].chars().filter(|c| c.is_ascii_digit()).collect();
    let micro = if nanos.len() >= 6 {
        nanos[..6].to_string()
    } else {
        "000000".to_string()
    };
    let (y, mo, d, h, mi, s) = (f[2], f[3], f[4], f[5], f[6], f[7]);
    let utc = chrono::DateTime::<chrono::Utc>::from_timestamp(epoch, 0).unwrap_or_default();
    let put = |m: &mut Map<String, Value>, k: &str, v: String| {
        m.insert(k.into(), Value::String(v));
    };
    put(&mut m, "year", y.into());
    put(&mut m, "month", mo.into());
    put(&mut m, "weekday", f[10].into());
    put(&mut m, "weekday_number", f[11].into());
    put(&mut m, "weeknumber", f[12].into());
    put(&mut m, "day", d.into());
    put(&mut m, "hour", h.into());
    put(&mut m, "minute", mi.into());
    put(&mut m, "second", s.into());
    put(&mut m, "epoch", epoch.to_string());
    put(&mut m, "epoch_int", epoch.to_string());
    put(&mut m, "date", format!("{y}-{mo}-{d}"));
    put(&mut m, "time", format!("{h}:{mi}:{s}"));
    put(
        &mut m,
        "iso8601_micro",
        format!("{}.{micro}Z", utc.format("%Y-%m-%dT%H:%M:%S")),
    );
    put(
        &mut m,
        "iso8601",
        utc.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    put(
        &mut m,
        "iso8601_basic",
        format!("{y}{mo}{d}T{h}{mi}{s}{micro}"),
    );
    put(
        &mut m,
        "iso8601_basic_short",
        format!("{y}{mo}{d}T{h}{mi}{s}"),
    );
    put(&mut m, "tz", f[8].into());
    put(&mut m, "tz_offset", f[9].into());
    // tz_dst: the zone name with the larger offset of January and July.
    let zones: Vec<(String, i64)> = lines
        .take(2)
        .filter_map(|l| l.split_once('|'))
        .map(|(n, o)| {
            (
                n.to_string(),
                o.trim().trim_start_matches('+').parse::<i64>().unwrap_or(0),
            )
        })
        .collect();
    let dst = match zones.as_slice() {
        [(a, oa), (b, ob)] => {
            if ob >= oa {
                b.clone()
            } else {
                a.clone()
            }
        }
        _ => f[8].to_string(),
    };
    put(&mut m, "tz_dst", dst);
    m
}

pub fn dns_facts(resolv: &str) -> Value {
    let mut d = Map::new();
    for line in resolv.lines() {
        if line.starts_with('#') || line.starts_with(';') || line.trim().is_empty() {
            continue;
        }
        let t: Vec<&str> = line.split_whitespace().collect();
        match t[0] {
            "nameserver" => {
                let e = d.entry("nameservers").or_insert_with(|| json!([]));
                if let Value::Array(a) = e {
                    a.extend(t[1..].iter().map(|x| json!(x)));
                }
            }
            "domain" if t.len() > 1 => {
                d.insert("domain".into(), json!(t[1]));
            }
            "search" => {
                d.insert("search".into(), json!(t[1..]));
            }
            "sortlist" => {
                d.insert("sortlist".into(), json!(t[1..]));
            }
            "options" => {
                let mut o = Map::new();
                for opt in &t[1..] {
                    match opt.split_once(':') {
                        Some((k, v)) if !v.is_empty() => o.insert(k.into(), json!(v)),
                        Some((k, _)) => o.insert(k.into(), json!(true)),
                        None => o.insert(opt.to_string(), json!(true)),
                    };
                }
                d.insert("options".into(), Value::Object(o));
            }
            _ => {}
        }
    }
    Value::Object(d)
}

pub fn cmdline_facts(data: &str) -> (Value, Value) {
    let mut c = Map::new();
    let mut p = Map::new();
    for piece in data.split_whitespace() {
        match piece.split_once('=') {
            None => {
                c.insert(piece.into(), json!(true));
                p.insert(piece.into(), json!(true));
            }
            Some((k, v)) => {
                c.insert(k.into(), json!(v));
                match p.get_mut(k) {
                    Some(Value::Array(a)) => a.push(json!(v)),
                    Some(old) => {
                        let prev = old.clone();
                        *old = json!([prev, v]);
                    }
                    None => {
                        p.insert(k.into(), json!(v));
                    }
                }
            }
        }
    }
    (Value::Object(c), Value::Object(p))
}

/// Python configparser-style INI (options lower-cased) → {section: {option: value}}.
pub fn parse_ini(data: &str) -> Option<Value> {
    let mut out = Map::new();
    let mut cur: Option<String> = None;
    let mut last_key: Option<String> = None;
    for line in data.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        if t.starts_with('[') && t.ends_with(']') {
            let name = t[1..t.len() - 1].to_string();
            out.entry(name.clone()).or_insert_with(|| json!({}));
            cur = Some(name);
            last_key = None;
            continue;
        }
        let sect = cur.as_ref()?;
        if line.starts_with([' ', '\t']) {
            if let (Some(k), Some(Value::Object(s))) = (&last_key, out.get_mut(sect)) {
                if let Some(Value::String(v)) = s.get_mut(k) {
                    v.push('\n');
                    v.push_str(t);
                }
            }
            continue;
        }
        let pos = t.find(['=', ':']);
        let (k, v) = match pos {
            Some(p) => (t[..p].trim(), t[p + 1..].trim()),
            None => return None,
        };
        let k = k.to_lowercase();
        if let Some(Value::Object(s)) = out.get_mut(sect) {
            s.insert(k.clone(), json!(v));
        }
        last_key = Some(k);
    }
    Some(Value::Object(out))
}

pub fn local_facts(raw: &Raw, fact_path: &str) -> (Value, Vec<String>) {
    let mut m = Map::new();
    let mut warnings = Vec::new();
    for (name, rc, exe, out, err) in &raw.facts {
        let path = format!("{}/{name}.fact", fact_path.trim_end_matches('/'));
        let v = if *exe && *rc != 0 {
            json!(format!(
                "Failure executing fact script ({path}), rc: {rc}, err: {err}"
            ))
        } else if let Ok(j) = serde_json::from_str::<Value>(out) {
            j
        } else if let Some(ini) = parse_ini(out) {
            ini
        } else {
            let w = format!("error loading facts as JSON or ini - please check content: {path}");
            warnings.push(w.clone());
            json!(w)
        };
        m.insert(name.clone(), v);
    }
    (Value::Object(m), warnings)
}

fn user_facts(raw: &Raw) -> Map<String, Value> {
    let kv = raw.kv("user");
    let get = |k: &str| {
        kv.iter()
            .find(|(a, _)| a == k)
            .map(|(_, b)| b.clone())
            .unwrap_or_default()
    };
    let num = |k: &str| {
        get(k)
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or(Value::Null)
    };
    let mut m = Map::new();
    m.insert("user_id".into(), json!(get("name")));
    m.insert("user_uid".into(), num("uid"));
    m.insert("user_gid".into(), num("gid"));
    let pw: Vec<String> = get("pw").split(':').map(str::to_string).collect();
    if pw.len() >= 7 {
        m.insert("user_gecos".into(), json!(pw[4]));
        m.insert("user_dir".into(), json!(pw[5]));
        m.insert("user_shell".into(), json!(pw[6]));
    }
    m.insert("real_user_id".into(), num("uid"));
    m.insert("effective_user_id".into(), num("euid"));
    m.insert("real_group_id".into(), num("gid"));
    m.insert("effective_group_id".into(), num("egid"));
    m
}

fn env_facts(raw: &Raw) -> Value {
    let body = raw.secs.get("env").cloned().unwrap_or_default();
    let text = String::from_utf8_lossy(&body).into_owned();
    let items: Vec<&str> = if text.contains('\0') {
        text.split('\0').collect()
    } else {
        text.lines().collect()
    };
    let mut m = Map::new();
    for it in items {
        if let Some((k, v)) = it.split_once('=') {
            if !k.is_empty() {
                m.insert(k.to_string(), json!(v));
            }
        }
    }
    Value::Object(m)
}

fn platform_facts(raw: &Raw) -> Map<String, Value> {
    let mut m = Map::new();
    let un = raw.sec("uname").unwrap_or_default();
    let u: Vec<&str> = un.lines().collect();
    let g = |i: usize| u.get(i).map(|s| s.trim().to_string()).unwrap_or_default();
    let (system, kernel, kver, machine, node) = (g(0), g(1), g(2), g(3), g(4));
    m.insert("system".into(), json!(system));
    m.insert("kernel".into(), json!(kernel));
    m.insert("kernel_version".into(), json!(kver));
    m.insert("machine".into(), json!(machine));
    let fqdn = raw
        .sec("fqdn")
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let fqdn = if fqdn.is_empty() { node.clone() } else { fqdn };
    m.insert("fqdn".into(), json!(fqdn));
    m.insert(
        "hostname".into(),
        json!(node.split('.').next().unwrap_or("")),
    );
    m.insert("nodename".into(), json!(node));
    m.insert(
        "domain".into(),
        json!(fqdn.split('.').skip(1).collect::<Vec<_>>().join(".")),
    );
    let bits = raw.sec("bits").unwrap_or_default().trim().to_string();
    if !bits.is_empty() {
        m.insert("userspace_bits".into(), json!(bits));
    }
    let arch = if Regex::new(r"^i([3456]86|86pc)$")
        .expect("re")
        .is_match(&machine)
    {
        "i386".to_string()
    } else {
        machine.clone()
    };
    m.insert("architecture".into(), json!(arch));
    if machine == "x86_64" && !bits.is_empty() {
        m.insert(
            "userspace_architecture".into(),
            json!(if bits == "64" { "x86_64" } else { "i386" }),
        );
    }
    let mid = raw
        .file("/var/lib/dbus/machine-id")
        .filter(|s| !s.trim().is_empty())
        .or_else(|| raw.file("/etc/machine-id"))
        .unwrap_or("");
    if let Some(first) = mid.lines().next().map(str::trim).filter(|s| !s.is_empty()) {
        m.insert("machine_id".into(), json!(first));
    }
    m
}

fn selinux_facts(raw: &Raw) -> Value {
    let kv = raw.kv("selinux");
    let get = |k: &str| {
        kv.iter()
            .find(|(a, _)| a == k)
            .map(|(_, b)| b.trim().to_string())
    };
    let Some(enforce) = get("enforce") else {
        return json!({"status": "disabled"});
    };
    let mut m = Map::new();
    m.insert("status".into(), json!("enabled"));
    m.insert(
        "mode".into(),
        json!(if enforce == "1" {
            "enforcing"
        } else {
            "permissive"
        }),
    );
    if let Some(p) = get("policyvers").and_then(|p| p.parse::<i64>().ok()) {
        m.insert("policyvers".into(), json!(p));
    }
    if let Some(cfg) = raw.file("/etc/selinux/config") {
        for line in cfg.lines() {
            if let Some(v) = line.trim().strip_prefix("SELINUX=") {
                m.insert("config_mode".into(), json!(v.trim()));
            }
            if let Some(v) = line.trim().strip_prefix("SELINUXTYPE=") {
                m.insert("type".into(), json!(v.trim()));
            }
        }
    }
    Value::Object(m)
}

/// Everything, keyed without `ansible_` (and with `-` as `_`), for the selected subsets.
pub fn build_facts(
    raw: &Raw,
    sel: &BTreeSet<String>,
    fact_path: &str,
    gather_subset: &[String],
) -> (Map<String, Value>, Vec<String>) {
    let h = |s: &str| sel.contains(s);
    let mut out = Map::new();
    let mut warnings = Vec::new();
    let plat = platform_facts(raw);
    let system = plat
        .get("system")
        .and_then(Value::as_str)
        .unwrap_or("Linux")
        .to_string();
    let arch = plat
        .get("architecture")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if h("platform") {
        out.extend(plat);
    }
    let dist = distribution_facts(&raw.files, raw.sec("lsbcmd").as_deref());
    let family = dist
        .get("os_family")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if h("distribution") {
        out.extend(dist);
    }
    if h("lsb") {
        out.insert(
            "lsb".into(),
            Value::Object(parse_lsb(
                raw.sec("lsbcmd").as_deref(),
                raw.file("/etc/lsb-release"),
            )),
        );
    }
    if h("pkg_mgr") {
        let mut present = Vec::new();
        let mut apt_rpm = None;
        for (k, v) in raw.kv("pkg") {
            if k == "APT_RPM" {
                apt_rpm = Some(v == "1");
            } else {
                present.push((k, v));
            }
        }
        out.insert("pkg_mgr".into(), json!(pkg_mgr(&family, &present, apt_rpm)));
    }
    if h("service_mgr") {
        out.insert(
            "service_mgr".into(),
            json!(service_mgr(&raw.kv("svc"), &system)),
        );
    }
    if h("user") {
        out.extend(user_facts(raw));
    }
    if h("env") {
        out.insert("env".into(), env_facts(raw));
    }
    if h("date_time") {
        out.insert(
            "date_time".into(),
            Value::Object(date_time_facts(&raw.sec("date").unwrap_or_default())),
        );
    }
    if h("selinux") {
        out.insert("selinux".into(), selinux_facts(raw));
    }
    if h("apparmor") {
        let on = raw
            .sec("apparmor")
            .map(|s| s.trim() == "enabled")
            .unwrap_or(false);
        out.insert(
            "apparmor".into(),
            json!({"status": if on { "enabled" } else { "disabled" }}),
        );
    }
    if h("fips") {
        out.insert(
            "fips".into(),
            json!(raw
                .file("/proc/sys/crypto/fips_enabled")
                .map(|s| s.trim() == "1")
                .unwrap_or(false)),
        );
    }
    if h("dns") {
        out.insert(
            "dns".into(),
            dns_facts(raw.file("/etc/resolv.conf").unwrap_or("")),
        );
    }
    if h("cmdline") {
        if let Some(c) = raw.file("/proc/cmdline") {
            let (a, b) = cmdline_facts(c);
            out.insert("cmdline".into(), a);
            out.insert("proc_cmdline".into(), b);
        }
    }
    if h("ssh_pub_keys") {
        for t in ["dsa", "rsa", "ecdsa", "ed25519"] {
            if let Some(k) = raw.file(&format!("/etc/ssh/ssh_host_{t}_key.pub")) {
                let w: Vec<&str> = k.split_whitespace().collect();
                if w.len() >= 2 {
                    out.insert(format!("ssh_host_key_{t}_public"), json!(w[1]));
                    out.insert(format!("ssh_host_key_{t}_public_keytype"), json!(w[0]));
                }
            }
        }
    }
    if h("local") {
        let (l, w) = local_facts(raw, fact_path);
        out.insert("local".into(), l);
        warnings.extend(w);
    }
    if h("hardware") {
        let nproc = raw.sec("nproc").and_then(|s| s.trim().parse().ok());
        out.extend(cpu_facts(
            &raw.sec("cpuinfo").unwrap_or_default(),
            &arch,
            nproc,
        ));
        out.extend(memory_facts(raw.file("/proc/meminfo").unwrap_or("")));
        if let Some(u) = raw
            .file("/proc/uptime")
            .and_then(|u| u.split_whitespace().next())
            .and_then(|x| x.parse::<f64>().ok())
        {
            out.insert("uptime_seconds".into(), json!(u as i64));
        }
    }
    if h("hardware") || h("dmi") {
        out.extend(dmi_facts(raw));
    }
    if h("hardware") || h("mounts") {
        out.insert(
            "mounts".into(),
            mount_facts(
                &raw.sec("mounts").unwrap_or_default(),
                &raw.sec("uuids").unwrap_or_default(),
            ),
        );
    }
    if h("loadavg") {
        if let Some(l) = raw.file("/proc/loadavg") {
            let w: Vec<f64> = l
                .split_whitespace()
                .take(3)
                .filter_map(|x| x.parse().ok())
                .collect();
            if w.len() == 3 {
                out.insert(
                    "loadavg".into(),
                    json!({"1m": w[0], "5m": w[1], "15m": w[2]}),
                );
            }
        }
    }
    if h("network") || h("interfaces") {
        out.extend(network_facts(raw));
    }
    if h("virtual") {
        out.extend(virtual_facts(raw));
    }
    out.insert("gather_subset".into(), json!(gather_subset));
    out.insert("module_setup".into(), json!(true));
    // Fact names use `_` where interface names have `-` (ansible_br_lan).
    let out = out
        .into_iter()
        .map(|(k, v)| (k.replace('-', "_"), v))
        .collect();
    (out, warnings)
}

/// Ansible's `filter`: fnmatch on `ansible_<name>`; a pattern without the
/// prefix is also tried with it.
pub fn apply_filter(facts: Map<String, Value>, filters: &[String]) -> Map<String, Value> {
    let pats: Vec<&String> = filters.iter().filter(|f| !f.is_empty()).collect();
    if pats.is_empty() || pats.iter().any(|p| p.as_str() == "*") {
        return facts;
    }
    let compiled: Vec<glob::Pattern> = pats
        .iter()
        .flat_map(|p| {
            let mut v = vec![p.to_string()];
            if !p.starts_with("ansible_") && !p.starts_with("facter") && !p.starts_with("ohai") {
                v.push(format!("ansible_{p}"));
            }
            v
        })
        .filter_map(|p| glob::Pattern::new(&p).ok())
        .collect();
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: false,
        require_literal_leading_dot: false,
    };
    facts
        .into_iter()
        .filter(|(k, _)| {
            compiled
                .iter()
                .any(|p| p.matches_with(&format!("ansible_{k}"), opts))
        })
        .collect()
}

#[async_trait]
impl Module for Setup {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let subset = args.list("gather_subset");
        let sel = resolve_subsets(&subset).map_err(ModError::fail)?;
        let fact_path = args.str("fact_path").unwrap_or("/etc/ansible/facts.d");
        let timeout = args.int("gather_timeout").unwrap_or(10);
        let needs = Needs::from(&sel);
        let out = ctx.sh(&script(&needs, fact_path, timeout)).await?;
        if !out
            .stdout
            .windows(b"@@ferry@@ end".len())
            .any(|w| w == b"@@ferry@@ end")
        {
            let mut data = Map::new();
            data.insert("rc".into(), out.rc.into());
            data.insert("stderr".into(), out.stderr_str().into());
            return Err(ModError::Failed {
                msg: format!(
                    "fact gathering script failed (rc={}): {}",
                    out.rc,
                    out.stderr_str().trim()
                ),
                data,
            });
        }
        let raw = parse_raw(&out.stdout);
        let shown_subset = if subset.is_empty() {
            vec!["all".to_string()]
        } else {
            subset
        };
        let (facts, warnings) = build_facts(&raw, &sel, fact_path, &shown_subset);
        let facts = apply_filter(facts, &args.list("filter"));
        let mut o = Outcome::ok();
        o.facts = Some(facts);
        if !warnings.is_empty() {
            o = o.with("warnings", warnings);
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::TestEnv;

    fn files(list: &[(&str, &str)]) -> BTreeMap<String, String> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pkgs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// (os_family, distribution, version, major, release, pkg_mgr)
    fn dist(
        f: &BTreeMap<String, String>,
        p: &[(String, String)],
    ) -> (String, String, String, String, String, String) {
        let d = distribution_facts(f, None);
        let s = |k: &str| {
            d.get(k)
                .and_then(Value::as_str)
                .unwrap_or("<none>")
                .to_string()
        };
        let fam = s("os_family");
        let pm = pkg_mgr(&fam, p, None);
        (
            fam,
            s("distribution"),
            s("distribution_version"),
            s("distribution_major_version"),
            s("distribution_release"),
            pm,
        )
    }

    fn t(
        a: &str,
        b: &str,
        c: &str,
        d: &str,
        e: &str,
        f: &str,
    ) -> (String, String, String, String, String, String) {
        (a.into(), b.into(), c.into(), d.into(), e.into(), f.into())
    }

    const DEBIAN12: &str = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\nVERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\nHOME_URL=\"https://www.debian.org/\"\nSUPPORT_URL=\"https://www.debian.org/support\"\nBUG_REPORT_URL=\"https://bugs.debian.org/\"\n";
    const DEBIAN11: &str = "PRETTY_NAME=\"Debian GNU/Linux 11 (bullseye)\"\nNAME=\"Debian GNU/Linux\"\nVERSION_ID=\"11\"\nVERSION=\"11 (bullseye)\"\nVERSION_CODENAME=bullseye\nID=debian\nHOME_URL=\"https://www.debian.org/\"\n";
    const APT: &[(&str, &str)] = &[("/usr/bin/apt-get", "/usr/bin/apt-get")];
    const DNF4: &[(&str, &str)] = &[
        ("/usr/bin/yum", "/usr/bin/dnf-3"),
        ("/usr/bin/dnf-3", "/usr/bin/dnf-3"),
        ("/usr/bin/dnf", "/usr/bin/dnf-3"),
        ("/usr/bin/rpm", "/usr/bin/rpm"),
    ];
    const DNF5: &[(&str, &str)] = &[
        ("/usr/bin/dnf5", "/usr/bin/dnf5"),
        ("/usr/bin/dnf", "/usr/bin/dnf5"),
        ("/usr/bin/rpm", "/usr/bin/rpm"),
    ];

    fn ubuntu(ver: &str, point: &str, code: &str, cap: &str) -> BTreeMap<String, String> {
        files(&[
            (
                "/etc/os-release",
                &format!("PRETTY_NAME=\"Ubuntu {point} LTS\"\nNAME=\"Ubuntu\"\nVERSION_ID=\"{ver}\"\nVERSION=\"{point} LTS ({cap})\"\nVERSION_CODENAME={code}\nID=ubuntu\nID_LIKE=debian\nHOME_URL=\"https://www.ubuntu.com/\"\nUBUNTU_CODENAME={code}\n"),
            ),
            ("/etc/lsb-release", &format!("DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE={ver}\nDISTRIB_CODENAME={code}\nDISTRIB_DESCRIPTION=\"Ubuntu {point} LTS\"\n")),
            ("/etc/debian_version", "bookworm/sid\n"),
        ])
    }

    fn el(os_release: &str, release_file: (&str, &str)) -> BTreeMap<String, String> {
        let mut f = files(&[("/etc/os-release", os_release), release_file]);
        f.insert("/etc/system-release".into(), release_file.1.into());
        f
    }

    #[test]
    fn debian_and_ubuntu() {
        let d12 = files(&[
            ("/etc/os-release", DEBIAN12),
            ("/etc/debian_version", "12.7\n"),
        ]);
        assert_eq!(
            dist(&d12, &pkgs(APT)),
            t("Debian", "Debian", "12.7", "12", "bookworm", "apt")
        );
        let d = distribution_facts(&d12, None);
        assert_eq!(d["distribution_file_variety"], "Debian");
        assert_eq!(d["distribution_minor_version"], "7");
        let d11 = files(&[
            ("/etc/os-release", DEBIAN11),
            ("/etc/debian_version", "11.11\n"),
        ]);
        assert_eq!(
            dist(&d11, &pkgs(APT)),
            t("Debian", "Debian", "11.11", "11", "bullseye", "apt")
        );
        // Even with dnf installed, a Debian host's package manager is apt.
        assert_eq!(
            dist(
                &d11,
                &pkgs(&[
                    ("/usr/bin/apt-get", "/usr/bin/apt-get"),
                    ("/usr/bin/dnf-3", "/usr/bin/dnf-3")
                ])
            )
            .5,
            "apt"
        );

        assert_eq!(
            dist(
                &ubuntu("20.04", "20.04.6", "focal", "Focal Fossa"),
                &pkgs(APT)
            ),
            t("Debian", "Ubuntu", "20.04", "20", "focal", "apt")
        );
        assert_eq!(
            dist(
                &ubuntu("22.04", "22.04.4", "jammy", "Jammy Jellyfish"),
                &pkgs(APT)
            ),
            t("Debian", "Ubuntu", "22.04", "22", "jammy", "apt")
        );
        assert_eq!(
            dist(
                &ubuntu("24.04", "24.04.1", "noble", "Noble Numbat"),
                &pkgs(APT)
            ),
            t("Debian", "Ubuntu", "24.04", "24", "noble", "apt")
        );
        let lsb = parse_lsb(
            None,
            ubuntu("22.04", "22.04.4", "jammy", "Jammy Jellyfish")
                .get("/etc/lsb-release")
                .map(String::as_str),
        );
        assert_eq!(
            Value::Object(lsb),
            json!({"id": "Ubuntu", "release": "22.04", "codename": "jammy", "description": "Ubuntu 22.04.4 LTS", "major_release": "22"})
        );
        let lsb = parse_lsb(Some("No LSB modules are available.\nDistributor ID:\tDebian\nDescription:\tDebian GNU/Linux 12 (bookworm)\nRelease:\t12\nCodename:\tbookworm\n"), None);
        assert_eq!(
            Value::Object(lsb),
            json!({"id": "Debian", "description": "Debian GNU/Linux 12 (bookworm)", "release": "12", "codename": "bookworm", "major_release": "12"})
        );
    }

    #[test]
    fn red_hat_family() {
        let rhel9 = el(
            "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"9.3 (Plow)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"9.3\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 9.3 (Plow)\"\nREDHAT_SUPPORT_PRODUCT=\"Red Hat Enterprise Linux\"\nREDHAT_SUPPORT_PRODUCT_VERSION=\"9.3\"\n",
            ("/etc/redhat-release", "Red Hat Enterprise Linux release 9.3 (Plow)\n"),
        );
        assert_eq!(
            dist(&rhel9, &pkgs(DNF4)),
            t("RedHat", "RedHat", "9.3", "9", "Plow", "dnf")
        );
        assert_eq!(
            distribution_facts(&rhel9, None)["distribution_file_variety"],
            "RedHat"
        );
        let rhel8 = el(
            "NAME=\"Red Hat Enterprise Linux\"\nVERSION=\"8.9 (Ootpa)\"\nID=\"rhel\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"8.9\"\nPRETTY_NAME=\"Red Hat Enterprise Linux 8.9 (Ootpa)\"\n",
            ("/etc/redhat-release", "Red Hat Enterprise Linux release 8.9 (Ootpa)\n"),
        );
        assert_eq!(
            dist(&rhel8, &pkgs(DNF4)),
            t("RedHat", "RedHat", "8.9", "8", "Ootpa", "dnf")
        );
        let rocky9 = el(
            "NAME=\"Rocky Linux\"\nVERSION=\"9.3 (Blue Onyx)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"Rocky Linux 9.3 (Blue Onyx)\"\nREDHAT_SUPPORT_PRODUCT=\"Rocky Linux\"\n",
            ("/etc/redhat-release", "Rocky Linux release 9.3 (Blue Onyx)\n"),
        );
        assert_eq!(
            dist(&rocky9, &pkgs(DNF4)),
            t("RedHat", "Rocky", "9.3", "9", "Blue Onyx", "dnf")
        );
        // Ansible's own fixture for Rocky 8.3 (no code name anywhere): release NA.
        let rocky83 = el(
            "NAME=\"Rocky Linux\"\nVERSION=\"8.3\"\nID=\"rocky\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"8.3\"\nPLATFORM_ID=\"platform:el8\"\nPRETTY_NAME=\"Rocky Linux 8.3\"\n",
            ("/etc/redhat-release", "Rocky Linux release 8.3\n"),
        );
        assert_eq!(
            dist(&rocky83, &pkgs(DNF4)),
            t("RedHat", "Rocky", "8.3", "8", "NA", "dnf")
        );
        let rocky89 = el(
            "NAME=\"Rocky Linux\"\nVERSION=\"8.9 (Green Obsidian)\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"8.9\"\nPRETTY_NAME=\"Rocky Linux 8.9 (Green Obsidian)\"\n",
            ("/etc/redhat-release", "Rocky Linux release 8.9 (Green Obsidian)\n"),
        );
        assert_eq!(
            dist(&rocky89, &pkgs(DNF4)),
            t("RedHat", "Rocky", "8.9", "8", "Green Obsidian", "dnf")
        );
        let alma = el(
            "NAME=\"AlmaLinux\"\nVERSION=\"9.3 (Shamrock Pampas Cat)\"\nID=\"almalinux\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\nPRETTY_NAME=\"AlmaLinux 9.3 (Shamrock Pampas Cat)\"\n",
            ("/etc/redhat-release", "AlmaLinux release 9.3 (Shamrock Pampas Cat)\n"),
        );
        assert_eq!(
            dist(&alma, &pkgs(DNF4)),
            t(
                "RedHat",
                "AlmaLinux",
                "9.3",
                "9",
                "Shamrock Pampas Cat",
                "dnf"
            )
        );
        let mut stream = el(
            "NAME=\"CentOS Stream\"\nVERSION=\"9\"\nID=\"centos\"\nID_LIKE=\"rhel fedora\"\nVERSION_ID=\"9\"\nPLATFORM_ID=\"platform:el9\"\nPRETTY_NAME=\"CentOS Stream 9\"\nREDHAT_SUPPORT_PRODUCT=\"Red Hat Enterprise Linux 9\"\nREDHAT_SUPPORT_PRODUCT_VERSION=\"CentOS Stream\"\n",
            ("/etc/redhat-release", "CentOS Stream release 9\n"),
        );
        stream.insert(
            "/etc/centos-release".into(),
            "CentOS Stream release 9\n".into(),
        );
        assert_eq!(
            dist(&stream, &pkgs(DNF4)),
            t("RedHat", "CentOS", "9", "9", "Stream", "dnf")
        );
        assert_eq!(
            distribution_facts(&stream, None)["distribution_file_variety"],
            "CentOS"
        );
        let fedora39 = el(
            "NAME=\"Fedora Linux\"\nVERSION=\"39 (Server Edition)\"\nID=fedora\nVERSION_ID=39\nVERSION_CODENAME=\"\"\nPLATFORM_ID=\"platform:f39\"\nPRETTY_NAME=\"Fedora Linux 39 (Server Edition)\"\nREDHAT_SUPPORT_PRODUCT=\"Fedora\"\nVARIANT_ID=server\n",
            ("/etc/redhat-release", "Fedora release 39 (Thirty Nine)\n"),
        );
        assert_eq!(
            dist(&fedora39, &pkgs(DNF4)),
            t("RedHat", "Fedora", "39", "39", "", "dnf")
        );
        let fedora41 = el(
            "NAME=\"Fedora Linux\"\nVERSION=\"41 (Forty One)\"\nID=fedora\nVERSION_ID=41\nVERSION_CODENAME=\"\"\nPRETTY_NAME=\"Fedora Linux 41 (Forty One)\"\n",
            ("/etc/redhat-release", "Fedora release 41 (Forty One)\n"),
        );
        assert_eq!(
            dist(&fedora41, &pkgs(DNF5)),
            t("RedHat", "Fedora", "41", "41", "", "dnf5")
        );
        let amzn = files(&[
            ("/etc/os-release", "NAME=\"Amazon Linux\"\nVERSION=\"2023\"\nID=\"amzn\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"2023\"\nPLATFORM_ID=\"platform:al2023\"\nPRETTY_NAME=\"Amazon Linux 2023.3.20240108\"\nCPE_NAME=\"cpe:2.3:o:amazon:amazon_linux:2023\"\nHOME_URL=\"https://aws.amazon.com/linux/amazon-linux-2023/\"\n"),
            ("/etc/system-release", "Amazon Linux release 2023.3.20240108 (Amazon Linux)\n"),
        ]);
        assert_eq!(
            dist(&amzn, &pkgs(DNF4)),
            t("RedHat", "Amazon", "2023", "2023", "NA", "dnf")
        );
        // Ansible's fixture: Amazon Linux 2.
        let amzn2 = files(&[
            ("/etc/os-release", "NAME=\"Amazon Linux\"\nVERSION=\"2\"\nID=\"amzn\"\nID_LIKE=\"centos rhel fedora\"\nVERSION_ID=\"2\"\nPRETTY_NAME=\"Amazon Linux 2\"\n"),
            ("/etc/system-release", "Amazon Linux release 2 (Karoo)\n"),
        ]);
        assert_eq!(
            dist(&amzn2, &pkgs(&[("/usr/bin/yum", "/usr/bin/yum")])),
            t("RedHat", "Amazon", "2", "2", "NA", "yum")
        );
        // An EL7-style host with yum only.
        assert_eq!(
            pkg_mgr("RedHat", &pkgs(&[("/usr/bin/yum", "/usr/bin/yum")]), None),
            "yum"
        );
        assert_eq!(
            pkg_mgr(
                "RedHat",
                &pkgs(&[
                    ("/run/ostree-booted", "/run/ostree-booted"),
                    ("/usr/bin/dnf", "/usr/bin/dnf-3")
                ]),
                None
            ),
            "atomic_container"
        );
        assert_eq!(pkg_mgr("Debian", &pkgs(APT), Some(true)), "apt_rpm");
    }

    #[test]
    fn release_line_and_os_release_parsing() {
        let r = parse_release_line("CentOS Linux release 7.9.2009 (Core)\n");
        assert_eq!(
            (
                r["name"].as_str(),
                r["version_id"].as_str(),
                r["codename"].as_str()
            ),
            ("CentOS Linux", "7.9.2009", "Core")
        );
        let r = parse_release_line("CentOS Stream release 9");
        assert_eq!(
            (
                r["name"].as_str(),
                r["version_id"].as_str(),
                r.get("codename")
            ),
            ("CentOS Stream", "9", None)
        );
        let o = parse_os_release("NAME='x y'\nVERSION=\"22.04.4 LTS (Jammy Jellyfish)\"\n# c\n");
        assert_eq!(o["name"], "x y");
        assert_eq!(o["codename"], "Jammy Jellyfish");
        assert_eq!(os_family("Linux Mint"), "Debian");
        assert_eq!(os_family("Plan9"), "Plan9");
    }

    #[test]
    fn subsets() {
        let s = |v: &[&str]| {
            resolve_subsets(&v.iter().map(|x| x.to_string()).collect::<Vec<_>>()).unwrap()
        };
        let all = s(&["all"]);
        assert!(
            all.contains("hardware") && all.contains("network") && all.contains("distribution")
        );
        let min = s(&["min"]);
        assert!(
            min.contains("distribution") && !min.contains("hardware") && !min.contains("network")
        );
        assert_eq!(s(&["!all"]), min);
        // As in Ansible (min is always prepended, so `all` is not implied): `!hardware` alone is min.
        assert_eq!(s(&["!hardware"]), min);
        let nohw = s(&["all", "!hardware"]);
        assert!(
            !nohw.contains("hardware")
                && !nohw.contains("mounts")
                && !nohw.contains("dmi")
                && nohw.contains("network")
        );
        let net = s(&["!all", "network"]);
        assert!(net.contains("network") && net.contains("platform") && !net.contains("hardware"));
        let only = s(&["!all", "!min", "distribution"]);
        assert_eq!(
            only.iter().map(String::as_str).collect::<Vec<_>>(),
            vec!["distribution"]
        );
        assert!(resolve_subsets(&["bogus".to_string()])
            .unwrap_err()
            .contains("Bad subset 'bogus'"));
        // The script only probes what the subsets need.
        let n = Needs::from(&s(&["!all", "!min", "pkg_mgr"]));
        let sc = script(&n, "/etc/ansible/facts.d", 10);
        assert!(
            sc.contains("sec pkg")
                && sc.contains("/etc/os-release")
                && !sc.contains("sec cpuinfo")
                && !sc.contains("sec link")
        );
    }

    fn raw_from(sections: &[(&str, &str)]) -> Vec<u8> {
        let mut out = Vec::new();
        for (h, b) in sections {
            out.extend_from_slice(format!("@@ferry@@ {h}\n{b}\n").as_bytes());
        }
        out.extend_from_slice(b"@@ferry@@ end\n");
        out
    }

    #[test]
    fn sections_round_trip() {
        let out = raw_from(&[
            ("env", "A=1\0B=x\ny\0"),
            ("file /etc/empty", ""),
            ("file /etc/x", "no newline"),
            ("file /etc/y", "two\nlines\n"),
            ("fact 0 f web", "[s]\nK = v\n"),
            ("fact 2 x bad", ""),
        ]);
        let mut out = out;
        // facterr follows its fact
        let pos = out.len() - "@@ferry@@ end\n".len();
        out.splice(pos..pos, b"@@ferry@@ facterr bad\nboom\n\n".iter().copied());
        let r = parse_raw(&out);
        assert_eq!(r.file("/etc/empty"), Some(""));
        assert_eq!(r.file("/etc/x"), Some("no newline"));
        assert_eq!(r.file("/etc/y"), Some("two\nlines\n"));
        assert_eq!(env_facts(&r), json!({"A": "1", "B": "x\ny"}));
        let (l, w) = local_facts(&r, "/etc/ansible/facts.d/");
        assert!(w.is_empty());
        assert_eq!(l["web"], json!({"s": {"k": "v"}}));
        assert_eq!(
            l["bad"],
            json!(
                "Failure executing fact script (/etc/ansible/facts.d/bad.fact), rc: 2, err: boom\n"
            )
        );
    }

    #[test]
    fn network_from_ip_output() {
        let raw = parse_raw(&raw_from(&[
            ("link", "eth0|1|up|52:54:00:12:34:56|1500|0x1003||virtio_net|1000\nlo|772|unknown|00:00:00:00:00:00|65536|0x9|||\nbr-lan|1|up|aa:bb:cc:dd:ee:ff|1500|0x1103|bridge||"),
            (
                "addr4",
                "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n2: eth0    inet 10.0.2.15/24 brd 10.0.2.255 scope global dynamic eth0\\       valid_lft 86000sec preferred_lft 86000sec\n2: eth0    inet 10.0.2.99/24 brd 10.0.2.255 scope global secondary eth0:1\\       valid_lft forever preferred_lft forever",
            ),
            ("addr6", "1: lo    inet6 ::1/128 scope host \\       valid_lft forever preferred_lft forever\n2: eth0    inet6 fd00::5/64 scope global \\       valid_lft forever\n2: eth0    inet6 fe80::5054:ff:fe12:3456/64 scope link \\       valid_lft forever preferred_lft forever"),
            ("route4", "default via 10.0.2.2 dev eth0 proto dhcp src 10.0.2.15 metric 100\n10.0.2.0/24 dev eth0 proto kernel scope link src 10.0.2.15"),
            ("route6", "default via fe80::2 dev eth0 proto ra metric 1024 pref medium"),
        ]));
        let n = network_facts(&raw);
        assert_eq!(n["interfaces"], json!(["br-lan", "eth0", "lo"]));
        assert_eq!(
            n["default_ipv4"],
            json!({"interface": "eth0", "gateway": "10.0.2.2", "address": "10.0.2.15", "broadcast": "10.0.2.255", "netmask": "255.255.255.0",
                   "network": "10.0.2.0", "prefix": "24", "alias": "eth0", "macaddress": "52:54:00:12:34:56", "mtu": 1500, "type": "ether"})
        );
        assert_eq!(n["default_ipv6"]["address"], "fd00::5");
        assert_eq!(n["default_ipv6"]["gateway"], "fe80::2");
        assert_eq!(n["all_ipv4_addresses"], json!(["10.0.2.15", "10.0.2.99"]));
        assert_eq!(
            n["all_ipv6_addresses"],
            json!(["fd00::5", "fe80::5054:ff:fe12:3456"])
        );
        let e = &n["eth0"];
        assert_eq!(
            (e["active"].clone(), e["module"].clone(), e["speed"].clone()),
            (json!(true), json!("virtio_net"), json!(1000))
        );
        assert_eq!(e["ipv4"]["address"], "10.0.2.15");
        assert_eq!(e["ipv4_secondaries"][0]["address"], "10.0.2.99");
        assert_eq!(n["lo"]["type"], "loopback");
        assert!(n["lo"].get("macaddress").is_none());
        assert_eq!(n["br-lan"]["type"], "bridge");
        assert_eq!(n["br-lan"]["promisc"], true);
        // Only lo (a network namespace): no default route, empty dicts.
        let raw = parse_raw(&raw_from(&[
            ("link", "lo|772|unknown|00:00:00:00:00:00|65536|0x9|||"),
            (
                "addr4",
                "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever",
            ),
            ("route4", ""),
        ]));
        let n = network_facts(&raw);
        assert_eq!(
            (n["default_ipv4"].clone(), n["all_ipv4_addresses"].clone()),
            (json!({}), json!([]))
        );
        // Fact names: `-` becomes `_`.
        let (f, _) = build_facts(
            &parse_raw(&raw_from(&[(
                "link",
                "br-lan|1|up|aa:bb:cc:dd:ee:ff|1500|0x1003|bridge||",
            )])),
            &["network".to_string()].into_iter().collect(),
            "/x",
            &[],
        );
        assert!(f.contains_key("br_lan") && !f.contains_key("br-lan"));
    }

    #[test]
    fn hardware_parsers() {
        let cpu = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\nphysical id\t: 0\nsiblings\t: 4\ncore id\t\t: 0\ncpu cores\t: 2\nprocessor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\nphysical id\t: 0\nsiblings\t: 4\ncore id\t\t: 0\ncpu cores\t: 2\nprocessor\t: 2\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\nphysical id\t: 0\nsiblings\t: 4\ncore id\t\t: 1\ncpu cores\t: 2\nprocessor\t: 3\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\nphysical id\t: 0\nsiblings\t: 4\ncore id\t\t: 1\ncpu cores\t: 2\n";
        let c = cpu_facts(cpu, "x86_64", Some(4));
        assert_eq!(c["processor"].as_array().unwrap().len(), 12);
        assert_eq!(c["processor"][1], "GenuineIntel");
        assert_eq!(
            (
                c["processor_count"].clone(),
                c["processor_cores"].clone(),
                c["processor_threads_per_core"].clone(),
                c["processor_vcpus"].clone()
            ),
            (json!(1), json!(2), json!(2), json!(4))
        );
        let m = memory_facts("MemTotal:        2048000 kB\nMemFree:         1024000 kB\nBuffers:           10240 kB\nCached:           102400 kB\nSwapCached:            0 kB\nSwapTotal:        524288 kB\nSwapFree:         524288 kB\n");
        assert_eq!(
            (
                m["memtotal_mb"].clone(),
                m["memfree_mb"].clone(),
                m["swaptotal_mb"].clone()
            ),
            (json!(2000), json!(1000), json!(512))
        );
        assert_eq!(m["memory_mb"]["nocache"]["free"], json!(1110));
        let mounts = mount_facts("/dev/vda1\t/\text4\trw,relatime\t0\t1\t4096 4096 1000 400 300 500 100\n/dev/vdb\t/srv/my\\040data\txfs\trw\t0\t0\t\n", "/dev/vda1|1234-abcd\n");
        assert_eq!(mounts[0]["size_total"], json!(4096 * 1000));
        assert_eq!(mounts[0]["size_available"], json!(4096 * 300));
        assert_eq!(mounts[0]["block_used"], json!(600));
        assert_eq!(mounts[0]["uuid"], "1234-abcd");
        assert_eq!(mounts[1]["mount"], "/srv/my data");
        assert_eq!(mounts[1]["uuid"], "N/A");
    }

    #[test]
    fn small_collectors() {
        let d = date_time_facts("1700000000|123456789|2023|11|14|22|13|20|UTC|+0000|Tuesday|2|46\nUTC|+0000\nUTC|+0000\n");
        assert_eq!(d["iso8601"], "2023-11-14T22:13:20Z");
        assert_eq!(d["iso8601_micro"], "2023-11-14T22:13:20.123456Z");
        assert_eq!(d["iso8601_basic"], "20231114T221320123456");
        assert_eq!(
            (
                d["date"].clone(),
                d["time"].clone(),
                d["epoch_int"].clone(),
                d["weekday"].clone()
            ),
            (
                json!("2023-11-14"),
                json!("22:13:20"),
                json!("1700000000"),
                json!("Tuesday")
            )
        );
        let d = date_time_facts(
            "1700000000|N|2023|11|14|23|13|20|CET|+0100|Tuesday|2|46\nCET|+0100\nCEST|+0200\n",
        );
        assert_eq!(
            (d["tz_dst"].clone(), d["iso8601_micro"].clone()),
            (json!("CEST"), json!("2023-11-14T22:13:20.000000Z"))
        );
        assert_eq!(
            dns_facts("# x\nnameserver 10.0.0.1\nnameserver 10.0.0.2\nsearch a.example b.example\noptions ndots:2 rotate\n"),
            json!({"nameservers": ["10.0.0.1", "10.0.0.2"], "search": ["a.example", "b.example"], "options": {"ndots": "2", "rotate": true}})
        );
        let (c, p) = cmdline_facts("ro console=tty0 console=ttyS0 quiet");
        assert_eq!(c, json!({"ro": true, "console": "ttyS0", "quiet": true}));
        assert_eq!(p["console"], json!(["tty0", "ttyS0"]));
        let svc = |l: &[(&str, &str)]| service_mgr(&pkgs(l), "Linux");
        assert_eq!(svc(&[("comm", "systemd")]), "systemd");
        assert_eq!(svc(&[("comm", "tini")]), "tini");
        assert_eq!(
            svc(&[
                ("comm", "bash"),
                ("systemctl", "1"),
                ("canary", "/run/systemd/system/")
            ]),
            "systemd"
        );
        assert_eq!(svc(&[("comm", "init"), ("initd", "1")]), "sysvinit");
        assert_eq!(svc(&[("comm", "procd")]), "openwrt_init");
        assert_eq!(svc(&[("comm", "")]), "service");
        assert_eq!(
            parse_ini("[a]\nX=1\ny : two\n  more\n").unwrap(),
            json!({"a": {"x": "1", "y": "two\nmore"}})
        );
        assert!(parse_ini("no section\n").is_none());
        let v = virtual_facts(&parse_raw(&raw_from(&[
            ("virt", "exists|/.dockerenv"),
            ("file /proc/1/cgroup", "0::/\n"),
        ])));
        assert_eq!(
            (
                v["virtualization_type"].clone(),
                v["virtualization_role"].clone()
            ),
            (json!("docker"), json!("guest"))
        );
        assert_eq!(
            v["virtualization_tech_guest"],
            json!(["container", "docker"])
        );
        let v = virtual_facts(&parse_raw(&raw_from(&[(
            "file /sys/devices/virtual/dmi/id/sys_vendor",
            "QEMU\n",
        )])));
        assert_eq!(v["virtualization_type"], "kvm");
        let v = virtual_facts(&Raw::default());
        assert_eq!(
            (
                v["virtualization_type"].clone(),
                v["virtualization_role"].clone()
            ),
            (json!("NA"), json!("NA"))
        );
        assert_eq!(
            selinux_facts(&Raw::default()),
            json!({"status": "disabled"})
        );
        let se = selinux_facts(&parse_raw(&raw_from(&[
            ("selinux", "enforce|1\npolicyvers|33"),
            (
                "file /etc/selinux/config",
                "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
            ),
        ])));
        assert_eq!(
            se,
            json!({"status": "enabled", "mode": "enforcing", "policyvers": 33, "config_mode": "enforcing", "type": "targeted"})
        );
    }

    #[test]
    fn filters() {
        let mut m = Map::new();
        for k in [
            "eth0",
            "default_ipv4",
            "distribution",
            "distribution_version",
            "os_family",
        ] {
            m.insert(k.into(), json!(1));
        }
        let keys = |f: &[&str]| {
            apply_filter(
                m.clone(),
                &f.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            )
            .keys()
            .cloned()
            .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(&["ansible_distribution*"]),
            vec!["distribution", "distribution_version"]
        );
        assert_eq!(
            keys(&["os_family", "ansible_eth?"]),
            vec!["eth0", "os_family"]
        );
        assert_eq!(keys(&[]).len(), 5);
        assert_eq!(keys(&["*"]).len(), 5);
    }

    /// The real script, run by the local shell (dash where /bin/sh is dash).
    #[tokio::test]
    async fn gathers_locally_in_one_script() {
        let env = TestEnv::new();
        env.write("facts.d/app.fact", "{\"role\": \"web\", \"port\": 8080}\n");
        env.write("facts.d/ini.fact", "[general]\nName = x\n");
        let exe = env.write(
            "facts.d/run.fact",
            "#!/bin/sh\necho '{\"dynamic\": true}'\n",
        );
        std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let o = env
            .ok(&Setup, json!({"fact_path": env.path("facts.d")}))
            .await;
        assert!(!o.changed);
        let f = o.facts.expect("facts");
        let uname = |a: &str| {
            String::from_utf8(
                std::process::Command::new("uname")
                    .arg(a)
                    .output()
                    .unwrap()
                    .stdout,
            )
            .unwrap()
            .trim()
            .to_string()
        };
        assert_eq!(f["kernel"], json!(uname("-r")));
        assert_eq!(f["machine"], json!(uname("-m")));
        assert_eq!(f["system"], "Linux");
        assert_eq!(
            f["user_uid"],
            json!(String::from_utf8(
                std::process::Command::new("id")
                    .arg("-u")
                    .output()
                    .unwrap()
                    .stdout
            )
            .unwrap()
            .trim()
            .parse::<i64>()
            .unwrap())
        );
        assert_eq!(f["local"]["app"], json!({"role": "web", "port": 8080}));
        assert_eq!(f["local"]["ini"], json!({"general": {"name": "x"}}));
        assert_eq!(f["local"]["run"], json!({"dynamic": true}));
        for k in [
            "os_family",
            "distribution",
            "pkg_mgr",
            "service_mgr",
            "date_time",
            "env",
            "memtotal_mb",
            "processor_vcpus",
            "interfaces",
            "default_ipv4",
            "mounts",
            "uptime_seconds",
            "lsb",
            "selinux",
            "apparmor",
            "fips",
            "virtualization_type",
        ] {
            assert!(f.contains_key(k), "missing fact {k}");
        }
        assert!(
            !f.keys().any(|k| k.starts_with("python")),
            "python facts must not be reported"
        );
        assert!(f["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == "lo"));
        assert!(f["processor_vcpus"].as_i64().unwrap() >= 1);
        // A filtered, minimal gather.
        let o = env
            .ok(
                &Setup,
                json!({"gather_subset": "!all", "filter": ["ansible_distribution*"]}),
            )
            .await;
        let f = o.facts.unwrap();
        assert!(
            f.contains_key("distribution")
                && !f.contains_key("os_family")
                && !f.contains_key("memtotal_mb")
        );
    }

    /// One remote command, read-only (same in check mode).
    #[tokio::test]
    async fn one_command_in_check_mode_too() {
        use crate::connection::recording::Recording;
        use crate::template::{Scope, Templar};
        let rec = Recording::new();
        let out = String::from_utf8(raw_from(&[
            ("uname", "Linux\n5.15.0\n#1 SMP\nx86_64\nweb1.example.com"),
            ("fqdn", "web1.example.com"),
            ("file /etc/os-release", DEBIAN12),
            ("file /etc/debian_version", "12.7\n"),
            ("pkg", "/usr/bin/apt-get|/usr/bin/apt-get"),
        ]))
        .unwrap();
        rec.on("@@ferry@@", 0, &out);
        let (templar, scope) = (Templar::new(), Scope::new());
        let ctx = crate::modules::testutil::ctx_on(&rec, &templar, &scope, true, false);
        let args = SPEC.validate(Map::new()).unwrap();
        let o = Setup.run(&args, &ctx).await.unwrap();
        assert_eq!(rec.scripts().len(), 1);
        let f = o.facts.unwrap();
        assert_eq!(
            (
                f["hostname"].clone(),
                f["fqdn"].clone(),
                f["domain"].clone(),
                f["nodename"].clone()
            ),
            (
                json!("web1"),
                json!("web1.example.com"),
                json!("example.com"),
                json!("web1.example.com")
            )
        );
        assert_eq!(
            (f["distribution_version"].clone(), f["pkg_mgr"].clone()),
            (json!("12.7"), json!("apt"))
        );
        // A failed script (no end marker) is a failed task, not empty facts.
        let rec = Recording::new();
        rec.on_err("@@ferry@@", 127, "sh: not found");
        let ctx = crate::modules::testutil::ctx_on(&rec, &templar, &scope, false, false);
        assert!(Setup
            .run(&args, &ctx)
            .await
            .unwrap_err()
            .to_string()
            .contains("fact gathering script failed"));
    }
}
