//! `jenkins_plugin` (community.general): install, remove, pin, enable and
//! disable Jenkins plugins, from the target.
//!
//! Like Ansible's module: a plugin that is not installed and has no version
//! is deployed by Jenkins itself from its update centre (a script-console
//! call, with its dependencies); a given version, `latest`, or a plugin that
//! is installed already is downloaded from `updates_url` on the target and
//! written to `JENKINS_HOME/plugins/NAME.jpi` when its checksum differs.
//! Jenkins reads new plugin files when it restarts: notify a handler.

use async_trait::async_trait;
use serde_json::Value;

use super::jenkins_api::{self as api, Jenkins, Req};
use super::jenkins_script::run_script;
use super::{util, Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["community.general.jenkins_plugin", "community.general.web_infrastructure.jenkins_plugin"],
    mutually_exclusive: &[&["password", "token"]],
    example: "- community.general.jenkins_plugin:\n    name: git\n    url_username: admin\n    url_password: \"{{ jenkins_admin_password }}\"\n  notify: Restart jenkins\n",
    ..ModuleSpec::new(
        "jenkins_plugin",
        "Add or remove a Jenkins plugin (through Jenkins' API and the update site, with curl on the target).",
        crate::with_jenkins_params![
            Param::new("name", Kind::Str, "Plugin name (its short name).").required(),
            Param::new("state", Kind::Str, "Desired plugin state; latest installs or upgrades to the newest version.")
                .choices(&["absent", "present", "pinned", "unpinned", "enabled", "disabled", "latest"])
                .default("present"),
            Param::new("version", Kind::Str, "Plugin version number (or 'latest')."),
            Param::new("jenkins_home", Kind::Path, "Home directory of the Jenkins user.").default("/var/lib/jenkins"),
            Param::new("owner", Kind::Str, "Owner of the plugin file.").default("jenkins"),
            Param::new("group", Kind::Str, "Group of the plugin file.").default("jenkins"),
            Param::new("mode", Kind::Mode, "Mode of the plugin file (default 0644)."),
            Param::new("with_dependencies", Kind::Bool, "Install dependencies when Jenkins installs the plugin from its update centre.").default("yes"),
            Param::new("updates_url", Kind::List, "Base URLs of the update sites, tried in order.").default("https://updates.jenkins.io,http://mirrors.jenkins.io"),
            Param::new("latest_plugins_url_segments", Kind::List, "Path segments (below updates_url) of the latest plugins.").default("latest"),
            Param::new("versioned_plugins_url_segments", Kind::List, "Path segments (below updates_url) of versioned plugins.").default("download/plugins,plugins"),
            Param::new("update_json_url_segment", Kind::List, "Accepted for compatibility (the update centre JSON is not needed: downloads are compared by checksum).").default("update-center.json,updates/update-center.json"),
            Param::new("updates_expiration", Kind::Int, "Accepted for compatibility.").default("86400"),
            Param::new("timeout", Kind::Int, "Server connection timeout in seconds.").default("30"),
            Param::new("url_username", Kind::Str, "User name for Jenkins (as user)."),
            Param::new("url_password", Kind::Str, "Password or token for Jenkins (as password)."),
            Param::new("force_basic_auth", Kind::Bool, "Accepted for compatibility: credentials are always sent.").default("no"),
            Param::new("http_agent", Kind::Str, "Accepted for compatibility."),
            Param::new("use_proxy", Kind::Bool, "Accepted for compatibility.").default("yes"),
        ],
    )
};

pub struct JenkinsPlugin;

#[derive(Debug, Clone, PartialEq)]
struct Installed {
    version: String,
    enabled: bool,
    pinned: bool,
}

fn find_plugin(list: &Value, name: &str) -> Option<Installed> {
    list["plugins"]
        .as_array()?
        .iter()
        .find(|p| p["shortName"] == name)
        .map(|p| Installed {
            version: p["version"].as_str().unwrap_or("").to_string(),
            enabled: p["enabled"].as_bool().unwrap_or(true),
            pinned: p["pinned"].as_bool().unwrap_or(false),
        })
}

