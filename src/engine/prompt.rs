//! `vars_prompt`: values asked once at the start of a play, as
//! ansible-playbook asks them: a variable given with `-e` is not asked, and
//! without a terminal on stdin nothing is asked (the default is used).

use std::io::{BufRead, IsTerminal, Write};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::template::{Scope, Templar};

/// Asks on the terminal (stdin/stderr); input without echo for `private`.
pub fn ask(
    prompts: &[Map<String, Value>],
    extra_vars: &Map<String, Value>,
    templar: &Templar,
) -> Result<Map<String, Value>> {
    if prompts.iter().all(|p| given(p, extra_vars)) {
        return Ok(Map::new());
    }
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    if !tty {
        eprintln!("[WARNING]: Not prompting as we are not in interactive mode");
    }
    ask_with(
        prompts,
        extra_vars,
        templar,
        &mut stdin.lock(),
        &mut std::io::stderr(),
        tty,
    )
}

fn given(p: &Map<String, Value>, extra_vars: &Map<String, Value>) -> bool {
    p.get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| extra_vars.contains_key(n))
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn flag(v: Option<&Value>, default: bool) -> bool {
    v.map(|v| crate::modules::to_bool(v).unwrap_or(default))
        .unwrap_or(default)
}

/// Turns terminal echo off while a private value is typed.
struct NoEcho(bool);

impl NoEcho {
    fn new(on: bool) -> NoEcho {
        let ok = on && stty("-echo");
        NoEcho(ok)
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        if self.0 {
            stty("echo");
        }
    }
}

fn stty(arg: &str) -> bool {
    std::process::Command::new("stty")
        .arg(arg)
        .stdin(std::process::Stdio::inherit())
        .status()
        .is_ok_and(|s| s.success())
}

fn read_answer(
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    msg: &str,
    private: bool,
    tty: bool,
) -> Result<Option<String>> {
    let io = |e: std::io::Error| Error::Other(format!("vars_prompt: {e}"));
    write!(out, "{msg}").map_err(io)?;
    out.flush().map_err(io)?;
    let mut line = String::new();
    let n = {
        let _quiet = NoEcho::new(private && tty);
        input.read_line(&mut line).map_err(io)?
    };
    if private && tty {
        writeln!(out).map_err(io)?;
    }
    Ok((n > 0).then(|| line.trim_end_matches(['\n', '\r']).to_string()))
}

