//! `yum`: the `dnf` module's logic with the `yum` command (or `dnf` where
//! the host's package manager is dnf, as Ansible's `use_backend: auto` does).
//! Red Hat only: tested with the recording connection and a RHEL 9 facts
//! fixture, no Red Hat host runs in ferry's test lab.

use async_trait::async_trait;
use serde_json::Value;

use super::dnf::run_rpm;
use super::{Args, Ctx, ModError, ModResult, Module, ModuleSpec};

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["ansible.builtin.yum", "ansible.legacy.yum"],
    example: "- ansible.builtin.yum:\n    name: httpd\n    state: latest\n",
    ..ModuleSpec::new(
        "yum",
        "Manage packages with yum (or dnf on hosts that have it). Tested with recorded commands only: no Red Hat host runs in ferry's test lab.",
        crate::rpm_pkg_params![Param::new("use_backend", Kind::Str, "auto (dnf where the host's package manager is dnf), yum, yum4, dnf, dnf4 or dnf5.")
            .choices(&["auto", "yum", "yum4", "dnf", "dnf4", "dnf5"])
            .default("auto")],
    )
};

pub struct Yum;

/// The command for `use_backend`, given the host's `ansible_pkg_mgr`.
pub fn backend(use_backend: &str, pkg_mgr: Option<&str>) -> Result<&'static str, ModError> {
    Ok(match use_backend {
        "yum" => "yum",
        "yum4" | "dnf" | "dnf4" => "dnf",
        "dnf5" => "dnf5",
        "auto" => match pkg_mgr {
            Some("dnf") => "dnf",
            Some("dnf5") => "dnf5",
            _ => "yum",
        },
        other => return Err(ModError::fail(format!("unsupported use_backend {other}"))),
    })
}

#[async_trait]
impl Module for Yum {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let mgr = match ctx.var("ansible_pkg_mgr") {
            Some(Value::String(m)) => Some(m),
            _ => None,
        };
        let bin = backend(args.str("use_backend").unwrap_or("auto"), mgr.as_deref())?;
        run_rpm(args, ctx, bin).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use crate::modules::dnf::run_recorded;
    use serde_json::json;

    #[test]
    fn backends() {
        assert_eq!(backend("auto", Some("dnf")).unwrap(), "dnf");
        assert_eq!(backend("auto", Some("yum")).unwrap(), "yum");
        assert_eq!(backend("yum", Some("dnf")).unwrap(), "yum");
    }

    #[test]
    fn on_rhel9_yum_runs_dnf_and_is_idempotent() {
        let rec = Recording::new();
        rec.on("rpm -q", 0, "");
        rec.on("dnf -y install", 0, "Complete!\n");
        let o = run_recorded(
            &Yum,
            &rec,
            json!({"name": "httpd", "enablerepo": ["appstream"]}),
            false,
        )
        .unwrap();
        assert!(o.changed);
        assert_eq!(
            rec.scripts()[1],
            "LANG=C LC_ALL=C dnf -y --enablerepo=appstream install httpd || exit $?\n"
        );
        let rec = Recording::new();
        rec.on("rpm -q", 0, "PKG|httpd|httpd|0:2.4.57-5.el9|x86_64\n");
        let o = run_recorded(&Yum, &rec, json!({"name": "httpd"}), false).unwrap();
        assert!(!o.changed && rec.scripts().len() == 1);
        let rec = Recording::new();
        rec.on("rpm -q", 0, "");
        let o = run_recorded(
            &Yum,
            &rec,
            json!({"name": "httpd", "use_backend": "yum"}),
            true,
        )
        .unwrap();
        assert!(o.changed && !rec.ran("yum -y"));
    }
}