/// Candidate download URLs for the plugin file, in order.
fn download_urls(args: &Args, name: &str, version: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for base in args.list("updates_url") {
        let base = base.trim_end_matches('/');
        match version {
            None | Some("latest") => {
                for seg in args.list("latest_plugins_url_segments") {
                    out.push(format!(
                        "{base}/{}/{}.hpi",
                        seg.trim_matches('/'),
                        api::encode(name)
                    ));
                }
            }
            Some(v) => {
                for seg in args.list("versioned_plugins_url_segments") {
                    out.push(format!(
                        "{base}/{}/{n}/{}/{n}.hpi",
                        seg.trim_matches('/'),
                        api::encode(v),
                        n = api::encode(name)
                    ));
                }
            }
        }
    }
    out
}

/// One round trip: download to a temp file, compare with the installed file,
/// replace it when different (not in check mode), fix owner and mode.
/// Prints CHANGED/SAME and ATTRS when owner or mode differed.
fn download_script(
    args: &Args,
    file: &str,
    urls: &[String],
    mode: u32,
    check: bool,
    timeout: i64,
    insecure: bool,
) -> String {
    let owner = args.str("owner").unwrap_or("jenkins");
    let group = args.str("group").unwrap_or("jenkins");
    let home = args.str("jenkins_home").unwrap_or("/var/lib/jenkins");
    let mut s = format!(
        "set -u\nhome={}\nf={}\nowner={}\ngroup={}\nmode={:o}\n",
        quote(home),
        quote(file),
        quote(owner),
        quote(group),
        mode
    );
    s.push_str(
        "command -v curl >/dev/null 2>&1 || { echo 'curl is required on the target' >&2; exit 127; }\n\
         [ -d \"$home\" ] || { echo \"Jenkins home directory doesn't exist.\" >&2; exit 3; }\n",
    );
    if check {
        s.push_str("tmp=$(mktemp) || exit 1\n");
    } else {
        s.push_str("mkdir -p \"$home/plugins\" && tmp=$(mktemp \"$home/plugins/.ferry-XXXXXXXX\") || exit 1\n");
    }
    s.push_str("trap 'rm -f \"$tmp\" \"$tmp.err\"' EXIT\nok=0\n");
    s.push_str(&format!(
        "for url in {}; do\n",
        urls.iter().map(|u| quote(u)).collect::<Vec<_>>().join(" ")
    ));
    s.push_str(&format!(
        "  if curl -fsSL --max-time {timeout}{} -o \"$tmp\" \"$url\" 2>\"$tmp.err\"; then ok=1; echo \"URL|$url\"; break; fi\ndone\n",
        if insecure { " --insecure" } else { "" }
    ));
    s.push_str(
        "[ $ok = 1 ] || { echo \"Cannot download the plugin: $(cat \"$tmp.err\")\" >&2; exit 4; }\n\
         new=$(sha1sum < \"$tmp\" | cut -c1-40); old=\"\"\n\
         [ -f \"$f\" ] && old=$(sha1sum < \"$f\" | cut -c1-40)\n\
         if [ \"$new\" = \"$old\" ]; then echo SAME; else echo CHANGED;\n",
    );
    if !check {
        s.push_str("  chown \"$owner:$group\" \"$tmp\" && chmod \"$mode\" \"$tmp\" && mv -f \"$tmp\" \"$f\" || exit 5\n");
    }
    s.push_str("fi\n");
    s.push_str(ATTRS);
    if !check {
        s.push_str(" chown \"$owner:$group\" \"$f\" && chmod \"$mode\" \"$f\" || exit 5;");
    }
    s.push_str(" fi\n");
    s
}

