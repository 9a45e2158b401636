//! `stat`: facts about a remote file.

use async_trait::async_trait;
use serde_json::json;

use super::util;
use super::{Args, Ctx, Kind, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.stat:\n    path: /etc/sudoers.d/jenkins\n  register: st\n- ansible.builtin.debug:\n    msg: present\n  when: st.stat.exists\n",
    ..ModuleSpec::new("stat", "Retrieve file or file system status.", &[
        Param::new("path", Kind::Path, "The full path of the file.").aliases(&["dest", "name"]).required(),
        Param::new("follow", Kind::Bool, "Follow symlinks.").default("no"),
        Param::new("get_checksum", Kind::Bool, "Return the file's checksum.").default("yes"),
        Param::new("checksum_algorithm", Kind::Str, "sha1, sha256, md5, ...").default("sha1").aliases(&["checksum", "checksum_algo"])
            .choices(&["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]),
        Param::new("get_mime", Kind::Bool, "Accepted; mime type not returned.").aliases(&["mime", "mime_type", "mime-type"]),
        Param::new("get_attributes", Kind::Bool, "Accepted; attributes not returned.").aliases(&["attr", "attributes"]),
        Param::new("get_md5", Kind::Bool, "Accepted for compatibility."),
    ])
};

pub struct Stat;

#[async_trait]
impl Module for Stat {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let path = args.req_str("path")?;
        let algo = args.str("checksum_algorithm").unwrap_or("sha1");
        let follow = if args.bool("follow") { "-L " } else { "" };
        let sum = if args.bool("get_checksum") {
            format!("if [ -f \"$p\" ] && [ -r \"$p\" ]; then printf 'SUM|%s\\n' \"$({algo}sum < \"$p\" | cut -d' ' -f1)\"; fi\n")
        } else {
            String::new()
        };
        let script = format!(
            "p={}\nif [ -e \"$p\" ] || [ -L \"$p\" ]; then printf 'ST|%s\\n' \"$(stat {follow}-c '%F|%a|%U|%G|%u|%g|%s|%Y|%X|%Z|%i|%h|%d' -- \"$p\")\"; [ -L \"$p\" ] && printf 'LNK|%s\\n' \"$(readlink -- \"$p\")\"; [ -L \"$p\" ] && printf 'REAL|%s\\n' \"$(readlink -f -- \"$p\")\"; [ -r \"$p\" ] && echo R; [ -w \"$p\" ] && echo W; [ -x \"$p\" ] && echo X; {sum}else echo ABSENT; fi",
            quote(path)
        );
        let out = ctx.sh(&script).await?;
        let text = out.stdout_str();
        if text.lines().any(|l| l == "ABSENT") {
            return Ok(Outcome::ok().with("stat", json!({"exists": false})));
        }
        let st_line = text
            .lines()
            .find_map(|l| l.strip_prefix("ST|"))
            .unwrap_or_default();
        let f: Vec<&str> = st_line.split('|').collect();
        let g = |i: usize| f.get(i).copied().unwrap_or_default();
        let num = |i: usize| g(i).parse::<i64>().unwrap_or(0);
        let mode = u32::from_str_radix(g(1), 8).unwrap_or(0);
        let kind = g(0);
        let mut st = json!({
            "exists": true,
            "path": path,
            "mode": format!("{:04o}", mode),
            "isdir": kind == "directory",
            "isreg": kind.starts_with("regular"),
            "islnk": kind == "symbolic link",
            "isfifo": kind == "fifo",
            "issock": kind == "socket",
            "isblk": kind == "block special file",
            "ischr": kind == "character special file",
            "pw_name": g(2), "gr_name": g(3),
            "uid": num(4), "gid": num(5), "size": num(6),
            "mtime": num(7), "atime": num(8), "ctime": num(9),
            "inode": num(10), "nlink": num(11), "dev": num(12),
            "readable": text.lines().any(|l| l == "R"),
            "writeable": text.lines().any(|l| l == "W"),
            "executable": text.lines().any(|l| l == "X"),
            "xusr": mode & 0o100 != 0, "xgrp": mode & 0o010 != 0, "xoth": mode & 0o001 != 0,
            "rusr": mode & 0o400 != 0, "rgrp": mode & 0o040 != 0, "roth": mode & 0o004 != 0,
            "wusr": mode & 0o200 != 0, "wgrp": mode & 0o020 != 0, "woth": mode & 0o002 != 0,
            "isuid": mode & 0o4000 != 0, "isgid": mode & 0o2000 != 0,
        });
        if let Some(l) = text.lines().find_map(|l| l.strip_prefix("LNK|")) {
            st["lnk_target"] = l.into();
        }
        if let Some(l) = text.lines().find_map(|l| l.strip_prefix("REAL|")) {
            st["lnk_source"] = l.into();
        }
        if let Some(s) = text.lines().find_map(|l| l.strip_prefix("SUM|")) {
            st["checksum"] = s.into();
        }
        let _ = util::sha1_hex; // keep the helper linked for other modules
        Ok(Outcome::ok().with("stat", st))
    }
}
