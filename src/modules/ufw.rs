//! `community.general.ufw`: manages the Uncomplicated Firewall with the `ufw`
//! CLI on the target. Changes are detected like Ansible does (state and rule
//! tuples before and after; `--dry-run` in check mode), plus ufw's config
//! files, so policy/logging changes on an inactive firewall count too.
//!
//! Safety: ufw is never enabled unless incoming SSH on the port this
//! connection uses stays allowed (a rule, or an `allow` incoming policy).

use std::net::IpAddr;

use async_trait::async_trait;
use serde_json::Value;

use super::util::{section, sections};
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::join_argv;

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["community.general.ufw", "community.general.system.ufw"],
    mutually_exclusive: &[&["name", "proto", "logging"], &["direction", "interface_in"], &["direction", "interface_out"]],
    required_one_of: &[&["state", "default", "rule", "logging"]],
    example: "- community.general.ufw:\n    rule: allow\n    port: '22'\n    proto: tcp\n- community.general.ufw:\n    state: enabled\n    policy: deny\n",
    ..ModuleSpec::new("ufw", "Manage firewall with UFW (refuses to enable it while SSH is not allowed).", &[
        Param::new("state", Kind::Str, "enabled reloads and enables on boot; disabled unloads; reloaded; reset disables and resets to defaults.").choices(&["enabled", "disabled", "reloaded", "reset"]),
        Param::new("default", Kind::Str, "Default policy for incoming (or `direction`) traffic.").aliases(&["policy"]).choices(&["allow", "deny", "reject"]),
        Param::new("logging", Kind::Str, "Logging level.").choices(&["on", "off", "low", "medium", "high", "full"]),
        Param::new("direction", Kind::Str, "Rule direction (in, out) or policy direction (incoming, outgoing, routed).").choices(&["in", "incoming", "out", "outgoing", "routed"]),
        Param::new("delete", Kind::Bool, "Delete the rule.").default("no"),
        Param::new("route", Kind::Bool, "Apply the rule to routed/forwarded packets.").default("no"),
        Param::new("insert", Kind::Int, "Insert the rule as rule number NUM (1 = first)."),
        Param::new("insert_relative_to", Kind::Str, "How `insert` counts.").default("zero").choices(&["zero", "first-ipv4", "last-ipv4", "first-ipv6", "last-ipv6"]),
        Param::new("rule", Kind::Str, "Add (or delete) a rule.").choices(&["allow", "deny", "limit", "reject"]),
        Param::new("interface", Kind::Str, "Interface for the rule (needs direction).").aliases(&["if"]),
        Param::new("interface_in", Kind::Str, "Input interface of the rule.").aliases(&["if_in"]),
        Param::new("interface_out", Kind::Str, "Output interface of the rule.").aliases(&["if_out"]),
        Param::new("log", Kind::Bool, "Log new connections matched by the rule.").default("no"),
        Param::new("from_ip", Kind::Str, "Source address.").aliases(&["from", "src"]).default("any"),
        Param::new("from_port", Kind::Str, "Source port."),
        Param::new("to_ip", Kind::Str, "Destination address.").aliases(&["dest", "to"]).default("any"),
        Param::new("to_port", Kind::Str, "Destination port or range (60000:61000).").aliases(&["port"]),
        Param::new("proto", Kind::Str, "Protocol.").aliases(&["protocol"]).choices(&["ah", "any", "esp", "ipv6", "tcp", "udp", "gre", "igmp", "vrrp"]),
        Param::new("name", Kind::Str, "Application profile (/etc/ufw/applications.d).").aliases(&["app"]),
        Param::new("comment", Kind::Str, "Comment for the rule."),
    ])
};

pub struct Ufw;

const RULE_FILES: &str = "/lib/ufw/user.rules /lib/ufw/user6.rules /etc/ufw/user.rules /etc/ufw/user6.rules /var/lib/ufw/user.rules /var/lib/ufw/user6.rules";
const PRELUDE: &str = "PATH=\"$PATH:/usr/sbin:/sbin\"; export LANG=C LC_ALL=C\n";

fn rules_cmd() -> String {
    format!("grep -h '^### tuple' {RULE_FILES} 2>/dev/null\n")
}

fn conf_cmd() -> &'static str {
    "grep -h -E '^(ENABLED|LOGLEVEL|DEFAULT_[A-Z]+_POLICY)=' /etc/ufw/ufw.conf /etc/default/ufw 2>/dev/null\n"
}

/// Prints the `SSH_CONNECTION` of this session, looked up the process tree
/// when `sudo` dropped it from the environment.
const SSH_CONN: &str = r#"c="${SSH_CONNECTION:-}"; p=$$
while [ -z "$c" ] && [ -n "$p" ] && [ "$p" -gt 1 ] 2>/dev/null; do
  c=$(tr '\0' '\n' < /proc/$p/environ 2>/dev/null | sed -n 's/^SSH_CONNECTION=//p' | head -n 1)
  p=$(sed 's/.*) //' /proc/$p/stat 2>/dev/null | cut -d' ' -f2)
done
echo "$c"
"#;

/// Sections of a script's output, each introduced by a `==NAME` line.
/// One `### tuple ###` line of ufw's user rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Tuple {
    pub action: String,
    pub route: bool,
    pub proto: String,
    pub dport: String,
    pub dst: String,
    pub sport: String,
    pub src: String,
    pub dir: String,
}

