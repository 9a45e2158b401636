//! `package`: the generic package module. Picks `apt`, `dnf` or `yum` by
//! `ansible_pkg_mgr` (or `use:`), detecting on the host when facts were not
//! gathered, and hands every other argument to that module, as Ansible does.

use async_trait::async_trait;
use serde_json::Value;

use super::pkgmgr;
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["ansible.builtin.package", "ansible.legacy.package"],
    // Backend-specific options (update_cache, enablerepo, ...) pass through.
    open_keys: true,
    example: "- ansible.builtin.package:\n    name: [jq, tree]\n    state: present\n",
    ..ModuleSpec::new(
        "package",
        "Install or remove packages with the host's package manager (apt, dnf or yum).",
        &[
            Param::new(
                "name",
                Kind::Raw,
                "Package name(s), as the backend module takes them.",
            )
            .required(),
            Param::new(
                "state",
                Kind::Str,
                "present, latest or absent (the backend's states).",
            )
            .required(),
            Param::new(
                "use",
                Kind::Str,
                "The backend module: auto (from facts or the host), apt, dnf, yum.",
            )
            .default("auto"),
        ],
    )
};

pub struct Package;

/// The module for a package manager name (Ansible's `ansible_pkg_mgr` values).
pub fn backend(mgr: &str) -> Result<&'static dyn Module, ModError> {
    let name = match mgr {
        "apt" => "apt",
        "dnf" | "dnf5" => "dnf",
        "yum" => "yum",
        other => return Err(ModError::fail(format!("Could not find a matching action for the \"{other}\" package manager (ferry has apt, dnf and yum)"))),
    };
    super::find(name).ok_or_else(|| ModError::fail(format!("module {name} is not available")))
}

#[async_trait]
impl Module for Package {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let mgr = match args.str("use").unwrap_or("auto") {
            "auto" => pkgmgr::detect(ctx).await?,
            m => m.to_string(),
        };
        let module = backend(&mgr)?;
        let mut map = args.map.clone();
        map.remove("use");
        map.retain(|_, v| !v.is_null());
        let backend_args = module.spec().validate(map).map_err(|e| {
            ModError::fail(format!("{} (package: {} module)", e, module.spec().name))
        })?;
        let mut o = module.run(&backend_args, ctx).await?;
        o.data
            .entry("ansible_pkg_mgr")
            .or_insert(Value::String(mgr));
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use crate::modules::dnf::run_recorded;
    use crate::modules::testutil::{ctx_on, facts_scope};
    use crate::template::Templar;
    use serde_json::json;

    #[test]
    fn on_rhel9_goes_to_dnf() {
        let rec = Recording::new();
        rec.on("rpm -q", 0, "");
        rec.on("dnf -y install", 0, "Complete!\n");
        let o = run_recorded(
            &Package,
            &rec,
            json!({"name": "jq", "state": "present", "enablerepo": "epel"}),
            false,
        )
        .unwrap();
        assert!(o.changed);
        assert_eq!(
            rec.scripts()[1],
            "LANG=C LC_ALL=C dnf -y --enablerepo=epel install jq || exit $?\n"
        );
        assert!(run_recorded(
            &Package,
            &rec,
            json!({"name": "jq", "state": "present", "bogus": 1}),
            false
        )
        .unwrap_err()
        .to_string()
        .contains("Unsupported parameters for (dnf)"));
    }

    #[test]
    fn detects_without_facts() {
        let rec = Recording::new();
        rec.on("for m in apt-get", 0, "apt\n");
        rec.on(
            "dpkg-query -W",
            0,
            "CACHE|before|1|2\nPKG|jq|amd64|1.6|installed\n",
        );
        let templar = Templar::new();
        let scope = facts_scope(json!({}));
        let ctx = ctx_on(&rec, &templar, &scope, false, false);
        let a = SPEC
            .validate(
                json!({"name": ["jq"], "state": "present"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let o = rt.block_on(Package.run(&a, &ctx)).unwrap();
        assert!(!o.changed);
        assert_eq!(o.data["ansible_pkg_mgr"], json!("apt"));
        assert!(rec.scripts()[0].contains("for m in apt-get dnf5 dnf yum"));
    }
}
