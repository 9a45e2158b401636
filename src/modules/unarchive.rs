//! `unarchive`: unpacks tar (gz, bz2, xz, zst) and zip archives on the target.
//! The archive comes from the controller (through stdin), from the target
//! (`remote_src`) or from a URL downloaded on the target. Like Ansible, it
//! is only extracted when `creates` is missing and the archive differs from
//! what is in `dest` (`tar --diff`; for zip, every file's content).

use async_trait::async_trait;
use serde_json::Value;

use super::netfile::{self, Printed};
use super::util::{self, RStat};
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::{join_argv, quote};

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.unarchive:\n    src: app-1.2.tar.gz\n    dest: /opt/app\n    owner: app\n    extra_opts: [--strip-components=1]\n",
    ..ModuleSpec::new("unarchive", "Unpacks an archive (tar, tar.gz/bz2/xz/zst, zip) into a directory on the target.", crate::with_compat_attr_params![
        Param::new("src", Kind::Str, "Archive on the controller (searched in files/), on the target with remote_src, or a URL (with remote_src).").required(),
        Param::new("dest", Kind::Path, "Existing directory to unpack into.").required(),
        Param::new("remote_src", Kind::Bool, "src is on the target (or a URL downloaded by the target).").default("no"),
        Param::new("copy", Kind::Bool, "Deprecated: copy=no means remote_src=yes."),
        Param::new("creates", Kind::Path, "Do nothing when this path exists."),
        Param::new("list_files", Kind::Bool, "Return the archive's file list as `files`.").default("no"),
        Param::new("include", Kind::List, "Only these archive members."),
        Param::new("exclude", Kind::List, "Archive members to leave out."),
        Param::new("keep_newer", Kind::Bool, "Do not replace files newer than the archive's (tar).").default("no"),
        Param::new("extra_opts", Kind::List, "Extra options for tar or unzip (e.g. --strip-components=1)."),
        Param::new("mode", Kind::Mode, "Permissions of every unpacked file (octal or symbolic)."),
        Param::new("owner", Kind::Str, "Owner of every unpacked file."),
        Param::new("group", Kind::Str, "Group of every unpacked file."),
        Param::new("validate_certs", Kind::Bool, "Verify TLS certificates when src is a URL.").default("yes"),
        Param::new("decrypt", Kind::Bool, "Accepted for compatibility.").default("yes"),
        Param::new("io_buffer_size", Kind::Int, "Accepted for compatibility."),
    ])
};

pub struct Unarchive;

fn handler(kind: &str) -> &'static str {
    match kind {
        "zip" => "ZipArchive",
        "gz" => "TgzArchive",
        "bz2" => "TarBzipArchive",
        "xz" => "TarXzArchive",
        "zst" => "TarZstdArchive",
        _ => "TarArchive",
    }
}

/// The extraction command, for `extract_results.cmd`.
fn extract_cmd(args: &Args, kind: &str, src: &str, dest: &str) -> String {
    let mut v: Vec<String> = Vec::new();
    if kind == "zip" {
        v.extend(["unzip".into(), "-o".into()]);
        v.extend(args.list("extra_opts"));
        v.push(src.into());
        v.extend(args.list("include"));
        let ex = args.list("exclude");
        if !ex.is_empty() {
            v.push("-x".into());
            v.extend(ex);
        }
        v.extend(["-d".into(), dest.into()]);
    } else {
        v.extend(["tar".into(), "--extract".into(), "-C".into(), dest.into()]);
        let z = match kind {
            "gz" => "-z",
            "bz2" => "-j",
            "xz" => "-J",
            "zst" => "--zstd",
            _ => "",
        };
        if !z.is_empty() {
            v.push(z.into());
        }
        v.extend(args.list("extra_opts"));
        if args.bool("keep_newer") {
            v.push("--keep-newer-files".into());
        }
        v.extend(
            args.list("exclude")
                .iter()
                .map(|e| format!("--exclude={e}")),
        );
        v.extend(["-f".into(), src.into()]);
        v.extend(args.list("include"));
    }
    join_argv(&v)
}

