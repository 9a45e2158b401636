//! `yum_repository`: one `[repoid]` section of `/etc/yum.repos.d/<file>.repo`,
//! written the way Ansible's configparser does (options sorted, `name =` the
//! description, booleans as 0/1, list values on continuation lines). Other
//! sections of the file are kept; a file left without sections is removed.
//! Red Hat only: tested with the recording connection and a RHEL 9 facts
//! fixture (no Red Hat host runs in ferry's test lab).

use async_trait::async_trait;
use serde_json::Value;

use super::util::{self, Place};
use super::{Args, Ctx, Diff, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

/// Options written into the section (besides `name`, from `description`).
const OPTIONS: &[&str] = &[
    "async",
    "bandwidth",
    "baseurl",
    "cost",
    "countme",
    "deltarpm_metadata_percentage",
    "deltarpm_percentage",
    "enabled",
    "enablegroups",
    "exclude",
    "failovermethod",
    "gpgcakey",
    "gpgcheck",
    "gpgkey",
    "module_hotfixes",
    "http_caching",
    "include",
    "includepkgs",
    "ip_resolve",
    "keepalive",
    "keepcache",
    "metadata_expire",
    "metadata_expire_filter",
    "metalink",
    "mirrorlist",
    "mirrorlist_expire",
    "password",
    "priority",
    "protect",
    "proxy",
    "proxy_password",
    "proxy_username",
    "repo_gpgcheck",
    "retries",
    "s3_enabled",
    "skip_if_unavailable",
    "sslcacert",
    "ssl_check_cert_permissions",
    "sslclientcert",
    "sslclientkey",
    "sslverify",
    "throttle",
    "timeout",
    "ui_repoid_vars",
    "username",
];

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["ansible.builtin.yum_repository", "ansible.legacy.yum_repository"],
    example: "- ansible.builtin.yum_repository:\n    name: epel\n    description: EPEL YUM repo\n    baseurl: https://download.fedoraproject.org/pub/epel/$releasever/$basearch/\n    gpgcheck: true\n    gpgkey: https://dl.fedoraproject.org/pub/epel/RPM-GPG-KEY-EPEL-9\n",
    ..ModuleSpec::new(
        "yum_repository",
        "Add or remove a yum/dnf repository section in /etc/yum.repos.d/<file>.repo. Tested with recorded commands only (no Red Hat host in ferry's lab).",
        crate::with_compat_attr_params![
            Param::new("name", Kind::Str, "Repository id (the section name).").required(),
            Param::new("description", Kind::Str, "Human-readable name (written as `name =`); required with state=present."),
            Param::new("baseurl", Kind::List, "URL(s) of the repository."),
            Param::new("mirrorlist", Kind::Str, "Mirror list URL."),
            Param::new("metalink", Kind::Str, "Metalink URL."),
            Param::new("enabled", Kind::Bool, "Enable the repository."),
            Param::new("gpgcheck", Kind::Bool, "Check package signatures."),
            Param::new("gpgkey", Kind::List, "URL(s) of the signing key(s)."),
            Param::new("repo_gpgcheck", Kind::Bool, "Check repository metadata signatures."),
            Param::new("file", Kind::Str, "File name without .repo (default: the repository id)."),
            Param::new("reposdir", Kind::Path, "Directory of repo files.").default("/etc/yum.repos.d"),
            Param::new("state", Kind::Str, "present or absent.").choices(&["absent", "present"]).default("present"),
            Param::new("async", Kind::Bool, "Parallel downloads."),
            Param::new("bandwidth", Kind::Str, "Maximum bandwidth."),
            Param::new("cost", Kind::Str, "Relative cost of the repository."),
            Param::new("countme", Kind::Bool, "Send countme statistics."),
            Param::new("deltarpm_metadata_percentage", Kind::Str, "Deltarpm metadata percentage."),
            Param::new("deltarpm_percentage", Kind::Str, "Deltarpm percentage."),
            Param::new("enablegroups", Kind::Bool, "Use the repository's groups."),
            Param::new("exclude", Kind::List, "Packages to exclude."),
            Param::new("failovermethod", Kind::Str, "roundrobin or priority.").choices(&["roundrobin", "priority"]),
            Param::new("gpgcakey", Kind::Str, "CA key for gpgkey."),
            Param::new("module_hotfixes", Kind::Bool, "Ignore modularity filtering."),
            Param::new("http_caching", Kind::Str, "all, packages or none.").choices(&["all", "packages", "none"]),
            Param::new("include", Kind::Str, "Include another config file or URL."),
            Param::new("includepkgs", Kind::List, "Only these packages."),
            Param::new("ip_resolve", Kind::Str, "4, 6, IPv4, IPv6 or whatever.").choices(&["4", "6", "IPv4", "IPv6", "whatever"]),
            Param::new("keepalive", Kind::Bool, "HTTP keepalive."),
            Param::new("keepcache", Kind::Str, "0 or 1 (deprecated).").choices(&["0", "1"]),
            Param::new("metadata_expire", Kind::Str, "Metadata lifetime."),
            Param::new("metadata_expire_filter", Kind::Str, "Metadata expiry filter.")
                .choices(&["never", "read-only:past", "read-only:present", "read-only:future"]),
            Param::new("mirrorlist_expire", Kind::Str, "Mirror list lifetime."),
            Param::new("password", Kind::Str, "Password for the repository."),
            Param::new("priority", Kind::Str, "Priority (1-99)."),
            Param::new("protect", Kind::Bool, "Protect packages from updates."),
            Param::new("proxy", Kind::Str, "Proxy URL."),
            Param::new("proxy_password", Kind::Str, "Proxy password."),
            Param::new("proxy_username", Kind::Str, "Proxy user."),
            Param::new("retries", Kind::Str, "Retries."),
            Param::new("s3_enabled", Kind::Bool, "S3 repository."),
            Param::new("skip_if_unavailable", Kind::Bool, "Skip the repository when it cannot be reached."),
            Param::new("sslcacert", Kind::Str, "CA certificate.").aliases(&["ca_cert"]),
            Param::new("ssl_check_cert_permissions", Kind::Bool, "Check certificate file permissions."),
            Param::new("sslclientcert", Kind::Str, "Client certificate.").aliases(&["client_cert"]),
            Param::new("sslclientkey", Kind::Str, "Client key.").aliases(&["client_key"]),
            Param::new("sslverify", Kind::Bool, "Verify the server certificate.").aliases(&["validate_certs"]),
            Param::new("throttle", Kind::Str, "Bandwidth throttle."),
            Param::new("timeout", Kind::Str, "Connection timeout."),
            Param::new("ui_repoid_vars", Kind::Str, "Variables in the repo id shown."),
            Param::new("username", Kind::Str, "User for the repository."),
            Param::new("mode", Kind::Mode, "Mode of the repo file."),
            Param::new("owner", Kind::Str, "Owner of the repo file."),
            Param::new("group", Kind::Str, "Group of the repo file."),
        ],
    )
};

