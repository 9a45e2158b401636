//! `jenkins_job` (community.general): create, update, delete, enable and
//! disable Jenkins jobs through the REST API, from the target.

use async_trait::async_trait;

use super::jenkins_api::{self as api, Jenkins, Req};
use super::{Args, Ctx, Diff, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["community.general.jenkins_job", "community.general.web_infrastructure.jenkins_job"],
    mutually_exclusive: &[&["config", "enabled"], &["password", "token"]],
    example: "- community.general.jenkins_job:\n    name: train-lda\n    config: \"{{ lookup('template', 'train-lda.xml.j2') }}\"\n    url: http://localhost:8080\n    user: admin\n    password: \"{{ jenkins_admin_password }}\"\n",
    ..ModuleSpec::new(
        "jenkins_job",
        "Manage Jenkins jobs through Jenkins' REST API (runs curl on the target). Idempotent by canonical XML: layout, attribute order, comments and Jenkins' plugin=\"x@v\" attributes do not count as changes.",
        crate::with_jenkins_params![
            Param::new("name", Kind::Str, "Name of the Jenkins job; a job in a folder is written folder/name.").required(),
            Param::new("config", Kind::Str, "Config in XML format. Required if the job does not yet exist. Considered if state=present."),
            Param::new("enabled", Kind::Bool, "Whether the job should be enabled or disabled. Considered if state=present."),
            Param::new("state", Kind::Str, "Whether the job should exist.").choices(&["present", "absent"]).default("present"),
            api::TIMEOUT,
        ],
    )
};

pub struct JenkinsJob;

/// What Jenkins has for the job.
struct Current {
    config: String,
    color: String,
}

async fn current(j: &Jenkins, ctx: &Ctx<'_>, path: &str) -> Result<Option<Current>, ModError> {
    let reqs = [
        Req::get(format!("{path}/config.xml")),
        Req::get(format!("{path}/api/json")),
    ];
    let r = j.run(ctx, &reqs).await?;
    match r.first() {
        Some(c) if c.status == 404 => return Ok(None),
        Some(c) if c.ok() => {}
        Some(c) => {
            return Err(ModError::fail(j.describe(
                "read the job config at",
                &reqs[0].path,
                c,
            )))
        }
        None => return Err(ModError::fail("no answer from Jenkins")),
    }
    let info = match r.get(1) {
        Some(i) if i.ok() => i.json()?,
        Some(i) => {
            return Err(ModError::fail(j.describe(
                "read the job status at",
                &reqs[1].path,
                i,
            )))
        }
        None => return Err(ModError::fail("no answer from Jenkins")),
    };
    Ok(Some(Current {
        config: r[0].text(),
        color: info["color"].as_str().unwrap_or("").to_string(),
    }))
}

fn canonical(xml: &str, what: &str) -> Result<String, ModError> {
    api::canonical_xml(xml).map_err(|e| ModError::fail(format!("{what}: {e}")))
}

