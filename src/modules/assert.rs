//! `assert` and `fail`.

use async_trait::async_trait;
use serde_json::Value;

use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};

pub static ASSERT: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.assert:\n    that:\n      - accuracy | float >= 0.8\n    fail_msg: accuracy below the gate\n",
    ..ModuleSpec::new(
        "assert",
        "Assert that given expressions are true.",
        &[
            Param::new("that", Kind::Raw, "Conditionals (bare Jinja expressions) that must all be true.").required(),
            Param::new("fail_msg", Kind::Raw, "Message when an assertion fails.").aliases(&["msg"]),
            Param::new("success_msg", Kind::Raw, "Message when all assertions pass."),
            Param::new("quiet", Kind::Bool, "Less verbose output.").default("no"),
        ],
    )
};

pub static FAIL: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.fail:\n    msg: unsupported distribution\n  when: ansible_os_family not in ['Debian', 'RedHat']\n",
    ..ModuleSpec::new(
        "fail",
        "Fail with a custom message.",
        &[Param::new("msg", Kind::Raw, "The message.").default("Failed as requested from task")],
    )
};

pub struct Assert;
pub struct Fail;

#[async_trait]
impl Module for Assert {
    fn spec(&self) -> &'static ModuleSpec {
        &ASSERT
    }
    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let conds: Vec<Value> = match args.get("that") {
            Some(Value::Array(a)) => a.clone(),
            Some(v) => vec![v.clone()],
            None => Vec::new(),
        };
        for c in &conds {
            let ok = ctx
                .templar
                .eval_bool(c, ctx.scope)
                .map_err(ModError::fail)?;
            if !ok {
                let msg = args
                    .get("fail_msg")
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .unwrap_or_else(|| "Assertion failed".into());
                let mut data = serde_json::Map::new();
                data.insert("assertion".into(), c.clone());
                data.insert("evaluated_to".into(), Value::Bool(false));
                return Err(ModError::Failed { msg, data });
            }
        }
        let msg = args
            .get("success_msg")
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .unwrap_or_else(|| "All assertions passed".into());
        Ok(Outcome::ok().msg(msg))
    }
}

#[async_trait]
impl Module for Fail {
    fn spec(&self) -> &'static ModuleSpec {
        &FAIL
    }
    async fn run(&self, args: &Args, _ctx: &Ctx<'_>) -> ModResult {
        let msg = args
            .get("msg")
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .unwrap_or_default();
        Err(ModError::fail(msg))
    }
}
