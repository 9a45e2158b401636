//! `ansible.posix.firewalld`: services, ports, rich rules, sources,
//! interfaces, masquerade... with `firewall-cmd` on the target. Every setting
//! is queried first (`--query-*`, permanent and runtime) and only missing or
//! extra ones are changed. When the daemon is down, permanent settings are
//! changed with `firewall-offline-cmd`.

use async_trait::async_trait;
use serde_json::Value;

use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::{join_argv, quote};

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["ansible.posix.firewalld", "community.general.firewalld"],
    mutually_exclusive: &[&[
        "icmp_block",
        "icmp_block_inversion",
        "service",
        "protocol",
        "port",
        "port_forward",
        "rich_rule",
        "interface",
        "masquerade",
        "forward",
        "source",
        "target",
        "default",
    ]],
    example: "- ansible.posix.firewalld:\n    service: https\n    zone: public\n    permanent: true\n    immediate: true\n    state: enabled\n",
    ..ModuleSpec::new("firewalld", "Manage arbitrary ports/services with firewalld (firewall-cmd on the target).", &[
        Param::new("service", Kind::Str, "Service to add/remove (firewall-cmd --get-services)."),
        Param::new("protocol", Kind::Str, "Protocol to add/remove (e.g. icmp, gre)."),
        Param::new("port", Kind::Str, "PORT/PROTOCOL or PORT-PORT/PROTOCOL."),
        Param::new("port_forward", Kind::List, "One dict {port, proto, toport, toaddr} to forward."),
        Param::new("rich_rule", Kind::Str, "Rich rule to add/remove."),
        Param::new("source", Kind::Str, "Source network to add/remove (needs permanent)."),
        Param::new("interface", Kind::Str, "Interface to bind to (or remove from) the zone (needs zone)."),
        Param::new("icmp_block", Kind::Str, "ICMP type to block."),
        Param::new("icmp_block_inversion", Kind::Str, "Invert ICMP blocks of the zone (state enabled/disabled)."),
        Param::new("masquerade", Kind::Str, "Masquerading of the zone (state enabled/disabled)."),
        Param::new("forward", Kind::Str, "Intra-zone forwarding (state enabled/disabled)."),
        Param::new("zone", Kind::Str, "Zone (default: firewalld's default zone)."),
        Param::new("permanent", Kind::Bool, "Change the permanent configuration (no: runtime only)."),
        Param::new("immediate", Kind::Bool, "Also apply a permanent change to the running firewall.").default("no"),
        Param::new("state", Kind::Str, "enabled/disabled for settings; present/absent for zones and targets.").required().choices(&["absent", "disabled", "enabled", "present"]),
        Param::new("timeout", Kind::Int, "Seconds a runtime setting lasts (0: until reload).").default("0"),
        Param::new("default", Kind::Bool, "Make `zone` the default zone (runtime and permanent)."),
        Param::new("offline", Kind::Bool, "When the daemon is down, change only the permanent configuration."),
        Param::new("target", Kind::Str, "Zone target (absent resets it to default).").choices(&["default", "ACCEPT", "DROP", "%%REJECT%%"]),
    ])
};

pub struct Firewalld;

/// How a setting is read.
#[derive(Debug, Clone, PartialEq)]
enum Probe {
    /// `--query-*`: rc 0 = present, 1 = absent.
    Flag(String),
    /// A `--get-*` whose output is compared with a value.
    Value(String),
}

