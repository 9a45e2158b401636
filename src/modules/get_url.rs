//! `get_url`: downloads a file ON THE TARGET (curl, or wget) into a temp file
//! beside `dest`, verifies the checksum, then renames it into place.
//! Credentials and headers reach curl through a config on stdin.

use async_trait::async_trait;
use serde_json::Value;

use super::netfile::{self, HttpReq, Printed};
use super::util::{self, stat_snippet};
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.get_url:\n    url: https://example.com/release/app-1.2.tar.gz\n    dest: /opt/app-1.2.tar.gz\n    checksum: sha256:https://example.com/release/SHA256SUMS\n    mode: '0644'\n",
    ..ModuleSpec::new("get_url", "Downloads files from HTTP, HTTPS or FTP to the target (with curl or wget on the target).", crate::with_http_params![
        Param::new("url", Kind::Str, "HTTP, HTTPS, FTP or file URL.").required(),
        Param::new("dest", Kind::Path, "Absolute path to download to; a directory means the URL's file name.").required(),
        Param::new("tmp_dest", Kind::Path, "Directory for the temporary download (default: the destination's directory)."),
        Param::new("checksum", Kind::Str, "'<algorithm>:<hex digest>' or '<algorithm>:<URL of a checksums file>'; verified before the file is placed, and a matching existing file is not downloaded again.").default(""),
        Param::new("force", Kind::Bool, "Download every time and replace the file when the content changed (no: only when dest is missing or its checksum differs).").aliases(&["thirsty"]).default("no"),
        Param::new("backup", Kind::Bool, "Keep a timestamped copy of the file being replaced.").default("no"),
        Param::new("timeout", Kind::Int, "Seconds without progress before the request fails.").default("10"),
        Param::new("headers", Kind::Dict, "Custom HTTP headers."),
        Param::new("validate_certs", Kind::Bool, "Verify TLS certificates.").default("yes"),
        Param::new("url_username", Kind::Str, "User name for HTTP authentication.").aliases(&["username"]),
        Param::new("url_password", Kind::Str, "Password for HTTP authentication (sent to curl on stdin, never in argv).").aliases(&["password"]),
        Param::new("decompress", Kind::Bool, "Accepted for compatibility (the body is saved as sent).").default("yes"),
        Param::new("mode", Kind::Mode, "Permissions of the file (octal or symbolic)."),
        Param::new("owner", Kind::Str, "Owner of the file."),
        Param::new("group", Kind::Str, "Group of the file."),
    ])
};

pub struct GetUrl;

/// `checksum:` split into algorithm and value (a digest or a URL).
pub fn parse_checksum(s: &str) -> Result<Option<(String, String)>, ModError> {
    if s.trim().is_empty() {
        return Ok(None);
    }
    let (a, v) = s.split_once(':').ok_or_else(|| {
        ModError::fail("The checksum parameter has to be in format <algorithm>:<checksum>")
    })?;
    let a = a.trim().to_lowercase();
    netfile::digest_cmd(&a)?;
    Ok(Some((a, v.trim().to_string())))
}

/// Normalises a digest like Ansible (drops non-word characters) and checks it is hex.
pub fn clean_digest(d: &str) -> Result<String, ModError> {
    let c: String = d
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect::<String>()
        .to_lowercase();
    if c.is_empty() || !c.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ModError::fail("The checksum format is invalid"));
    }
    Ok(c)
}

/// Finds the digest for `filename` in a checksums file (`<sum>  <name>` lines,
/// or a single bare digest).
pub fn digest_from_list(text: &str, filename: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() == 1 && lines[0].split_whitespace().count() == 1 {
        return Some(lines[0].trim().to_string());
    }
    for l in lines {
        let Some((sum, name)) = l.split_once(' ') else {
            continue;
        };
        let name = name.strip_prefix([' ', '*']).unwrap_or(name).trim();
        let name = name.trim_start_matches("./");
        if name.trim_matches(|c| c == '.' || c == '/') == filename {
            return Some(sum.to_string());
        }
    }
    None
}

fn request(args: &Args, url: &str) -> HttpReq {
    netfile::base_request(args, url)
}

