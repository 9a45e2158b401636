//! `wait_for`: wait for a port, a file, a string in a file, or drained
//! connections — polled ON THE TARGET by one POSIX script that loops until
//! success or timeout (ports through bash's /dev/tcp, else nc, else ss).

use std::net::IpAddr;
use std::time::Instant;

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::textfile::sh_path;
use super::{pyre, Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    mutually_exclusive: &[&["port", "path"]],
    example: "- ansible.builtin.wait_for:\n    port: 8000\n    delay: 2\n    timeout: 60\n",
    ..ModuleSpec::new(
        "wait_for",
        "Wait for a condition (port open/closed/drained, file present/absent, regex in a file) before continuing.",
        &[
            Param::new("host", Kind::Str, "Host (as seen from the target) to wait for.").default("127.0.0.1"),
            Param::new("timeout", Kind::Int, "Maximum seconds to wait; without a condition, just sleep this long.").default("300"),
            Param::new("connect_timeout", Kind::Int, "Seconds to wait for one connection attempt.").default("5"),
            Param::new("delay", Kind::Int, "Seconds to wait before polling.").default("0"),
            Param::new("port", Kind::Int, "Port to poll."),
            Param::new("active_connection_states", Kind::List, "TCP states counted as active for state=drained.")
                .default("ESTABLISHED,FIN_WAIT1,FIN_WAIT2,SYN_RECV,SYN_SENT,TIME_WAIT"),
            Param::new("path", Kind::Path, "A file that must exist (or be absent) before continuing."),
            Param::new("search_regex", Kind::Str, "Regex to find in the file or in what the port sends (MULTILINE)."),
            Param::new("state", Kind::Str, "started/present: open or there; stopped/absent: closed or gone; drained: no active connections.")
                .choices(&["absent", "drained", "present", "started", "stopped"])
                .default("started"),
            Param::new("exclude_hosts", Kind::List, "Hosts or IPs whose connections are ignored for state=drained."),
            Param::new("sleep", Kind::Int, "Seconds between checks.").default("1"),
            Param::new("msg", Kind::Str, "Error message instead of the default one on failure."),
        ],
    )
};

pub struct WaitFor;

const STATES: &[(&str, &str)] = &[
    ("ESTABLISHED", "01"),
    ("SYN_SENT", "02"),
    ("SYN_RECV", "03"),
    ("FIN_WAIT1", "04"),
    ("FIN_WAIT2", "05"),
    ("TIME_WAIT", "06"),
];

/// An address as /proc/net/tcp{,6} writes it (little-endian 32-bit words).
pub fn proc_hex(ip: &IpAddr) -> Vec<String> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            let v4hex = format!("{:02X}{:02X}{:02X}{:02X}", o[3], o[2], o[1], o[0]);
            vec![v4hex.clone(), format!("0000000000000000FFFF0000{v4hex}")]
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            vec![o
                .chunks(4)
                .map(|w| format!("{:02X}{:02X}{:02X}{:02X}", w[3], w[2], w[1], w[0]))
                .collect()]
        }
    }
}

/// Hex addresses for a host name or IP; `None` means any local address.
fn host_hex(host: &str) -> Option<Vec<String>> {
    match host {
        "0.0.0.0" | "::" | "" => None,
        "localhost" => Some(
            [
                proc_hex(&"127.0.0.1".parse().unwrap()),
                proc_hex(&"::1".parse().unwrap()),
            ]
            .concat(),
        ),
        h => h.parse::<IpAddr>().ok().map(|ip| proc_hex(&ip)),
    }
}