pub fn parse_tuple(line: &str) -> Option<Tuple> {
    let rest = line.strip_prefix("### tuple ###")?;
    let f: Vec<&str> = rest
        .split_whitespace()
        .filter(|w| !w.starts_with("comment="))
        .collect();
    let dir = match f.len() {
        7 => f[6],
        9 => f[8],
        _ => return None,
    };
    let (route, action) = match f[0].strip_prefix("route:") {
        Some(a) => (true, a),
        None => (false, f[0]),
    };
    Some(Tuple {
        action: action.into(),
        route,
        proto: f[1].into(),
        dport: f[2].into(),
        dst: f[3].into(),
        sport: f[4].into(),
        src: f[5].into(),
        dir: dir.into(),
    })
}

fn port_matches(spec: &str, port: u16) -> bool {
    if spec == "any" {
        return true;
    }
    spec.split(',').any(|p| match p.split_once(':') {
        Some((a, b)) => {
            matches!((a.parse::<u16>(), b.parse::<u16>()), (Ok(a), Ok(b)) if a <= port && port <= b)
        }
        None => p.parse::<u16>() == Ok(port),
    })
}

fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// Whether a rule address (`any`, an address or a CIDR) includes `ip`.
pub fn addr_matches(spec: &str, ip: Option<IpAddr>) -> bool {
    let Some(ip) = ip.map(unmap) else { return true };
    if spec == "any" {
        return true;
    }
    let (net, bits) = match spec.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (spec, None),
    };
    let Ok(net) = net.parse::<IpAddr>() else {
        return true;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let b = bits.unwrap_or(32).min(32);
            let mask = if b == 0 { 0 } else { u32::MAX << (32 - b) };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let b = bits.unwrap_or(128).min(128);
            let mask = if b == 0 { 0 } else { u128::MAX << (128 - b) };
            u128::from(n) & mask == u128::from(i) & mask
        }
        _ => false,
    }
}

/// The SSH session: client and server address, server port.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SshConn {
    pub client: Option<IpAddr>,
    pub server: Option<IpAddr>,
    pub port: u16,
}

pub fn parse_ssh_connection(s: &str) -> Option<SshConn> {
    let f: Vec<&str> = s.split_whitespace().collect();
    if f.len() != 4 {
        return None;
    }
    Some(SshConn {
        client: f[0].parse().ok(),
        server: f[2].parse().ok(),
        port: f[3].parse().ok()?,
    })
}

/// Whether a rule lets new incoming TCP connections to the SSH port in.
pub fn allows_ssh(t: &Tuple, c: &SshConn) -> bool {
    !t.route
        && (t.action.starts_with("allow") || t.action.starts_with("limit"))
        && (t.dir == "in" || t.dir.starts_with("in_"))
        && (t.proto == "tcp" || t.proto == "any")
        && port_matches(&t.dport, c.port)
        && t.sport == "any"
        && addr_matches(&t.src, c.client)
        && addr_matches(&t.dst, c.server)
}

/// The tuple the task's own rule would add (None when it adds no allow rule
/// whose ports are known).
fn task_tuple(a: &Args) -> Option<Tuple> {
    let rule = a.str("rule")?;
    if a.bool("delete") || a.has("name") {
        return None;
    }
    let dir = match (
        a.str("direction"),
        a.str("interface"),
        a.str("interface_in"),
    ) {
        (Some("out"), _, _) => "out".to_string(),
        (_, Some(i), _) | (_, _, Some(i)) => format!("in_{i}"),
        _ => "in".to_string(),
    };
    Some(Tuple {
        action: rule.into(),
        route: a.bool("route"),
        proto: a.str("proto").unwrap_or("any").into(),
        dport: a.str("to_port").unwrap_or("any").into(),
        dst: a.str("to_ip").unwrap_or("any").into(),
        sport: a.str("from_port").unwrap_or("any").into(),
        src: a.str("from_ip").unwrap_or("any").into(),
        dir,
    })
}

/// `ufw [route] [delete|insert N] ACTION [DIR] [on IF] ... [comment C]` (Ansible's order).
pub fn rule_argv(a: &Args, insert_to: Option<i64>) -> Vec<String> {
    let mut v: Vec<String> = Vec::new();
    if a.bool("route") {
        v.push("route".into());
    }
    if a.bool("delete") {
        v.push("delete".into());
    } else if let Some(n) = insert_to {
        v.push("insert".into());
        v.push(n.to_string());
    }
    v.push(a.str("rule").unwrap_or("allow").into());
    if let Some(d) = a.str("direction") {
        v.push(d.into());
    }
    if let Some(i) = a.str("interface") {
        v.extend(["on".into(), i.into()]);
    }
    if let Some(i) = a.str("interface_in") {
        v.extend(["in".into(), "on".into(), i.into()]);
    }
    if let Some(i) = a.str("interface_out") {
        v.extend(["out".into(), "on".into(), i.into()]);
    }
    if a.bool("log") {
        v.push("log".into());
    }
    for (key, word) in [
        ("from_ip", "from"),
        ("from_port", "port"),
        ("to_ip", "to"),
        ("to_port", "port"),
        ("proto", "proto"),
        ("name", "app"),
    ] {
        if let Some(val) = a.str(key) {
            v.push(word.into());
            v.push(val.into());
        }
    }
    if let Some(c) = a.str("comment") {
        v.extend(["comment".into(), c.into()]);
    }
    v
}

