//! `docker_network` (community.docker.docker_network): make sure a network
//! exists (or not). The predefined `none`, `host` and `bridge` networks can
//! only be checked, never created or removed.

use std::collections::HashMap;

use async_trait::async_trait;
use serde_json::Value;

use super::docker_api::{self as api, Engine};
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["community.docker.docker_network"],
    example: "- community.docker.docker_network:\n    name: none\n",
    ..ModuleSpec::new(
        "docker_network",
        "Manage Docker networks (the predefined none/host/bridge networks are only checked).",
        crate::with_docker_params![
            Param::new("name", Kind::Str, "Network name.")
                .aliases(&["network_name"])
                .required(),
            Param::new("driver", Kind::Str, "Network driver for a new network.").default("bridge"),
            Param::new("state", Kind::Str, "present or absent.")
                .choices(&["present", "absent"])
                .default("present"),
            Param::new(
                "internal",
                Kind::Bool,
                "Restrict external access to the network."
            ),
            Param::new("labels", Kind::Dict, "Labels of a new network."),
            Param::new("force", Kind::Bool, "Accepted for compatibility.").default("no"),
        ],
    )
};

pub struct DockerNetwork;

pub const PREDEFINED: &[&str] = &["none", "host", "bridge"];

#[async_trait]
impl Module for DockerNetwork {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let name = args.req_str("name")?.to_string();
        let absent = args.str("state") == Some("absent");
        if absent && PREDEFINED.contains(&name.as_str()) {
            return Err(ModError::fail(format!(
                "{name} is a pre-defined network and cannot be removed"
            )));
        }
        let eng = Engine::connect(ctx, args).await?;
        let r = run(&eng, args, ctx, &name, absent).await;
        eng.close(ctx).await;
        r
    }
}

async fn inspect(eng: &Engine, name: &str) -> Result<Option<Value>, ModError> {
    match eng
        .docker
        .inspect_network(
            name,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
    {
        Ok(n) => Ok(Some(api::compact(api::to_json(&n)))),
        Err(e) if api::is_not_found(&e) => Ok(None),
        Err(e) => Err(ModError::fail(format!(
            "inspecting network {name}: {}",
            api::describe(&e)
        ))),
    }
}

async fn run(eng: &Engine, args: &Args, ctx: &Ctx<'_>, name: &str, absent: bool) -> ModResult {
    let existing = inspect(eng, name).await?;
    match (absent, existing) {
        (true, None) => Ok(Outcome::ok().with("network", Value::Null)),
        (true, Some(n)) => {
            if !ctx.check_mode {
                eng.docker.remove_network(name).await.map_err(|e| {
                    ModError::fail(format!("removing network {name}: {}", api::describe(&e)))
                })?;
            }
            Ok(Outcome::changed(true)
                .with("network", n)
                .with("actions", vec![format!("Removed network {name}")]))
        }
        (false, Some(n)) => {
            let driver = args.str("driver").unwrap_or("bridge");
            let have = n.get("Driver").and_then(Value::as_str).unwrap_or("");
            let predefined = PREDEFINED.contains(&name);
            if !predefined && have != driver {
                return Err(ModError::fail(format!(
                    "network {name} exists with driver {have}, not {driver}: remove it first"
                )));
            }
            Ok(Outcome::ok().with("network", n))
        }
        (false, None) => {
            if PREDEFINED.contains(&name) {
                return Err(ModError::fail(format!(
                    "the pre-defined network {name} is missing in this daemon (e.g. bridge: none)"
                )));
            }
            if ctx.check_mode {
                return Ok(Outcome::changed(true)
                    .with("network", Value::Null)
                    .with("actions", vec![format!("Created network {name}")]));
            }
            let labels: HashMap<String, String> =
                api::str_map(args.get("labels")).into_iter().collect();
            let req = bollard::models::NetworkCreateRequest {
                name: name.to_string(),
                driver: args.str("driver").map(str::to_string),
                internal: args.get("internal").and_then(super::to_bool),
                labels: Some(labels),
                ..Default::default()
            };
            eng.docker.create_network(req).await.map_err(|e| {
                ModError::fail(format!("creating network {name}: {}", api::describe(&e)))
            })?;
            let n = inspect(eng, name).await?.unwrap_or_default();
            Ok(Outcome::changed(true)
                .with("network", n)
                .with("actions", vec![format!("Created network {name}")]))
        }
    }
}