/// The sha1 (hex) of the installed plugin file, if there is one.
async fn file_sha1(ctx: &Ctx<'_>, file: &str) -> Result<Option<String>, ModError> {
    let out = ctx
        .sh(&format!(
            "f={}\nif [ -f \"$f\" ]; then sha1sum < \"$f\" | cut -c1-40; else echo NONE; fi",
            quote(file)
        ))
        .await?;
    let t = out.stdout_str().trim().to_string();
    Ok((out.rc == 0 && t.len() == 40).then_some(t))
}

/// The update centre's data (JSONP `updateCenter.post(...)` unwrapped), from
/// the first updates_url x update_json_url_segment that answers.
async fn update_center(
    ctx: &Ctx<'_>,
    args: &Args,
    timeout: i64,
    insecure: bool,
) -> Result<Value, ModError> {
    let mut urls = Vec::new();
    for base in args.list("updates_url") {
        for seg in args.list("update_json_url_segment") {
            urls.push(format!(
                "{}/{}",
                base.trim_end_matches('/'),
                seg.trim_matches('/')
            ));
        }
    }
    let script = format!(
        "for url in {}; do curl -fsSL --max-time {timeout}{} \"$url\" 2>/dev/null && exit 0; done\necho 'Cannot download the update centre data from any of the updates_url' >&2; exit 4\n",
        urls.iter().map(|u| quote(u)).collect::<Vec<_>>().join(" "),
        if insecure { " --insecure" } else { "" }
    );
    let out = ctx.sh(&script).await?;
    if out.rc != 0 {
        return Err(ModError::fail(out.stderr_str().trim().to_string()));
    }
    parse_update_center(&out.stdout_str())
        .ok_or_else(|| ModError::fail("Cannot parse the update centre data"))
}

pub(crate) fn parse_update_center(text: &str) -> Option<Value> {
    let (a, b) = (text.find('{')?, text.rfind('}')?);
    serde_json::from_str(&text[a..=b]).ok()
}

/// The update centre's checksums are base64 of the raw digest.
fn hex_to_b64(hex: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(hex::decode(hex).unwrap_or_default())
}

/// Owner and mode of the plugin file only (prints ATTRS when they differed).
fn attrs_script(args: &Args, file: &str, mode: u32, check: bool) -> String {
    let mut s = format!(
        "f={}\nowner={}\ngroup={}\nmode={:o}\n",
        quote(file),
        quote(args.str("owner").unwrap_or("jenkins")),
        quote(args.str("group").unwrap_or("jenkins")),
        mode
    );
    s.push_str(ATTRS);
    if !check {
        s.push_str(" chown \"$owner:$group\" \"$f\" && chmod \"$mode\" \"$f\" || exit 5;");
    }
    s.push_str(" fi\n");
    s
}

const ATTRS: &str = "if [ -f \"$f\" ] && [ \"$(stat -c '%U:%G:%a' \"$f\")\" != \"$owner:$group:$mode\" ]; then echo ATTRS;";