/// One thing to make enabled or disabled in one layer (permanent or runtime).
#[derive(Debug, Clone)]
struct Op {
    layer: Layer,
    probe: Probe,
    /// Argument (after the zone) making it present / absent.
    add: String,
    remove: String,
    /// For Value probes: the value meaning "present".
    want_value: String,
    /// Whether `--timeout` applies (runtime additions).
    timed: bool,
    /// Zone-less operations (default zone, zone list).
    no_zone: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Layer {
    Permanent,
    Runtime,
}

fn flag_op(layer: Layer, what: &str, value: Option<&str>, timed: bool) -> Op {
    let arg = |verb: &str| match value {
        Some(v) => format!("--{verb}-{what}={v}"),
        None => format!("--{verb}-{what}"),
    };
    Op {
        layer,
        probe: Probe::Flag(arg("query")),
        add: arg("add"),
        remove: arg("remove"),
        want_value: String::new(),
        timed,
        no_zone: false,
    }
}

/// The firewalld command for a layer: `firewall-cmd [--permanent] [--zone=Z]`
/// or, offline, `firewall-offline-cmd [--zone=Z]`.
fn base(layer: Layer, offline: bool, zone: Option<&str>, no_zone: bool) -> Vec<String> {
    let mut v = vec![if offline {
        "firewall-offline-cmd"
    } else {
        "firewall-cmd"
    }
    .to_string()];
    if layer == Layer::Permanent && !offline {
        v.push("--permanent".into());
    }
    if let (Some(z), false) = (zone, no_zone) {
        v.push(format!("--zone={z}"));
    }
    v
}

fn probe_argv(op: &Op, offline: bool, zone: Option<&str>) -> Vec<String> {
    let mut v = base(op.layer, offline, zone, op.no_zone);
    v.push(match &op.probe {
        Probe::Flag(a) | Probe::Value(a) => a.clone(),
    });
    v
}

fn change_argv(
    op: &Op,
    enable: bool,
    offline: bool,
    zone: Option<&str>,
    timeout: i64,
) -> Vec<String> {
    let mut v = base(op.layer, offline, zone, op.no_zone);
    v.push(if enable {
        op.add.clone()
    } else {
        op.remove.clone()
    });
    if enable && op.timed && op.layer == Layer::Runtime && timeout > 0 {
        v.push(format!("--timeout={timeout}"));
    }
    v
}

/// The settings a task names, per layer, and its message label.
fn plan(args: &Args, layers: &[Layer]) -> Result<(Vec<Op>, String, bool), ModError> {
    let state = args.str("state").unwrap_or("enabled");
    let zone_level = ["present", "absent"].contains(&state);
    let mut ops = Vec::new();
    let label: String;
    let each = |what: &str, value: Option<&str>, timed: bool, ops: &mut Vec<Op>| {
        for l in layers {
            ops.push(flag_op(*l, what, value, timed));
        }
    };
    let modification = [
        "icmp_block",
        "icmp_block_inversion",
        "service",
        "protocol",
        "port",
        "port_forward",
        "rich_rule",
        "interface",
        "masquerade",
        "forward",
        "source",
        "target",
    ]
    .iter()
    .any(|k| args.has(k));
    if modification && zone_level && !args.has("target") {
        return Err(ModError::fail(
            "absent and present state can only be used in zone level operations",
        ));
    }
    if let Some(s) = args.str("service") {
        each("service", Some(s), true, &mut ops);
        label = format!("service {s}");
    } else if let Some(p) = args.str("protocol") {
        each("protocol", Some(p), true, &mut ops);
        label = format!("protocol {p}");
    } else if let Some(p) = args.str("port") {
        let p = p.trim();
        match p.split_once('/') {
            Some((port, proto)) if !port.is_empty() && !proto.is_empty() => {}
            _ => return Err(ModError::fail("improper port format (missing protocol?)")),
        }
        each("port", Some(p), true, &mut ops);
        label = format!("port {p}");
    } else if let Some(pf) = args.get("port_forward") {
        let list = pf.as_array().cloned().unwrap_or_default();
        if list.len() != 1 {
            return Err(ModError::fail("Only one port forward supported at a time"));
        }
        let m = list[0]
            .as_object()
            .ok_or_else(|| ModError::fail("port_forward items must be dicts"))?;
        let get = |k: &str| {
            m.get(k).map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
        };
        let port =
            get("port").ok_or_else(|| ModError::fail("port must be specified for port forward"))?;
        let proto = get("proto")
            .ok_or_else(|| ModError::fail("proto udp/tcp must be specified for port forward"))?;
        let toport = get("toport")
            .ok_or_else(|| ModError::fail("toport must be specified for port forward"))?;
        let toaddr = get("toaddr").unwrap_or_default();
        let mut spec = format!("port={port}:proto={proto}:toport={toport}");
        if !toaddr.is_empty() {
            spec.push_str(&format!(":toaddr={toaddr}"));
        }
        each("forward-port", Some(&spec), true, &mut ops);
        label = format!("port_forward port={port}:proto={proto}:toport={toport}:toaddr={toaddr}");
    } else if let Some(r) = args.str("rich_rule") {
        each("rich-rule", Some(r), true, &mut ops);
        label = format!("rich_rule {r}");
    } else if let Some(s) = args.str("source") {
        each("source", Some(s), false, &mut ops);
        label = format!("source {s}");
    } else if let Some(i) = args.str("interface") {
        for l in layers {
            let mut op = flag_op(*l, "interface", Some(i), false);
            op.add = format!("--change-interface={i}");
            ops.push(op);
        }
        label = format!("interface {i}");
    } else if let Some(i) = args.str("icmp_block") {
        each("icmp-block", Some(i), true, &mut ops);
        label = format!("icmp-block {i}");
    } else if let Some(v) = args.str("icmp_block_inversion") {
        each("icmp-block-inversion", None, false, &mut ops);
        label = format!("icmp-block-inversion {v}");
    } else if args.has("masquerade") {
        each("masquerade", None, true, &mut ops);
        label = "masquerade".into();
    } else if args.has("forward") {
        each("forward", None, false, &mut ops);
        label = "forward".into();
    } else if let Some(t) = args.str("target") {
        if !layers.contains(&Layer::Permanent) {
            return Err(ModError::fail(
                "target can only be set permanently (set permanent: true)",
            ));
        }
        let want = if matches!(state, "absent" | "disabled") {
            "default"
        } else {
            t
        };
        ops.push(Op {
            layer: Layer::Permanent,
            probe: Probe::Value("--get-target".into()),
            add: format!("--set-target={want}"),
            remove: String::new(),
            want_value: want.to_string(),
            timed: false,
            no_zone: false,
        });
        label = format!("target {want}");
        return Ok((ops, label, true));
    } else if args.has("default") {
        let z = args.str("zone").unwrap_or_default();
        let enable = (state == "enabled") == args.bool("default");
        if !enable {
            return Err(ModError::fail(
                "a zone cannot be un-made the default zone: make another zone the default instead",
            ));
        }
        ops.push(Op {
            layer: Layer::Runtime,
            probe: Probe::Value("--get-default-zone".into()),
            add: format!("--set-default-zone={z}"),
            remove: String::new(),
            want_value: z.to_string(),
            timed: false,
            no_zone: true,
        });
        label = format!("default zone {z}");
        return Ok((ops, label, true));
    } else if zone_level {
        let z = args
            .str("zone")
            .ok_or_else(|| ModError::fail("zone is required for zone operations"))?;
        if !layers.contains(&Layer::Permanent) || layers.contains(&Layer::Runtime) {
            return Err(ModError::fail("zone operations must be permanent: set permanent: true (and immediate: false); reload firewalld to use a new zone at runtime"));
        }
        ops.push(Op {
            layer: Layer::Permanent,
            probe: Probe::Value("--get-zones".into()),
            add: format!("--new-zone={z}"),
            remove: format!("--delete-zone={z}"),
            want_value: z.to_string(),
            timed: false,
            no_zone: true,
        });
        label = format!("zone {z}");
        return Ok((ops, label, false));
    } else {
        return Err(ModError::fail("one of service, port, port_forward, rich_rule, source, interface, icmp_block, icmp_block_inversion, masquerade, forward, protocol, target, default, or a zone with state present/absent is required"));
    }
    Ok((ops, label, false))
}

/// Whether a read value means the setting is there.
fn value_present(op: &Op, out: &str) -> bool {
    match op.probe {
        Probe::Value(ref a) if a == "--get-zones" => {
            out.split_whitespace().any(|z| z == op.want_value)
        }
        _ => out.trim() == op.want_value,
    }
}

#[async_trait]
impl Module for Firewalld {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        for (k, need) in [
            ("interface", "zone"),
            ("target", "zone"),
            ("default", "zone"),
            ("source", "permanent"),
        ] {
            if args.has(k) && !args.has(need) {
                return Err(ModError::fail(format!(
                    "missing parameter(s) required by '{k}': {need}"
                )));
            }
        }
        let state = args.str("state").unwrap_or("enabled").to_string();
        let permanent = args.bool("permanent");
        let mut immediate = args.bool("immediate");
        if !permanent && !immediate {
            immediate = true;
        }
        let zone = args.str("zone");
        let timeout = args.int("timeout").unwrap_or(0);