/// Where `insert` with `insert_relative_to` lands, from `ufw status numbered`.
pub fn insert_position(insert: i64, relative: &str, numbered: &str) -> Option<i64> {
    if relative == "zero" {
        return Some(insert);
    }
    let lines: Vec<(i64, bool)> = numbered
        .lines()
        .filter_map(|l| {
            let l = l.trim_start();
            let rest = l.strip_prefix('[')?;
            let (n, _) = rest.split_once(']')?;
            Some((n.trim().parse().ok()?, l.contains("(v6)")))
        })
        .collect();
    let last = lines.iter().map(|(n, _)| *n).max().unwrap_or(0);
    let last_v4 = lines.iter().filter(|(_, v6)| !v6).map(|(n, _)| *n).max();
    let has_v6 = lines.iter().any(|(_, v6)| *v6);
    let rel = match relative {
        "first-ipv4" => 1,
        "last-ipv4" => last_v4.unwrap_or(1),
        "first-ipv6" => last_v4.map(|n| n + 1).unwrap_or(1),
        _ => {
            if has_v6 {
                last
            } else {
                last + 1
            }
        }
    };
    let at = insert + rel;
    (at <= last).then_some(at)
}

fn is_v6_tuple(line: &str) -> bool {
    parse_tuple(line)
        .map(|t| t.dst.contains(':'))
        .unwrap_or(false)
}

fn looks_v4(s: &str) -> bool {
    s.split('/')
        .next()
        .map(|a| a.parse::<std::net::Ipv4Addr>().is_ok())
        .unwrap_or(false)
}

fn looks_v6(s: &str) -> bool {
    s.split('/')
        .next()
        .map(|a| a.parse::<std::net::Ipv6Addr>().is_ok())
        .unwrap_or(false)
}

/// Check mode: would the rule change the rules? (Ansible's comparison of
/// the `--dry-run` tuples with the current ones.)
pub fn dry_run_changes(pre_rules: &str, dry: &str, from_ip: &str, to_ip: &str) -> bool {
    let lines: Vec<&str> = dry.lines().filter(|l| !l.trim().is_empty()).collect();
    let noops = lines
        .iter()
        .filter(|l| l.contains("Skipping") || l.contains("Could not delete non-existent rule"))
        .count();
    if noops > 0 && noops == lines.len() {
        return false;
    }
    let tuples = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with("### tuple"))
            .map(|l| l.trim_end().to_string())
            .collect()
    };
    let (pre, dry) = (tuples(pre_rules), tuples(dry));
    if looks_v4(from_ip) || looks_v4(to_ip) {
        let f = |v: &[String]| {
            v.iter()
                .filter(|l| !is_v6_tuple(l))
                .cloned()
                .collect::<Vec<_>>()
        };
        f(&pre) != f(&dry)
    } else if looks_v6(from_ip) || looks_v6(to_ip) {
        let f = |v: &[String]| {
            v.iter()
                .filter(|l| is_v6_tuple(l))
                .cloned()
                .collect::<Vec<_>>()
        };
        f(&pre) != f(&dry)
    } else {
        pre != dry
    }
}

/// `KEY=value` lines of ufw.conf and /etc/default/ufw.
fn conf_value<'a>(conf: &'a str, key: &str) -> Option<&'a str> {
    conf.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .map(|v| v.trim().trim_matches('"'))
}

fn policy_word(p: &str) -> &'static str {
    match p {
        "ACCEPT" => "allow",
        "REJECT" => "reject",
        _ => "deny",
    }
}

/// Current default policy for a direction, from `status verbose` or the config.
fn current_default(status: &str, conf: &str, dir: &str) -> Option<String> {
    let re = regex::Regex::new(r"Default: (deny|allow|reject) \(incoming\), (deny|allow|reject) \(outgoing\), (deny|allow|reject|disabled) \(routed\)").ok()?;
    if let Some(c) = re.captures(status) {
        let i = match dir {
            "outgoing" => 2,
            "routed" => 3,
            _ => 1,
        };
        return Some(c[i].to_string());
    }
    let key = match dir {
        "outgoing" => "DEFAULT_OUTPUT_POLICY",
        "routed" => "DEFAULT_FORWARD_POLICY",
        _ => "DEFAULT_INPUT_POLICY",
    };
    conf_value(conf, key).map(|p| policy_word(p).to_string())
}

/// Would `logging VALUE` change the current level?
fn logging_changes(status: &str, conf: &str, value: &str) -> bool {
    let re = regex::Regex::new(r"Logging: (on|off)(?: \(([a-z]+)\))?").expect("regex");
    let (onoff, level) = match re.captures(status) {
        Some(c) => (c[1].to_string(), c.get(2).map(|m| m.as_str().to_string())),
        None => match conf_value(conf, "LOGLEVEL") {
            Some("off") => ("off".to_string(), None),
            Some(l) => ("on".to_string(), Some(l.to_string())),
            None => return true,
        },
    };
    if value == "off" {
        onoff != "off"
    } else if onoff == "off" {
        true
    } else {
        value != "on" && Some(value) != level.as_deref()
    }
}

/// Does a rule's `--dry-run` say ufw would leave the rules as they are (the
/// rule exists, or the rule to delete does not)? A changed comment or any
/// error prints something else.
fn rule_kept(dry: &str) -> bool {
    let mut lines = dry
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .peekable();
    lines.peek().is_some()
        && lines.all(|l| {
            l.starts_with("Skipping adding existing rule")
                || l.starts_with("Could not delete non-existent rule")
        })
}