/// Shell that unpacks (or compares) the archive `"$a"` into `"$dest"`.
/// Prints `UN|1` when dest already holds it, `EXTRACT|rc` (+ `XOUT`/`XERR`
/// blocks) when it was unpacked, the file list as a `LIST` block.
fn body(args: &Args, check: bool, is_root: bool) -> Result<String, ModError> {
    let opts = args.list("extra_opts");
    let includes = args.list("include");
    let excludes = args.list("exclude");
    let attrs = args.has("mode") || args.has("owner") || args.has("group");
    // Differences that do not count: what ferry sets anyway, and owners a non-root user cannot set.
    let mut ignore: Vec<&str> = Vec::new();
    if args.has("mode") {
        ignore.push("Mode");
    }
    if args.has("owner") || !is_root {
        ignore.push("Uid");
    }
    if args.has("group") || !is_root {
        ignore.push("Gid");
    }
    let ignore_re = if ignore.is_empty() {
        "^$ferry-never$".to_string()
    } else {
        format!(": ({}) differs$", ignore.join("|"))
    };
    let tr = if opts.is_empty() {
        String::new()
    } else {
        format!(" --show-transformed-names {}", join_argv(&opts))
    };
    let keep = if args.bool("keep_newer") {
        " --keep-newer-files"
    } else {
        ""
    };
    let ex: String = excludes
        .iter()
        .map(|e| format!(" {}", quote(&format!("--exclude={e}"))))
        .collect();
    let inc = if includes.is_empty() {
        String::new()
    } else {
        format!(" {}", join_argv(&includes))
    };
    let zopts = if opts.is_empty() {
        String::new()
    } else {
        format!(" {}", join_argv(&opts))
    };
    let zinc = inc.clone();
    let zex = if excludes.is_empty() {
        String::new()
    } else {
        format!(" -x {}", join_argv(&excludes))
    };
    let mut s = format!(
        r#"m=$(od -An -tx1 -N6 "$a" 2>/dev/null | tr -d ' \n')
case "$m" in 504b0304*|504b0506*) kind=zip;; 1f8b*) kind=gz;; 425a68*) kind=bz2;; fd377a585a00*) kind=xz;; 28b52ffd*) kind=zst;; *) kind=tar;; esac
echo "KIND|$kind"
if [ "$kind" = zip ]; then
  command -v unzip >/dev/null 2>&1 || {{ echo 'NOTOOL|unzip'; exit 0; }}
  unzip -Z1 "$a"{zinc}{zex} > "$wd/list" 2>"$wd/lerr" || {{ echo 'LISTFAIL|'; cat "$wd/lerr" >&2; exit 0; }}
  un=1
  while IFS= read -r f; do
    case "$f" in */) [ -d "$dest/$f" ] || {{ un=0; break; }}; continue;; esac
    [ -f "$dest/$f" ] || {{ un=0; break; }}
    pat=$(printf '%s' "$f" | sed 's/[][*?\\]/\\&/g')
    [ "$(unzip -p "$a" "$pat" | sha1sum)" = "$(sha1sum < "$dest/$f")" ] || {{ un=0; break; }}
  done < "$wd/list"
  extract() {{ unzip -o{zopts} "$a"{zinc}{zex} -d "$dest"; }}
else
  case $kind in gz) zf=-z;; bz2) zf=-j;; xz) zf=-J;; zst) zf=--zstd;; *) zf=;; esac
  command -v tar >/dev/null 2>&1 || {{ echo 'NOTOOL|tar'; exit 0; }}
  tar -t $zf{tr}{ex} -f "$a"{inc} > "$wd/list" 2>"$wd/lerr" || {{ echo 'LISTFAIL|'; cat "$wd/lerr" >&2; exit 0; }}
  (cd "$dest" && tar --diff -C "$dest" $zf{tr}{keep}{ex} -f "$a"{inc}) > "$wd/dout" 2>"$wd/derr"; drc=$?
  # A member stripped to nothing (--strip-components) is not a difference.
  grep -v '^tar: : Warning: Cannot stat' "$wd/derr" > "$wd/derr2"
  if [ -s "$wd/derr2" ]; then un=0
  elif [ -s "$wd/dout" ]; then if grep -v -E {ignore} "$wd/dout" | grep -q .; then un=0; else un=1; fi
  elif [ $drc -eq 0 ] || [ -s "$wd/derr" ]; then un=1; else un=0; fi
  printf 'DIFF|%s\n' "$(head -c 2000 "$wd/dout" "$wd/derr" 2>/dev/null | tr '\n' ' ')"
  extract() {{ tar --extract -C "$dest" $zf{zopts}{keep}{ex} -f "$a"{inc}; }}