#[async_trait]
impl Module for JenkinsPlugin {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let name = args.req_str("name")?.to_string();
        if name.is_empty() || name.contains(['/', '"', '\'', '\\']) {
            return Err(ModError::fail(format!("invalid plugin name {name:?}")));
        }
        let mut state = args.str("state").unwrap_or("present").to_string();
        let mut version = args.str("version").map(str::to_string);
        if state == "latest" {
            state = "present".into();
            version = Some("latest".into());
        }
        let j = Jenkins::from_args(args)?;
        let o = Outcome::ok()
            .with("plugin", name.clone())
            .with("state", args.str("state").unwrap_or("present"));
        let list_path = "/pluginManager/api/json?depth=1";
        let r = j
            .run_ok(ctx, &[Req::get(list_path)], "get the list of plugins from")
            .await?;
        let installed = find_plugin(&r[0].json()?, &name);
        let manage = |action: &'static str| {
            Req::post(format!(
                "/pluginManager/plugin/{}/{action}",
                api::encode(&name)
            ))
        };
        match state.as_str() {
            "present" => {
                let home = args
                    .str("jenkins_home")
                    .unwrap_or("/var/lib/jenkins")
                    .trim_end_matches('/')
                    .to_string();
                let unversioned = version.as_deref().is_none_or(|v| v == "latest");
                if installed.is_none() && unversioned {
                    // Jenkins deploys it from its own update centre.
                    if ctx.check_mode {
                        return Ok(Outcome { changed: true, ..o });
                    }
                    let mut script = format!("d = Jenkins.instance.updateCenter.getPlugin(\"{name}\").deploy(); d.get();");
                    if args.bool("with_dependencies") {
                        script = format!("Jenkins.instance.updateCenter.getPlugin(\"{name}\").getNeededDependencies().each{{it.deploy()}}; {script}");
                    }
                    run_script(&j, ctx, &script).await.map_err(|e| {
                        ModError::fail(format!("Plugin installation has failed: {e}"))
                    })?;
                    // Ansible removes a stale .hpi so that the new .jpi is used.
                    ctx.sh(&format!(
                        "rm -f {}",
                        quote(&format!("{home}/plugins/{name}.hpi"))
                    ))
                    .await?;
                    return Ok(Outcome { changed: true, ..o });
                }
                let mode = match args.get("mode") {
                    Some(m) => util::parse_mode(m, 0o644, false)
                        .map_err(ModError::fail)?
                        .unwrap_or(0o644),
                    None => 0o644,
                };
                let file = format!("{home}/plugins/{name}.jpi");
                let insecure = !j.validate_certs;
                let timeout = args.int("timeout").unwrap_or(30);
                let old = file_sha1(ctx, &file).await?;
                // Ansible's order: download (and compare) for a given version, a
                // missing file or updates_expiration 0; for latest, compare with
                // the update centre's checksum first; else only the attributes.
                let download =
                    if !unversioned || old.is_none() || args.int("updates_expiration") == Some(0) {
                        true
                    } else if version.as_deref() == Some("latest") {
                        let uc = update_center(ctx, args, timeout, insecure).await?;
                        let want = uc["plugins"][name.as_str()]["sha1"]
                            .as_str()
                            .map(str::to_string);
                        let Some(want) = want else {
                            return Err(ModError::fail(format!(
                                "Cannot find plugin data '{name}' in the update centre"
                            )));
                        };
                        old.as_deref().map(hex_to_b64) != Some(want)
                    } else {
                        false
                    };
                let script = if download {
                    let urls = download_urls(args, &name, version.as_deref());
                    download_script(args, &file, &urls, mode, ctx.check_mode, timeout, insecure)
                } else {
                    attrs_script(args, &file, mode, ctx.check_mode)
                };
                let out = ctx.sh(&script).await?;
                if out.rc != 0 {
                    return Err(ModError::fail(out.stderr_str().trim().to_string()));
                }
                let text = out.stdout_str();
                let changed = text.lines().any(|l| l == "CHANGED" || l == "ATTRS");
                let mut o = Outcome { changed, ..o };
                if let Some(u) = text.lines().find_map(|l| l.strip_prefix("URL|")) {
                    o = o.with("download_url", u);
                }
                if let Some(i) = &installed {
                    o = o.with("installed_version", i.version.clone());
                }
                Ok(o)
            }
            "absent" => {
                if installed.is_none() {
                    return Ok(o);
                }
                if !ctx.check_mode {
                    j.run_ok(ctx, &[manage("doUninstall")], "uninstall the plugin at")
                        .await?;
                }
                Ok(Outcome { changed: true, ..o })
            }
            s => {
                let Some(i) = installed else {
                    return Err(ModError::fail(format!("Plugin {name} not installed.")));
                };
                let (needed, action) = match s {
                    "enabled" => (!i.enabled, "makeEnabled"),
                    "disabled" => (i.enabled, "makeDisabled"),
                    "pinned" => (!i.pinned, "pin"),
                    _ => (i.pinned, "unpin"),
                };
                if needed && !ctx.check_mode {
                    j.run_ok(ctx, &[manage(action)], &format!("{s} the plugin at"))
                        .await?;
                }
                Ok(Outcome {
                    changed: needed,
                    ..o
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use crate::modules::testutil::{field, http_line};
    use base64::Engine;
    use serde_json::json;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
    const LIST: &str =
        r#"{"plugins":[{"shortName":"git","version":"5.2.1","enabled":true,"pinned":false}]}"#;

    async fn run(rec: &Recording, args: serde_json::Value, check: bool) -> ModResult {
        crate::modules::testutil::run_on(rec, &JenkinsPlugin, args, None, check, false).await
    }

    #[tokio::test]
    async fn new_plugin_is_deployed_by_jenkins_with_dependencies() {
        let rec = Recording::new();
        rec.on("/scriptText", 0, &http_line(200, ""));
        rec.on("pluginManager/api/json", 0, &http_line(200, LIST));
        let o = run(
            &rec,
            json!({"name": "email-ext", "url_username": "admin", "url_password": "pw"}),
            false,
        )
        .await
        .unwrap();
        assert!(o.changed);
        assert_eq!(field(&o, "plugin"), "email-ext");
        let s = rec
            .scripts()
            .iter()
            .find(|s| s.contains("/scriptText"))
            .unwrap()
            .clone();
        let body = api::form_encode(&[("script", "Jenkins.instance.updateCenter.getPlugin(\"email-ext\").getNeededDependencies().each{it.deploy()}; d = Jenkins.instance.updateCenter.getPlugin(\"email-ext\").deploy(); d.get();")]);
        assert!(
            s.contains(&base64::engine::general_purpose::STANDARD.encode(body)),
            "{s}"
        );
        assert_eq!(
            String::from_utf8(rec.stdins.lock().unwrap()[0].clone().unwrap()).unwrap(),
            "user = \"admin:pw\"\n"
        );
        // Installed already, no version: like Ansible, nothing is downloaded;
        // only owner and mode are checked.
        let rec = Recording::new();
        rec.on("echo NONE", 0, &format!("{SHA}\n"));
        rec.on("stat -c", 0, "");
        rec.on("pluginManager/api/json", 0, &http_line(200, LIST));
        let o = run(&rec, json!({"name": "git"}), false).await.unwrap();
        assert!(!o.changed);
        assert!(!rec.ran("/scriptText") && !rec.ran("curl -fsSL"));
        // Check mode never deploys.
        let rec = Recording::new();
        rec.on("pluginManager/api/json", 0, &http_line(200, LIST));
        let o = run(&rec, json!({"name": "email-ext"}), true).await.unwrap();
        assert!(o.changed);
        assert_eq!(rec.scripts().len(), 1);
    }

    #[tokio::test]
    async fn versioned_download_script() {
        let rec = Recording::new();
        rec.on(
            "sha1sum",
            0,
            "URL|http://127.0.0.1:8080/u/download/plugins/git/5.0.0/git.hpi\nCHANGED\n",
        );
        rec.on("pluginManager/api/json", 0, &http_line(200, LIST));
        let o = run(&rec, json!({"name": "git", "version": "5.0.0", "updates_url": ["http://127.0.0.1:8080/u/"], "mode": "0640"}), false).await.unwrap();
        assert!(o.changed);
        assert_eq!(field(&o, "installed_version"), "5.2.1");
        let s = rec
            .scripts()
            .iter()
            .find(|s| s.contains("for url in"))
            .unwrap()
            .clone();
        assert!(s.contains("for url in http://127.0.0.1:8080/u/download/plugins/git/5.0.0/git.hpi http://127.0.0.1:8080/u/plugins/git/5.0.0/git.hpi; do"), "{s}");
        assert!(
            s.contains("f=/var/lib/jenkins/plugins/git.jpi")
                && s.contains("mode=640")
                && s.contains("mv -f")
        );
        let rec = Recording::new();
        rec.on("sha1sum", 0, "SAME\n");
        rec.on("pluginManager/api/json", 0, &http_line(200, LIST));
        run(&rec, json!({"name": "git"}), false).await.unwrap();
        assert!(rec.ran("mode=644\n"), "default mode 0644");
        // In check mode the script downloads to /tmp and moves nothing.
        let c = download_script(
            &SPEC
                .validate(json!({"name": "git"}).as_object().unwrap().clone())
                .unwrap(),
            "/h/plugins/git.jpi",
            &["u".into()],
            0o644,
            true,
            30,
            false,
        );
        assert!(
            !c.contains("mv -f") && !c.contains("chown \"$owner") && c.contains("tmp=$(mktemp)")
        );
        // latest uses the latest/ segment.
        let a = SPEC
            .validate(
                json!({"name": "git", "state": "latest"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .unwrap();
        assert_eq!(
            download_urls(&a, "git", Some("latest"))[0],
            "https://updates.jenkins.io/latest/git.hpi"
        );
    }

    #[tokio::test]
    async fn latest_compares_with_the_update_centre() {
        let uc = |sha: &str| {
            format!("updateCenter.post(\n{{\"plugins\":{{\"git\":{{\"name\":\"git\",\"version\":\"5.2.1\",\"sha1\":\"{sha}\"}}}}}}\n);")
        };
        let b64 = hex_to_b64(SHA);
        assert_eq!(b64, "ASNFZ4mrze8BI0VniavN7wEjRWc=");
        // Same checksum: no download.
        let rec = Recording::new();
        rec.on("echo NONE", 0, &format!("{SHA}\n"));
        rec.on("update-center.json", 0, &uc(&b64));
        rec.on("stat -c", 0, "");
        rec.on("pluginManager/api/json", 0, &http_line(200, LIST));
        let o = run(
            &rec,
            json!({"name": "git", "state": "latest", "updates_url": ["http://u"]}),
            false,
        )
        .await
        .unwrap();
        assert!(!o.changed);
        assert!(rec
            .ran("for url in http://u/update-center.json http://u/updates/update-center.json; do"));
        assert!(!rec.ran("/latest/git.hpi"));
        // Another checksum: the latest file is downloaded.
        let rec = Recording::new();
        rec.on("echo NONE", 0, &format!("{SHA}\n"));
        rec.on("update-center.json", 0, &uc("AAAA"));
        rec.on(
            "/latest/git.hpi",
            0,
            "URL|http://u/latest/git.hpi\nCHANGED\n",
        );
        rec.on("pluginManager/api/json", 0, &http_line(200, LIST));
        let o = run(
            &rec,
            json!({"name": "git", "state": "latest", "updates_url": ["http://u"]}),
            false,
        )
        .await
        .unwrap();
        assert!(o.changed);
        assert_eq!(field(&o, "download_url"), "http://u/latest/git.hpi");
    }

    #[tokio::test]
    async fn enable_disable_absent() {
        let rec = Recording::new();
        rec.on("makeDisabled", 0, &http_line(302, ""));
        rec.on("doUninstall", 0, &http_line(302, ""));
        rec.on("pluginManager/api/json", 0, &http_line(200, LIST));
        assert!(
            !run(&rec, json!({"name": "git", "state": "enabled"}), false)
                .await
                .unwrap()
                .changed
        );
        assert!(
            run(&rec, json!({"name": "git", "state": "disabled"}), false)
                .await
                .unwrap()
                .changed
        );
        assert!(rec.ran("/pluginManager/plugin/git/makeDisabled"));
        assert!(
            !run(&rec, json!({"name": "nope", "state": "absent"}), false)
                .await
                .unwrap()
                .changed
        );
        assert!(
            run(&rec, json!({"name": "git", "state": "absent"}), false)
                .await
                .unwrap()
                .changed
        );
        let e = run(&rec, json!({"name": "nope", "state": "pinned"}), false)
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "Plugin nope not installed.");
    }
}
