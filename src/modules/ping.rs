//! `ping`: checks that the host answers commands.

use async_trait::async_trait;

use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.ping:\n",
    ..ModuleSpec::new(
        "ping",
        "Try to connect to the host and run a command; returns pong.",
        &[Param::new("data", Kind::Str, "Data to return (crash makes it fail).").default("pong")],
    )
};

pub struct Ping;

#[async_trait]
impl Module for Ping {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }
    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let data = args.str("data").unwrap_or("pong");
        if data == "crash" {
            return Err(ModError::fail("boom"));
        }
        let out = ctx.sh("echo pong").await?;
        if out.rc != 0 {
            return Err(ModError::fail(format!(
                "ping failed: {}",
                out.stderr_str().trim()
            )));
        }
        Ok(Outcome::ok().with("ping", data))
    }
}
