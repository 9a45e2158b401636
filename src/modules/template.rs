//! `template`: render a Jinja template on the controller and place it atomically.

use std::path::Path;

use async_trait::async_trait;
use chrono::{DateTime, Local};
use serde_json::{Map, Value};

use super::copy::put_content;
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Param};

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.template:\n    src: sudoers.j2\n    dest: /etc/sudoers.d/jenkins\n    mode: '0440'\n    validate: /usr/sbin/visudo -cf %s\n",
    ..ModuleSpec::new("template", "Template a file out to the target.", crate::with_file_params![
        Param::new("src", Kind::Path, "Template file (searched in the role's templates/).").required(),
        Param::new("newline_sequence", Kind::Str, "Newline sequence of the output.").default("\n").choices(&["\n", "\r", "\r\n"]),
        Param::new("trim_blocks", Kind::Bool, "Remove the first newline after a block.").default("yes"),
        Param::new("lstrip_blocks", Kind::Bool, "Strip whitespace before a block.").default("no"),
        Param::new("output_encoding", Kind::Str, "Only utf-8 is supported.").default("utf-8"),
        Param::new("variable_start_string", Kind::Str, "Not supported: only {{ }}."),
        Param::new("variable_end_string", Kind::Str, "Not supported: only {{ }}."),
        Param::new("block_start_string", Kind::Str, "Not supported."),
        Param::new("block_end_string", Kind::Str, "Not supported."),
        Param::new("comment_start_string", Kind::Str, "Not supported."),
        Param::new("comment_end_string", Kind::Str, "Not supported."),
    ])
};

pub struct Template;

#[async_trait]
impl Module for Template {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let src = args.req_str("src")?;
        let dest = args.req_str("dest")?;
        let path = ctx
            .find_file("templates", src)
            .ok_or_else(|| ModError::fail(format!("Could not find or access '{src}' (searched the role's templates/, the role, the playbook dir)")))?;
        let source = crate::vault::read_string(&path).map_err(ModError::fail)?;
        let p = path.to_string_lossy().into_owned();
        let extra = template_vars(src, &path, dest, ctx.templar.managed_format());
        let scope = ctx.scope.with(extra);
        let mut text = ctx
            .templar
            .render_file(&p, &source, &scope)
            .map_err(ModError::fail)?;
        match args.str("newline_sequence") {
            Some("\r\n") => text = text.replace('\n', "\r\n"),
            Some("\r") => text = text.replace('\n', "\r"),
            _ => {}
        }
        put_content(ctx, args, text.as_bytes(), dest, Some(&p)).await
    }
}

/// The variables Ansible gives a template (`generate_ansible_template_vars`):
/// `template_host` is the controller, `template_path` the `src` as written,
/// `ansible_managed` the configured format with `{host}`, `{uid}`, `{file}`
/// and strftime codes filled in from the template file.
fn template_vars(src: &str, path: &Path, dest: &str, managed: &str) -> Map<String, Value> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok();
    let uid = meta.as_ref().map(|m| m.uid()).unwrap_or(0);
    let owner = owner_name(uid);
    let mtime: DateTime<Local> = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| {
            // Python's st_mtime is a double, rounded to microseconds (half even)
            // by datetime.fromtimestamp: the same arithmetic gives the same text.
            let secs = d.as_secs() as f64 + f64::from(d.subsec_nanos()) * 1e-9;
            let us = (secs.fract() * 1e6).round_ties_even() as i64;
            DateTime::from_timestamp_micros(secs.trunc() as i64 * 1_000_000 + us)
        })
        .map(DateTime::from)
        .unwrap_or_else(Local::now);
    let full = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let host = controller_hostname();
    let managed = managed
        .replace("{host}", &host)
        .replace("{uid}", &owner)
        .replace("{file}", src);
    let mut m = Map::new();
    m.insert("template_host".into(), host.into());
    m.insert("template_path".into(), src.into());
    m.insert("template_fullpath".into(), full.to_string_lossy().into());
    m.insert("template_uid".into(), owner.into());
    m.insert("template_mtime".into(), py_datetime(&mtime).into());
    m.insert(
        "template_run_date".into(),
        py_datetime(&Local::now()).into(),
    );
    m.insert("template_destpath".into(), dest.into());
    m.insert("ansible_managed".into(), strftime(&managed, &mtime).into());
    m
}

/// The controller's name, read once per run (every template render asks).
fn controller_hostname() -> String {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    })
    .clone()
}

/// A controller user's name from /etc/passwd (else the uid), looked up once
/// per uid and run: every host renders the same template files.
fn owner_name(uid: u32) -> String {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashMap<u32, String>>> = OnceLock::new();
    NAMES
        .get_or_init(Default::default)
        .lock()
        .expect("names")
        .entry(uid)
        .or_insert_with(|| {
            crate::template::filters::local_passwd(|f| f[2] == uid.to_string())
                .map(|f| f[0].clone())
                .unwrap_or_else(|| uid.to_string())
        })
        .clone()
}

/// Python's `str(datetime)`: microseconds only when there are some.
fn py_datetime(t: &DateTime<Local>) -> String {
    let fmt = if t.timestamp_subsec_micros() == 0 {
        "%Y-%m-%d %H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M:%S%.6f"
    };
    t.format(fmt).to_string()
}

/// `time.strftime`; a format chrono cannot read is left as written.
fn strftime(format: &str, t: &DateTime<Local>) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    match write!(out, "{}", t.format(format)) {
        Ok(()) => out,
        Err(_) => format.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_vars_as_ansible_makes_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("motd.j2");
        std::fs::write(&p, "x").unwrap();
        let v = template_vars("motd.j2", &p, "/etc/motd", "Ansible managed");
        assert_eq!(v["ansible_managed"], "Ansible managed");
        assert_eq!(v["template_path"], "motd.j2");
        assert_eq!(v["template_fullpath"], p.to_string_lossy().as_ref());
        let rel = template_vars("t", Path::new("Cargo.toml"), "/x", "");
        let cwd = std::env::current_dir().unwrap().join("Cargo.toml");
        assert_eq!(rel["template_fullpath"], cwd.to_string_lossy().as_ref());
        assert_eq!(v["template_destpath"], "/etc/motd");
        assert_eq!(v["template_host"], controller_hostname().as_str());
        let year = Local::now().format("%Y").to_string();
        let v = template_vars(
            "motd.j2",
            &p,
            "/etc/motd",
            "{file} by {uid} on {host} %Y %%",
        );
        let uid = v["template_uid"].as_str().unwrap().to_string();
        assert_eq!(
            v["ansible_managed"],
            format!("motd.j2 by {uid} on {} {year} %", controller_hostname()).as_str()
        );
        assert!(v["template_mtime"].as_str().unwrap().starts_with(&year));
        // A format chrono cannot read stays as it was written.
        assert_eq!(strftime("50%", &Local::now()), "50%");
    }
}
