//! `command`, `shell` and `raw`.

use async_trait::async_trait;
use chrono::{DateTime, Local};
use serde_json::Value;

use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::{join_argv, quote};

const COMMON: &[Param] = &[
    Param::new("_raw_params", Kind::Str, "The command to run (free form)."),
    Param::new("cmd", Kind::Str, "The command to run, as a parameter."),
    Param::new(
        "argv",
        Kind::List,
        "The command as a list of arguments (command only).",
    ),
    Param::new(
        "chdir",
        Kind::Path,
        "Change into this directory before running the command.",
    ),
    Param::new(
        "creates",
        Kind::Path,
        "A file name; when it already exists, this step is not run.",
    ),
    Param::new(
        "removes",
        Kind::Path,
        "A file name; when it does not exist, this step is not run.",
    ),
    Param::new(
        "stdin",
        Kind::Str,
        "Data passed to the command on standard input.",
    ),
    Param::new(
        "stdin_add_newline",
        Kind::Bool,
        "Add a newline to stdin data.",
    )
    .default("yes"),
    Param::new(
        "strip_empty_ends",
        Kind::Bool,
        "Strip empty lines from the end of stdout/stderr.",
    )
    .default("yes"),
    Param::new(
        "executable",
        Kind::Path,
        "Shell used to run the command (shell, raw).",
    ),
    Param::new(
        "expand_argument_vars",
        Kind::Bool,
        "Accepted for compatibility.",
    )
    .default("yes"),
    Param::new(
        "warn",
        Kind::Bool,
        "Accepted for compatibility (removed in Ansible 2.14).",
    ),
];

pub static COMMAND: ModuleSpec = ModuleSpec {
    free_form: true,
    example: "- ansible.builtin.command: cat /etc/motd\n  args:\n    chdir: /tmp\n    creates: /tmp/done\n",
    ..ModuleSpec::new("command", "Execute a command on the target, without a shell.", COMMON)
};
pub static SHELL: ModuleSpec = ModuleSpec {
    free_form: true,
    example:
        "- ansible.builtin.shell: echo $HOME > /tmp/home.txt\n  args:\n    creates: /tmp/home.txt\n",
    ..ModuleSpec::new(
        "shell",
        "Execute shell commands on the target (through /bin/sh).",
        COMMON,
    )
};
pub static RAW: ModuleSpec = ModuleSpec {
    free_form: true,
    example: "- ansible.builtin.raw: uptime\n",
    ..ModuleSpec::new(
        "raw",
        "Run a command line as is over the connection.",
        COMMON,
    )
};

pub struct Command;
pub struct Shell;
pub struct Raw;

#[derive(PartialEq)]
enum Flavor {
    Command,
    Shell,
    Raw,
}

#[async_trait]
impl Module for Command {
    fn spec(&self) -> &'static ModuleSpec {
        &COMMAND
    }
    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        run(Flavor::Command, args, ctx).await
    }
}

#[async_trait]
impl Module for Shell {
    fn spec(&self) -> &'static ModuleSpec {
        &SHELL
    }
    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        run(Flavor::Shell, args, ctx).await
    }
}

#[async_trait]
impl Module for Raw {
    fn spec(&self) -> &'static ModuleSpec {
        &RAW
    }
    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        run(Flavor::Raw, args, ctx).await
    }
}

const SKIP: &str = "__FERRY_SKIP__";

/// A command made ready to run: the remote script (guards, `chdir`, the
/// command), its stdin, and `cmd` as the result shows it.
struct Prepared {
    guards: String,
    script: String,
    stdin: Option<Vec<u8>>,
    cmd: Value,
}

fn prepare(flavor: &Flavor, args: &Args) -> Result<Prepared, ModError> {
    let raw = args.str("_raw_params").or_else(|| args.str("cmd"));
    let (line, cmd): (String, Value) = match flavor {
        Flavor::Command => {
            let argv: Vec<String> = if args.has("argv") {
                args.list("argv")
            } else {
                let s = raw.ok_or_else(|| ModError::fail("no command given"))?;
                shlex::split(s)
                    .ok_or_else(|| ModError::fail(format!("could not parse command line: {s}")))?
            };
            if argv.is_empty() {
                return Err(ModError::fail("no command given"));
            }
            (join_argv(&argv), Value::from(argv))
        }
        _ => {
            let s = raw
                .ok_or_else(|| ModError::fail("no command given"))?
                .to_string();
            let line = match args.str("executable") {
                Some(exe) => format!("{} -c {}", quote(exe), quote(&s)),
                None => s.clone(),
            };
            (line, Value::String(s))
        }
    };
    let mut guards = String::new();
    if let Some(c) = args.str("creates") {
        guards.push_str(&format!(
            "if [ -e {} ]; then printf {SKIP}C; exit 0; fi\n",
            quote(c)
        ));
    }
    if let Some(r) = args.str("removes") {
        guards.push_str(&format!(
            "if [ ! -e {} ]; then printf {SKIP}R; exit 0; fi\n",
            quote(r)
        ));
    }
    let mut script = guards.clone();
    if let Some(d) = args.str("chdir") {
        script.push_str(&format!("cd {} || exit 1\n", quote(d)));
    }
    script.push_str(&line);
    let stdin = args.str("stdin").map(|s| {
        let mut s = s.to_string();
        if args.bool("stdin_add_newline") {
            s.push('\n');
        }
        s.into_bytes()
    });
    Ok(Prepared {
        guards,
        script,
        stdin,
        cmd,
    })
}