fn is_active(status: &str) -> bool {
    status.contains(" active")
}

/// The refusal when enabling would cut SSH off.
fn ssh_refusal(port: u16) -> ModError {
    ModError::fail(format!(
        "Refusing to enable ufw: no rule allows incoming SSH on port {port}/tcp (the port this connection uses), \
         so enabling the firewall would lock this host out. Add an allow rule first, e.g. \
         `community.general.ufw: rule=allow port={port} proto=tcp` (or rule=limit), then enable it."
    ))
}

#[async_trait]
impl Module for Ufw {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        if args.has("interface") && !args.has("direction") {
            return Err(ModError::fail(
                "missing parameter(s) required by 'interface': direction",
            ));
        }
        let dir = args.str("direction");
        if args.has("default") && !matches!(dir, None | Some("incoming" | "outgoing" | "routed")) {
            return Err(ModError::fail("For default, direction must be one of \"outgoing\", \"incoming\" and \"routed\", or direction must not be specified."));
        }
        if args.has("rule") {
            if !matches!(dir, None | Some("in" | "out")) {
                return Err(ModError::fail("For rules, direction must be one of \"in\" and \"out\", or direction must not be specified."));
            }
            if !args.bool("route") && args.has("interface_in") && args.has("interface_out") {
                return Err(ModError::fail(
                    "Only route rules can combine interface_in and interface_out",
                ));
            }
        }
        let relative = args.str("insert_relative_to").unwrap_or("zero");
        let needs_numbered =
            args.has("rule") && args.has("insert") && !args.bool("delete") && relative != "zero";

        // 1. Read: status, rule tuples, config, this SSH session (and numbering).
        let mut s = format!("{PRELUDE}command -v ufw >/dev/null 2>&1 || {{ echo '==NOUFW'; exit 0; }}\necho '==STATUS'; ufw status verbose 2>&1\necho '==RULES'\n{}echo '==CONF'\n{}echo '==SSH'\n{SSH_CONN}", rules_cmd(), conf_cmd());
        if needs_numbered {
            s.push_str("echo '==NUMBERED'; ufw status numbered 2>&1\n");
        }
        let zero_insert = args.int("insert").filter(|_| relative == "zero");
        // The dry run predicts check mode, and lets a real run skip a rule ufw
        // would only skip itself.
        if args.has("rule") && !needs_numbered {
            s.push_str(&format!(
                "echo '==DRY'; ufw --dry-run {} 2>&1\n",
                join_argv(&rule_argv(args, zero_insert))
            ));
        }
        let out = ctx.sh(&s).await?;
        let text = out.stdout_str();
        let sec = sections(&text);
        if section(&sec, "NOUFW").is_some() {
            return Err(ModError::fail(
                "ufw is not installed on the target (install it, e.g. apt: name=ufw)",
            ));
        }
        let status = section(&sec, "STATUS").unwrap_or_default().to_string();
        if status.starts_with("ERROR") {
            return Err(ModError::fail(format!(
                "{} (use become: true)",
                status.trim()
            )));
        }
        let rules = section(&sec, "RULES").unwrap_or_default().to_string();
        let conf = section(&sec, "CONF").unwrap_or_default().to_string();
        let insert_to = match args.int("insert") {
            Some(n) if !args.bool("delete") => {
                insert_position(n, relative, section(&sec, "NUMBERED").unwrap_or_default())
            }
            _ => None,
        };
        let rule_cmd = args.has("rule").then(|| rule_argv(args, insert_to));

        // 2. The commands, in Ansible's order (state, default, rule, logging),
        // except that enabling comes last so the task's own rules are in place first.
        // A state, policy or logging level already in force is not set again
        // (Ansible would run it and find nothing changed; `ufw default` alone
        // reloads every rule, ~1.7 s on a test host).
        let enabled_at_boot = conf_value(&conf, "ENABLED") == Some("yes");
        let state = args.str("state");
        // Each command with whether what it sets is already in force.
        let mut planned: Vec<(Vec<String>, bool)> = Vec::new();
        let st_cmd = state.map(|v| {
            let (verb, in_force) = match v {
                "enabled" => ("enable", is_active(&status) && enabled_at_boot),
                "disabled" => ("disable", !is_active(&status) && !enabled_at_boot),
                "reloaded" => ("reload", false),
                _ => ("reset", false),
            };
            (vec!["-f".to_string(), verb.to_string()], in_force)
        });
        if state != Some("enabled") {
            planned.extend(st_cmd.clone());
        }
        if let Some(d) = args.str("default") {
            let mut c = vec!["default".to_string(), d.to_string()];
            if let Some(x) = dir {
                c.push(x.to_string());
            }
            let cur = current_default(&status, &conf, dir.unwrap_or("incoming"));
            planned.push((c, cur.as_deref() == Some(d)));
        }
        let rule_in_force = section(&sec, "DRY").is_some_and(rule_kept);
        planned.extend(rule_cmd.clone().map(|c| (c, rule_in_force)));
        if let Some(l) = args.str("logging") {
            let c = vec!["logging".to_string(), l.to_string()];
            planned.push((c, !logging_changes(&status, &conf, l)));
        }
        if state == Some("enabled") {
            planned.extend(st_cmd);
        }
        // `commands` lists them all, as Ansible's module does.
        let commands: Vec<Value> = planned
            .iter()
            .map(|(c, _)| Value::String(format!("ufw {}", c.join(" "))))
            .collect();
        let cmds: Vec<Vec<String>> = planned
            .into_iter()
            .filter(|(_, in_force)| !in_force)
            .map(|(c, _)| c)
            .collect();