#[async_trait]
impl Module for JenkinsJob {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let name = args.req_str("name")?.trim_matches('/').to_string();
        if name.is_empty() {
            return Err(ModError::fail("name must not be empty"));
        }
        let j = Jenkins::from_args(args)?;
        let state = args.str("state").unwrap_or("present");
        let path = api::job_path(&name);
        let mut o = Outcome::ok()
            .with("name", name.clone())
            .with("state", state)
            .with("url", j.url.clone())
            .with(
                "user",
                j.user
                    .clone()
                    .map(serde_json::Value::from)
                    .unwrap_or(serde_json::Value::Null),
            );
        if let Some(e) = args.get("enabled") {
            o = o.with("enabled", e.clone());
        }
        let desired = args.str("config");
        let desired_canon = desired.map(|c| canonical(c, "config")).transpose()?;
        if state == "present" && desired.is_none() && !args.has("enabled") {
            return Err(ModError::fail(
                "one of the following params is required on state=present: config,enabled",
            ));
        }
        let cur = current(&j, ctx, &path).await?;
        let header = format!("jenkins job {name}");
        match (state, cur) {
            ("absent", None) => Ok(o),
            ("absent", Some(cur)) => {
                o.changed = true;
                if ctx.diff_mode {
                    o = o.diff(Diff {
                        before: canonical(&cur.config, "current config").unwrap_or(cur.config),
                        after: String::new(),
                        before_header: header.clone(),
                        after_header: header,
                    });
                }
                if !ctx.check_mode {
                    j.run_ok(
                        ctx,
                        &[Req::post(format!("{path}/doDelete"))],
                        "delete the job at",
                    )
                    .await?;
                }
                Ok(o)
            }
            (_, None) => {
                let (Some(config), Some(after)) = (desired, desired_canon) else {
                    return Err(ModError::fail("missing required param: config"));
                };
                o.changed = true;
                if ctx.diff_mode {
                    o = o.diff(Diff {
                        before: String::new(),
                        after,
                        before_header: header.clone(),
                        after_header: header,
                    });
                }
                if !ctx.check_mode {
                    let (folder, short) = api::split_job(&name);
                    let create = Req::post_xml(
                        format!("{folder}/createItem?name={}", api::encode(&short)),
                        config,
                    );
                    j.run_ok(ctx, &[create], "create the job at").await?;
                }
                Ok(o)
            }
            (_, Some(cur)) => {
                if let (Some(config), Some(after)) = (desired, desired_canon) {
                    let before = canonical(&cur.config, "current config")?;
                    if before != after {
                        o.changed = true;
                        if ctx.diff_mode {
                            o = o.diff(Diff {
                                before,
                                after,
                                before_header: header.clone(),
                                after_header: header,
                            });
                        }
                        if !ctx.check_mode {
                            j.run_ok(
                                ctx,
                                &[Req::post_xml(format!("{path}/config.xml"), config)],
                                "update the job config at",
                            )
                            .await?;
                        }
                    }
                    return Ok(o);
                }
                let want = args.bool("enabled");
                let disabled = cur.color == "disabled"
                    || (cur.color.is_empty() && api::xml_disabled(&cur.config) == Some(true));
                if want == disabled {
                    o.changed = true;
                    if ctx.diff_mode {
                        let s = |d: bool| format!("enabled: {}\n", !d);
                        o = o.diff(Diff {
                            before: s(disabled),
                            after: s(!disabled),
                            before_header: header.clone(),
                            after_header: header,
                        });
                    }
                    if !ctx.check_mode {
                        let action = if want { "enable" } else { "disable" };
                        j.run_ok(
                            ctx,
                            &[Req::post(format!("{path}/{action}"))],
                            &format!("{action} the job at"),
                        )
                        .await?;
                    }
                }
                Ok(o)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use crate::modules::testutil::{ctx_on, field};
    use crate::template::{Scope, Templar};
    use base64::Engine;
    use serde_json::json;

    fn line(id: &str, status: u16, body: &str) -> String {
        let e = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        format!("@@FERRY-HTTP|{id}|{status}|{}|{}|\n", e(""), e(body))
    }

    const STORED: &str = "<?xml version='1.1' encoding='UTF-8'?>\n<project>\n  <description>LDA</description>\n  <disabled>false</disabled>\n  <builders>\n    <hudson.tasks.Shell plugin=\"x@1\">\n      <command>echo hi</command>\n    </hudson.tasks.Shell>\n  </builders>\n</project>";
    const SAME: &str = "<project><description>LDA</description><disabled>false</disabled><builders><hudson.tasks.Shell><command>echo hi</command></hudson.tasks.Shell></builders></project>";

    async fn run(rec: &Recording, args: serde_json::Value, check: bool, diff: bool) -> ModResult {
        let (t, s) = (Templar::new(), Scope::new());
        let ctx = ctx_on(rec, &t, &s, check, diff);
        let a = SPEC
            .validate(args.as_object().unwrap().clone())
            .map_err(ModError::fail)?;
        JenkinsJob.run(&a, &ctx).await
    }

    fn base(extra: serde_json::Value) -> serde_json::Value {
        let mut m = json!({"name": "ml/train-lda", "user": "admin", "password": "pw"});
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        m
    }

    fn existing(rec: &Recording, color: &str) {
        // The read batch: config.xml then api/json (no POST, so no crumb).
        rec.on(
            "/job/ml/job/train-lda/config.xml",
            0,
            &(line("0", 200, STORED) + &line("1", 200, &format!("{{\"color\":\"{color}\"}}"))),
        );
    }

    #[tokio::test]
    async fn same_config_is_unchanged() {
        let rec = Recording::new();
        existing(&rec, "blue");
        let o = run(&rec, base(json!({"config": SAME})), false, false)
            .await
            .unwrap();
        assert!(!o.changed);
        assert_eq!(rec.scripts().len(), 1, "only the read round trip");
        assert_eq!(field(&o, "name"), "ml/train-lda");
        assert_eq!(field(&o, "url"), "http://localhost:8080");
        assert!(!rec.ran("crumbIssuer"));
    }

    #[tokio::test]
    async fn changed_config_is_posted_with_diff_and_check_mode_posts_nothing() {
        let rec = Recording::new();
        rec.on("base64 -d", 0, &line("0", 200, ""));
        existing(&rec, "blue");
        let newer = SAME.replace("echo hi", "echo bye");
        let o = run(&rec, base(json!({"config": newer})), true, true)
            .await
            .unwrap();
        assert!(o.changed);
        assert_eq!(rec.scripts().len(), 1, "check mode: no POST");
        assert!(
            o.diff[0].before.contains("<command>echo hi</command>")
                && o.diff[0].after.contains("<command>echo bye</command>")
        );
        assert!(!o.diff[0].before.contains("plugin="));
        let o = run(&rec, base(json!({"config": newer})), false, false)
            .await
            .unwrap();
        assert!(o.changed);
        let post = rec.scripts().last().unwrap().clone();
        assert!(
            post.contains("crumbIssuer")
                && post.contains("-X POST")
                && post.contains("/job/ml/job/train-lda/config.xml"),
            "{post}"
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(&newer);
        assert!(post.contains(&b64));
    }

    #[tokio::test]
    async fn creates_in_folder_and_deletes() {
        let rec = Recording::new();
        rec.on("createItem", 0, &line("0", 200, ""));
        rec.on("doDelete", 0, &line("0", 302, ""));
        rec.on(
            "/config.xml",
            0,
            &line("0", 404, "<h2>HTTP ERROR 404 Not Found</h2>"),
        );
        let o = run(&rec, base(json!({"config": SAME})), false, true)
            .await
            .unwrap();
        assert!(o.changed);
        assert!(o.diff[0].before.is_empty() && o.diff[0].after.starts_with("<project>"));
        assert!(
            rec.ran("\"$u\"'/job/ml/createItem?name=train-lda'"),
            "{:?}",
            rec.scripts()
        );
        assert!(rec.ran("Content-Type: text/xml; charset=utf-8"));
        // Absent and already gone: nothing to do.
        let before = rec.scripts().len();
        let o = run(&rec, base(json!({"state": "absent"})), false, false)
            .await
            .unwrap();
        assert!(!o.changed);
        assert_eq!(rec.scripts().len(), before + 1);
        // Missing config for a new job.
        let e = run(&rec, base(json!({"enabled": true})), false, false)
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "missing required param: config");
        let rec = Recording::new();
        rec.on("doDelete", 0, &line("0", 302, ""));
        existing(&rec, "blue");
        let o = run(&rec, base(json!({"state": "absent"})), false, false)
            .await
            .unwrap();
        assert!(o.changed);
        assert!(rec.ran("-X POST") && rec.ran("/job/ml/job/train-lda/doDelete"));
    }

    #[tokio::test]
    async fn enable_disable_by_color() {
        let rec = Recording::new();
        rec.on("/disable", 0, &line("0", 302, ""));
        existing(&rec, "blue");
        let o = run(&rec, base(json!({"enabled": false})), false, false)
            .await
            .unwrap();
        assert!(o.changed);
        assert!(rec.ran("/job/ml/job/train-lda/disable"));
        let rec = Recording::new();
        existing(&rec, "disabled");
        let o = run(&rec, base(json!({"enabled": false})), false, false)
            .await
            .unwrap();
        assert!(!o.changed);
        assert_eq!(field(&o, "enabled"), false);
    }

    #[tokio::test]
    async fn errors_are_explained() {
        let rec = Recording::new();
        rec.on("config.xml", 0, &line("0", 401, ""));
        let e = run(&rec, base(json!({"config": SAME})), false, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("401") && e.contains("invalid user"), "{e}");
        let e = run(&rec, base(json!({"config": "<project>"})), false, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("config: invalid XML"), "{e}");
        let e = run(&rec, base(json!({})), false, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("config,enabled"), "{e}");
        let e = run(
            &rec,
            base(json!({"config": SAME, "enabled": true})),
            false,
            false,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(e.contains("mutually exclusive"), "{e}");
        let rec = Recording::new();
        rec.on("config.xml", 0, &line("0", 0, ""));
        let e = run(&rec, base(json!({"config": SAME})), false, false)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("Unable to connect to Jenkins server at http://localhost:8080"),
            "{e}"
        );
    }
}