        // Both online and offline reads are prepared; the script picks by `--state`.
        let layers_online: Vec<Layer> =
            [(permanent, Layer::Permanent), (immediate, Layer::Runtime)]
                .iter()
                .filter(|(on, _)| *on)
                .map(|(_, l)| *l)
                .collect();
        let (online_ops, label, value_ops) = plan(args, &layers_online)?;
        let offline_allowed =
            permanent && (!immediate || args.bool("offline") || args.has("default"));
        let offline_ops: Vec<Op> = online_ops
            .iter()
            .filter(|o| {
                o.layer == Layer::Permanent || value_ops && o.no_zone && args.has("default")
            })
            .cloned()
            .collect();
        let probes = |ops: &[Op], offline: bool| -> String {
            ops.iter()
                .enumerate()
                .map(|(i, op)| format!("fwq {i} {}\n", join_argv(&probe_argv(op, offline, zone))))
                .collect::<String>()
        };
        let read = format!(
            "PATH=\"$PATH:/usr/sbin:/sbin\"\n\
             fwq() {{ _n=$1; shift; _o=$(\"$@\" 2>&1); _r=$?; printf 'Q|%s|%s|%s\\n' \"$_n\" \"$_r\" \"$(printf %s \"$_o\" | tr '\\n' ' ')\"; }}\n\
             if ! command -v firewall-cmd >/dev/null 2>&1 && ! command -v firewall-offline-cmd >/dev/null 2>&1; then echo 'FWD|missing'; exit 0; fi\n\
             if firewall-cmd --state >/dev/null 2>&1; then\necho 'FWD|running'\n{}else\necho 'FWD|offline'\n{}fi\n",
            probes(&online_ops, false),
            if offline_allowed { probes(&offline_ops, true) } else { String::new() }
        );
        let out = ctx.sh(&read).await?;
        let text = out.stdout_str();
        let mode = text
            .lines()
            .find_map(|l| l.strip_prefix("FWD|"))
            .unwrap_or("missing")
            .to_string();
        let offline = match mode.as_str() {
            "running" => false,
            "offline" => true,
            _ => return Err(ModError::fail("firewalld is not installed on the target (no firewall-cmd): install it (e.g. dnf: name=firewalld)")),
        };
        if offline && !offline_allowed {
            return Err(ModError::fail(
                "firewall is not currently running, unable to perform immediate actions without a running firewall daemon (use permanent: true with immediate: false, or offline: true)",
            ));
        }
        let ops = if offline { offline_ops } else { online_ops };
        let mut results: Vec<(i32, String)> = vec![(-1, String::new()); ops.len()];
        for l in text.lines() {
            let Some(rest) = l.strip_prefix("Q|") else {
                continue;
            };
            let mut f = rest.splitn(3, '|');
            let (Some(i), Some(rc), o) = (
                f.next().and_then(|s| s.parse::<usize>().ok()),
                f.next().and_then(|s| s.parse::<i32>().ok()),
                f.next().unwrap_or(""),
            ) else {
                continue;
            };
            if i < results.len() {
                results[i] = (rc, o.to_string());
            }
        }
        let enable = matches!(state.as_str(), "enabled" | "present");
        let mut changes: Vec<Vec<String>> = Vec::new();
        for (op, (rc, o)) in ops.iter().zip(&results) {
            let present = match &op.probe {
                Probe::Flag(_) => match rc {
                    0 => true,
                    1 => false,
                    _ => {
                        return Err(ModError::fail(format!(
                            "{} failed (rc={rc}): {}",
                            join_argv(&probe_argv(op, offline, zone)),
                            o.trim()
                        )))
                    }
                },
                Probe::Value(_) => {
                    if *rc != 0 {
                        return Err(ModError::fail(format!(
                            "{} failed (rc={rc}): {}",
                            join_argv(&probe_argv(op, offline, zone)),
                            o.trim()
                        )));
                    }
                    value_present(op, o)
                }
            };
            let value_setter = matches!(op.probe, Probe::Value(_)) && op.remove.is_empty();
            if value_setter {
                // target / default zone: set when the value differs.
                if !present {
                    changes.push(change_argv(op, true, offline, zone, timeout));
                }
            } else if present != enable {
                changes.push(change_argv(op, enable, offline, zone, timeout));
            }
        }
        let changed = !changes.is_empty();
        let mut msgs: Vec<String> = Vec::new();
        let has_perm = ops.iter().any(|o| o.layer == Layer::Permanent);
        let has_rt = ops.iter().any(|o| o.layer == Layer::Runtime);
        msgs.push(
            match (has_perm, has_rt) {
                (true, true) => "Permanent and Non-Permanent(immediate) operation",
                (true, false) => "Permanent operation",
                _ => "Non-permanent operation",
            }
            .to_string(),
        );
        if changed {
            msgs.push(format!("Changed {label} to {state}"));
        }
        if offline {
            msgs.push("(offline operation: only on-disk configs were altered)".into());
        }
        let commands: Vec<Value> = changes
            .iter()
            .map(|c| Value::String(join_argv(c)))
            .collect();
        let o = Outcome::changed(changed)
            .with("commands", Value::Array(commands))
            .msg(msgs.join(", "));
        if !changed || ctx.check_mode {
            return Ok(o);
        }
        let mut s = String::from("PATH=\"$PATH:/usr/sbin:/sbin\"\n");
        for c in &changes {
            s.push_str(&format!(
                "_o=$({} 2>&1) || {{ _r=$?; printf '%s\\n' {} \"$_o\" >&2; exit $_r; }}\n",
                join_argv(c),
                quote(&format!("{}:", join_argv(c)))
            ));
        }
        let out = ctx.sh(&s).await?;
        if out.rc != 0 {
            return Err(ModError::fail(out.stderr_str().trim().replace('\n', " ")));
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use crate::modules::testutil::{ctx_on, facts_scope};
    use crate::template::{Scope, Templar};
    use serde_json::json;

    fn rhel9() -> Scope {
        facts_scope(json!({
            "os_family": "RedHat", "distribution": "RedHat", "distribution_major_version": "9",
            "distribution_version": "9.4", "pkg_mgr": "dnf", "service_mgr": "systemd", "system": "Linux"
        }))
    }

    fn args(v: Value) -> Args {
        SPEC.validate(v.as_object().unwrap().clone()).unwrap()
    }

    async fn run(rec: &Recording, a: Value, check: bool) -> ModResult {
        let t = Templar::new();
        let scope = rhel9();
        let ctx = ctx_on(rec, &t, &scope, check, false);
        Firewalld.run(&args(a), &ctx).await
    }

    /// The change script (the one with no `--query`/`--get` probes), if any ran.
    fn change_script(rec: &Recording) -> Option<String> {
        rec.scripts().into_iter().find(|s| !s.contains("fwq()"))
    }

    const HTTPS: &str = r#"{"service": "https", "zone": "public", "permanent": true, "immediate": true, "state": "enabled"}"#;

    #[tokio::test]
    async fn service_permanent_and_immediate_adds_only_when_missing() {
        let rec = Recording::new();
        rec.on(
            "--query-service=https",
            0,
            "FWD|running\nQ|0|1|no\nQ|1|1|no\n",
        );
        let o = run(&rec, serde_json::from_str(HTTPS).unwrap(), false)
            .await
            .unwrap();
        assert!(o.changed);
        assert_eq!(o.msg.as_deref(), Some("Permanent and Non-Permanent(immediate) operation, Changed service https to enabled"));
        let read = &rec.scripts()[0];
        assert!(read.contains("firewall-cmd --state"));
        assert!(
            read.contains("fwq 0 firewall-cmd --permanent --zone=public --query-service=https\n"),
            "{read}"
        );
        assert!(read.contains("fwq 1 firewall-cmd --zone=public --query-service=https\n"));
        let change = change_script(&rec).expect("a change script");
        let cmds: Vec<&str> = change
            .lines()
            .filter_map(|l| {
                l.strip_prefix("_o=$(")
                    .and_then(|l| l.split(" 2>&1)").next())
            })
            .collect();
        assert_eq!(
            cmds,
            vec![
                "firewall-cmd --permanent --zone=public --add-service=https",
                "firewall-cmd --zone=public --add-service=https"
            ]
        );
        assert_eq!(rec.scripts().len(), 2);
    }

    #[tokio::test]
    async fn idempotent_when_recorded_as_present() {
        let rec = Recording::new();
        rec.on(
            "--query-service=https",
            0,
            "FWD|running\nQ|0|0|yes\nQ|1|0|yes\n",
        );
        let o = run(&rec, serde_json::from_str(HTTPS).unwrap(), false)
            .await
            .unwrap();
        assert!(!o.changed);
        assert_eq!(
            o.msg.as_deref(),
            Some("Permanent and Non-Permanent(immediate) operation")
        );
        assert_eq!(rec.scripts().len(), 1, "only the read");
        // Only the runtime layer missing: only it is added.
        let rec = Recording::new();
        rec.on(
            "--query-service=https",
            0,
            "FWD|running\nQ|0|0|yes\nQ|1|1|no\n",
        );
        run(&rec, serde_json::from_str(HTTPS).unwrap(), false)
            .await
            .unwrap();
        let change = change_script(&rec).unwrap();
        assert!(
            change.contains("firewall-cmd --zone=public --add-service=https")
                && !change.contains("--permanent")
        );
    }

    #[tokio::test]
    async fn check_mode_changes_nothing() {
        let rec = Recording::new();
        rec.on(
            "--query-service=https",
            0,
            "FWD|running\nQ|0|1|no\nQ|1|1|no\n",
        );
        let o = run(&rec, serde_json::from_str(HTTPS).unwrap(), true)
            .await
            .unwrap();
        assert!(o.changed);
        assert_eq!(rec.scripts().len(), 1);
        assert!(!rec.ran("--add-service"));
        assert_eq!(
            o.data["commands"][0],
            "firewall-cmd --permanent --zone=public --add-service=https"
        );
    }

    #[tokio::test]
    async fn port_disabled_runtime_only_with_default_zone() {
        let rec = Recording::new();
        rec.on("--query-port=8081/tcp", 0, "FWD|running\nQ|0|0|yes\n");
        let o = run(
            &rec,
            json!({"port": "8081/tcp", "state": "disabled"}),
            false,
        )
        .await
        .unwrap();
        assert!(o.changed);
        assert_eq!(
            o.msg.as_deref(),
            Some("Non-permanent operation, Changed port 8081/tcp to disabled")
        );
        assert!(rec.scripts()[0].contains("fwq 0 firewall-cmd --query-port=8081/tcp\n"));
        assert!(change_script(&rec)
            .unwrap()
            .contains("firewall-cmd --remove-port=8081/tcp 2>&1"));
        assert!(run(
            &Recording::new(),
            json!({"port": "8081", "state": "enabled"}),
            false
        )
        .await
        .unwrap_err()
        .to_string()
        .contains("improper port format"));
    }

    #[tokio::test]
    async fn rich_rule_timeout_and_forward_port() {
        let rec = Recording::new();
        rec.on("--query-rich-rule", 0, "FWD|running\nQ|0|1|no\n");
        let rule = r#"rule family="ipv4" source address="192.0.2.0/24" service name="ssh" accept"#;
        run(
            &rec,
            json!({"rich_rule": rule, "zone": "internal", "timeout": 300, "state": "enabled"}),
            false,
        )
        .await
        .unwrap();
        let change = change_script(&rec).unwrap();
        assert!(
            change.contains(&format!(
                "firewall-cmd --zone=internal {} --timeout=300",
                quote(&format!("--add-rich-rule={rule}"))
            )),
            "{change}"
        );
        let rec = Recording::new();
        rec.on(
            "--query-forward-port",
            0,
            "FWD|running\nQ|0|1|no\nQ|1|0|yes\n",
        );
        let o = run(&rec, json!({"port_forward": [{"port": 443, "proto": "tcp", "toport": 8443}], "permanent": true, "immediate": true, "state": "enabled"}), false).await.unwrap();
        assert!(rec.scripts()[0].contains("--query-forward-port=port=443:proto=tcp:toport=8443"));
        assert_eq!(
            o.data["commands"],
            json!(["firewall-cmd --permanent --add-forward-port=port=443:proto=tcp:toport=8443"])
        );
    }

    #[tokio::test]
    async fn interface_source_masquerade_zone_target_default() {
        let rec = Recording::new();
        rec.on("--query-interface=eth2", 0, "FWD|running\nQ|0|1|no\n");
        let o = run(
            &rec,
            json!({"interface": "eth2", "zone": "trusted", "permanent": true, "state": "enabled"}),
            false,
        )
        .await
        .unwrap();
        assert_eq!(
            o.data["commands"],
            json!(["firewall-cmd --permanent --zone=trusted --change-interface=eth2"])
        );
        assert!(
            run(
                &Recording::new(),
                json!({"interface": "eth2", "state": "enabled"}),
                false
            )
            .await
            .is_err(),
            "interface needs zone"
        );
        assert!(
            run(
                &Recording::new(),
                json!({"source": "192.0.2.0/24", "state": "enabled"}),
                false
            )
            .await
            .is_err(),
            "source needs permanent"
        );

        let rec = Recording::new();
        rec.on("--query-masquerade", 0, "FWD|running\nQ|0|0|yes\n");
        let o = run(
            &rec,
            json!({"masquerade": "yes", "zone": "dmz", "permanent": true, "state": "disabled"}),
            false,
        )
        .await
        .unwrap();
        assert_eq!(
            o.data["commands"],
            json!(["firewall-cmd --permanent --zone=dmz --remove-masquerade"])
        );

        let rec = Recording::new();
        rec.on(
            "--get-zones",
            0,
            "FWD|running\nQ|0|0|block dmz drop public trusted\n",
        );
        let o = run(
            &rec,
            json!({"zone": "custom", "permanent": true, "state": "present"}),
            false,
        )
        .await
        .unwrap();
        assert_eq!(
            o.data["commands"],
            json!(["firewall-cmd --permanent --new-zone=custom"])
        );
        let rec = Recording::new();
        rec.on("--get-zones", 0, "FWD|running\nQ|0|0|block custom public\n");
        assert!(
            !run(
                &rec,
                json!({"zone": "custom", "permanent": true, "state": "present"}),
                false
            )
            .await
            .unwrap()
            .changed
        );
        assert!(
            run(
                &Recording::new(),
                json!({"zone": "custom", "state": "present"}),
                false
            )
            .await
            .is_err(),
            "zone ops are permanent"
        );
        assert!(run(
            &Recording::new(),
            json!({"service": "http", "state": "present"}),
            false
        )
        .await
        .unwrap_err()
        .to_string()
        .contains("zone level operations"));

        let rec = Recording::new();
        rec.on("--get-target", 0, "FWD|running\nQ|0|0|default\n");
        let o = run(
            &rec,
            json!({"zone": "internal", "target": "ACCEPT", "permanent": true, "state": "present"}),
            false,
        )
        .await
        .unwrap();
        assert_eq!(
            o.data["commands"],
            json!(["firewall-cmd --permanent --zone=internal --set-target=ACCEPT"])
        );
        let rec = Recording::new();
        rec.on("--get-target", 0, "FWD|running\nQ|0|0|ACCEPT\n");
        assert!(!run(&rec, json!({"zone": "internal", "target": "ACCEPT", "permanent": true, "state": "present"}), false).await.unwrap().changed);

        let rec = Recording::new();
        rec.on("--get-default-zone", 0, "FWD|running\nQ|0|0|public\n");
        let o = run(
            &rec,
            json!({"zone": "trusted", "default": true, "permanent": true, "state": "enabled"}),
            false,
        )
        .await
        .unwrap();
        assert_eq!(
            o.data["commands"],
            json!(["firewall-cmd --set-default-zone=trusted"])
        );
    }

    #[tokio::test]
    async fn offline_daemon_uses_firewall_offline_cmd() {
        let rec = Recording::new();
        rec.on("--query-service=https", 0, "FWD|offline\nQ|0|1|no\n");
        let o = run(
            &rec,
            json!({"service": "https", "zone": "public", "permanent": true, "state": "enabled"}),
            false,
        )
        .await
        .unwrap();
        assert!(rec.scripts()[0]
            .contains("fwq 0 firewall-offline-cmd --zone=public --query-service=https\n"));
        assert_eq!(
            o.data["commands"],
            json!(["firewall-offline-cmd --zone=public --add-service=https"])
        );
        assert!(o
            .msg
            .unwrap()
            .ends_with("(offline operation: only on-disk configs were altered)"));
        // Immediate changes need the daemon, unless offline: true.
        let rec = Recording::new();
        rec.on("--query-service=https", 0, "FWD|offline\n");
        let e = run(&rec, serde_json::from_str(HTTPS).unwrap(), false)
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("firewall is not currently running"),
            "{e}"
        );
        let rec = Recording::new();
        rec.on("--query-service=https", 0, "FWD|offline\nQ|0|0|yes\n");
        let mut a: Value = serde_json::from_str(HTTPS).unwrap();
        a["offline"] = json!(true);
        assert!(!run(&rec, a, false).await.unwrap().changed);
        let rec = Recording::new();
        rec.on("fwq()", 0, "FWD|missing\n");
        assert!(run(&rec, serde_json::from_str(HTTPS).unwrap(), false)
            .await
            .unwrap_err()
            .to_string()
            .contains("not installed"));
    }

    #[tokio::test]
    async fn failures_carry_firewalld_errors() {
        let rec = Recording::new();
        rec.on(
            "--query-service=nosuch",
            0,
            "FWD|running\nQ|0|101|Error: INVALID_SERVICE: nosuch\n",
        );
        let e = run(
            &rec,
            json!({"service": "nosuch", "permanent": true, "state": "enabled"}),
            false,
        )
        .await
        .unwrap_err();
        assert!(e.to_string().contains("INVALID_SERVICE"), "{e}");
        let rec = Recording::new();
        rec.on("--query-service=x", 0, "FWD|running\nQ|0|1|no\n");
        rec.on_err(
            "--add-service=x",
            112,
            "firewall-cmd --add-service=x: Error: INVALID_ZONE",
        );
        let e = run(&rec, json!({"service": "x", "state": "enabled"}), false)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("INVALID_ZONE"), "{e}");
    }
}
