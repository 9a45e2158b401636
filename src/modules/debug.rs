//! `debug`: print a message or a variable.

use async_trait::async_trait;
use serde_json::Value;

use super::{Args, Ctx, Kind, ModResult, Module, ModuleSpec, Outcome, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    mutually_exclusive: &[&["msg", "var"]],
    example: "- ansible.builtin.debug:\n    msg: \"Accuracy is {{ accuracy }}\"\n- ansible.builtin.debug:\n    var: result.stdout_lines\n",
    ..ModuleSpec::new(
        "debug",
        "Print statements during execution.",
        &[
            Param::new("msg", Kind::Raw, "The message to print.").default("Hello world!"),
            Param::new("var", Kind::Str, "A variable name or expression to print."),
            Param::new("verbosity", Kind::Int, "Only print at this -v level or above.").default("0"),
        ],
    )
};

pub struct Debug;

#[async_trait]
impl Module for Debug {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }
    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        if let Some(var) = args.str("var") {
            let v = match ctx.templar.eval_expr(var, ctx.scope) {
                Ok(Value::Null)
                    if ctx.scope.get(var).is_none() && !var.contains(['.', '[', '|']) =>
                {
                    Value::String("VARIABLE IS NOT DEFINED!".into())
                }
                Ok(v) => v,
                Err(e) if e.contains("undefined") => {
                    Value::String("VARIABLE IS NOT DEFINED!".into())
                }
                Err(e) => return Err(super::ModError::fail(e)),
            };
            return Ok(Outcome::ok().with(var, v));
        }
        let msg = args
            .get("msg")
            .cloned()
            .unwrap_or(Value::String("Hello world!".into()));
        let mut o = Outcome::ok();
        o.data.insert("msg".into(), msg);
        Ok(o)
    }
}
