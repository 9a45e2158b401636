//! Jobs left running on a host (`async: SECS` with `poll: 0`) and
//! `async_status`, which reads how they ended.
//!
//! A job is a `command`/`shell` script started detached (`setsid`) on the host,
//! bounded by `timeout SECS`, with its files in `~/.ansible_async/<jid>.*`
//! (Ansible's `async_dir`): the script, stdin, the task's arguments, start and
//! end times, stdout, stderr, and last the exit code (`.rc`, written by a
//! rename, so a reader sees a finished job whole or not at all). The job
//! outlives ferry's connection, as Ansible's do.

use async_trait::async_trait;
use base64::Engine;
use chrono::{DateTime, Local};
use serde_json::{json, Value};

use super::{
    command, util, Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param,
};
use crate::connection::{quote, ExecOut};

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.shell: /opt/app/migrate.sh\n  async: 600\n  poll: 0\n  register: migration\n- ansible.builtin.async_status:\n    jid: \"{{ migration.ansible_job_id }}\"\n  register: job\n  until: job.finished\n  retries: 60\n  delay: 10\n",
    ..ModuleSpec::new(
        "async_status",
        "Obtain the status of a job started with async and poll: 0 (command and shell jobs in ferry).",
        &[
            Param::new("jid", Kind::Str, "Job or task identifier (`ansible_job_id` of the task that started it).").required(),
            Param::new("mode", Kind::Str, "status: report the job; cleanup: remove its files.").choices(&["status", "cleanup"]).default("status"),
        ],
    )
};

pub struct AsyncStatus;

/// Where jobs keep their files on the host (Ansible's default `async_dir`).
const DIR: &str = "\"$HOME/.ansible_async\"";

/// Starts `module` (`command` or `shell`) with `args` as a job on the host and
/// returns at once with its id, as Ansible does for `poll: 0`.
pub async fn start(module: &str, args: &Args, ctx: &Ctx<'_>, secs: u64) -> ModResult {
    let (script, stdin) = command::job(module, args)?;
    let mut n = [0u8; 8];
    getrandom::fill(&mut n).map_err(|e| ModError::fail(format!("no random job id: {e}")))?;
    let jid = format!(
        "j{:012}.{}",
        u64::from_le_bytes(n) % 1_000_000_000_000,
        std::process::id()
    );
    let saved = json!({"module": module, "args": args.map}).to_string();
    let stdin = String::from_utf8_lossy(stdin.as_deref().unwrap_or_default()).into_owned();
    let launch = format!(
        concat!(
            "d={dir}; j={jid}\n",
            "umask 077; mkdir -p \"$d\" || exit 1\n",
            "printf '%s' {script} > \"$d/$j.sh\"; printf '%s' {stdin} > \"$d/$j.in\"\n",
            "printf '%s' {saved} > \"$d/$j.args\"; printf '%s\\n' {secs} > \"$d/$j.limit\"\n",
            "S=; command -v setsid >/dev/null 2>&1 && S=setsid\n",
            "( $S sh -c '",
            "d=$1 j=$2 t=$3; date +%s%N > \"$d/$j.start\"; ",
            "if command -v timeout >/dev/null 2>&1; then ",
            "timeout \"$t\" sh \"$d/$j.sh\" < \"$d/$j.in\" > \"$d/$j.out\" 2> \"$d/$j.err\"; ",
            "else sh \"$d/$j.sh\" < \"$d/$j.in\" > \"$d/$j.out\" 2> \"$d/$j.err\"; fi; ",
            "rc=$?; date +%s%N > \"$d/$j.end\"; echo \"$rc\" > \"$d/$j.rc.tmp\" && mv \"$d/$j.rc.tmp\" \"$d/$j.rc\"",
            "' ferry-async \"$d\" \"$j\" {secs} </dev/null >/dev/null 2>&1 & )\n",
            "printf '%s\\n' \"$d/$j\"\n",
        ),
        dir = DIR,
        jid = jid,
        script = quote(&script),
        stdin = quote(&stdin),
        saved = quote(&saved),
        secs = secs,
    );
    let out = ctx.sh(&launch).await?;
    if out.rc != 0 {
        return Err(ModError::fail(format!(
            "could not start the job: {}",
            out.stderr_str().trim()
        )));
    }
    Ok(Outcome::changed(true)
        .with("ansible_job_id", jid)
        .with("started", 1)
        .with("finished", 0)
        .with("results_file", out.stdout_str().trim().to_string()))
}

/// `2026-...` from `date +%s%N`.
fn from_nanos(s: &str) -> DateTime<Local> {
    let n: i64 = s.trim().parse().unwrap_or(0);
    DateTime::from_timestamp_nanos(n).into()
}