/// stdin for the request script: a curl config or a wgetrc.
fn tool_input(tool: &str, req: &HttpReq) -> Result<Vec<u8>, ModError> {
    Ok(if tool == "wget" {
        netfile::wgetrc(req)?
    } else {
        netfile::curl_config(req)
    }
    .into_bytes())
}

fn no_tool() -> ModError {
    ModError::fail("get_url needs curl or wget on the target: install one (e.g. apt: name=curl)")
}

#[async_trait]
impl Module for GetUrl {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let url = args.req_str("url")?.to_string();
        let dest = args.req_str("dest")?.to_string();
        let force = args.bool("force");
        let checksum = parse_checksum(args.str("checksum").unwrap_or(""))?;
        let fname = netfile::url_filename(&url);
        if let Some(m) = args.get("mode") {
            netfile::chmod_arg(m)?;
        }

        // 1. What is there: the tool, the destination (a dir means dest/<name>), its digests.
        let algo = checksum.as_ref().map(|(a, _)| a.clone());
        let dg = match &algo {
            Some(a) => format!("if [ -f \"$d\" ] && [ -r \"$d\" ]; then printf 'DG|%s\\n' \"$({} < \"$d\" | cut -d' ' -f1)\"; fi\n", netfile::digest_cmd(a)?),
            None => String::new(),
        };
        let s1 = format!(
            "{}echo \"TOOL|$tool\"\nd={}\nif [ -d \"$d\" ]; then echo ISDIR; d=\"${{d%/}}\"/{}; fi\nprintf 'TARGET|%s\\n' \"$d\"\n{}\n{dg}",
            netfile::DETECT_TOOL,
            quote(&dest),
            quote(&fname),
            stat_snippet("d", true)
        );
        let out = ctx.sh(&s1).await?;
        let p1 = Printed::parse(&out.stdout, &[]);
        let tool = p1.get("TOOL").unwrap_or("none").to_string();
        let target = p1.get("TARGET").unwrap_or(&dest).to_string();
        let st = util::parse_stat(&out.stdout_str());
        let mut o = Outcome::ok()
            .with("url", url.clone())
            .with("dest", target.clone());
        if st.exists && st.kind != "file" {
            return Err(ModError::fail(format!(
                "Destination {target} exists and is not a regular file"
            )));
        }

        // 2. The expected digest (a checksums URL is fetched on the target).
        let expected = match &checksum {
            None => None,
            Some((a, v)) if v.contains("://") => {
                if tool == "none" {
                    return Err(no_tool());
                }
                let req = request(args, v);
                let script = format!(
                    "{}out=$(mktemp) || exit 3\nhdr=\"$out.hdr\"\ntrap 'rm -f \"$out\" \"$hdr\"' EXIT\n{}printf 'BODY|%s\\n' \"$(wc -c < \"$out\")\"; cat \"$out\"\n",
                    netfile::DETECT_TOOL,
                    netfile::fetch_snippet(false)
                );
                let out = ctx.sh_in(&script, Some(&tool_input(&tool, &req)?)).await?;
                let p = Printed::parse(&out.stdout, &["BODY"]);
                let f = netfile::parse_fetched(&p);
                if f.status == -1 {
                    return Err(ModError::fail(format!("Request failed: {} ({v})", f.error)));
                }
                if f.status != 200 && !v.starts_with("file:") && !v.starts_with("ftp") {
                    return Err(ModError::fail(format!(
                        "Request failed: status {} fetching checksums from {v}",
                        f.status
                    )));
                }
                let text = String::from_utf8_lossy(
                    p.blocks.get("BODY").map(Vec::as_slice).unwrap_or_default(),
                )
                .into_owned();
                let d = digest_from_list(&text, &fname).ok_or_else(|| {
                    ModError::fail(format!(
                        "Unable to find a checksum for file '{fname}' in '{v}'"
                    ))
                })?;
                Some((a.clone(), clean_digest(&d)?))
            }
            Some((a, v)) => Some((a.clone(), clean_digest(v)?)),
        };

        // 3. Already there? Without force, an existing file is kept unless its checksum differs.
        if st.exists && !force {
            let matches = match &expected {
                None => true,
                Some((_, want)) => p1.get("DG") == Some(want.as_str()),
            };
            if matches {
                return keep_existing(args, ctx, o, &target, &st).await;
            }
        }
        if tool == "none" {
            return Err(no_tool());
        }
        let req = HttpReq {
            method: if ctx.check_mode {
                "HEAD".into()
            } else {
                "GET".into()
            },
            ..request(args, &url)
        };
        let accept_any = url.starts_with("file:") || url.starts_with("ftp");

