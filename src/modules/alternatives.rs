//! `alternatives` (community.general.alternatives): Debian's and Red Hat's
//! `update-alternatives`, decided from `--display` as Ansible's module does.

use async_trait::async_trait;
use serde_json::Value;

use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::join_argv;

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["community.general.alternatives", "community.general.system.alternatives"],
    example: "- community.general.alternatives:\n    name: java\n    path: /usr/lib/jvm/java-17-openjdk-amd64/bin/java\n",
    ..ModuleSpec::new(
        "alternatives",
        "Manage alternative programs for common commands (update-alternatives).",
        &[
            Param::new("name", Kind::Str, "The generic name of the link.").required(),
            Param::new("path", Kind::Path, "The path to the real executable the link should point to.").required(),
            Param::new("link", Kind::Path, "The path to the symbolic link (needed when the alternative is not installed yet)."),
            Param::new("priority", Kind::Int, "The priority of the alternative (default: its current one, else 50)."),
            Param::new("state", Kind::Str, "selected: install and select it; present: install only; auto: install and set the group to auto mode; absent: remove it.").choices(&["present", "selected", "auto", "absent"]).default("selected"),
            Param::new("subcommands", Kind::List, "Followers (name, path, link) installed with the alternative.").aliases(&["slaves"]),
        ],
    )
};

pub struct Alternatives;

const ENV: &str = "PATH=\"$PATH:/usr/sbin:/sbin\"; export LC_ALL=C\n";

/// A follower link of an alternative: (name, path).
pub type Follower = (String, String);

/// What `update-alternatives --display NAME` says.
#[derive(Debug, Default, PartialEq)]
pub struct Current {
    pub mode: Option<String>,
    pub path: Option<String>,
    pub link: Option<String>,
    /// Installed alternatives: path, priority, follower (name, path) pairs.
    pub alternatives: Vec<(String, i64, Vec<Follower>)>,
}

pub fn parse_display(out: &str) -> Current {
    let re = |p: &str| regex::Regex::new(p).expect("regex");
    let mut c = Current::default();
    let Some(m) = re(r"(?m)\s-\s(?:status\sis\s)?(\w*)(?:\smode|.)$").captures(out) else {
        return c;
    };
    c.mode = Some(m[1].to_string());
    c.path = re(r"(?m)^\s*link currently points to (.*)$")
        .captures(out)
        .map(|m| m[1].to_string());
    c.link = re(r"(?m)^\s*link \w+ is (.*)$")
        .captures(out)
        .map(|m| m[1].to_string());
    let alt = re(r"(?m)^(/.*)\s-\s(?:family\s\S+\s)?priority\s(\d+)((?:\s+(?:slave|follower).*)*)");
    let sub = re(r"(?m)^\s+(?:slave|follower) (.*): (.*)$");
    for m in alt.captures_iter(out) {
        let subs = sub
            .captures_iter(&m[3])
            .filter(|s| &s[2] != "(null)")
            .map(|s| (s[1].to_string(), s[2].to_string()))
            .collect();
        c.alternatives
            .push((m[1].to_string(), m[2].parse().unwrap_or(0), subs));
    }
    c
}