pub struct YumRepository;

/// An INI file as configparser sees it: sections in order, options sorted on output.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ini {
    pub sections: Vec<(String, Vec<(String, String)>)>,
}

impl Ini {
    /// configparser's reading: `key = value` or `key: value`, keys lowercased,
    /// indented lines continue the value, `#`/`;` lines are comments.
    pub fn parse(text: &str) -> Ini {
        let mut ini = Ini::default();
        for raw in text.lines() {
            let line = raw.trim_end();
            if line.trim().is_empty()
                || line.trim_start().starts_with('#')
                || line.trim_start().starts_with(';')
            {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, opts)) = ini.sections.last_mut() {
                    if let Some((_, v)) = opts.last_mut() {
                        v.push('\n');
                        v.push_str(line.trim());
                    }
                }
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                ini.sections.push((name.to_string(), Vec::new()));
                continue;
            }
            let pos = line.find(['=', ':']);
            if let (Some(p), Some((_, opts))) = (pos, ini.sections.last_mut()) {
                opts.push((
                    line[..p].trim().to_lowercase(),
                    line[p + 1..].trim().to_string(),
                ));
            }
        }
        ini
    }

    /// Ansible's `dump` (used to decide `changed`): sections and options sorted.
    pub fn dump(&self) -> String {
        let mut secs: Vec<&(String, Vec<(String, String)>)> = self.sections.iter().collect();
        secs.sort_by(|a, b| a.0.cmp(&b.0));
        let mut s = String::new();
        for (name, opts) in secs {
            s.push_str(&format!("[{name}]\n"));
            let mut o = opts.clone();
            o.sort();
            for (k, v) in o {
                s.push_str(&format!("{k} = {v}\n"));
            }
            s.push('\n');
        }
        s
    }

    /// configparser's `write`: file order, continuation lines indented with a tab.
    pub fn write(&self) -> String {
        let mut s = String::new();
        for (name, opts) in &self.sections {
            s.push_str(&format!("[{name}]\n"));
            for (k, v) in opts {
                s.push_str(&format!("{k} = {}\n", v.replace('\n', "\n\t")));
            }
            s.push('\n');
        }
        s
    }

    pub fn remove(&mut self, section: &str) {
        self.sections.retain(|(n, _)| n != section);
    }
}