/// The job's result from what the status script printed.
fn status_from(jid: &str, text: &str) -> ModResult {
    let secs = util::sections(text);
    let section = |name| util::section(&secs, name);
    let base = |o: Outcome| o.with("ansible_job_id", jid).with("started", 1);
    let Some(rc) = section("RC") else {
        return Ok(base(Outcome::ok()).with("finished", 0));
    };
    let saved: Value = serde_json::from_str(section("ARGS").unwrap_or("{}"))
        .map_err(|e| ModError::fail(format!("job {jid}: unreadable arguments file: {e}")))?;
    let module = saved["module"].as_str().unwrap_or("command");
    let spec = super::find(module)
        .ok_or_else(|| ModError::fail(format!("job {jid}: unknown module {module}")))?
        .spec();
    let args = spec
        .validate(saved["args"].as_object().cloned().unwrap_or_default())
        .map_err(ModError::fail)?;
    let b64 = |name| {
        base64::engine::general_purpose::STANDARD
            .decode(section(name).unwrap_or("").replace(['\n', '\r'], ""))
            .unwrap_or_default()
    };
    let rc: i32 = rc.trim().parse().unwrap_or(-1);
    let out = ExecOut {
        rc,
        stdout: b64("OUT"),
        stderr: b64("ERR"),
    };
    let start = from_nanos(section("START").unwrap_or(""));
    let end = from_nanos(section("END").unwrap_or(""));
    let mut o = command::job_result(module, &args, &out, start, end)?;
    let limit = section("LIMIT").unwrap_or("").trim();
    if rc == 124 {
        // `timeout` ended it.
        o.failed = true;
        o.msg = Some(format!(
            "Job reached maximum time limit of {limit} seconds."
        ));
    }
    Ok(base(o).with("finished", 1))
}

#[async_trait]
impl Module for AsyncStatus {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let jid = args.req_str("jid")?;
        // Job ids name files: nothing but what ferry and Ansible make them of.
        if jid.is_empty()
            || !jid
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(ModError::fail(format!("invalid jid {jid:?}")));
        }
        let head =
            format!("d={DIR}; j={jid}\n[ -f \"$d/$j.args\" ] || {{ echo '==MISSING'; exit 0; }}\n");
        if args.str("mode") == Some("cleanup") {
            if ctx.check_mode {
                return Ok(Outcome::ok()
                    .with("ansible_job_id", jid)
                    .with("erased", format!("~/.ansible_async/{jid}")));
            }
            let out = ctx
                .sh(&format!(
                    "{head}rm -f -- \"$d/$j\".*; printf '%s\\n' \"$d/$j\""
                ))
                .await?;
            return Ok(Outcome::ok()
                .with("ansible_job_id", jid)
                .with("erased", out.stdout_str().trim().to_string()));
        }
        let script = format!(
            concat!(
                "{head}",
                "printf '==ARGS\\n'; cat \"$d/$j.args\"; printf '\\n==LIMIT\\n'; cat \"$d/$j.limit\"\n",
                "if [ -f \"$d/$j.rc\" ]; then\n",
                "  printf '==RC\\n'; cat \"$d/$j.rc\"; printf '==START\\n'; cat \"$d/$j.start\"\n",
                "  printf '==END\\n'; cat \"$d/$j.end\"\n",
                "  printf '==OUT\\n'; base64 < \"$d/$j.out\"; printf '==ERR\\n'; base64 < \"$d/$j.err\"\n",
                "fi\n",
            ),
            head = head
        );
        let out = ctx.sh(&script).await?;
        let text = out.stdout_str();
        if text.starts_with("==MISSING") {
            let mut data = serde_json::Map::new();
            data.insert("ansible_job_id".into(), jid.into());
            data.insert("started".into(), 1.into());
            data.insert("finished".into(), 1.into());
            return Err(ModError::Failed {
                msg: "could not find job".into(),
                data,
            });
        }
        status_from(jid, &text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn status_of_running_finished_and_timed_out_jobs() {
        let args = r#"{"module":"shell","args":{"_raw_params":"echo hi; exit 3"}}"#;
        let running = format!("==ARGS\n{args}\n==LIMIT\n60\n");
        let o = status_from("j1.2", &running).unwrap();
        assert_eq!((o.data["finished"].clone(), o.changed), (json!(0), false));
        assert_eq!(o.data["ansible_job_id"], "j1.2");

        let done = format!(
            "{running}==RC\n3\n==START\n1796446067000000000\n==END\n1796446069500000000\n==OUT\n{}\n==ERR\n{}\n",
            b64("hi\n"),
            b64("")
        );
        let o = status_from("j1.2", &done).unwrap();
        assert_eq!(o.data["finished"], 1);
        assert_eq!(o.data["stdout"], "hi");
        assert_eq!(o.data["rc"], 3);
        assert_eq!(o.data["delta"], "0:00:02.500000");
        assert_eq!(o.data["cmd"], "echo hi; exit 3");
        assert!(o.failed && o.changed);

        let timed_out = done.replace("==RC\n3\n", "==RC\n124\n");
        let o = status_from("j1.2", &timed_out).unwrap();
        assert!(o.failed);
        assert_eq!(
            o.msg.as_deref(),
            Some("Job reached maximum time limit of 60 seconds.")
        );
    }
}