#[async_trait]
impl Module for Alternatives {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let name = args.req_str("name")?;
        let path = args.req_str("path")?;
        let state = args.str("state").unwrap_or("selected");
        let subcommands: Option<Vec<(String, String, String)>> = match args.get("subcommands") {
            None => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|s| {
                        let f = |k: &str| s.get(k).and_then(Value::as_str).map(String::from);
                        match (f("name"), f("path"), f("link")) {
                            (Some(n), Some(p), Some(l)) => Ok((n, p, l)),
                            _ => Err(ModError::fail("each subcommand needs name, path and link")),
                        }
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Some(_) => return Err(ModError::fail("subcommands must be a list")),
        };
        let read = format!(
            "{ENV}command -v update-alternatives >/dev/null 2>&1 || {{ echo '==NOTOOL'; exit 0; }}\n[ -e {p} ] && echo '==PATH_EXISTS'\necho '==DISPLAY'; update-alternatives --display {n} 2>/dev/null || true\n",
            p = crate::connection::quote(path),
            n = crate::connection::quote(name),
        );
        let out = ctx.sh(&read).await?;
        let text = out.stdout_str();
        if text.starts_with("==NOTOOL") {
            return Err(ModError::fail(
                "Failed to find required executable \"update-alternatives\"",
            ));
        }
        let display = text.split_once("==DISPLAY\n").map_or("", |(_, d)| d);
        let cur = parse_display(display);
        let installed = cur.alternatives.iter().find(|(p, ..)| p == path);
        let mut cmds: Vec<Vec<String>> = Vec::new();
        let mut messages: Vec<String> = Vec::new();
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        if state != "absent" {
            let priority = args.int("priority");
            let same_subs = |have: &[Follower]| match &subcommands {
                None => true,
                Some(want) => {
                    have.iter()
                        .all(|(n, p)| want.iter().any(|w| &w.0 == n && &w.1 == p))
                        && want
                            .iter()
                            .all(|w| have.iter().any(|(n, p)| n == &w.0 && p == &w.1))
                }
            };
            let needs_install = match installed {
                None => true,
                Some((_, prio, subs)) => priority.is_some_and(|p| p != *prio) || !same_subs(subs),
            };
            if needs_install {
                if !text.contains("==PATH_EXISTS") {
                    return Err(ModError::fail(format!(
                        "Specified path {path} does not exist"
                    )));
                }
                let Some(link) = args.str("link").map(String::from).or(cur.link.clone()) else {
                    return Err(ModError::fail(
                        "Needed to install the alternative, but unable to do so as we are missing the link",
                    ));
                };
                let prio = priority.or(installed.map(|i| i.1)).unwrap_or(50);
                let mut c = argv(&["--install", &link, name, path, &prio.to_string()]);
                for (n, p, l) in subcommands.iter().flatten() {
                    c.extend(argv(&["--slave", l, n, p]));
                }
                cmds.push(c);
                messages.push(format!("Install alternative '{path}' for '{name}'."));
            }
            if state == "selected" && cur.path.as_deref() != Some(path) {
                cmds.push(argv(&["--set", name, path]));
                messages.push(format!("Set alternative '{path}' for '{name}'."));
            }
            if state == "auto" && cur.mode.as_deref() == Some("manual") {
                cmds.push(argv(&["--auto", name]));
                messages.push(format!("Set alternative to auto for '{name}'."));
            }
        } else if installed.is_some() {
            cmds.push(argv(&["--remove", name, path]));
            messages.push(format!("Remove alternative '{path}' from '{name}'."));
        }
        let o = Outcome::changed(!cmds.is_empty()).msg(messages.join(" "));
        if cmds.is_empty() || ctx.check_mode {
            return Ok(o);
        }
        let mut s = String::from(ENV);
        s.push_str("set -e\n");
        for c in &cmds {
            s.push_str(&format!("update-alternatives {}\n", join_argv(c)));
        }
        let out = ctx.sh(&s).await?;
        if out.rc != 0 {
            return Err(ModError::fail(format!(
                "update-alternatives failed: {}",
                out.stderr_str().trim()
            )));
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_output_of_debian_and_red_hat() {
        let deb = "java - manual mode\n  link best version is /usr/lib/jvm/java-17/bin/java\n  link currently points to /opt/j11/bin/java\n  link java is /usr/bin/java\n  slave java.1.gz is /usr/share/man/man1/java.1.gz\n/opt/j11/bin/java - priority 10\n/usr/lib/jvm/java-17/bin/java - priority 1711\n  slave java.1.gz: /usr/lib/jvm/java-17/man/man1/java.1.gz\n";
        let c = parse_display(deb);
        assert_eq!(c.mode.as_deref(), Some("manual"));
        assert_eq!(c.path.as_deref(), Some("/opt/j11/bin/java"));
        assert_eq!(c.link.as_deref(), Some("/usr/bin/java"));
        assert_eq!(c.alternatives.len(), 2);
        assert_eq!(c.alternatives[0], ("/opt/j11/bin/java".into(), 10, vec![]));
        assert_eq!(
            c.alternatives[1].2,
            vec![(
                "java.1.gz".into(),
                "/usr/lib/jvm/java-17/man/man1/java.1.gz".into()
            )]
        );
        let rh = "python - status is auto.\n link currently points to /usr/bin/python3.9\n/usr/bin/python3.9 - priority 300\n";
        let c = parse_display(rh);
        assert_eq!(c.mode.as_deref(), Some("auto"));
        assert_eq!(c.alternatives[0].1, 300);
        assert_eq!(parse_display(""), Current::default());
    }
}