/// Ansible's default failure message.
fn timeout_msg(
    state: &str,
    host: &str,
    port: Option<i64>,
    path: Option<&str>,
    re: Option<&str>,
) -> String {
    match (state, port, path) {
        ("absent" | "stopped", Some(p), _) => {
            format!("Timeout when waiting for {host}:{p} to stop.")
        }
        ("absent" | "stopped", None, Some(f)) => {
            format!("Timeout when waiting for {f} to be absent.")
        }
        ("drained", p, _) => format!(
            "Timeout when waiting for {host}:{} to drain",
            p.map(|p| p.to_string()).unwrap_or_default()
        ),
        (_, Some(p), _) => match re {
            Some(r) => format!("Timeout when waiting for search string {r} in {host}:{p}"),
            None => format!("Timeout when waiting for {host}:{p}"),
        },
        (_, None, Some(f)) => match re {
            Some(r) => format!("Timeout when waiting for search string {r} in {f}"),
            None => format!("Timeout when waiting for file {f}"),
        },
        _ => "Timeout".into(),
    }
}

pub struct Plan<'a> {
    pub host: &'a str,
    pub port: Option<i64>,
    pub path: Option<&'a str>,
    pub state: &'a str,
    pub search_regex: Option<&'a str>,
    pub delay: i64,
    pub timeout: i64,
    pub sleep: i64,
    pub connect_timeout: i64,
    pub active_states: Vec<String>,
    pub exclude_hosts: Vec<String>,
}