pub fn ask_with(
    prompts: &[Map<String, Value>],
    extra_vars: &Map<String, Value>,
    templar: &Templar,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
    tty: bool,
) -> Result<Map<String, Value>> {
    let mut vars = Map::new();
    for p in prompts {
        let name = p["name"].as_str().unwrap_or_default().to_string();
        if given(p, extra_vars) {
            continue;
        }
        let default = text(p.get("default"));
        let private = flag(p.get("private"), true);
        let msg = match (text(p.get("prompt")), &default) {
            (Some(prompt), Some(d)) => format!("{prompt} [{d}]: "),
            (Some(prompt), None) => format!("{prompt}: "),
            (None, _) => format!("input for {name}: "),
        };
        let mut value = loop {
            if !tty {
                // Ansible's value when it cannot ask: the default, else `None` as text.
                break default.clone().unwrap_or_else(|| "None".into());
            }
            let first = read_answer(input, out, &msg, private, tty)?;
            let Some(first) = first else {
                // No more input: the default, as an empty answer gives.
                break default.clone().unwrap_or_default();
            };
            if flag(p.get("confirm"), false) {
                let again = read_answer(input, out, &format!("confirm {msg}"), private, tty)?;
                if again.as_deref() != Some(first.as_str()) {
                    let _ = writeln!(out, "***** VALUES ENTERED DO NOT MATCH ****");
                    if again.is_none() {
                        return Err(Error::Other(format!(
                            "vars_prompt {name}: the values entered do not match"
                        )));
                    }
                    continue;
                }
            }
            break if first.is_empty() {
                default.clone().unwrap_or_default()
            } else {
                first
            };
        };
        if let Some(algo) = text(p.get("encrypt")) {
            let mut layer = Map::new();
            layer.insert("__prompt_value".into(), Value::String(value));
            layer.insert("__prompt_algo".into(), Value::String(algo));
            let salt = match (
                text(p.get("salt")),
                p.get("salt_size").and_then(Value::as_u64),
            ) {
                (Some(s), _) => {
                    layer.insert("__prompt_salt".into(), Value::String(s));
                    ", salt=__prompt_salt".to_string()
                }
                (None, Some(n)) => format!(", salt_size={n}"),
                (None, None) => String::new(),
            };
            let scope = Scope::new().with(layer);
            let expr = format!("__prompt_value | password_hash(__prompt_algo{salt})");
            value = match templar.eval_expr(&expr, &scope) {
                Ok(Value::String(s)) => s,
                Ok(other) => other.to_string(),
                Err(e) => return Err(Error::Other(format!("vars_prompt {name}: {e}"))),
            };
        }
        if flag(p.get("unsafe"), false) && (value.contains("{{") || value.contains("{%")) {
            // Kept as typed: never templated.
            value = format!("{{% raw %}}{value}{{% endraw %}}");
        }
        vars.insert(name, Value::String(value));
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn prompts(v: Value) -> Vec<Map<String, Value>> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_object().unwrap().clone())
            .collect()
    }

    #[test]
    fn asks_in_order_with_defaults_confirmation_and_extra_vars() {
        let t = Templar::new();
        let ps = prompts(json!([
            {"name": "user", "prompt": "Your name?", "private": false},
            {"name": "env", "prompt": "Where", "default": "staging"},
            {"name": "given", "prompt": "never asked"},
            {"name": "pw", "prompt": "Password", "confirm": true},
            {"name": "hash", "encrypt": "sha512_crypt", "salt": "saltsalt", "prompt": "Hash"},
            {"name": "raw", "unsafe": true, "private": false, "prompt": "Raw"}
        ]));
        let extra = json!({"given": 1}).as_object().unwrap().clone();
        let mut input = std::io::Cursor::new("ada\n\nsecret\nwrong\nsecret\nsecret\nx\n{{ y }}\n");
        let mut out = Vec::new();
        let v = ask_with(&ps, &extra, &t, &mut input, &mut out, true).unwrap();
        let shown = String::from_utf8(out).unwrap();
        assert_eq!(v["user"], "ada");
        assert_eq!(v["env"], "staging");
        assert!(!v.contains_key("given"));
        assert_eq!(v["pw"], "secret");
        assert!(
            shown.starts_with("Your name?: Where [staging]: \nPassword: \nconfirm Password: \n***** VALUES ENTERED DO NOT MATCH ****\nPassword: "),
            "{shown}"
        );
        assert!(!shown.contains("never asked"));
        // passlib's sha512_crypt of "x" with this salt and Ansible's rounds.
        assert!(
            v["hash"]
                .as_str()
                .unwrap()
                .starts_with("$6$rounds=656000$saltsalt$"),
            "{}",
            v["hash"]
        );
        assert_eq!(v["raw"], "{% raw %}{{ y }}{% endraw %}");
        // Input ends: the default, or an empty value.
        let mut none = std::io::Cursor::new("");
        let v = ask_with(&ps[..2], &Map::new(), &t, &mut none, &mut Vec::new(), true).unwrap();
        assert_eq!(
            (v["user"].as_str(), v["env"].as_str()),
            (Some(""), Some("staging"))
        );
        // No terminal: nothing is read; the default, else Ansible's "None".
        let mut unread = std::io::Cursor::new("typed\n");
        let v = ask_with(
            &ps[..2],
            &Map::new(),
            &t,
            &mut unread,
            &mut Vec::new(),
            false,
        )
        .unwrap();
        assert_eq!(
            (v["user"].as_str(), v["env"].as_str()),
            (Some("None"), Some("staging"))
        );
        assert_eq!(unread.position(), 0);
    }
}
