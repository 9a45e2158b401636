//! `getent`: a database (passwd, group, hosts, services...) into
//! `ansible_facts.getent_<database>`, split like Ansible.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::sysadmin::failed;
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.getent:\n    database: passwd\n    key: root\n- ansible.builtin.debug:\n    var: ansible_facts.getent_passwd\n",
    ..ModuleSpec::new(
        "getent",
        "Run getent on a database and put the result into ansible_facts.getent_<database>.",
        &[
            Param::new("database", Kind::Str, "The database: passwd, group, hosts, services, shadow...").required(),
            Param::new("key", Kind::Str, "Key to look up (default: the whole database)."),
            Param::new("service", Kind::Str, "Override the NSS service (-s)."),
            Param::new("split", Kind::Str, "Field separator (default ':' for passwd/shadow/group/gshadow, else whitespace)."),
            Param::new("fail_key", Kind::Bool, "Fail when the key is missing.").default("yes"),
        ],
    )
};

pub struct Getent;

/// The records as Ansible stores them: key -> fields, or a list of field lists for repeated keys.
pub fn parse(out: &str, split: Option<&str>) -> Map<String, Value> {
    let mut results = Map::new();
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for line in out.lines() {
        let record: Vec<&str> = match split {
            Some(sep) => line.split(sep).collect(),
            None => line.split_whitespace().collect(),
        };
        let Some(first) = record.first() else {
            continue;
        };
        let rest = Value::Array(
            record[1..]
                .iter()
                .map(|s| Value::String(s.to_string()))
                .collect(),
        );
        match seen.get_mut(*first) {
            Some(n) => {
                if *n == 1 {
                    let prev = results.remove(*first).unwrap_or(Value::Null);
                    results.insert(first.to_string(), Value::Array(vec![prev]));
                }
                if let Some(Value::Array(list)) = results.get_mut(*first) {
                    list.push(rest);
                }
                *n += 1;
            }
            None => {
                results.insert(first.to_string(), rest);
                seen.insert(first.to_string(), 1);
            }
        }
    }
    results
}

#[async_trait]
impl Module for Getent {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let db = args.req_str("database")?;
        let key = args.str("key");
        if args.get("split").is_some() && args.str("split") == Some("") {
            return Err(ModError::fail(
                "Invalid split value. The value must be a non-empty string",
            ));
        }
        let split = args
            .str("split")
            .or_else(|| {
                ["passwd", "shadow", "group", "gshadow"]
                    .contains(&db)
                    .then_some(":")
            })
            .map(|s| if s == "\\t" { "\t" } else { s });
        let mut cmd = String::from("getent");
        if let Some(s) = args.str("service") {
            cmd.push_str(&format!(" -s {}", quote(s)));
        }
        cmd.push_str(&format!(" {}", quote(db)));
        if let Some(k) = key {
            cmd.push_str(&format!(" {}", quote(k)));
        }
        let out = ctx
            .sh(&format!("PATH=\"$PATH:/usr/bin:/bin\"\n{cmd}"))
            .await?;
        let tree = format!("getent_{db}");
        let mut facts = Map::new();
        let msg = match out.rc {
            0 => {
                facts.insert(tree, Value::Object(parse(&out.stdout_str(), split)));
                return Ok(Outcome {
                    facts: Some(facts),
                    ..Outcome::ok()
                });
            }
            1 => "Missing arguments, or database unknown.",
            2 => {
                let msg = "One or more supplied key could not be found in the database.";
                if !args.bool("fail_key") {
                    let mut m = Map::new();
                    m.insert(key.unwrap_or_default().to_string(), Value::Null);
                    facts.insert(tree, Value::Object(m));
                    return Ok(Outcome {
                        facts: Some(facts),
                        ..Outcome::ok()
                    }
                    .msg(msg));
                }
                msg
            }
            3 => "Enumeration not supported on this database.",
            _ => "Unexpected failure!",
        };
        Err(failed(msg, out.rc, &out.stdout_str(), &out.stderr_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::TestEnv;
    use serde_json::json;

    #[test]
    fn splits_like_ansible() {
        let m = parse("root:x:0:0:root:/root:/bin/bash\n", Some(":"));
        assert_eq!(
            m["root"],
            json!(["x", "0", "0", "root", "/root", "/bin/bash"])
        );
        let m = parse(
            "127.0.0.1       localhost\n::1  localhost ip6-localhost\n",
            None,
        );
        assert_eq!(m["127.0.0.1"], json!(["localhost"]));
        // Repeated keys become a list of records.
        let m = parse("http 80/tcp www\nhttp 80/udp\n", None);
        assert_eq!(m["http"], json!([["80/tcp", "www"], ["80/udp"]]));
    }

    #[tokio::test]
    async fn local_lookups() {
        let env = TestEnv::new();
        let o = env
            .ok(&Getent, json!({"database": "passwd", "key": "root"}))
            .await;
        let f = o.facts.unwrap();
        assert_eq!(f["getent_passwd"]["root"][1], "0");
        let e = env
            .run(
                &Getent,
                json!({"database": "passwd", "key": "ferry-nobody-here"}),
            )
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "One or more supplied key could not be found in the database."
        );
        let o = env
            .ok(
                &Getent,
                json!({"database": "passwd", "key": "ferry-nobody-here", "fail_key": false}),
            )
            .await;
        assert_eq!(
            o.facts.unwrap()["getent_passwd"],
            json!({"ferry-nobody-here": null})
        );
    }
}