        // 3. Safety: enabling an inactive firewall must keep SSH reachable.
        // In check mode earlier tasks did not really add their rules, so the
        // refusal becomes a note: the real run refuses if it is still true.
        let mut note = None;
        if state == Some("enabled") && !is_active(&status) {
            if let Err(e) = check_ssh_kept(
                args,
                ctx,
                &rules,
                &conf,
                section(&sec, "SSH").unwrap_or_default(),
            ) {
                if !ctx.check_mode {
                    return Err(e);
                }
                note = Some(format!(
                    "check mode: {e} (unless an earlier task adds such a rule)"
                ));
            }
        }

        // 4. Check mode: predict like Ansible does.
        if ctx.check_mode {
            let mut changed = false;
            if let Some(v) = state {
                changed |= matches!(v, "reloaded" | "reset")
                    || (v == "disabled" && is_active(&status))
                    || (v == "enabled" && !is_active(&status));
            }
            if let Some(d) = args.str("default") {
                changed |= match current_default(&status, &conf, dir.unwrap_or("incoming")) {
                    Some(cur) => cur != d && cur != "disabled",
                    None => true,
                };
            }
            if let Some(l) = args.str("logging") {
                changed |= logging_changes(&status, &conf, l);
            }
            if let Some(rc) = &rule_cmd {
                let dry = match section(&sec, "DRY") {
                    Some(d) => d.to_string(),
                    None => ctx
                        .sh(&format!("{PRELUDE}ufw --dry-run {} 2>&1", join_argv(rc)))
                        .await?
                        .stdout_str(),
                };
                changed |= dry_run_changes(
                    &rules,
                    &dry,
                    args.str("from_ip").unwrap_or("any"),
                    args.str("to_ip").unwrap_or("any"),
                );
            }
            let o = Outcome::changed(changed).with("commands", Value::Array(commands));
            return Ok(match note {
                Some(n) => o.msg(n),
                None => o,
            });
        }

        // 5. Change: run the commands, then read the state again.
        if cmds.is_empty() {
            return Ok(Outcome::changed(false)
                .with("commands", Value::Array(commands))
                .msg(status.trim_end().to_string()));
        }
        let mut s = String::from(PRELUDE);
        for (i, c) in cmds.iter().enumerate() {
            s.push_str(&format!(
                "echo '==CMD{i}'; ufw {} 2>&1 || {{ echo \"==FAIL$?\"; exit 0; }}\n",
                join_argv(c)
            ));
        }
        s.push_str(&format!(
            "echo '==POST'; ufw status verbose 2>&1\necho '==POSTRULES'\n{}echo '==POSTCONF'\n{}",
            rules_cmd(),
            conf_cmd()
        ));
        let out = ctx.sh(&s).await?;
        let text = out.stdout_str();
        let sec2 = sections(&text);
        if let Some((name, _)) = sec2.iter().find(|(n, _)| n.starts_with("FAIL")) {
            let failed_out = sec2
                .iter()
                .rev()
                .find(|(n, _)| n.starts_with("CMD"))
                .map(|(_, t)| t.trim().to_string())
                .unwrap_or_default();
            let mut data = serde_json::Map::new();
            data.insert("commands".into(), Value::Array(commands));
            data.insert(
                "rc".into(),
                Value::from(name.trim_start_matches("FAIL").parse::<i64>().unwrap_or(1)),
            );
            return Err(ModError::Failed {
                msg: if failed_out.is_empty() {
                    "ufw failed".into()
                } else {
                    failed_out
                },
                data,
            });
        }
        let post = section(&sec2, "POST").unwrap_or_default();
        let post_rules = section(&sec2, "POSTRULES").unwrap_or_default();
        let post_conf = section(&sec2, "POSTCONF").unwrap_or_default();
        let changed = matches!(state, Some("reloaded" | "reset"))
            || post != status
            || post_rules != rules
            || post_conf != conf;
        Ok(Outcome::changed(changed)
            .with("commands", Value::Array(commands))
            .msg(post.trim_end().to_string()))
    }
}

/// Fails unless, after this task, incoming SSH stays allowed.
fn check_ssh_kept(
    args: &Args,
    ctx: &Ctx<'_>,
    rules: &str,
    conf: &str,
    ssh_line: &str,
) -> Result<(), ModError> {
    let local = ctx
        .var("ansible_connection")
        .and_then(|v| v.as_str().map(str::to_string))
        .map(|c| c == "local")
        .unwrap_or(false);
    if local {
        return Ok(());
    }
    let conn = parse_ssh_connection(ssh_line.trim()).unwrap_or_else(|| {
        let port = ctx
            .var("ansible_port")
            .and_then(|v| {
                v.as_u64()
                    .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
            })
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(22);
        SshConn {
            client: None,
            server: None,
            port,
        }
    });
    // An `allow` incoming policy (after this task) lets SSH in as well.
    let incoming_policy = match (args.str("default"), args.str("direction")) {
        (Some(d), None | Some("incoming")) => d.to_string(),
        _ => conf_value(conf, "DEFAULT_INPUT_POLICY")
            .map(|p| policy_word(p).to_string())
            .unwrap_or_else(|| "deny".into()),
    };
    if incoming_policy == "allow" {
        return Ok(());
    }
    let deleting = args.bool("delete");
    let mine = task_tuple(args);
    let ok = rules.lines().filter_map(parse_tuple).any(|t| {
        // A rule this task deletes does not count.
        let deleted =
            deleting && args.str("rule") == Some(t.action.as_str()) && task_matches(args, &t);
        !deleted && allows_ssh(&t, &conn)
    }) || mine.map(|t| allows_ssh(&t, &conn)).unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(ssh_refusal(conn.port))
    }
}