        // 4. Check mode: only ask whether the URL answers (HEAD), like Ansible.
        if ctx.check_mode {
            let script = format!(
                "{}out=/dev/null\nhdr=$(mktemp) || exit 3\ntrap 'rm -f \"$hdr\"' EXIT\n{}",
                netfile::DETECT_TOOL,
                netfile::fetch_snippet(true)
            );
            let out = ctx.sh_in(&script, Some(&tool_input(&tool, &req)?)).await?;
            let f = netfile::parse_fetched(&Printed::parse(&out.stdout, &[]));
            if f.status == -1 {
                return Err(ModError::fail(format!("Request failed: {}", f.error)));
            }
            o.changed = true;
            return Ok(o
                .with("status_code", f.status)
                .msg(format!("OK ({} bytes)", f.size)));
        }

        // 5. Download into a temp file beside dest, verify, place, set attributes.
        let verify = match &expected {
            Some((a, want)) => format!(
                "dg=$({} < \"$t\" | cut -d' ' -f1); printf 'DG|%s\\n' \"$dg\"\n[ \"$dg\" = {} ] || {{ echo MISMATCH; exit 0; }}\n",
                netfile::digest_cmd(a)?,
                quote(want)
            ),
            None => String::new(),
        };
        let tmp_dir = match args.str("tmp_dest") {
            Some(t) => quote(t),
            None => "\"$dir\"".into(),
        };
        let script = format!(
            r#"{detect}d={target}
dir=$(dirname -- "$d")
[ -d "$dir" ] || {{ echo "Destination dir $dir does not exist" >&2; exit 2; }}
td={tmp_dir}
[ -d "$td" ] || {{ echo "tmp_dest $td does not exist" >&2; exit 2; }}
out=$(mktemp "$td/.ferry-get_url.XXXXXXXX") || exit 3
hdr="$out.hdr"
trap 'rm -f "$out" "$hdr"' EXIT
{fetch}code=${{w%% *}}
[ "$rc" = 0 ] || exit 0
printf 'HDR|%s\n' "$(wc -c < "$hdr")"; cat "$hdr"
case "$code" in 200) ;; *) [ {accept} = 1 ] || exit 0;; esac
t="$out"
sum=$(sha1sum < "$t" | cut -d' ' -f1); printf 'SRC|%s|%s\n' "$sum" "$(wc -c < "$t")"
{verify}[ -f "$d" ] && printf 'DEST|%s\n' "$(sha1sum < "$d" | cut -d' ' -f1)"
{place}{attr}ferry_attr "$d"
printf 'MD5|%s\n' "$(md5sum < "$d" 2>/dev/null | cut -d' ' -f1)"
{stat}
"#,
            detect = netfile::DETECT_TOOL,
            target = quote(&target),
            fetch = netfile::fetch_snippet(false),
            accept = if accept_any { 1 } else { 0 },
            place = netfile::place_snippet(args.bool("backup")),
            attr = netfile::attr_function(args)?,
            stat = stat_snippet("d", false),
        );
        let out = ctx.sh_in(&script, Some(&tool_input(&tool, &req)?)).await?;
        if out.rc != 0 {
            let err = out.stderr_str();
            return Err(ModError::fail(if err.trim().is_empty() {
                format!("download failed (rc={})", out.rc)
            } else {
                err.trim().to_string()
            }));
        }
        let p = Printed::parse(&out.stdout, &["HDR"]);
        let f = netfile::parse_fetched(&p);
        let hdr =
            String::from_utf8_lossy(p.blocks.get("HDR").map(Vec::as_slice).unwrap_or_default())
                .into_owned();
        let (code, reason, headers) = netfile::parse_headers(&hdr);
        let elapsed = f.seconds as i64;
        o = o.with("elapsed", elapsed);
        if f.status == -1 {
            let mut data = o.data.clone();
            data.insert("status_code".into(), Value::from(-1));
            return Err(ModError::Failed {
                msg: format!("Request failed: {}", f.error),
                data,
            });
        }
        let status = if f.status == 0 && accept_any {
            200
        } else {
            f.status
        };
        if status != 200 && !accept_any {
            let mut data = o.data.clone();
            data.insert("status_code".into(), Value::from(status));
            data.insert(
                "response".into(),
                Value::from(netfile::status_msg(code, &reason, &headers)),
            );
            return Err(ModError::Failed {
                msg: "Request failed".into(),
                data,
            });
        }
        let (src_sum, size) = p
            .get("SRC")
            .and_then(|s| s.split_once('|'))
            .map(|(a, b)| (a.to_string(), b.trim().parse::<u64>().unwrap_or(0)))
            .unwrap_or_default();
        o = o
            .with("status_code", status)
            .with("checksum_src", src_sum)
            .with("size", size);
        o = o.with(
            "checksum_dest",
            p.get("DEST")
                .map(|s| Value::from(s.to_string()))
                .unwrap_or(Value::Null),
        );
        if p.has("MISMATCH") {
            let (_, want) = expected.unwrap_or_default();
            let got = p.get("DG").unwrap_or_default();
            return Err(ModError::Failed {
                msg: format!("The checksum for {target} did not match {want}; it was {got}."),
                data: o.data,
            });
        }
        o.changed = p.get("PLACE") == Some("new") || !p.all("ATTR").is_empty();
        if let Some(b) = p.get("BACKUP") {
            o = o.with("backup_file", b.to_string());
        }
        if let Some(m) = p.get("MD5") {
            o = o.with("md5sum", m.to_string());
        }
        let fin = util::parse_stat(&out.stdout_str());
        o = with_file_facts(o, &fin);
        let msg = if headers.is_empty() {
            format!("OK ({size} bytes)")
        } else {
            netfile::status_msg(code, &reason, &headers)
        };
        Ok(o.msg(msg))
    }
}

