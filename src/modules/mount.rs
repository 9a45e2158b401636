//! `mount` (ansible.posix.mount) on Linux: the fstab line, written as
//! Ansible's module writes it, and the mount itself (mount -T fstab, umount,
//! remount), decided from one read of fstab and /proc/self/mountinfo.

use async_trait::async_trait;

use super::util::{self, Place};
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["ansible.posix.mount"],
    example: "- ansible.posix.mount:\n    path: /srv/data\n    src: tmpfs\n    fstype: tmpfs\n    opts: size=64m\n    state: mounted\n",
    ..ModuleSpec::new(
        "mount",
        "Control active and configured mount points (fstab and the mount itself).",
        &[
            Param::new("path", Kind::Path, "Path to the mount point.").aliases(&["name"]).required(),
            Param::new("src", Kind::Path, "Device, label, network share or tmpfs to be mounted."),
            Param::new("fstype", Kind::Str, "Filesystem type."),
            Param::new("opts", Kind::Str, "Mount options (default `defaults`)."),
            Param::new("dump", Kind::Str, "Dump field of fstab.").default("0"),
            Param::new("passno", Kind::Str, "Passno field of fstab.").default("0"),
            Param::new("state", Kind::Str, "mounted, unmounted, present, absent, absent_from_fstab, remounted or ephemeral.").choices(&["mounted", "unmounted", "present", "absent", "absent_from_fstab", "remounted", "ephemeral"]).required(),
            Param::new("fstab", Kind::Str, "The fstab file (default /etc/fstab)."),
            Param::new("boot", Kind::Bool, "false: add `noauto` to the options.").default("yes"),
            Param::new("backup", Kind::Bool, "Keep a timestamped copy of fstab before changing it.").default("no"),
            Param::new("opts_no_log", Kind::Bool, "Do not log opts.").default("no"),
        ],
    )
};

pub struct Mount;

/// Ansible's `_escape_fstab`: space, ampersand and backslash as octal escapes.
fn escape(v: &str) -> String {
    v.replace('\\', "\\134")
        .replace(' ', "\\040")
        .replace('&', "\\046")
}

/// The fstab fields a task asks for.
pub struct Entry {
    pub src: String,
    pub name: String,
    pub fstype: String,
    pub opts: String,
    pub dump: String,
    pub passno: String,
}

/// Ansible's `_set_mount_save_old` on Linux: (new fstab, changed).
pub fn set_line(fstab: &str, e: &Entry) -> (String, bool) {
    let esc = |v: &str| escape(v);
    let (src, name, fstype, opts) = (esc(&e.src), esc(&e.name), esc(&e.fstype), esc(&e.opts));
    let line_of = |f: [&str; 6]| format!("{}\n", f.join(" "));
    let mut out = String::new();
    let (mut exists, mut changed) = (false, false);
    for line in fstab.split_inclusive('\n') {
        let line = if line.ends_with('\n') {
            line.to_string()
        } else {
            format!("{line}\n")
        };
        let t = line.trim();
        let fields: Vec<&str> = line.split_whitespace().collect();
        if t.is_empty() || t.starts_with('#') || !(4..=6).contains(&fields.len()) {
            out.push_str(&line);
            continue;
        }
        let mut ld: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
        ld.resize(6, "0".into());
        let swap_other = ld[1] == "none" && ld[2] == "swap" && ld[0] != e.src;
        if ld[1] != name || swap_other {
            out.push_str(&line);
            continue;
        }
        exists = true;
        let want = [&src, &name, &fstype, &opts, &e.dump, &e.passno];
        let mut this_changed = false;
        for (i, w) in want.iter().enumerate() {
            if i != 1 && ld[i] != **w {
                ld[i] = w.to_string();
                this_changed = true;
            }
        }
        changed |= this_changed;
        if changed {
            out.push_str(&line_of([&ld[0], &ld[1], &ld[2], &ld[3], &ld[4], &ld[5]]));
        } else {
            out.push_str(&line);
        }
    }
    if !exists {
        out.push_str(&line_of([&src, &name, &fstype, &opts, &e.dump, &e.passno]));
        changed = true;
    }
    (out, changed)
}