async fn run(flavor: Flavor, args: &Args, ctx: &Ctx<'_>) -> ModResult {
    let p = prepare(&flavor, args)?;
    if ctx.check_mode {
        if p.guards.is_empty() {
            return Ok(Outcome {
                skipped: true,
                ..Outcome::ok()
            }
            .msg("Command would have run if not in check mode"));
        }
        // Only evaluate the guards.
        let out = ctx.sh(&p.guards).await?;
        return Ok(
            guard_outcome(&out.stdout_str(), args, &p.cmd).unwrap_or_else(|| {
                Outcome::changed(true).msg("Command would have run if not in check mode")
            }),
        );
    }
    let start = Local::now();
    let out = ctx.sh_in(&p.script, p.stdin.as_deref()).await?;
    let end = Local::now();
    Ok(finish(args, !p.guards.is_empty(), p.cmd, &out, start, end))
}

/// For a job left running (`async` with `poll: 0`): the script and stdin of
/// `command`/`shell` (`module` names which).
pub(crate) fn job(module: &str, args: &Args) -> Result<(String, Option<Vec<u8>>), ModError> {
    let p = prepare(&flavor_of(module)?, args)?;
    Ok((p.script, p.stdin))
}

/// The result of a finished job, as the module would have returned it.
pub(crate) fn job_result(
    module: &str,
    args: &Args,
    out: &crate::connection::ExecOut,
    start: DateTime<Local>,
    end: DateTime<Local>,
) -> Result<Outcome, ModError> {
    let p = prepare(&flavor_of(module)?, args)?;
    Ok(finish(args, !p.guards.is_empty(), p.cmd, out, start, end))
}

fn flavor_of(module: &str) -> Result<Flavor, ModError> {
    match module {
        "command" => Ok(Flavor::Command),
        "shell" => Ok(Flavor::Shell),
        other => Err(ModError::fail(format!(
            "ferry runs a job left running (async with poll: 0) for command and shell only, not {other}"
        ))),
    }
}

/// The result of a command that ran (or was skipped by its guards).
fn finish(
    args: &Args,
    guarded: bool,
    cmd_value: Value,
    out: &crate::connection::ExecOut,
    start: DateTime<Local>,
    end: DateTime<Local>,
) -> Outcome {
    if guarded {
        if let Some(o) = guard_outcome(&out.stdout_str(), args, &cmd_value) {
            return o;
        }
    }
    let strip = args.bool("strip_empty_ends");
    let clean = |b: &[u8]| {
        let s = String::from_utf8_lossy(b).into_owned();
        if strip {
            s.trim_end_matches(['\n', '\r']).to_string()
        } else {
            s
        }
    };
    let (stdout, stderr) = (clean(&out.stdout), clean(&out.stderr));
    let fmt = "%Y-%m-%d %H:%M:%S%.6f";
    let delta = end - start;
    let mut o = Outcome::changed(true)
        .with("cmd", cmd_value)
        .with("rc", out.rc)
        .with(
            "stdout_lines",
            stdout.lines().map(str::to_string).collect::<Vec<_>>(),
        )
        .with(
            "stderr_lines",
            stderr.lines().map(str::to_string).collect::<Vec<_>>(),
        )
        .with("stdout", stdout)
        .with("stderr", stderr)
        .with("start", start.format(fmt).to_string())
        .with("end", end.format(fmt).to_string())
        .with(
            "delta",
            format!(
                "{}:{:02}:{:02}.{:06}",
                delta.num_hours(),
                delta.num_minutes() % 60,
                delta.num_seconds() % 60,
                delta.num_microseconds().unwrap_or(0) % 1_000_000
            ),
        );
    if out.rc != 0 {
        o.failed = true;
        o.msg = Some("non-zero return code".into());
    }
    o
}

fn guard_outcome(stdout: &str, args: &Args, cmd: &Value) -> Option<Outcome> {
    let msg = if stdout.starts_with(&format!("{SKIP}C")) {
        format!(
            "Did not run command since '{}' exists",
            args.str("creates").unwrap_or_default()
        )
    } else if stdout.starts_with(&format!("{SKIP}R")) {
        format!(
            "Did not run command since '{}' does not exist",
            args.str("removes").unwrap_or_default()
        )
    } else {
        return None;
    };
    Some(
        Outcome::ok()
            .with("cmd", cmd.clone())
            .with("rc", 0)
            .with(
                "stdout",
                format!(
                    "skipped, since {}",
                    msg.trim_start_matches("Did not run command since ")
                ),
            )
            .with("stdout_lines", Vec::<String>::new())
            .with("stderr", "")
            .msg(msg),
    )
}