/// The file is already right; only its attributes may need fixing.
async fn keep_existing(
    args: &Args,
    ctx: &Ctx<'_>,
    mut o: Outcome,
    target: &str,
    st: &util::RStat,
) -> ModResult {
    let fixes = super::file::attr_fixes(args, target, st, false)?;
    o = with_file_facts(o, st);
    if fixes.is_empty() {
        return Ok(o.msg("file already exists"));
    }
    o.changed = true;
    if !ctx.check_mode {
        let script = format!(
            "{}ferry_attr {}",
            netfile::attr_function(args)?,
            quote(target)
        );
        let out = ctx.sh(&script).await?;
        if out.rc != 0 {
            return Err(ModError::fail(out.stderr_str().trim().to_string()));
        }
        o.changed = out.stdout_str().contains("ATTR|");
        let st = util::stat(ctx, target, false).await?;
        o = with_file_facts(o, &st);
    }
    Ok(o.msg("file already exists but file attributes changed"))
}

fn with_file_facts(o: Outcome, st: &util::RStat) -> Outcome {
    if !st.exists {
        return o;
    }
    o.with("state", "file")
        .with("mode", format!("{:04o}", st.mode & 0o7777))
        .with("owner", st.owner.clone())
        .with("group", st.group.clone())
        .with("uid", st.uid)
        .with("gid", st.gid)
        .with("size", st.size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{field, TestEnv};
    use serde_json::json;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// A tiny HTTP/1.0 server on the controller's loopback for local tests:
    /// serves `files` by path, `401` on /private without the right Basic auth.
    pub struct Server {
        pub port: u16,
        pub hits: Arc<Mutex<Vec<String>>>,
    }

    pub fn serve(files: Vec<(&'static str, Vec<u8>)>) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let hits = Arc::new(Mutex::new(Vec::new()));
        let h2 = hits.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut first = String::new();
                if r.read_line(&mut first).is_err() {
                    continue;
                }
                let mut auth = String::new();
                let mut len = 0usize;
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).unwrap_or(0) == 0 || l.trim().is_empty() {
                        break;
                    }
                    let low = l.to_lowercase();
                    if low.starts_with("authorization:") {
                        auth = l.trim().to_string();
                    }
                    if let Some(v) = low.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                let _ = r.read_exact(&mut body);
                let mut parts = first.split_whitespace();
                let method = parts.next().unwrap_or("").to_string();
                let path = parts.next().unwrap_or("").to_string();
                h2.lock().unwrap().push(format!("{method} {path} {auth}"));
                let resp: Vec<u8> = if path.starts_with("/private")
                    && auth != "Authorization: Basic dTpzM2NyZXQ="
                {
                    b"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n".to_vec()
                } else if let Some((_, data)) = files
                    .iter()
                    .find(|(p, _)| *p == path.trim_start_matches("/private"))
                {
                    let mut v = format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\r\n", data.len()).into_bytes();
                    if method != "HEAD" {
                        v.extend_from_slice(data);
                    }
                    v
                } else {
                    b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()
                };
                let _ = s.write_all(&resp);
            }
        });
        Server { port, hits }
    }

    #[test]
    fn checksum_parsing() {
        assert_eq!(
            parse_checksum("sha256:ABC").unwrap(),
            Some(("sha256".into(), "ABC".into()))
        );
        assert_eq!(parse_checksum("").unwrap(), None);
        assert!(parse_checksum("nocolon").is_err());
        assert!(parse_checksum("whirlpool:ab").is_err());
        assert_eq!(clean_digest("AB\u{200b}cd ").unwrap(), "abcd");
        assert!(clean_digest("xyz").is_err());
        let list = "aaa  other.tgz\nbbb *app.tgz\nccc  ./x.tgz\n";
        assert_eq!(digest_from_list(list, "app.tgz").as_deref(), Some("bbb"));
        assert_eq!(digest_from_list(list, "x.tgz").as_deref(), Some("ccc"));
        assert_eq!(digest_from_list("ddd\n", "any").as_deref(), Some("ddd"));
        assert_eq!(digest_from_list(list, "none"), None);
    }

    fn sha256(b: &[u8]) -> String {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b))
    }

    #[tokio::test]
    async fn downloads_verifies_and_is_idempotent() {
        let data = b"payload v1\n".to_vec();
        let srv = serve(vec![
            ("/f.txt", data.clone()),
            ("/SUMS", format!("{}  f.txt\n", sha256(&data)).into_bytes()),
        ]);
        let env = TestEnv::new();
        let dest = env.path("f.txt");
        let url = format!("http://127.0.0.1:{}/f.txt", srv.port);
        let args = json!({"url": url, "dest": dest, "checksum": format!("sha256:{}", sha256(&data)), "mode": "0640"});
        // Check mode: a HEAD request, nothing written.
        let c = env.check(&GetUrl, args.clone()).await;
        assert!(c.changed);
        assert!(!env.pathbuf("f.txt").exists());
        let o = env.ok(&GetUrl, args.clone()).await;
        assert!(o.changed);
        assert_eq!(env.read("f.txt"), "payload v1\n");
        assert_eq!(field(&o, "status_code"), 200);
        assert_eq!(field(&o, "mode"), "0640");
        assert_eq!(field(&o, "checksum_src"), util::sha1_hex(&data).as_str());
        assert!(field(&o, "checksum_dest").is_null());
        let leftovers: Vec<_> = std::fs::read_dir(env.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".ferry"))
            .collect();
        assert!(leftovers.is_empty());
        // Same checksum: no request at all.
        let before = srv.hits.lock().unwrap().len();
        let o = env.ok(&GetUrl, args.clone()).await;
        assert!(!o.changed);
        assert_eq!(o.msg.as_deref(), Some("file already exists"));
        assert_eq!(srv.hits.lock().unwrap().len(), before);
        // Checksum from a URL, into a directory dest.
        let sub = env.path("d");
        std::fs::create_dir(&sub).unwrap();
        let o = env.ok(&GetUrl, json!({"url": url, "dest": sub, "checksum": format!("sha256:http://127.0.0.1:{}/SUMS", srv.port)})).await;
        assert!(o.changed);
        assert_eq!(field(&o, "dest"), format!("{sub}/f.txt").as_str());
        // Wrong checksum: fails and leaves the existing file alone.
        let e = env.run(&GetUrl, json!({"url": url, "dest": dest, "checksum": "sha1:0000000000000000000000000000000000000000"})).await.unwrap_err();
        assert!(e.to_string().contains("did not match"), "{e}");
        assert_eq!(env.read("f.txt"), "payload v1\n");
    }

    #[tokio::test]
    async fn force_compares_and_no_force_keeps() {
        let srv = serve(vec![("/a", b"new\n".to_vec())]);
        let env = TestEnv::new();
        let dest = env.write("a", "old\n");
        let url = format!("http://127.0.0.1:{}/a", srv.port);
        let o = env.ok(&GetUrl, json!({"url": url, "dest": dest})).await;
        assert!(!o.changed);
        assert_eq!(env.read("a"), "old\n");
        let o = env
            .ok(
                &GetUrl,
                json!({"url": url, "dest": dest, "force": true, "backup": true}),
            )
            .await;
        assert!(o.changed);
        assert_eq!(env.read("a"), "new\n");
        assert!(field(&o, "backup_file").as_str().unwrap().contains("/a."));
        let o = env
            .ok(&GetUrl, json!({"url": url, "dest": dest, "force": true}))
            .await;
        assert!(!o.changed, "same content must not count as a change");
        let e = env.run(&GetUrl, json!({"url": format!("http://127.0.0.1:{}/missing", srv.port), "dest": env.path("m")})).await.unwrap_err();
        match e {
            ModError::Failed { msg, data } => {
                assert_eq!(msg, "Request failed");
                assert_eq!(data["status_code"], 404);
            }
            other => panic!("{other}"),
        }
    }

    #[tokio::test]
    async fn credentials_are_not_in_argv() {
        let srv = serve(vec![("/s", b"secret data".to_vec())]);
        let env = TestEnv::new();
        let rec = crate::connection::recording::Recording::new();
        rec.on("TOOL|", 0, "TOOL|curl\nTARGET|/x/s\nSTAT|absent\n");
        let (t, sc) = (
            crate::template::Templar::new(),
            crate::template::Scope::new(),
        );
        let ctx = crate::modules::testutil::ctx_on(&rec, &t, &sc, false, false);
        let args = SPEC.validate(json!({"url": "http://h/s", "dest": "/x/s", "url_username": "u", "url_password": "s3cret", "force_basic_auth": true}).as_object().unwrap().clone()).unwrap();
        let _ = GetUrl.run(&args, &ctx).await;
        assert!(rec.scripts().iter().all(|s| !s.contains("s3cret")));
        let stdins = rec.stdins.lock().unwrap().clone();
        assert!(stdins
            .iter()
            .flatten()
            .any(|s| String::from_utf8_lossy(s).contains("user = \"u:s3cret\"")));
        // And for real: Basic auth works through the config.
        let o = env.ok(&GetUrl, json!({"url": format!("http://127.0.0.1:{}/private/s", srv.port), "dest": env.path("s"), "url_username": "u", "url_password": "s3cret", "force_basic_auth": true})).await;
        assert!(o.changed);
        assert_eq!(env.read("s"), "secret data");
    }

    #[tokio::test]
    async fn wget_when_no_curl() {
        let srv = serve(vec![("/w", b"via wget\n".to_vec())]);
        let env = TestEnv::new();
        // A PATH with everything from /usr/bin and /bin except curl.
        let bin = env.pathbuf("bin");
        std::fs::create_dir(&bin).unwrap();
        for d in ["/usr/bin", "/bin"] {
            for e in std::fs::read_dir(d).unwrap().flatten() {
                let n = e.file_name();
                if n != "curl" && !bin.join(&n).exists() {
                    let _ = std::os::unix::fs::symlink(e.path(), bin.join(&n));
                }
            }
        }
        if !bin.join("wget").exists() {
            eprintln!("no wget here; skipping");
            return;
        }
        let mut ctx = env.ctx(false, false);
        ctx.env = vec![("PATH".into(), bin.to_string_lossy().into_owned())];
        let args = SPEC.validate(json!({"url": format!("http://127.0.0.1:{}/private/w", srv.port), "dest": env.path("w"), "url_username": "u", "url_password": "s3cret", "force_basic_auth": true}).as_object().unwrap().clone()).unwrap();
        let o = GetUrl.run(&args, &ctx).await;
        let o = match o {
            Ok(o) => o,
            Err(e) => panic!("{e}"),
        };
        assert!(o.changed);
        assert_eq!(env.read("w"), "via wget\n");
    }
}
