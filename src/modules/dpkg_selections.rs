//! `dpkg_selections`: a package's dpkg selection (install, hold, deinstall,
//! purge), read and set in one round trip.

use async_trait::async_trait;

use super::util;
use super::{Args, Ctx, Kind, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &[
        "ansible.builtin.dpkg_selections",
        "ansible.legacy.dpkg_selections",
    ],
    example: "- ansible.builtin.dpkg_selections:\n    name: python3\n    selection: hold\n",
    ..ModuleSpec::new(
        "dpkg_selections",
        "Set a package's dpkg selection (e.g. hold it at its version).",
        &[
            Param::new("name", Kind::Str, "Package name.").required(),
            Param::new("selection", Kind::Str, "install, hold, deinstall or purge.")
                .choices(&["install", "hold", "deinstall", "purge"])
                .required(),
        ],
    )
};

pub struct DpkgSelections;

/// Reads the selection, and sets it unless `check` or already right.
pub fn script(name: &str, selection: &str, check: bool) -> String {
    let set = if check {
        String::new()
    } else {
        format!(
            " && printf '%s %s\\n' {n} {s} | dpkg --set-selections",
            n = quote(name),
            s = quote(selection)
        )
    };
    format!(
        "export LANG=C LC_ALL=C\ncur=$(dpkg --get-selections -- {n} 2>/dev/null | awk -v p={n} '$1==p || $1 ~ \"^\"p\":\" {{print $2; exit}}')\n[ -n \"$cur\" ] || cur='not present'\necho \"BEFORE|$cur\"\n[ \"$cur\" = {s} ] || {{ echo CHANGED{set}; }}",
        n = quote(name),
        s = quote(selection)
    )
}

#[async_trait]
impl Module for DpkgSelections {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let name = args.req_str("name")?;
        let selection = args.req_str("selection")?;
        let out = util::run_ok(ctx, &script(name, selection, ctx.check_mode)).await?;
        let text = out.stdout_str();
        let before = text
            .lines()
            .find_map(|l| l.strip_prefix("BEFORE|"))
            .unwrap_or("not present")
            .to_string();
        let changed = text.lines().any(|l| l == "CHANGED");
        Ok(Outcome::changed(changed)
            .with("before", before)
            .with("after", selection))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts() {
        let s = script("hello", "hold", false);
        assert!(s.contains("dpkg --get-selections -- hello"));
        assert!(s.contains("printf '%s %s\\n' hello hold | dpkg --set-selections"));
        assert!(!script("hello", "hold", true).contains("--set-selections"));
    }
}