/// Ansible's `unset_mount` (6-field lines only): (new fstab, changed).
pub fn unset_line(fstab: &str, name: &str, src: Option<&str>) -> (String, bool) {
    let name = escape(name);
    let mut out = String::new();
    let mut changed = false;
    for line in fstab.split_inclusive('\n') {
        let t = line.trim();
        let f: Vec<&str> = line.split_whitespace().collect();
        if t.is_empty() || t.starts_with('#') || f.len() != 6 {
            out.push_str(line);
            continue;
        }
        let swap_other = src.is_some_and(|s| f[1] == "none" && f[2] == "swap" && f[0] != s);
        if f[1] != name || swap_other {
            out.push_str(line);
            continue;
        }
        changed = true;
    }
    (out, changed)
}

/// Is `path` a mount point, from /proc/self/mountinfo (field 5, octal-escaped)?
fn mounted(mountinfo: &str, path: &str) -> bool {
    let esc = escape(path.trim_end_matches('/'));
    let want = if esc.is_empty() { "/".to_string() } else { esc };
    mountinfo
        .lines()
        .any(|l| l.split_whitespace().nth(4) == Some(want.as_str()))
}

#[async_trait]
impl Module for Mount {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let path = args.req_str("path")?.to_string();
        let state = args.req_str("state")?;
        if matches!(state, "mounted" | "present" | "ephemeral")
            && (!args.has("src") || !args.has("fstype"))
        {
            return Err(ModError::fail(format!(
                "state is {state} but all of the following are missing: src, fstype"
            )));
        }
        let fstab = args.str("fstab").unwrap_or("/etc/fstab").to_string();
        let mut opts = args.str("opts").unwrap_or("defaults").to_string();
        if !args.bool("boot") && !opts.split(',').any(|o| o == "noauto") {
            opts.push_str(",noauto");
        }
        let entry = Entry {
            src: args.str("src").unwrap_or_default().to_string(),
            name: path.clone(),
            fstype: args.str("fstype").unwrap_or_default().to_string(),
            opts: opts.clone(),
            dump: args.str("dump").unwrap_or("0").to_string(),
            passno: args.str("passno").unwrap_or("0").to_string(),
        };
        // 1. One read: fstab, the mount table, whether the path exists.
        let read = format!(
            "f={}; p={}\nprintf '==FSTAB\\n'; [ -f \"$f\" ] && cat -- \"$f\"\nprintf '\\n==MOUNTINFO\\n'; cat /proc/self/mountinfo\nprintf '==EXISTS\\n'; [ -e \"$p\" ] && echo yes; echo\n",
            quote(&fstab),
            quote(&path)
        );
        let out = ctx.sh(&read).await?;
        let text = out.stdout_str();
        let secs = util::sections(&text);
        let section = |name| util::section(&secs, name).unwrap_or("");
        // The read adds a newline before the next marker.
        let old = section("FSTAB");
        let old = old.strip_suffix('\n').unwrap_or(old);
        let is_mounted = mounted(section("MOUNTINFO"), &path);
        let exists = section("EXISTS").trim() == "yes";
        // 2. Decide: the new fstab and the commands, as Ansible's module does.
        let mut new_fstab: Option<String> = None;
        let mut cmds: Vec<String> = Vec::new();
        let p = quote(&path);
        let ft = quote(&fstab);
        let mount_cmd = format!("mount -T {ft} {p}");
        let remount_cmd =
            format!("mount -o remount -T {ft} {p} 2>/dev/null || {{ umount {p} && {mount_cmd}; }}");
        let changed = match state {
            "absent" | "absent_from_fstab" => {
                let (n, ch) = unset_line(old, &path, args.str("src"));
                if ch {
                    new_fstab = Some(n);
                    if state == "absent" {
                        if is_mounted {
                            cmds.push(format!("umount {p}"));
                        }
                        if exists {
                            cmds.push(format!("rmdir -- {p}"));
                        }
                    }
                }
                ch
            }
            "unmounted" => {
                if is_mounted {
                    cmds.push(format!("umount {p}"));
                }
                is_mounted
            }
            "present" => {
                let (n, ch) = set_line(old, &entry);
                if ch {
                    new_fstab = Some(n);
                }
                ch
            }
            "remounted" => {
                cmds.push(remount_cmd.clone());
                true
            }
            _ => {
                // mounted, ephemeral
                if !exists {
                    cmds.push(format!("mkdir -p -- {p}"));
                }
                let mut ch = false;
                if state == "mounted" {
                    let (n, c) = set_line(old, &entry);
                    if c {
                        new_fstab = Some(n);
                        ch = true;
                    }
                }
                let direct = format!(
                    "mount -t {} -o {} {} {p}",
                    quote(&entry.fstype),
                    quote(&opts),
                    quote(&entry.src)
                );
                if is_mounted {
                    if state == "ephemeral" {
                        cmds.push(format!("mount -o remount,{} {p}", quote(&opts)));
                        ch = true;
                    } else if ch {
                        cmds.push(remount_cmd.clone());
                    }
                } else {
                    cmds.push(if state == "ephemeral" {
                        direct
                    } else {
                        mount_cmd.clone()
                    });
                    ch = true;
                }
                ch
            }
        };
        let mut o = Outcome::changed(changed)
            .with("name", path.clone())
            .with("fstab", fstab.clone())
            .with(
                "opts",
                if args.bool("opts_no_log") {
                    "********".to_string()
                } else {
                    opts.clone()
                },
            )
            .with("dump", entry.dump.clone())
            .with("passno", entry.passno.clone());
        if args.has("src") {
            o = o.with("src", entry.src.clone());
        }
        if args.has("fstype") {
            o = o.with("fstype", entry.fstype.clone());
        }
        if ctx.check_mode || !changed {
            return Ok(o);
        }
        // 3. Change: fstab first (atomically), then the mount commands.
        if let Some(n) = &new_fstab {
            let place = Place {
                dest: &fstab,
                backup: args.bool("backup"),
                ..Place::default()
            };
            if let Some(b) = util::place(ctx, n.as_bytes(), &place).await? {
                o = o.with("backup_file", b);
            }
        }
        if !cmds.is_empty() {
            let script = format!(
                "PATH=\"$PATH:/usr/sbin:/sbin\"\nset -e\n{}\n",
                cmds.join("\n")
            );
            let r = ctx.sh(&script).await?;
            if r.rc != 0 {
                let verb = if state == "unmounted" || state == "absent" {
                    "unmounting"
                } else {
                    "mounting"
                };
                return Err(ModError::fail(format!(
                    "Error {verb} {path}: {}",
                    r.stderr_str().trim()
                )));
            }
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(src: &str, name: &str, opts: &str) -> Entry {
        Entry {
            src: src.into(),
            name: name.into(),
            fstype: "tmpfs".into(),
            opts: opts.into(),
            dump: "0".into(),
            passno: "0".into(),
        }
    }

    #[test]
    fn fstab_lines_as_ansible_writes_them() {
        let fstab = "# /etc/fstab\nUUID=1 / ext4 errors=remount-ro 0 1\ntmpfs /srv/data tmpfs size=1m 0 0\n";
        let (same, ch) = set_line(fstab, &e("tmpfs", "/srv/data", "size=1m"));
        assert!(!ch);
        assert_eq!(same, fstab);
        let (new, ch) = set_line(fstab, &e("tmpfs", "/srv/data", "size=2m"));
        assert!(ch);
        assert!(new.ends_with("tmpfs /srv/data tmpfs size=2m 0 0\n"));
        let (new, ch) = set_line("", &e("//nas/a b", "/mnt/a b", "defaults"));
        assert!(ch);
        assert_eq!(new, "//nas/a\\040b /mnt/a\\040b tmpfs defaults 0 0\n");
        let (gone, ch) = unset_line(fstab, "/srv/data", None);
        assert!(ch);
        assert_eq!(gone, "# /etc/fstab\nUUID=1 / ext4 errors=remount-ro 0 1\n");
        assert!(!unset_line(fstab, "/nope", None).1);
        let mi = "36 35 0:31 / /srv/data rw,relatime - tmpfs tmpfs rw\n37 35 0:32 / /mnt/a\\040b rw - tmpfs t rw\n";
        assert!(mounted(mi, "/srv/data/"));
        assert!(mounted(mi, "/mnt/a b"));
        assert!(!mounted(mi, "/srv"));
    }
}
