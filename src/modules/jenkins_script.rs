//! `jenkins_script` (community.general): runs a Groovy script in Jenkins'
//! script console (`POST /scriptText`) from the target; returns its output.

use async_trait::async_trait;

use super::jenkins_api::{Jenkins, Req};
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["community.general.jenkins_script", "community.general.web_infrastructure.jenkins_script"],
    mutually_exclusive: &[&["password", "token"]],
    example: "- community.general.jenkins_script:\n    script: 'println(Jenkins.instance.pluginManager.plugins)'\n    user: admin\n    password: \"{{ jenkins_admin_password }}\"\n",
    ..ModuleSpec::new(
        "jenkins_script",
        "Executes a Groovy script in the Jenkins instance (script console, through curl on the target). Always reports changed, like Ansible: Jenkins cannot tell what a script did.",
        crate::with_jenkins_params![
            Param::new("script", Kind::Str, "The Groovy script to be executed. `$name` placeholders are replaced from args.").required(),
            Param::new("args", Kind::Dict, "A dict of key-value pairs used in formatting the script (Python string.Template: $key or ${key})."),
            Param::new("timeout", Kind::Int, "The request timeout in seconds.").default("10"),
        ],
    )
};

pub struct JenkinsScript;

/// Python's `string.Template.substitute`: `$key`, `${key}`, `$$` -> `$`.
pub fn substitute(
    script: &str,
    args: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, String> {
    let mut out = String::with_capacity(script.len());
    let b = script.as_bytes();
    let mut i = 0;
    let ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while i < b.len() {
        if b[i] != b'$' {
            let ch = script[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let rest = &script[i + 1..];
        let (name, used) = if rest.starts_with('$') {
            out.push('$');
            i += 2;
            continue;
        } else if let Some(r) = rest.strip_prefix('{') {
            match r.find('}') {
                Some(e) => (&r[..e], e + 2),
                None => {
                    return Err(format!(
                        "Invalid placeholder in string: line 1, col {}",
                        i + 1
                    ))
                }
            }
        } else {
            let n = rest.bytes().take_while(|c| ident(*c)).count();
            if n == 0 || rest.as_bytes()[0].is_ascii_digit() {
                return Err(format!(
                    "Invalid placeholder in string: line 1, col {}",
                    i + 1
                ));
            }
            (&rest[..n], n)
        };
        let v = args
            .get(name)
            .ok_or_else(|| format!("KeyError: '{name}'"))?;
        out.push_str(&match v {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
            serde_json::Value::Null => "None".to_string(),
            other => other.to_string(),
        });
        i += 1 + used;
    }
    Ok(out)
}

/// Runs a script in the console; the output, or the failure Ansible reports
/// when the output holds a Groovy exception.
pub async fn run_script(j: &Jenkins, ctx: &Ctx<'_>, script: &str) -> Result<String, ModError> {
    let r = j
        .run_ok(
            ctx,
            &[Req::post_form("/scriptText", &[("script", script)])],
            "run a script at",
        )
        .await?;
    let output = r[0].text();
    if output.contains("Exception:") {
        let mut data = serde_json::Map::new();
        data.insert("output".into(), output.clone().into());
        return Err(ModError::Failed {
            msg: format!("script failed with stacktrace:\n {output}"),
            data,
        });
    }
    Ok(output)
}

#[async_trait]
impl Module for JenkinsScript {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let mut script = args.req_str("script")?.to_string();
        if let Some(serde_json::Value::Object(a)) = args.get("args") {
            script = substitute(&script, a).map_err(ModError::fail)?;
        }
        let j = Jenkins::from_args(args)?;
        if ctx.check_mode {
            // A script may change anything: Ansible's module does not support check mode.
            let mut o = Outcome::ok().msg("skipped, running in check mode");
            o.skipped = true;
            return Ok(o);
        }
        let output = run_script(&j, ctx, &script).await?;
        Ok(Outcome::changed(true).with("output", output))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use crate::modules::testutil::{field, http_line};
    use base64::Engine;
    use serde_json::json;

    async fn run(rec: &Recording, args: serde_json::Value, check: bool) -> ModResult {
        crate::modules::testutil::run_on(rec, &JenkinsScript, args, None, check, false).await
    }

    #[test]
    fn template_substitution() {
        let a = json!({"user": "bob", "n": 3}).as_object().unwrap().clone();
        assert_eq!(
            substitute("println '$user ${n} $$x'", &a).unwrap(),
            "println 'bob 3 $x'"
        );
        assert_eq!(
            substitute("$missing", &a).unwrap_err(),
            "KeyError: 'missing'"
        );
        assert!(substitute("a $ b", &a).is_err());
    }

    #[tokio::test]
    async fn posts_the_script_and_returns_output() {
        let rec = Recording::new();
        rec.on("/scriptText", 0, &http_line(200, "hello bob\n"));
        let o = run(&rec, json!({"script": "println \"hello $who\"", "args": {"who": "bob"}, "user": "admin", "password": "pw"}), false).await.unwrap();
        assert!(o.changed);
        assert_eq!(field(&o, "output"), "hello bob\n");
        let s = rec.scripts()[0].clone();
        assert!(s.contains("crumbIssuer") && s.contains("application/x-www-form-urlencoded"));
        let body =
            base64::engine::general_purpose::STANDARD.encode("script=println%20%22hello%20bob%22");
        assert!(s.contains(&body), "{s}");
        assert!(s.contains("--max-time 10"));
        // Check mode runs nothing.
        let rec = Recording::new();
        let o = run(&rec, json!({"script": "x"}), true).await.unwrap();
        assert!(o.skipped && !o.changed);
        assert!(rec.scripts().is_empty());
        // A Groovy exception fails the task, with the output kept.
        let rec = Recording::new();
        rec.on(
            "/scriptText",
            0,
            &http_line(
                200,
                "java.lang.Exception: boom\n\tat Script1.run(Script1.groovy:1)\n",
            ),
        );
        match run(
            &rec,
            json!({"script": "throw new Exception('boom')"}),
            false,
        )
        .await
        .unwrap_err()
        {
            ModError::Failed { msg, data } => {
                assert!(msg.starts_with("script failed with stacktrace:"));
                assert!(data["output"].as_str().unwrap().contains("boom"));
            }
            e => panic!("{e}"),
        }
    }
}