/// The polling script. Prints `@@OK` (then, for a regex, the matched text) or `@@TIMEOUT`.
pub fn script(p: &Plan<'_>) -> Result<String, String> {
    let mut s = String::new();
    s.push_str(&format!(
        "start=$(date +%s)\nend=$((start + {}))\nsl={}\nct={}\nhost={}\n",
        p.timeout,
        p.sleep.max(0),
        p.connect_timeout.max(1),
        quote(p.host)
    ));
    s.push_str("tmo() { if command -v timeout >/dev/null 2>&1; then timeout \"$@\"; else shift; \"$@\"; fi; }\n");
    s.push_str("if printf 'a\\n' | grep -qP '^a' 2>/dev/null; then gp=-P; else gp=-E; fi\n");
    if let Some(re) = p.search_regex {
        s.push_str(&format!("re={}\n", quote(re)));
    }
    let check = if p.state == "drained" {
        let port = p.port.ok_or("port is required with state=drained")?;
        let mut states = Vec::new();
        for st in &p.active_states {
            let id = STATES
                .iter()
                .find(|(n, _)| n == st)
                .map(|(_, id)| *id)
                .ok_or_else(|| format!("unknown active_connection_state ({st}) defined"))?;
            states.push(id);
        }
        let ips = host_hex(p.host);
        let excl: Vec<String> = p
            .exclude_hosts
            .iter()
            .filter_map(|h| host_hex(h))
            .flatten()
            .collect();
        s.push_str(&format!(
            "check() {{ n=$(awk -v port={port:04X} -v states={} -v ips={} -v excl={} -v all={} 'FNR > 1 {{ split($2, l, \":\"); split($3, r, \":\"); if (l[2] != port) next; if (index(\" \" states \" \", \" \" $4 \" \") == 0) next; if (index(\" \" excl \" \", \" \" r[1] \" \")) next; if (all == 1 || index(\" \" ips \" \", \" \" l[1] \" \")) n++ }} END {{ print n + 0 }}' /proc/net/tcp /proc/net/tcp6 2>/dev/null); [ \"${{n:-0}}\" -eq 0 ]; }}\n",
            quote(&states.join(" ")),
            quote(&ips.clone().unwrap_or_default().join(" ")),
            quote(&excl.join(" ")),
            if ips.is_none() { 1 } else { 0 }
        ));
        "check"
    } else if let Some(port) = p.port {
        s.push_str(&format!("port={port}\n"));
        // probe: can we connect? read_match: did what the port sent match re?
        s.push_str(concat!(
            "if command -v bash >/dev/null 2>&1; then\n",
            "  probe() { tmo \"$ct\" bash -c 'exec 3<>\"/dev/tcp/$0/$1\"' \"$host\" \"$port\" 2>/dev/null; }\n",
            "  read_match() { tmo \"$ct\" bash -c 'exec 3<>\"/dev/tcp/$0/$1\" || exit 2; buf=; while IFS= read -r -t \"$2\" -u 3 line || [ -n \"$line\" ]; do buf=\"$buf$line\n\"; line=; if printf \"%s\" \"$buf\" | grep -q $4 -e \"$3\"; then printf \"%s\" \"$buf\"; exit 0; fi; done; exit 1' \"$host\" \"$port\" \"$ct\" \"$re\" \"$gp\" 2>/dev/null; }\n",
            "elif command -v nc >/dev/null 2>&1; then\n",
            "  probe() { nc -z -w \"$ct\" \"$host\" \"$port\" >/dev/null 2>&1; }\n",
            "  read_match() { d=$(tmo \"$ct\" nc -w \"$ct\" \"$host\" \"$port\" </dev/null 2>/dev/null); printf '%s\\n' \"$d\" | grep -q $gp -e \"$re\" && printf '%s\\n' \"$d\"; }\n",
            "elif command -v ss >/dev/null 2>&1; then\n",
            "  probe() { ss -Htln 2>/dev/null | awk -v p=\":$port\" '{ if (substr($4, length($4) - length(p) + 1) == p) f = 1 } END { exit !f }'; }\n",
            "  read_match() { echo 'search_regex on a port needs bash or nc on the target' >&2; exit 3; }\n",
            "else\n",
            "  echo 'wait_for on a port needs bash, nc or ss on the target' >&2; exit 3\n",
            "fi\n",
        ));
        match (p.state, p.search_regex) {
            ("stopped" | "absent", _) => "! probe",
            (_, Some(_)) => "read_match",
            _ => "probe",
        }
    } else if let Some(path) = p.path {
        s.push_str(&format!("f={}\n", sh_path(path)));
        match (p.state, p.search_regex) {
            ("absent", _) => "[ ! -e \"$f\" ]",
            (_, Some(_)) => {
                s.push_str("fmatch() { [ -e \"$f\" ] || return 1; if [ \"$gp\" = -P ]; then grep -Pzo -m1 -e \"(?m)$re\" -- \"$f\" 2>/dev/null | tr '\\0' '\\n' | head -c 65536; else grep -Eo -m1 -e \"$re\" -- \"$f\" 2>/dev/null | head -n 1; fi; }\n");
                s.push_str("fcheck() { [ -e \"$f\" ] || return 1; if [ \"$gp\" = -P ]; then grep -Pzq -e \"(?m)$re\" -- \"$f\" 2>/dev/null; else grep -Eq -e \"$re\" -- \"$f\" 2>/dev/null; fi; }\n");
                "fcheck"
            }
            _ => "[ -e \"$f\" ]",
        }
    } else {
        return Err("nothing to wait for".into());
    };
    if p.delay > 0 {
        s.push_str(&format!("sleep {}\n", p.delay));
    }
    let on_ok = match (p.port, p.path, p.search_regex, p.state) {
        (Some(_), _, Some(_), "started" | "present") => {
            "m=$(read_match) && { echo '@@OK'; printf '%s' \"$m\"; exit 0; }".to_string()
        }
        (None, Some(_), Some(_), "started" | "present") => {
            format!("if {check}; then echo '@@OK'; fmatch; exit 0; fi")
        }
        _ => format!("if {check}; then echo '@@OK'; exit 0; fi"),
    };
    s.push_str(&format!("while [ \"$(date +%s)\" -lt \"$end\" ]; do\n  {on_ok}\n  sleep \"$sl\"\ndone\necho '@@TIMEOUT'\n"));
    Ok(s)
}

/// `match_groups` / `match_groupdict` from the matched text, as Python reports them.
pub fn groups(re: &str, text: &str) -> (Vec<Value>, Map<String, Value>) {
    let Ok(r) = pyre::compile(re, true, false) else {
        return (vec![], Map::new());
    };
    let Some(c) = r.captures(text.as_bytes()) else {
        return (vec![], Map::new());
    };
    let val = |m: Option<regex::bytes::Match<'_>>| {
        m.map(|m| Value::String(String::from_utf8_lossy(m.as_bytes()).into_owned()))
            .unwrap_or(Value::Null)
    };
    let list = (1..c.len()).map(|i| val(c.get(i))).collect();
    let mut dict = Map::new();
    for name in r.capture_names().flatten() {
        dict.insert(name.to_string(), val(c.name(name)));
    }
    (list, dict)
}

