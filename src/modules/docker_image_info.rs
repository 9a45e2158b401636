//! `docker_image_info` (community.docker.docker_image_info): inspect data of
//! the named images that exist (all images when no name is given).

use async_trait::async_trait;
use serde_json::Value;

use super::docker_api::{self as api, Engine};
use super::docker_image::inspect_image;
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["community.docker.docker_image_info"],
    example:
        "- community.docker.docker_image_info:\n    name: ferry/trainer:latest\n  register: info\n",
    ..ModuleSpec::new(
        "docker_image_info",
        "Inspect Docker images: images lists those of the given names that exist.",
        crate::with_docker_params![Param::new(
            "name",
            Kind::List,
            "Image names (name[:tag]) or ids; all images when omitted."
        )],
    )
};

pub struct DockerImageInfo;

#[async_trait]
impl Module for DockerImageInfo {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let eng = Engine::connect(ctx, args).await?;
        let r = async {
            let mut names = args.list("name");
            if names.is_empty() {
                let list = eng
                    .docker
                    .list_images(None::<bollard::query_parameters::ListImagesOptions>)
                    .await
                    .map_err(|e| {
                        ModError::fail(format!("listing images: {}", api::describe(&e)))
                    })?;
                names = list.into_iter().map(|i| i.id).collect();
            }
            let mut images: Vec<Value> = Vec::new();
            for n in names {
                let full = if n.starts_with("sha256:") || n.contains('@') {
                    n.clone()
                } else {
                    let (r, t) = api::split_name(&n, None);
                    format!("{r}:{t}")
                };
                if let Some(i) = inspect_image(&eng.docker, &full).await? {
                    images.push(i);
                }
            }
            Ok::<_, ModError>(images)
        }
        .await;
        eng.close(ctx).await;
        Ok(Outcome::ok().with("images", r?))
    }
}