/// The section's options from the arguments, sorted like Ansible's params.
pub fn section_options(args: &Args) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for k in OPTIONS {
        let Some(v) = args.get(k) else { continue };
        let s = match (*k, v) {
            ("baseurl" | "gpgkey", _) => args.list(k).join("\n"),
            ("exclude" | "includepkgs", _) => args.list(k).join(" "),
            (_, Value::Bool(b)) => if *b { "1" } else { "0" }.to_string(),
            (_, Value::String(s)) => s.clone(),
            (_, other) => other.to_string(),
        };
        out.push((k.to_string(), s));
    }
    if let Some(d) = args.str("description") {
        out.push(("name".into(), d.to_string()));
    }
    out.sort();
    out
}

#[async_trait]
impl Module for YumRepository {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let repoid = args.req_str("name")?.to_string();
        let state = args.str("state").unwrap_or("present");
        if state == "present" {
            if !args.has("description") {
                return Err(ModError::fail(
                    "state is present but all of the following are missing: description",
                ));
            }
            if !(args.has("baseurl") || args.has("mirrorlist") || args.has("metalink")) {
                return Err(ModError::fail("state is present but any of the following are missing: baseurl, mirrorlist, metalink"));
            }
        }
        let dir = args
            .str("reposdir")
            .unwrap_or("/etc/yum.repos.d")
            .trim_end_matches('/')
            .to_string();
        let file = args.str("file").unwrap_or(&repoid).to_string();
        let dest = format!("{dir}/{file}.repo");
        // One read: directory check, current file and its attributes.
        let out = ctx
            .sh(&format!(
                "d={}\n[ -d {} ] || {{ echo \"Repo directory '{}' does not exist.\" >&2; exit 3; }}\n{}\n[ -f \"$d\" ] && cat -- \"$d\"\nexit 0",
                quote(&dest),
                quote(&dir),
                dir.replace(['\'', '"', '$', '`', '\\'], ""),
                util::stat_snippet("d", false)
            ))
            .await?;
        if out.rc != 0 {
            return Err(ModError::fail(out.stderr_str().trim().to_string()));
        }
        let text = out.stdout_str();
        let (stat_line, body) = text.split_once('\n').unwrap_or((&text, ""));
        let st = util::parse_stat(stat_line);
        let mut ini = Ini::parse(body);
        let before = ini.dump();
        ini.remove(&repoid);
        if state == "present" {
            ini.sections.push((repoid.clone(), section_options(args)));
        }
        let after = ini.dump();
        let mut changed = before != after;
        let written = ini.write();
        if changed && !ctx.check_mode {
            if ini.sections.is_empty() {
                util::run_ok(ctx, &format!("rm -f -- {}", quote(&dest))).await?;
            } else {
                let mode = match args.get("mode") {
                    Some(v) => util::parse_mode(v, st.mode, false).map_err(ModError::fail)?,
                    None => None,
                };
                util::place(
                    ctx,
                    written.as_bytes(),
                    &Place {
                        dest: &dest,
                        mode,
                        owner: args.str("owner"),
                        group: args.str("group"),
                        ..Place::default()
                    },
                )
                .await?;
            }
        } else if !changed && st.exists {
            // Content is right: owner/group/mode may still differ.
            let fixes = super::file::attr_fixes(args, &dest, &st, false)?;
            if !fixes.is_empty() {
                changed = true;
                if !ctx.check_mode {
                    util::run_ok(ctx, &format!("set -e\n{}", fixes.join("\n"))).await?;
                }
            }
        }
        let mut o = Outcome::changed(changed)
            .with("repo", repoid)
            .with("state", state);
        if ctx.diff_mode {
            o = o.diff(Diff {
                before,
                after,
                before_header: dest.clone(),
                after_header: dest,
            });
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use crate::modules::dnf::run_recorded;
    use serde_json::json;

    const EPEL: &str = "[epel]\nbaseurl = https://download.example/epel/9/$basearch\n\thttps://mirror.example/epel/9/$basearch\nenabled = 1\ngpgcheck = 1\ngpgkey = https://download.example/RPM-GPG-KEY-EPEL-9\nname = EPEL YUM repo\n\n";

    fn args() -> serde_json::Value {
        json!({"name": "epel", "description": "EPEL YUM repo", "baseurl": ["https://download.example/epel/9/$basearch", "https://mirror.example/epel/9/$basearch"],
               "gpgcheck": true, "enabled": true, "gpgkey": "https://download.example/RPM-GPG-KEY-EPEL-9"})
    }

    #[test]
    fn ini_round_trip() {
        let ini = Ini::parse(EPEL);
        assert_eq!(ini.write(), EPEL);
        assert_eq!(
            ini.sections[0].1[0].1,
            "https://download.example/epel/9/$basearch\nhttps://mirror.example/epel/9/$basearch"
        );
    }

    #[test]
    fn writes_like_configparser_then_idempotent() {
        let rec = Recording::new();
        rec.on("stat -c", 0, "STAT|absent\n");
        let o = run_recorded(&YumRepository, &rec, args(), false).unwrap();
        assert!(o.changed);
        let stdins = rec.stdins.lock().unwrap().clone();
        let written = String::from_utf8(stdins.last().cloned().flatten().unwrap()).unwrap();
        assert_eq!(written, EPEL);
        assert!(rec
            .scripts()
            .last()
            .unwrap()
            .contains("d=/etc/yum.repos.d/epel.repo"));

        let rec = Recording::new();
        rec.on(
            "stat -c",
            0,
            &format!("STAT|regular file|644|root|root|0|0|100|1700000000|L:\n{EPEL}"),
        );
        let o = run_recorded(&YumRepository, &rec, args(), false).unwrap();
        assert!(!o.changed);
        assert_eq!(rec.scripts().len(), 1);

        // Check mode writes nothing; absent removes the emptied file.
        let rec = Recording::new();
        rec.on(
            "stat -c",
            0,
            &format!("STAT|regular file|644|root|root|0|0|100|1700000000|L:\n{EPEL}"),
        );
        let o = run_recorded(
            &YumRepository,
            &rec,
            json!({"name": "epel", "state": "absent"}),
            true,
        )
        .unwrap();
        assert!(o.changed && rec.scripts().len() == 1);
        let o = run_recorded(
            &YumRepository,
            &rec,
            json!({"name": "epel", "state": "absent"}),
            false,
        )
        .unwrap();
        assert!(o.changed && rec.ran("rm -f -- /etc/yum.repos.d/epel.repo"));
    }

    #[test]
    fn other_sections_are_kept() {
        let mut ini = Ini::parse("[a]\nname = A\n\n[epel]\nname = old\n");
        ini.remove("epel");
        ini.sections
            .push(("epel".into(), vec![("name".into(), "new".into())]));
        assert_eq!(ini.write(), "[a]\nname = A\n\n[epel]\nname = new\n\n");
    }
}
