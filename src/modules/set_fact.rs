//! `set_fact`: host variables set during the play.

use async_trait::async_trait;

use super::{Args, Ctx, Kind, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    open_keys: true,
    example: "- ansible.builtin.set_fact:\n    app_port: 8080\n    app_url: \"http://localhost:{{ app_port }}\"\n",
    ..ModuleSpec::new(
        "set_fact",
        "Set host variables (facts) from key: value pairs.",
        &[Param::new("cacheable", Kind::Bool, "Also store in the fact cache.").default("no")],
    )
};

pub struct SetFact;

#[async_trait]
impl Module for SetFact {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }
    async fn run(&self, args: &Args, _ctx: &Ctx<'_>) -> ModResult {
        let mut facts = args.map.clone();
        facts.remove("cacheable");
        if facts.is_empty() {
            return Err(super::ModError::fail(
                "No key/value pairs provided, at least one is required for this action to succeed",
            ));
        }
        for k in facts.keys() {
            if k.is_empty()
                || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || k.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(super::ModError::fail(format!("The variable name '{k}' is not valid. Variables must start with a letter or underscore character, and contain only letters, numbers and underscores.")));
            }
        }
        Ok(Outcome {
            facts: Some(facts),
            ..Outcome::ok()
        })
    }
}
