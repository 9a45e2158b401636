//! `jenkins_build` (community.general): trigger a build and wait for its
//! result, stop a running build, or delete a build, from the target.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;

use super::jenkins_api::{self as api, Jenkins, Req};
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["community.general.jenkins_build", "community.general.web_infrastructure.jenkins_build"],
    mutually_exclusive: &[&["password", "token"]],
    example: "- community.general.jenkins_build:\n    name: train-lda\n    args:\n      DATA_DIR: /srv/trainer/data\n    user: admin\n    password: \"{{ jenkins_admin_password }}\"\n  register: build\n- ansible.builtin.debug:\n    var: build.build_info.result\n",
    ..ModuleSpec::new(
        "jenkins_build",
        "Manage Jenkins builds: trigger one and wait for its result (fails unless SUCCESS), stop one, or delete one.",
        crate::with_jenkins_params![
            Param::new("name", Kind::Str, "Name of the Jenkins job to build (folder/name for a job in a folder).").required(),
            Param::new("args", Kind::Dict, "Parameters to pass to the build."),
            Param::new("build_number", Kind::Int, "A build of the job. Required with state=absent or state=stopped."),
            Param::new("state", Kind::Str, "Whether the build is to be created, deleted or stopped.").choices(&["present", "absent", "stopped"]).default("present"),
            Param::new("detach", Kind::Bool, "Do not wait for the end of the build.").default("no"),
            Param::new("time_between_checks", Kind::Int, "Seconds to wait between requests to the Jenkins server.").default("10"),
            api::TIMEOUT,
        ],
    )
};

pub struct JenkinsBuild;

/// The build's info, or None when Jenkins has no such build (yet).
async fn build_info(
    j: &Jenkins,
    ctx: &Ctx<'_>,
    path: &str,
    number: i64,
) -> Result<Option<Value>, ModError> {
    let r = j
        .run(ctx, &[Req::get(format!("{path}/{number}/api/json"))])
        .await?;
    match r.first() {
        Some(x) if x.status == 404 => Ok(None),
        Some(x) if x.ok() => Ok(Some(x.json()?)),
        Some(x) => Err(ModError::fail(j.describe(
            "read the build at",
            &format!("{path}/{number}/api/json"),
            x,
        ))),
        None => Err(ModError::fail("no answer from Jenkins")),
    }
}

#[async_trait]
impl Module for JenkinsBuild {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let name = args.req_str("name")?.trim_matches('/').to_string();
        let state = args.str("state").unwrap_or("present");
        let j = Jenkins::from_args(args)?;
        let path = api::job_path(&name);
        let pause =
            Duration::from_secs(args.int("time_between_checks").unwrap_or(10).max(0) as u64);
        let mut o = Outcome::ok()
            .with("name", name.clone())
            .with("state", state)
            .with("url", j.url.clone())
            .with(
                "user",
                j.user.clone().map(Value::from).unwrap_or(Value::Null),
            );
        let number = match state {
            "present" => None,
            _ => Some(args.int("build_number").ok_or_else(|| {
                ModError::fail(format!(
                    "state is {state} but all of the following are missing: build_number"
                ))
            })?),
        };
        match (state, number) {
            ("stopped", Some(n)) => {
                let info = build_info(&j, ctx, &path, n).await?.ok_or_else(|| {
                    ModError::fail(format!("Unable to find build #{n} of {name}"))
                })?;
                if info["building"] != Value::Bool(true) {
                    return Ok(o.with("build_info", info));
                }
                o.changed = true;
                if ctx.check_mode {
                    return Ok(o.with("build_info", info));
                }
                j.run_ok(
                    ctx,
                    &[Req::post(format!("{path}/{n}/stop"))],
                    "stop the build at",
                )
                .await?;
                loop {
                    let info = build_info(&j, ctx, &path, n).await?.unwrap_or(Value::Null);
                    match info["result"].as_str() {
                        None if info["building"] == Value::Bool(true) => {
                            tokio::time::sleep(pause.max(Duration::from_millis(200))).await
                        }
                        Some("ABORTED") => return Ok(o.with("build_info", info)),
                        _ => return finish_failed(o, info),
                    }
                }
            }
            ("absent", Some(n)) => {
                let Some(info) = build_info(&j, ctx, &path, n).await? else {
                    return Ok(o.with("build_info", serde_json::json!({"result": "ABSENT"})));
                };
                o.changed = true;
                if !ctx.check_mode {
                    j.run_ok(
                        ctx,
                        &[Req::post(format!("{path}/{n}/doDelete"))],
                        "delete the build at",
                    )
                    .await?;
                }
                let _ = info;
                Ok(o.with("build_info", serde_json::json!({"result": "ABSENT"})))
            }
            _ => {
                // The build number the trigger will get, then the trigger.
                let r = j.run(ctx, &[Req::get(format!("{path}/api/json"))]).await?;
                let job = match r.first() {
                    Some(x) if x.ok() => x.json()?,
                    Some(x) => {
                        return Err(ModError::fail(j.describe(
                            "read the job at",
                            &format!("{path}/api/json"),
                            x,
                        )))
                    }
                    None => return Err(ModError::fail("no answer from Jenkins")),
                };
                let next = job["nextBuildNumber"].as_i64().ok_or_else(|| {
                    ModError::fail(format!(
                        "Jenkins did not say the next build number of {name}"
                    ))
                })?;
                o.changed = true;
                if ctx.check_mode {
                    return Ok(o.with("build_info", serde_json::json!({"number": next})));
                }
                let trigger = match args.get("args") {
                    Some(Value::Object(a)) if !a.is_empty() => {
                        let owned: Vec<(String, String)> = a
                            .iter()
                            .map(|(k, v)| {
                                (
                                    k.clone(),
                                    v.as_str()
                                        .map(str::to_string)
                                        .unwrap_or_else(|| v.to_string()),
                                )
                            })
                            .collect();
                        let fields: Vec<(&str, &str)> = owned
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .collect();
                        Req::post_form(format!("{path}/buildWithParameters"), &fields)
                    }
                    _ => Req::post(format!("{path}/build")),
                };
                j.run_ok(ctx, &[trigger], "start a build at").await?;
                o = o.with("build_number", next);
                loop {
                    let info = build_info(&j, ctx, &path, next).await?;
                    match info {
                        Some(info) if !info["result"].is_null() => {
                            if info["result"] == "SUCCESS" {
                                return Ok(o.with("build_info", info));
                            }
                            return finish_failed(o, info);
                        }
                        Some(info) if args.bool("detach") => return Ok(o.with("build_info", info)),
                        _ => tokio::time::sleep(pause.max(Duration::from_millis(200))).await,
                    }
                }
            }
        }
    }
}