#[async_trait]
impl Module for WaitFor {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        if ctx.check_mode {
            return Ok(Outcome {
                skipped: true,
                ..Outcome::ok()
            }
            .msg("remote module (wait_for) does not support check mode"));
        }
        let state = args.str("state").unwrap_or("started");
        let port = args.int("port");
        let path = args.str("path");
        let fail0 = |m: &str| {
            let mut d = Map::new();
            d.insert("elapsed".into(), 0.into());
            ModError::Failed {
                msg: m.into(),
                data: d,
            }
        };
        if path.is_some() && state == "stopped" {
            return Err(fail0(
                "state=stopped should only be used for checking a port in the wait_for module",
            ));
        }
        if path.is_some() && state == "drained" {
            return Err(fail0(
                "state=drained should only be used for checking a port in the wait_for module",
            ));
        }
        if args.has("exclude_hosts") && state != "drained" {
            return Err(fail0("exclude_hosts should only be with state=drained"));
        }
        let search_regex = args.str("search_regex");
        if let Some(re) = search_regex {
            pyre::compile(re, true, false)
                .map_err(|e| ModError::fail(format!("Invalid regular expression: {e}")))?;
        }
        let host = args.str("host").unwrap_or("127.0.0.1");
        let timeout = args.int("timeout").unwrap_or(300);
        let delay = args.int("delay").unwrap_or(0);
        let start = Instant::now();
        let result = |elapsed: u64, groups: Vec<Value>, dict: Map<String, Value>| {
            Outcome::ok()
                .with("state", state)
                .with("port", port.map(Value::from).unwrap_or(Value::Null))
                .with(
                    "search_regex",
                    search_regex.map(Value::from).unwrap_or(Value::Null),
                )
                .with("match_groups", groups)
                .with("match_groupdict", dict)
                .with("path", path.map(Value::from).unwrap_or(Value::Null))
                .with("elapsed", elapsed)
        };
        if port.is_none() && path.is_none() && state != "drained" {
            // Nothing to poll: just sleep (here; no need to hold the target).
            tokio::time::sleep(std::time::Duration::from_secs(
                (delay.max(0) + timeout.max(0)) as u64,
            ))
            .await;
            return Ok(result(start.elapsed().as_secs(), vec![], Map::new()));
        }
        let plan = Plan {
            host,
            port,
            path,
            state,
            search_regex,
            delay,
            timeout,
            sleep: args.int("sleep").unwrap_or(1),
            connect_timeout: args.int("connect_timeout").unwrap_or(5),
            active_states: args.list("active_connection_states"),
            exclude_hosts: args.list("exclude_hosts"),
        };
        let s = script(&plan).map_err(|e| fail0(&e))?;
        let out = ctx.sh(&s).await?;
        let elapsed = start.elapsed().as_secs();
        let text = out.stdout_str();
        if let Some(rest) = text
            .split_once("@@OK\n")
            .map(|x| x.1)
            .or_else(|| text.strip_suffix("@@OK").map(|_| ""))
        {
            let (g, d) = match search_regex {
                Some(re) => groups(re, rest),
                None => (vec![], Map::new()),
            };
            return Ok(result(elapsed, g, d));
        }
        let mut data = Map::new();
        data.insert("elapsed".into(), elapsed.into());
        if !text.contains("@@TIMEOUT") {
            let err = out.stderr_str();
            return Err(ModError::Failed {
                msg: if err.trim().is_empty() {
                    format!("wait_for failed (rc={})", out.rc)
                } else {
                    err.trim().to_string()
                },
                data,
            });
        }
        let msg = args
            .str("msg")
            .map(str::to_string)
            .unwrap_or_else(|| timeout_msg(state, host, port, path, search_regex));
        Err(ModError::Failed { msg, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{field, TestEnv};
    use serde_json::json;

    #[test]
    fn proc_net_addresses() {
        assert_eq!(proc_hex(&"127.0.0.1".parse().unwrap())[0], "0100007F");
        assert_eq!(
            proc_hex(&"::1".parse().unwrap())[0],
            "00000000000000000000000001000000"
        );
        assert!(host_hex("0.0.0.0").is_none());
    }

    #[test]
    fn messages_and_groups() {
        assert_eq!(
            timeout_msg("started", "127.0.0.1", Some(80), None, None),
            "Timeout when waiting for 127.0.0.1:80"
        );
        assert_eq!(
            timeout_msg("present", "h", None, Some("/f"), Some("x")),
            "Timeout when waiting for search string x in /f"
        );
        assert_eq!(
            timeout_msg("absent", "h", None, Some("/f"), None),
            "Timeout when waiting for /f to be absent."
        );
        let (g, d) = groups(r"completed (?P<task>\w+)", "job completed build\n");
        assert_eq!(g, vec![json!("build")]);
        assert_eq!(d["task"], "build");
    }

    #[tokio::test]
    async fn waits_on_files_and_ports() {
        let env = TestEnv::new();
        let f = env.write("log", "starting\nready: port=8080\n");
        let o = env
            .ok(
                &WaitFor,
                json!({"path": f, "search_regex": r"ready: port=(?P<port>\d+)", "timeout": 5}),
            )
            .await;
        assert!(!o.changed);
        assert_eq!(field(&o, "match_groups"), &json!(["8080"]));
        assert_eq!(field(&o, "match_groupdict"), &json!({"port": "8080"}));
        // Twice: same answer, never changed.
        assert!(!env.ok(&WaitFor, json!({"path": f})).await.changed);
        assert!(
            env.ok(
                &WaitFor,
                json!({"path": env.path("gone"), "state": "absent", "timeout": 2})
            )
            .await
            .data["elapsed"]
                .as_u64()
                .unwrap()
                < 2
        );
        let e = env
            .run(&WaitFor, json!({"path": env.path("never"), "timeout": 1}))
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Timeout when waiting for file {}", env.path("never"))
        );
        let e = env
            .run(
                &WaitFor,
                json!({"path": f, "search_regex": "nope", "timeout": 1, "msg": "custom"}),
            )
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "custom");

        // A file that appears while we wait.
        let later = env.path("later");
        let l2 = later.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
            std::fs::write(l2, "x").unwrap();
        });
        assert!(
            env.ok(&WaitFor, json!({"path": later, "timeout": 10}))
                .await
                .data["elapsed"]
                .as_u64()
                .unwrap()
                >= 1
        );

        // Ports: a listener on the controller (= target here).
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        assert!(
            env.ok(&WaitFor, json!({"port": port, "timeout": 5}))
                .await
                .data["elapsed"]
                .as_u64()
                .unwrap()
                < 5
        );
        drop(l);
        env.ok(
            &WaitFor,
            json!({"port": port, "state": "stopped", "timeout": 5}),
        )
        .await;
        let e = env
            .run(
                &WaitFor,
                json!({"port": port, "timeout": 1, "connect_timeout": 1}),
            )
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Timeout when waiting for 127.0.0.1:{port}")
        );
        env.ok(
            &WaitFor,
            json!({"port": port, "state": "drained", "timeout": 3}),
        )
        .await;

        // Check mode: skipped (Ansible does not support it for wait_for).
        assert!(env.check(&WaitFor, json!({"path": f})).await.skipped);
    }

    #[tokio::test]
    async fn port_banner_regex() {
        use std::io::Write;
        let env = TestEnv::new();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming().take(3) {
                let mut s = s.unwrap();
                let _ = s.write_all(b"SSH-2.0-OpenSSH_9.6 test\r\n");
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        });
        let o = env
            .ok(
                &WaitFor,
                json!({"port": port, "search_regex": r"OpenSSH_(\S+)", "timeout": 10}),
            )
            .await;
        assert_eq!(field(&o, "match_groups"), &json!(["9.6"]));
    }
}