fi
printf 'LIST|%s\n' "$(wc -c < "$wd/list")"; cat "$wd/list"
printf 'UN|%s\n' "$un"
"#,
        ignore = quote(&ignore_re),
    );
    if check {
        if attrs {
            s.push_str("if [ \"$un\" = 1 ]; then while IFS= read -r f; do p=\"$dest/$f\"; if [ -e \"$p\" ] || [ -L \"$p\" ]; then printf 'FST|%s|%s\\n' \"$(stat -c '%F|%a|%U|%G|%u|%g' -- \"$p\")\" \"$f\"; fi; done < \"$wd/list\"; fi\n");
        }
        return Ok(s);
    }
    s.push_str(
        "if [ \"$un\" = 0 ]; then\n  extract > \"$wd/xout\" 2> \"$wd/xerr\"; xrc=$?\n  printf 'EXTRACT|%s\\n' \"$xrc\"\n  printf 'XOUT|%s\\n' \"$(wc -c < \"$wd/xout\")\"; cat \"$wd/xout\"\n  printf 'XERR|%s\\n' \"$(wc -c < \"$wd/xerr\")\"; cat \"$wd/xerr\"\n  [ $xrc -eq 0 ] || exit 0\nfi\n",
    );
    if attrs {
        s.push_str(&netfile::attr_function(args)?);
        s.push_str("while IFS= read -r f; do ferry_attr \"$dest/$f\"; done < \"$wd/list\"\n");
    }
    Ok(s)
}

