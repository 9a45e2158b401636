//! `template`: render a Jinja template on the controller and place it atomically.

use async_trait::async_trait;

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
        let mut extra = serde_json::Map::new();
        let p = path.to_string_lossy().into_owned();
        extra.insert("template_path".into(), p.clone().into());
        extra.insert("template_fullpath".into(), p.clone().into());
        extra.insert("template_host".into(), ctx.host.into());
        extra.insert("template_destpath".into(), dest.into());
        // Ansible's default string: the same file whichever tool rendered it last
        // (ansible.cfg's `ansible_managed` is not read).
        extra.insert("ansible_managed".into(), "Ansible managed".into());
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
