//! `docker_container_info` (community.docker.docker_container_info): whether a
//! container exists, and its inspect data.

use async_trait::async_trait;
use serde_json::Value;

use super::docker_api::{self as api, Engine};
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["community.docker.docker_container_info"],
    example: "- community.docker.docker_container_info:\n    name: trainer\n  register: info\n",
    ..ModuleSpec::new(
        "docker_container_info",
        "Retrieve facts about a Docker container (exists, container).",
        crate::with_docker_params![
            Param::new("name", Kind::Str, "Container name or id.").required()
        ],
    )
};

pub struct DockerContainerInfo;

#[async_trait]
impl Module for DockerContainerInfo {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let name = args.req_str("name")?.to_string();
        let eng = Engine::connect(ctx, args).await?;
        let r = eng
            .docker
            .inspect_container(
                &name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await;
        eng.close(ctx).await;
        match r {
            Ok(c) => Ok(Outcome::ok()
                .with("exists", true)
                .with("container", api::compact(api::to_json(&c)))),
            Err(e) if api::is_not_found(&e) => Ok(Outcome::ok()
                .with("exists", false)
                .with("container", Value::Null)),
            Err(e) => Err(ModError::fail(format!(
                "inspecting container {name}: {}",
                api::describe(&e)
            ))),
        }
    }
}