#[async_trait]
impl Module for Unarchive {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let src = args.req_str("src")?.to_string();
        let dest = args.req_str("dest")?.to_string();
        let remote = args.bool("remote_src") || (args.has("copy") && !args.bool("copy"));
        if let Some(m) = args.get("mode") {
            netfile::chmod_arg(m)?;
        }
        let is_url = src.contains("://");
        if is_url && !remote {
            return Err(ModError::fail(
                "a URL as src needs remote_src: true (the target downloads it)",
            ));
        }
        // Where the archive comes from, and what goes on stdin.
        let (get, stdin): (String, Option<Vec<u8>>) = if is_url {
            let req = netfile::HttpReq {
                validate_certs: args.bool("validate_certs"),
                use_proxy: true,
                follow_redirects: true,
                url: src.clone(),
                ..netfile::HttpReq::default()
            };
            let script = format!(
                "command -v curl >/dev/null 2>&1 || {{ echo 'NOTOOL|curl (to download src)'; exit 0; }}\ntool=curl; out=\"$wd/archive\"; hdr=\"$wd/hdr\"\n{}code=${{w%% *}}\n[ \"$rc\" = 0 ] || {{ echo \"FETCHFAIL|curl rc=$rc\"; exit 0; }}\ncase \"$code\" in 200) ;; *) echo \"FETCHFAIL|HTTP status $code\"; exit 0;; esac\na=\"$wd/archive\"\n",
                netfile::fetch_snippet(false)
            );
            (script, Some(netfile::curl_config(&req).into_bytes()))
        } else if remote {
            (format!("a={}\n[ -f \"$a\" ] || {{ echo \"Source '$a' does not exist\" >&2; exit 2; }}\n[ -r \"$a\" ] || {{ echo \"Source '$a' not readable\" >&2; exit 2; }}\n", quote(&src)), None)
        } else {
            let path = ctx
                .find_file("files", &src)
                .ok_or_else(|| ModError::fail(format!("Could not find or access '{src}' on the controller (searched the role's files/, the role, the playbook dir)")))?;
            let data = std::fs::read(&path)
                .map_err(|e| ModError::fail(format!("{}: {e}", path.display())))?;
            ("a=\"$wd/archive\"\ncat > \"$a\"\n".to_string(), Some(data))
        };
        let creates = match args.str("creates") {
            Some(c) => format!("if [ -e {} ]; then echo 'SKIP|'; exit 0; fi\n", quote(c)),
            None => String::new(),
        };
        let script = format!(
            "{creates}dest={}\n[ -d \"$dest\" ] || {{ echo \"Destination '$dest' is not a directory\" >&2; exit 2; }}\n[ -w \"$dest\" ] || {{ echo \"Destination '$dest' not writable\" >&2; exit 2; }}\necho \"ROOT|$(id -u)\"\nwd=$(mktemp -d) || exit 3\ntrap 'rm -rf \"$wd\"' EXIT\n{get}ROOTCHECK\n",
            quote(&dest)
        );
        // Whether we run as root decides if owner differences matter: ask in the same script.
        let body_root = body(args, ctx.check_mode, true)?;
        let body_user = body(args, ctx.check_mode, false)?;
        let script = script.replace(
            "ROOTCHECK\n",
            &format!("if [ \"$(id -u)\" = 0 ]; then\n{body_root}else\n{body_user}fi\n"),
        );
        let out = ctx.sh_in(&script, stdin.as_deref()).await?;
        if out.rc != 0 {
            let e = out.stderr_str();
            return Err(ModError::fail(if e.trim().is_empty() {
                format!("unarchive failed (rc={})", out.rc)
            } else {
                e.trim().to_string()
            }));
        }
        let p = Printed::parse(&out.stdout, &["LIST", "XOUT", "XERR"]);
        if p.get("SKIP").is_some() {
            let c = args.str("creates").unwrap_or_default();
            return Ok(Outcome {
                skipped: true,
                ..Outcome::ok()
            }
            .msg(format!("skipped, since {c} exists")));
        }
        if let Some(t) = p.get("NOTOOL") {
            return Err(ModError::fail(format!("Failed to find handler for \"{src}\". Make sure the required command to extract the file is installed: {t}")));
        }
        if let Some(rc) = p.get("FETCHFAIL") {
            let f = netfile::parse_fetched(&p);
            return Err(ModError::fail(
                format!("Failure downloading {src}: {rc} {}", f.error)
                    .trim()
                    .to_string(),
            ));
        }
        if p.get("LISTFAIL").is_some() {
            return Err(ModError::fail(format!("Failed to find handler for \"{src}\". Make sure the required command to extract the file is installed. {}", out.stderr_str().trim())));
        }
        let kind = p.get("KIND").unwrap_or("tar").to_string();
        let files: Vec<Value> =
            String::from_utf8_lossy(p.blocks.get("LIST").map(Vec::as_slice).unwrap_or_default())
                .lines()
                .map(|l| Value::String(l.to_string()))
                .collect();
        let unarchived = p.get("UN") == Some("1");
        let mut o = Outcome::ok()
            .with("dest", dest.clone())
            .with("src", src.clone())
            .with("handler", handler(&kind));
        if args.bool("list_files") {
            o = o.with("files", Value::Array(files.clone()));
        }
        if let Some(rc) = p.get("EXTRACT") {
            let rc: i64 = rc.trim().parse().unwrap_or(-1);
            let text = |k: &str| {
                String::from_utf8_lossy(p.blocks.get(k).map(Vec::as_slice).unwrap_or_default())
                    .into_owned()
            };
            let results = serde_json::json!({"cmd": extract_cmd(args, &kind, &src, &dest), "rc": rc, "out": text("XOUT"), "err": text("XERR")});
            o = o.with("extract_results", results);
            if rc != 0 {
                return Err(ModError::Failed {
                    msg: format!("failed to unpack {src} to {dest}: {}", text("XERR").trim()),
                    data: o.data,
                });
            }
        }
        o.changed = !unarchived || !p.all("ATTR").is_empty();
        if ctx.check_mode && unarchived {
            // Would mode/owner/group change on any unpacked file?
            for line in p.all("FST") {
                let f: Vec<&str> = line.splitn(7, '|').collect();
                if f.len() < 7 {
                    continue;
                }
                let st = RStat {
                    exists: true,
                    kind: if f[0] == "directory" {
                        "directory".into()
                    } else {
                        "file".into()
                    },
                    mode: u32::from_str_radix(f[1], 8).unwrap_or(0),
                    owner: f[2].into(),
                    group: f[3].into(),
                    uid: f[4].parse().unwrap_or(0),
                    gid: f[5].parse().unwrap_or(0),
                    ..RStat::default()
                };
                if !super::file::attr_fixes(args, f[6], &st, false)?.is_empty() {
                    o.changed = true;
                    break;
                }
            }
        }
        let st = if ctx.check_mode {
            None
        } else {
            Some(util::stat(ctx, &dest, false).await?)
        };
        if let Some(st) = st.filter(|s| s.exists) {
            o = o
                .with("state", "directory")
                .with("mode", format!("{:04o}", st.mode & 0o7777))
                .with("owner", st.owner)
                .with("group", st.group)
                .with("uid", st.uid)
                .with("gid", st.gid)
                .with("size", st.size);
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{field, TestEnv};
    use serde_json::json;
    use std::process::Command;

    fn sh(dir: &std::path::Path, cmd: &str) {
        let st = Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .current_dir(dir)
            .status()
            .unwrap();
        assert!(st.success(), "{cmd}");
    }

    /// A tree `src/` with two files, packed as app.tar.gz, app.tar.xz, app.tar and app.zip.
    fn archives(env: &TestEnv) {
        env.write("src/app/bin/run.sh", "#!/bin/sh\necho hi\n");
        env.write("src/app/conf/app.conf", "port=8080\n");
        sh(env.dir.path(), "chmod 755 src/app/bin/run.sh && cd src && tar czf ../app.tar.gz app && tar cJf ../app.tar.xz app && tar cf ../app.tar app");
        if Command::new("zip").arg("-v").output().is_ok() {
            sh(env.dir.path(), "cd src && zip -qr ../app.zip app");
        }
    }

    #[tokio::test]
    async fn tar_gz_from_controller_check_then_unpack_then_ok() {
        let env = TestEnv::new();
        archives(&env);
        std::fs::create_dir(env.pathbuf("out")).unwrap();
        let args = json!({"src": "app.tar.gz", "dest": env.path("out"), "list_files": true});
        let c = env.check(&Unarchive, args.clone()).await;
        assert!(c.changed);
        assert!(!env.pathbuf("out/app").exists(), "--check unpacked");
        let o = env.ok(&Unarchive, args.clone()).await;
        assert!(o.changed);
        assert_eq!(field(&o, "handler"), "TgzArchive");
        assert_eq!(env.read("out/app/conf/app.conf"), "port=8080\n");
        let files: Vec<String> = serde_json::from_value(field(&o, "files").clone()).unwrap();
        assert!(files.contains(&"app/bin/run.sh".to_string()), "{files:?}");
        assert_eq!(field(&o, "extract_results")["rc"], 0);
        let o = env.ok(&Unarchive, args.clone()).await;
        assert!(!o.changed, "already unpacked");
        let c = env.check(&Unarchive, args.clone()).await;
        assert!(!c.changed);
        // A changed file makes it unpack again.
        env.write("out/app/conf/app.conf", "port=1\n");
        assert!(env.ok(&Unarchive, args.clone()).await.changed);
        assert_eq!(env.read("out/app/conf/app.conf"), "port=8080\n");
    }

    #[tokio::test]
    async fn remote_src_xz_tar_zip_creates_and_modes() {
        let env = TestEnv::new();
        archives(&env);
        for (name, handler) in [
            ("app.tar.xz", "TarXzArchive"),
            ("app.tar", "TarArchive"),
            ("app.zip", "ZipArchive"),
        ] {
            if !env.pathbuf(name).exists() {
                continue;
            }
            let out = env.path(&format!("x-{name}"));
            std::fs::create_dir(&out).unwrap();
            let args = json!({"src": env.path(name), "dest": out, "remote_src": true, "extra_opts": if name.ends_with("zip") { json!([]) } else { json!(["--strip-components=1"]) }});
            let o = env.ok(&Unarchive, args.clone()).await;
            assert!(o.changed, "{name}");
            assert_eq!(field(&o, "handler"), handler);
            let conf = if name.ends_with("zip") {
                format!("{out}/app/conf/app.conf")
            } else {
                format!("{out}/conf/app.conf")
            };
            assert_eq!(
                std::fs::read_to_string(&conf).unwrap(),
                "port=8080\n",
                "{name}"
            );
            assert!(
                !env.ok(&Unarchive, args.clone()).await.changed,
                "{name} second run"
            );
            if name.ends_with("zip") {
                std::fs::write(&conf, "edited\n").unwrap();
                assert!(
                    env.ok(&Unarchive, args).await.changed,
                    "zip content compare"
                );
                assert_eq!(std::fs::read_to_string(&conf).unwrap(), "port=8080\n");
            }
        }
        // creates: skipped.
        let o = env.run(&Unarchive, json!({"src": env.path("app.tar"), "dest": env.path("src"), "remote_src": true, "creates": env.path("src/app")})).await.unwrap();
        assert!(o.skipped && !o.changed);
        // mode on every file; then idempotent.
        let out = env.path("m");
        std::fs::create_dir(&out).unwrap();
        let args = json!({"src": "app.tar.gz", "dest": out, "mode": "u=rwX,go=rX"});
        assert!(env.ok(&Unarchive, args.clone()).await.changed);
        let m = std::fs::metadata(format!("{out}/app/conf/app.conf")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777,
            0o644
        );
        assert!(!env.ok(&Unarchive, args.clone()).await.changed);
        assert!(!env.check(&Unarchive, args.clone()).await.changed);
        std::fs::set_permissions(
            format!("{out}/app/conf/app.conf"),
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .unwrap();
        assert!(
            env.check(&Unarchive, args.clone()).await.changed,
            "check mode sees the mode drift"
        );
        assert!(env.ok(&Unarchive, args).await.changed);
    }

    #[tokio::test]
    async fn url_with_remote_src_downloads_on_the_target() {
        use std::io::{BufRead, BufReader, Write};
        let env = TestEnv::new();
        archives(&env);
        let data = std::fs::read(env.pathbuf("app.tar.gz")).unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming().flatten() {
                let mut s = s;
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut first = String::new();
                let _ = r.read_line(&mut first);
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                }
                let resp = if first.contains("/app.tar.gz") {
                    let mut v =
                        format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", data.len())
                            .into_bytes();
                    v.extend_from_slice(&data);
                    v
                } else {
                    b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
                };
                let _ = s.write_all(&resp);
            }
        });
        let out = env.path("u");
        std::fs::create_dir(&out).unwrap();
        let args = json!({"src": format!("http://127.0.0.1:{port}/app.tar.gz"), "dest": out, "remote_src": true});
        assert!(env.ok(&Unarchive, args.clone()).await.changed);
        assert_eq!(env.read("u/app/conf/app.conf"), "port=8080\n");
        assert!(!env.ok(&Unarchive, args).await.changed);
        let e = env.run(&Unarchive, json!({"src": format!("http://127.0.0.1:{port}/missing.tgz"), "dest": out, "remote_src": true})).await.unwrap_err();
        assert!(e.to_string().contains("HTTP status 404"), "{e}");
    }

    #[tokio::test]
    async fn errors() {
        let env = TestEnv::new();
        archives(&env);
        let e = env
            .run(
                &Unarchive,
                json!({"src": "app.tar.gz", "dest": env.path("missing")}),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("is not a directory"), "{e}");
        env.write("junk.bin", "not an archive at all");
        std::fs::create_dir(env.pathbuf("o")).unwrap();
        let e = env
            .run(
                &Unarchive,
                json!({"src": "junk.bin", "dest": env.path("o")}),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().starts_with("Failed to find handler"), "{e}");
        let e = env
            .run(
                &Unarchive,
                json!({"src": "nope.tgz", "dest": env.path("o")}),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("Could not find or access"), "{e}");
        let e = env
            .run(
                &Unarchive,
                json!({"src": "https://example.com/a.tgz", "dest": env.path("o")}),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("remote_src"), "{e}");
    }
}