fn finish_failed(o: Outcome, info: Value) -> ModResult {
    let mut data = o.data;
    data.insert("changed".into(), Value::Bool(false));
    let result = info["result"].as_str().unwrap_or("unknown").to_string();
    data.insert("build_info".into(), info);
    Err(ModError::Failed {
        msg: format!("Build ended with result {result}"),
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use crate::modules::testutil::{field, http_line};
    use base64::Engine;
    use serde_json::json;

    async fn run(rec: &Recording, args: serde_json::Value, check: bool) -> ModResult {
        crate::modules::testutil::run_on(rec, &JenkinsBuild, args, None, check, false).await
    }

    #[tokio::test]
    async fn triggers_with_parameters_and_waits_for_success() {
        let rec = Recording::new();
        rec.on("buildWithParameters", 0, &http_line(201, ""));
        rec.on(
            "/job/train/7/api/json",
            0,
            &http_line(200, r#"{"number":7,"building":false,"result":"SUCCESS"}"#),
        );
        rec.on(
            "/job/train/api/json",
            0,
            &http_line(200, r#"{"nextBuildNumber":7}"#),
        );
        let o = run(
            &rec,
            json!({"name": "train", "args": {"DATA": "/srv/d", "N": 2}, "time_between_checks": 0}),
            false,
        )
        .await
        .unwrap();
        assert!(o.changed);
        assert_eq!(field(&o, "build_info")["number"], 7);
        let trigger = rec
            .scripts()
            .iter()
            .find(|s| s.contains("buildWithParameters"))
            .unwrap()
            .clone();
        let body = base64::engine::general_purpose::STANDARD.encode("DATA=%2Fsrv%2Fd&N=2");
        assert!(
            trigger.contains(&body) && trigger.contains("crumbIssuer"),
            "{trigger}"
        );
        // Check mode: the next number is read, nothing is triggered.
        let rec2 = Recording::new();
        rec2.on(
            "/job/train/api/json",
            0,
            &http_line(200, r#"{"nextBuildNumber":7}"#),
        );
        let o = run(&rec2, json!({"name": "train"}), true).await.unwrap();
        assert!(o.changed);
        assert!(!rec2.ran("-X POST"));
    }

    #[tokio::test]
    async fn unstable_build_fails_the_task_and_stopped_is_idempotent() {
        let rec = Recording::new();
        rec.on("/job/train/build", 0, &http_line(201, ""));
        rec.on(
            "/job/train/3/api/json",
            0,
            &http_line(200, r#"{"number":3,"building":false,"result":"UNSTABLE"}"#),
        );
        rec.on(
            "/job/train/api/json",
            0,
            &http_line(200, r#"{"nextBuildNumber":3}"#),
        );
        match run(
            &rec,
            json!({"name": "train", "time_between_checks": 0}),
            false,
        )
        .await
        .unwrap_err()
        {
            ModError::Failed { msg, data } => {
                assert_eq!(msg, "Build ended with result UNSTABLE");
                assert_eq!(data["build_info"]["result"], "UNSTABLE");
            }
            e => panic!("{e}"),
        }
        // Not building: stopping changes nothing.
        let o = run(
            &rec,
            json!({"name": "train", "state": "stopped", "build_number": 3}),
            false,
        )
        .await
        .unwrap();
        assert!(!o.changed);
        assert!(!rec.ran("/3/stop"));
        let e = run(&rec, json!({"name": "train", "state": "absent"}), false)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("build_number"));
    }

    #[tokio::test]
    async fn absent_deletes_only_an_existing_build() {
        let rec = Recording::new();
        rec.on("/5/doDelete", 0, &http_line(302, ""));
        rec.on(
            "/job/a/job/b/5/api/json",
            0,
            &http_line(200, r#"{"number":5,"building":false,"result":"SUCCESS"}"#),
        );
        let o = run(
            &rec,
            json!({"name": "a/b", "state": "absent", "build_number": 5}),
            false,
        )
        .await
        .unwrap();
        assert!(o.changed);
        assert!(rec.ran("/job/a/job/b/5/doDelete"));
        let rec = Recording::new();
        rec.on("api/json", 0, &http_line(404, ""));
        let o = run(
            &rec,
            json!({"name": "a/b", "state": "absent", "build_number": 5}),
            false,
        )
        .await
        .unwrap();
        assert!(!o.changed);
        assert_eq!(field(&o, "build_info")["result"], "ABSENT");
    }
}