/// Whether a deleting task's rule is this tuple (ports and protocol).
fn task_matches(args: &Args, t: &Tuple) -> bool {
    args.str("to_port").unwrap_or("any") == t.dport && args.str("proto").unwrap_or("any") == t.proto
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use crate::modules::testutil::{ctx_on, facts_scope};
    use crate::template::Templar;
    use serde_json::json;

    fn args(v: Value) -> Args {
        SPEC.validate(v.as_object().unwrap().clone()).unwrap()
    }

    const INACTIVE: &str = "==STATUS\nStatus: inactive\n==RULES\n==CONF\nENABLED=no\nLOGLEVEL=low\nDEFAULT_INPUT_POLICY=\"DROP\"\nDEFAULT_OUTPUT_POLICY=\"ACCEPT\"\nDEFAULT_FORWARD_POLICY=\"DROP\"\n==SSH\n10.0.0.5 50000 10.0.0.9 22\n";

    #[test]
    fn tuples_and_matching() {
        let t = parse_tuple("### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in").unwrap();
        let c = SshConn {
            client: "10.0.0.5".parse().ok(),
            server: "10.0.0.9".parse().ok(),
            port: 22,
        };
        assert!(allows_ssh(&t, &c));
        assert!(!allows_ssh(&t, &SshConn { port: 2222, ..c }));
        let t6 = parse_tuple("### tuple ### allow tcp 22 ::/0 any ::/0 in").unwrap();
        assert!(
            !allows_ssh(&t6, &c),
            "an IPv6 rule does not let an IPv4 client in"
        );
        let range = parse_tuple(
            "### tuple ### limit any 20:30,8080 0.0.0.0/0 any 10.0.0.0/8 in comment=6869",
        )
        .unwrap();
        assert!(allows_ssh(&range, &c));
        assert!(!allows_ssh(
            &range,
            &SshConn {
                client: "192.168.1.1".parse().ok(),
                ..c
            }
        ));
        let app =
            parse_tuple("### tuple ### allow any 22 0.0.0.0/0 any 0.0.0.0/0 OpenSSH - in").unwrap();
        assert!(allows_ssh(&app, &c));
        let route = parse_tuple(
            "### tuple ### route:allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in_eth0!out_eth1",
        )
        .unwrap();
        assert!(route.route && !allows_ssh(&route, &c));
        let deny = parse_tuple("### tuple ### deny tcp 22 0.0.0.0/0 any 0.0.0.0/0 in").unwrap();
        assert!(!allows_ssh(&deny, &c));
        let out = parse_tuple("### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 out").unwrap();
        assert!(!allows_ssh(&out, &c));
        assert!(addr_matches("any", None));
        assert!(addr_matches(
            "192.168.0.0/16",
            "::ffff:192.168.3.4".parse().ok()
        ));
        assert_eq!(
            parse_ssh_connection("127.0.0.1 40102 127.0.0.1 22")
                .unwrap()
                .port,
            22
        );
    }

    #[test]
    fn argv_like_ansible() {
        let a = args(
            json!({"rule": "allow", "port": "60000:61000", "proto": "udp", "src": "10.0.0.0/8", "comment": "mosh it"}),
        );
        assert_eq!(
            join_argv(&rule_argv(&a, None)),
            "allow from 10.0.0.0/8 to any port 60000:61000 proto udp comment 'mosh it'"
        );
        let a = args(
            json!({"rule": "deny", "direction": "in", "interface": "eth0", "log": true, "from_port": 53, "delete": true, "insert": 1}),
        );
        assert_eq!(
            join_argv(&rule_argv(&a, Some(1))),
            "delete deny in on eth0 log from any port 53 to any"
        );
        let a = args(
            json!({"rule": "allow", "route": true, "interface_in": "eth0", "interface_out": "eth1", "name": "OpenSSH"}),
        );
        assert_eq!(
            join_argv(&rule_argv(&a, Some(2))),
            "route insert 2 allow in on eth0 out on eth1 from any to any app OpenSSH"
        );
        assert!(SPEC
            .validate(
                json!({"rule": "allow", "name": "x", "proto": "tcp"})
                    .as_object()
                    .unwrap()
                    .clone()
            )
            .is_err());
        assert!(SPEC
            .validate(json!({"port": 22}).as_object().unwrap().clone())
            .unwrap_err()
            .contains("one of the following is required"));
    }

    #[test]
    fn insert_positions() {
        let numbered = "Status: active\n\n     To      Action      From\n     --      ------      ----\n[ 1] 22/tcp   ALLOW IN    Anywhere\n[ 2] 80/tcp   ALLOW IN    Anywhere\n[ 3] 22/tcp (v6)   ALLOW IN    Anywhere (v6)\n[ 4] 80/tcp (v6)   ALLOW IN    Anywhere (v6)\n";
        assert_eq!(insert_position(1, "zero", numbered), Some(1));
        assert_eq!(insert_position(0, "first-ipv4", numbered), Some(1));
        assert_eq!(insert_position(-1, "last-ipv4", numbered), Some(1));
        assert_eq!(insert_position(0, "first-ipv6", numbered), Some(3));
        assert_eq!(insert_position(0, "last-ipv6", numbered), Some(4));
        assert_eq!(insert_position(5, "first-ipv4", numbered), None);
    }

    #[test]
    fn dry_run_and_policy_predictions() {
        let pre = "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n### tuple ### allow tcp 22 ::/0 any ::/0 in\n";
        assert!(!dry_run_changes(
            pre,
            "Skipping adding existing rule\nSkipping adding existing rule (v6)\n",
            "any",
            "any"
        ));
        assert!(!dry_run_changes(
            pre,
            "Could not delete non-existent rule\nCould not delete non-existent rule (v6)\n",
            "any",
            "any"
        ));
        let dry = "*filter\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n-A ufw-user-input ...\n### tuple ### allow tcp 8080 0.0.0.0/0 any 0.0.0.0/0 in\nCOMMIT\n### tuple ### allow tcp 22 ::/0 any ::/0 in\n### tuple ### allow tcp 8080 ::/0 any ::/0 in\n";
        assert!(dry_run_changes(pre, dry, "any", "any"));
        // A v4-only rule's dry run prints the v4 file only.
        let dry4 = "### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n";
        assert!(!dry_run_changes(pre, dry4, "10.0.0.1", "any"));
        let status = "Status: active\nLogging: on (low)\nDefault: deny (incoming), allow (outgoing), disabled (routed)\n";
        assert_eq!(
            current_default(status, "", "incoming").as_deref(),
            Some("deny")
        );
        assert_eq!(
            current_default(
                "Status: inactive\n",
                "DEFAULT_OUTPUT_POLICY=\"ACCEPT\"\n",
                "outgoing"
            )
            .as_deref(),
            Some("allow")
        );
        assert!(!logging_changes(status, "", "on"));
        assert!(!logging_changes(status, "", "low"));
        assert!(logging_changes(status, "", "high"));
        assert!(logging_changes(status, "", "off"));
        assert!(logging_changes(
            "Status: inactive\n",
            "LOGLEVEL=off\n",
            "on"
        ));
        assert!(!logging_changes(
            "Status: inactive\n",
            "LOGLEVEL=medium\n",
            "medium"
        ));
    }

    #[tokio::test]
    async fn refuses_to_enable_without_an_ssh_rule() {
        let rec = Recording::new();
        rec.on("ufw status verbose", 0, INACTIVE);
        let t = Templar::new();
        let scope = facts_scope(json!({"os_family": "Debian"}));
        let ctx = ctx_on(&rec, &t, &scope, false, false);
        let e = Ufw
            .run(&args(json!({"state": "enabled"})), &ctx)
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("no rule allows incoming SSH on port 22/tcp"),
            "{e}"
        );
        assert!(e.to_string().contains("rule=allow port=22 proto=tcp"));
        assert!(!rec.ran("enable"), "nothing may be enabled");
        // Check mode cannot know whether an earlier task adds the rule: a note, not a failure.
        let ctx = ctx_on(&rec, &t, &scope, true, false);
        let o = Ufw
            .run(&args(json!({"state": "enabled"})), &ctx)
            .await
            .unwrap();
        assert!(o.changed && o.msg.unwrap().contains("Refusing to enable ufw"));
        assert!(!rec.ran("-f enable"));
    }

    #[tokio::test]
    async fn enables_after_the_tasks_own_ssh_rule() {
        let rec = Recording::new();
        rec.on("ufw status verbose", 0, INACTIVE);
        let t = Templar::new();
        let scope = facts_scope(json!({}));
        let ctx = ctx_on(&rec, &t, &scope, false, false);
        let o = Ufw
            .run(
                &args(json!({"state": "enabled", "rule": "allow", "port": 22, "proto": "tcp"})),
                &ctx,
            )
            .await;
        // The recording answers the change script with the same status: fine for this test.
        let o = o.unwrap();
        let cmds: Vec<String> = serde_json::from_value(o.data["commands"].clone()).unwrap();
        assert_eq!(
            cmds,
            vec![
                "ufw allow from any to any port 22 proto tcp",
                "ufw -f enable"
            ]
        );
        let change = rec
            .scripts()
            .into_iter()
            .find(|s| s.contains("-f enable"))
            .unwrap();
        assert!(
            change.find("allow from any").unwrap() < change.find("-f enable").unwrap(),
            "rule first, then enable"
        );
    }

    #[tokio::test]
    async fn ssh_port_from_the_session_or_inventory() {
        let t = Templar::new();
        // SSH_CONNECTION says 2222: a rule for 22 is not enough.
        let rec = Recording::new();
        rec.on(
            "ufw status verbose",
            0,
            &INACTIVE
                .replace(
                    "==RULES\n",
                    "==RULES\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in\n",
                )
                .replace("10.0.0.9 22", "10.0.0.9 2222"),
        );
        let scope = facts_scope(json!({}));
        let e = Ufw
            .run(
                &args(json!({"state": "enabled"})),
                &ctx_on(&rec, &t, &scope, false, false),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("port 2222/tcp"), "{e}");
        // No session visible: ansible_port decides.
        let rec = Recording::new();
        rec.on(
            "ufw status verbose",
            0,
            &INACTIVE.replace("10.0.0.5 50000 10.0.0.9 22", "").replace(
                "==RULES\n",
                "==RULES\n### tuple ### allow tcp 2200 0.0.0.0/0 any 0.0.0.0/0 in\n",
            ),
        );
        let scope = facts_scope(json!({"port": 2200}));
        Ufw.run(
            &args(json!({"state": "enabled"})),
            &ctx_on(&rec, &t, &scope, false, false),
        )
        .await
        .unwrap();
        // Incoming policy allow: nothing to protect.
        let rec = Recording::new();
        rec.on(
            "ufw status verbose",
            0,
            &INACTIVE.replace(
                "DEFAULT_INPUT_POLICY=\"DROP\"",
                "DEFAULT_INPUT_POLICY=\"ACCEPT\"",
            ),
        );
        Ufw.run(
            &args(json!({"state": "enabled"})),
            &ctx_on(&rec, &t, &scope, false, false),
        )
        .await
        .unwrap();
        // Already active: enabling again is a reload, no check.
        let rec = Recording::new();
        rec.on(
            "ufw status verbose",
            0,
            &INACTIVE.replace("Status: inactive", "Status: active"),
        );
        Ufw.run(
            &args(json!({"state": "enabled"})),
            &ctx_on(&rec, &t, &scope, false, false),
        )
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn check_mode_runs_no_change() {
        let rec = Recording::new();
        rec.on(
            "ufw status verbose",
            0,
            &format!("{INACTIVE}==DRY\nSkipping adding existing rule\n"),
        );
        let t = Templar::new();
        let scope = facts_scope(json!({}));
        let ctx = ctx_on(&rec, &t, &scope, true, false);
        let o = Ufw
            .run(
                &args(json!({"rule": "allow", "port": 22, "proto": "tcp", "default": "deny"})),
                &ctx,
            )
            .await
            .unwrap();
        assert!(!o.changed);
        assert_eq!(rec.scripts().len(), 1, "one read, no change");
        assert!(rec.scripts().iter().all(|s| !s.contains("==CMD")));
        assert!(rec.scripts()[0].contains("ufw --dry-run allow from any to any port 22 proto tcp"));
    }

    /// A state, policy or logging level already in force is not set again:
    /// one read, no change script; anything else still runs.
    #[tokio::test]
    async fn settings_in_force_are_not_set_again() {
        let active = INACTIVE
            .replace("Status: inactive", "Status: active\nLogging: on (low)\nDefault: deny (incoming), allow (outgoing), disabled (routed)")
            .replace("ENABLED=no", "ENABLED=yes");
        let exists = format!(
            "{active}==DRY\nSkipping adding existing rule\nSkipping adding existing rule (v6)\n"
        );
        let recomment = format!("{active}==DRY\n*filter\n### tuple ### allow tcp 22 0.0.0.0/0 any 0.0.0.0/0 in comment=78\n");
        let ssh = json!({"rule": "allow", "port": 22, "proto": "tcp"});
        let t = Templar::new();
        let scope = facts_scope(json!({}));
        for (task, status, runs) in [
            (ssh.clone(), exists.as_str(), None),
            (
                ssh,
                &recomment,
                Some("ufw allow from any to any port 22 proto tcp"),
            ),
            (
                json!({"default": "deny", "direction": "incoming"}),
                &active,
                None,
            ),
            (json!({"state": "enabled"}), &active, None),
            (json!({"logging": "low"}), &active, None),
            (json!({"state": "disabled"}), INACTIVE, None),
            (
                json!({"default": "allow", "direction": "incoming"}),
                &active,
                Some("ufw default allow incoming"),
            ),
            (
                json!({"default": "allow", "direction": "outgoing"}),
                INACTIVE,
                None,
            ),
            (
                json!({"default": "deny", "direction": "outgoing"}),
                INACTIVE,
                Some("ufw default deny outgoing"),
            ),
            (
                json!({"logging": "high"}),
                &active,
                Some("ufw logging high"),
            ),
            (
                json!({"state": "disabled"}),
                &active,
                Some("ufw -f disable"),
            ),
            // Active but not enabled at boot: `enable` still writes ENABLED=yes.
            (
                json!({"state": "enabled"}),
                &active.replace("ENABLED=yes", "ENABLED=no"),
                Some("ufw -f enable"),
            ),
        ] {
            let rec = Recording::new();
            rec.on("ufw status verbose", 0, status);
            let o = Ufw
                .run(&args(task.clone()), &ctx_on(&rec, &t, &scope, false, false))
                .await
                .unwrap();
            match runs {
                None => {
                    assert!(!o.changed, "{task}");
                    assert_eq!(rec.scripts().len(), 1, "{task}: one read, nothing run");
                    // Still listed, as Ansible lists what it would run.
                    assert_eq!(o.data["commands"].as_array().unwrap().len(), 1);
                }
                Some(cmd) => {
                    assert_eq!(rec.scripts().len(), 2, "{task}");
                    assert!(rec.scripts()[1].contains(cmd), "{task}");
                    assert_eq!(o.data["commands"], json!([cmd]), "{task}");
                }
            }
        }
    }
}
