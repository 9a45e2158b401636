//! `uri`: HTTP requests made ON THE TARGET with curl (as Ansible runs `uri`
//! there). Every request option goes to curl as a config on stdin, so
//! passwords and bodies never appear in argv. Returns status, headers
//! (lower-case, `-` → `_`), `content`/`json`, `cookies`, `redirected`...

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::netfile::{self, Printed};
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    mutually_exclusive: &[&["body", "src"]],
    example: "- ansible.builtin.uri:\n    url: http://127.0.0.1:8080/api/health\n    method: POST\n    body_format: json\n    body: {name: web}\n    status_code: [200, 201]\n    return_content: true\n  register: health\n",
    ..ModuleSpec::new("uri", "Interacts with web services (curl on the target).", crate::with_http_params![
        Param::new("url", Kind::Str, "HTTP or HTTPS URL.").required(),
        Param::new("method", Kind::Str, "HTTP method (upper case).").default("GET"),
        Param::new("body", Kind::Raw, "Request body; with body_format json/form-urlencoded a data structure is encoded."),
        Param::new("body_format", Kind::Str, "Serialization of body; sets Content-Type unless given.").default("raw").choices(&["form-urlencoded", "json", "raw", "form-multipart"]),
        Param::new("src", Kind::Path, "File sent as the body (on the controller, or on the target with remote_src)."),
        Param::new("remote_src", Kind::Bool, "src is on the target.").default("no"),
        Param::new("headers", Kind::Dict, "Custom HTTP headers."),
        Param::new("status_code", Kind::List, "Status codes that mean success.").default("200"),
        Param::new("return_content", Kind::Bool, "Return the body as `content`.").default("no"),
        Param::new("dest", Kind::Path, "Save the body to this file (a directory means the URL's file name)."),
        Param::new("creates", Kind::Path, "Skip the request when this path exists."),
        Param::new("removes", Kind::Path, "Skip the request when this path does not exist."),
        Param::new("follow_redirects", Kind::Str, "Follow redirects: safe (GET/HEAD only), all, none.").default("safe").choices(&["all", "no", "none", "safe", "urllib2", "yes"]),
        Param::new("timeout", Kind::Int, "Seconds without progress before the request fails.").default("30"),
        Param::new("url_username", Kind::Str, "User name for HTTP authentication.").aliases(&["user"]),
        Param::new("url_password", Kind::Str, "Password for HTTP authentication (sent on stdin, never in argv).").aliases(&["password"]),
        Param::new("validate_certs", Kind::Bool, "Verify TLS certificates.").default("yes"),
        Param::new("unix_socket", Kind::Path, "Connect through this Unix socket."),
        Param::new("decompress", Kind::Bool, "Accepted for compatibility.").default("yes"),
        Param::new("force", Kind::Bool, "Accepted for compatibility (no effect).").default("no"),
        Param::new("mode", Kind::Mode, "Permissions of dest."),
        Param::new("owner", Kind::Str, "Owner of dest."),
        Param::new("group", Kind::Str, "Group of dest."),
    ])
};

pub struct Uri;

/// `application/x-www-form-urlencoded` like Python's `urlencode(doseq=True)`.
pub fn form_urlencode(body: &Value) -> Result<String, ModError> {
    fn enc(s: &str) -> String {
        let mut o = String::new();
        for b in s.bytes() {
            match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' | b'~' => {
                    o.push(b as char)
                }
                b' ' => o.push('+'),
                b => o.push_str(&format!("%{b:02X}")),
            }
        }
        o
    }
    fn text(v: &Value) -> String {
        match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => {
                if *b {
                    "True".into()
                } else {
                    "False".into()
                }
            }
            other => other.to_string(),
        }
    }
    let pairs: Vec<(String, Value)> = match body {
        Value::String(s) => return Ok(s.clone()),
        Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Value::Array(a) => a
            .iter()
            .map(|p| match p {
                Value::Array(kv) if kv.len() == 2 => Ok((text(&kv[0]), kv[1].clone())),
                _ => Err(ModError::fail(
                    "failed to parse body as form_urlencoded: expected a dict or a list of pairs",
                )),
            })
            .collect::<Result<_, _>>()?,
        Value::Null => Vec::new(),
        _ => {
            return Err(ModError::fail(
                "failed to parse body as form_urlencoded: expected a dict or a list of pairs",
            ))
        }
    };
    let mut out = Vec::new();
    for (k, v) in pairs {
        let vals = match v {
            Value::Array(a) => a,
            Value::Null => Vec::new(),
            other => vec![other],
        };
        for v in vals.iter().filter(|v| !v.is_null()) {
            out.push(format!("{}={}", enc(&k), enc(&text(v))));
        }
    }
    Ok(out.join("&"))
}

/// Python's `repr` of the accepted status list, for the failure message.
fn codes_repr(codes: &[i64]) -> String {
    format!(
        "[{}]",
        codes
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

/// `Set-Cookie` values as a dict and as a `Cookie:` header string.
fn cookies(headers: &[(String, String)]) -> (Map<String, Value>, String) {
    let mut m = Map::new();
    for (k, v) in headers {
        if k.eq_ignore_ascii_case("set-cookie") {
            if let Some((n, val)) = v.split(';').next().and_then(|c| c.split_once('=')) {
                m.insert(n.trim().to_string(), Value::String(val.trim().to_string()));
            }
        }
    }
    let s = m
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join("; ");
    (m, s)
}

/// A `Location` made absolute against the request URL (like Ansible).
fn absolute_location(url: &str, loc: &str) -> String {
    if loc.contains("://") {
        return loc.to_string();
    }
    if loc.starts_with('/') {
        let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
        let host_end = url[scheme_end..]
            .find('/')
            .map(|i| scheme_end + i)
            .unwrap_or(url.len());
        return format!("{}{loc}", &url[..host_end]);
    }
    let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(url);
    format!("{base}/{loc}")
}

fn is_json_type(ct: &str) -> bool {
    let sub = ct
        .split(';')
        .next()
        .unwrap_or("")
        .split('/')
        .nth(1)
        .unwrap_or("")
        .to_lowercase();
    ["text", "json", "javascript"]
        .iter()
        .any(|c| sub.contains(c))
}

#[async_trait]
impl Module for Uri {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let url = args.req_str("url")?.to_string();
        let method = args.str("method").unwrap_or("GET").to_uppercase();
        if method.is_empty() || !method.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(ModError::fail(
                "Parameter 'method' needs to be a single word in uppercase, like GET or POST.",
            ));
        }
        let codes: Vec<i64> = args
            .list("status_code")
            .iter()
            .map(|s| {
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| ModError::fail(format!("status_code: {s} is not an integer")))
            })
            .collect::<Result<_, _>>()?;
        if ctx.check_mode {
            // Ansible's uri does not support check mode: the task is skipped.
            return Ok(Outcome {
                skipped: true,
                ..Outcome::ok()
            }
            .msg("remote module (uri) does not support check mode"));
        }
        let mut req = netfile::base_request(args, &url);
        req.method = method.clone();
        req.follow_redirects = match args.str("follow_redirects").unwrap_or("safe") {
            "all" | "yes" | "urllib2" => true,
            "safe" => method == "GET" || method == "HEAD",
            _ => false,
        };
        let has_ct = req
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
        let format = args.str("body_format").unwrap_or("raw");
        if let Some(body) = args.get("body") {
            match format {
                "json" => {
                    req.body = Some(match body {
                        Value::String(s) => s.clone(),
                        other => serde_json::to_string(other).unwrap_or_default(),
                    });
                    if !has_ct {
                        req.headers
                            .push(("Content-Type".into(), "application/json".into()));
                    }
                }
                "form-urlencoded" => {
                    req.body = Some(form_urlencode(body)?);
                    if !has_ct {
                        req.headers.push((
                            "Content-Type".into(),
                            "application/x-www-form-urlencoded".into(),
                        ));
                    }
                }
                "form-multipart" => {
                    let Value::Object(m) = body else {
                        return Err(ModError::fail(
                            "failed to parse body as form-multipart: expected a dict",
                        ));
                    };
                    for (k, v) in m {
                        match v {
                            Value::String(s) => req.form.push((k.clone(), s.clone())),
                            Value::Number(_) | Value::Bool(_) => req.form.push((k.clone(), v.to_string())),
                            _ => return Err(ModError::fail(format!("form-multipart field '{k}': only text fields are supported by ferry (send files with src)"))),
                        }
                    }
                }
                _ => {
                    req.body = Some(match body {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                }
            }
        }
        // A controller-side src travels after the config on stdin.
        let mut payload: Option<Vec<u8>> = None;
        if let Some(src) = args.str("src") {
            if args.bool("remote_src") {
                req.body_file = Some(src.to_string());
            } else {
                let p = ctx.find_file("files", src).ok_or_else(|| {
                    ModError::fail(format!(
                        "Could not find or access '{src}' on the controller"
                    ))
                })?;
                payload = Some(std::fs::read(&p).map_err(|e| {
                    ModError::fail(format!("Unable to open source file {}: {e}", p.display()))
                })?);
            }
        }
        let config = netfile::curl_config(&req);
        let dest = args.str("dest");
        let return_content = args.bool("return_content");
        let list = codes
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(" ");

        let mut s = String::new();
        if let Some(c) = args.str("creates") {
            s.push_str(&format!(
                "if [ -e {} ]; then echo 'SKIP|C'; exit 0; fi\n",
                quote(c)
            ));
        }
        if let Some(r) = args.str("removes") {
            s.push_str(&format!(
                "if [ ! -e {} ]; then echo 'SKIP|R'; exit 0; fi\n",
                quote(r)
            ));
        }
        s.push_str("command -v curl >/dev/null 2>&1 || { echo 'NOCURL|'; exit 0; }\nwd=$(mktemp -d) || exit 3\ntrap 'rm -rf \"$wd\"' EXIT\nout=\"$wd/body\"; hdr=\"$wd/hdr\"\n");
        match &payload {
            Some(_) => s.push_str(&format!(
                "cfg=$(dd bs=1 count={} 2>/dev/null)\ncat > \"$wd/payload\"\ncfg=\"$cfg\ndata-binary = \\\"@$wd/payload\\\"\"\n",
                config.len()
            )),
            None => s.push_str("cfg=$(cat)\n"),
        }
        if let Some(d) = dest {
            s.push_str(&format!(
                "D={}\nif [ -d \"$D\" ]; then D=\"${{D%/}}\"/{}; fi\nddir=$(dirname -- \"$D\")\n[ -d \"$ddir\" ] || {{ echo \"Destination dir $ddir does not exist\" >&2; exit 2; }}\nout=$(mktemp \"$ddir/.ferry-uri.XXXXXXXX\") || exit 3\ntrap 'rm -rf \"$wd\" \"$out\"' EXIT\n",
                quote(d),
                quote(&netfile::url_filename(&url))
            ));
        }
        s.push_str(
            "w=$(printf '%s\\n' \"$cfg\" | curl -sS -K - -o \"$out\" -D \"$hdr\" -w '%{http_code} %{num_redirects} %{time_total} %{size_download} %{url_effective}' 2>\"$wd/err\"); rc=$?\n\
             printf 'CURL|%s|%s\\n' \"$rc\" \"$(head -c 2000 \"$wd/err\" | tr '\\n' ' ')\"\nprintf 'W|%s\\n' \"$w\"\n\
             [ -f \"$hdr\" ] || : > \"$hdr\"; [ -f \"$out\" ] || : > \"$out\"\n\
             printf 'HDR|%s\\n' \"$(wc -c < \"$hdr\")\"; cat \"$hdr\"\ncode=${w%% *}\n",
        );
        if dest.is_none() || return_content {
            s.push_str("printf 'BODY|%s\\n' \"$(wc -c < \"$out\")\"; cat \"$out\"\n");
        }
        if dest.is_some() {
            s.push_str(&format!(
                "printf 'DEST|%s\\n' \"$D\"\ncase \" {list} \" in *\" $code \"*) ok=1;; *) ok=0;; esac\nif [ \"$rc\" = 0 ] && [ \"$ok\" = 1 ] && [ \"$code\" != 304 ]; then\nt=\"$out\"; d=\"$D\"; sum=$(sha1sum < \"$t\" | cut -d' ' -f1)\n{}{}ferry_attr \"$d\"\nfi\n",
                netfile::place_snippet(false),
                netfile::attr_function(args)?
            ));
        }
        let mut stdin = config.into_bytes();
        if let Some(p) = &payload {
            stdin.extend_from_slice(p);
        }
        let out = ctx.sh_in(&s, Some(&stdin)).await?;
        if out.rc != 0 {
            let e = out.stderr_str();
            return Err(ModError::fail(if e.trim().is_empty() {
                format!("request script failed (rc={})", out.rc)
            } else {
                e.trim().to_string()
            }));
        }
        let p = Printed::parse(&out.stdout, &["HDR", "BODY"]);
        match p.get("SKIP") {
            Some("C") => {
                return Ok(Outcome::ok().with(
                    "stdout",
                    format!(
                        "skipped, since '{}' exists",
                        args.str("creates").unwrap_or_default()
                    ),
                ))
            }
            Some(_) => {
                return Ok(Outcome::ok().with(
                    "stdout",
                    format!(
                        "skipped, since '{}' does not exist",
                        args.str("removes").unwrap_or_default()
                    ),
                ))
            }
            None => {}
        }
        if p.get("NOCURL").is_some() {
            return Err(ModError::fail(
                "uri needs curl on the target: install it (e.g. apt: name=curl)",
            ));
        }
        let f = netfile::parse_fetched(&p);
        let hdr =
            String::from_utf8_lossy(p.blocks.get("HDR").map(Vec::as_slice).unwrap_or_default())
                .into_owned();
        let (code, reason, headers) = netfile::parse_headers(&hdr);
        let status = if f.status == -1 {
            -1
        } else if code != 0 {
            code
        } else {
            f.status
        };

        let mut o = Outcome::ok();
        for (k, v) in netfile::header_map(&headers) {
            o.data.insert(k.replace('-', "_"), v);
        }
        let final_url = if f.url.is_empty() {
            url.clone()
        } else {
            f.url.clone()
        };
        if let Some(Value::String(l)) = o.data.get("location").cloned() {
            o.data.insert(
                "location".into(),
                Value::String(absolute_location(&final_url, &l)),
            );
        }
        let (jar, jar_s) = cookies(&headers);
        o = o
            .with("status", status)
            .with("url", final_url.clone())
            .with("redirected", f.redirects > 0 || final_url != url)
            .with("elapsed", f.seconds as i64)
            .with("cookies", Value::Object(jar))
            .with("cookies_string", jar_s);
        let msg = if status == -1 {
            format!("Request failed: {}", f.error)
        } else {
            netfile::status_msg(code, &reason, &headers)
        };
        if let Some(d) = p.get("DEST") {
            o = o.with("path", d.to_string());
            o.changed = p.get("PLACE") == Some("new") || !p.all("ATTR").is_empty();
        }
        // A HEAD response has no body (curl -I writes the headers there).
        let body = p
            .blocks
            .get("BODY")
            .filter(|_| method != "HEAD")
            .map(|b| String::from_utf8_lossy(b).into_owned());
        let ct = headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if let Some(b) = &body {
            if is_json_type(&ct) {
                if let Ok(j) = serde_json::from_str::<Value>(b) {
                    o = o.with("json", j);
                }
            }
        }
        let ok = codes.contains(&status);
        if return_content || !ok {
            if let Some(b) = body {
                o = o.with("content", b);
            }
        }
        if !ok {
            let msg = format!(
                "Status code was {status} and not {}: {msg}",
                codes_repr(&codes)
            );
            return Err(ModError::Failed { msg, data: o.data });
        }
        Ok(o.msg(msg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{field, TestEnv};
    use serde_json::json;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// An echo server: answers JSON describing the request; /redirect → 302 /landed;
    /// /private needs Basic u:s3cret; /cookie sets two cookies; /gone → 410.
    fn serve() -> (u16, Arc<Mutex<Vec<String>>>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { continue };
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut first = String::new();
                let _ = r.read_line(&mut first);
                let mut hs = Vec::new();
                let mut len = 0usize;
                loop {
                    let mut l = String::new();
                    if r.read_line(&mut l).unwrap_or(0) == 0 || l.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = l.to_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    hs.push(l.trim().to_string());
                }
                let mut body = vec![0u8; len];
                let _ = r.read_exact(&mut body);
                let mut it = first.split_whitespace();
                let (m, path) = (
                    it.next().unwrap_or("").to_string(),
                    it.next().unwrap_or("").to_string(),
                );
                seen2.lock().unwrap().push(format!("{m} {path}"));
                let auth_ok = hs.iter().any(|h| h == "Authorization: Basic dTpzM2NyZXQ=");
                let resp = if path == "/redirect" {
                    "HTTP/1.1 302 Found\r\nLocation: /landed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
                } else if path == "/private" && !auth_ok {
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_string()
                } else if path == "/gone" {
                    "HTTP/1.1 410 Gone\r\nContent-Type: text/plain\r\nContent-Length: 4\r\nConnection: close\r\n\r\ngone".to_string()
                } else {
                    let j = json!({"method": m, "path": path, "body": String::from_utf8_lossy(&body), "headers": hs}).to_string();
                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Thing-Id: 7\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: b=2\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{j}", j.len())
                };
                let _ = s.write_all(resp.as_bytes());
            }
        });
        (port, seen)
    }

    #[test]
    fn encodings() {
        assert_eq!(
            form_urlencode(&json!({"a": "x y", "b": ["1", "2&"]})).unwrap(),
            "a=x+y&b=1&b=2%26"
        );
        assert_eq!(form_urlencode(&json!([["k", "v"]])).unwrap(), "k=v");
        assert_eq!(form_urlencode(&json!("raw=1")).unwrap(), "raw=1");
        assert_eq!(codes_repr(&[200, 201]), "[200, 201]");
        assert_eq!(absolute_location("http://h:1/a/b", "/x"), "http://h:1/x");
        assert_eq!(absolute_location("http://h/a/b", "c"), "http://h/a/c");
        assert!(
            is_json_type("application/json; charset=utf-8")
                && is_json_type("application/vnd.api+json")
                && !is_json_type("text/html")
        );
        let (m, s) = cookies(&[
            ("Set-Cookie".into(), "a=1; Path=/".into()),
            ("set-cookie".into(), "b=2".into()),
        ]);
        assert_eq!((m["a"].as_str(), s.as_str()), (Some("1"), "a=1; b=2"));
    }

    #[tokio::test]
    async fn get_post_json_and_headers() {
        let (port, _) = serve();
        let env = TestEnv::new();
        let base = format!("http://127.0.0.1:{port}");
        let o = env.ok(&Uri, json!({"url": format!("{base}/thing")})).await;
        assert!(!o.changed);
        assert_eq!(field(&o, "status"), 200);
        assert_eq!(field(&o, "json")["method"], "GET");
        assert_eq!(field(&o, "x_thing_id"), "7");
        assert_eq!(field(&o, "content_type"), "application/json");
        assert_eq!(field(&o, "cookies")["b"], "2");
        assert!(
            field(&o, "content").is_null(),
            "content only with return_content"
        );
        assert!(o.msg.as_deref().unwrap().starts_with("OK ("));
        let o = env.ok(&Uri, json!({"url": format!("{base}/api"), "method": "POST", "body_format": "json", "body": {"name": "web", "n": 2}, "status_code": [200, 201], "return_content": true, "headers": {"X-Req": "1"}})).await;
        let j = field(&o, "json");
        assert_eq!(j["method"], "POST");
        assert_eq!(
            serde_json::from_str::<Value>(j["body"].as_str().unwrap()).unwrap(),
            json!({"name": "web", "n": 2})
        );
        let hs: Vec<String> = serde_json::from_value(j["headers"].clone()).unwrap();
        assert!(
            hs.contains(&"Content-Type: application/json".to_string())
                && hs.contains(&"X-Req: 1".to_string()),
            "{hs:?}"
        );
        assert!(field(&o, "content").as_str().unwrap().contains("\"POST\""));
        let o = env.ok(&Uri, json!({"url": format!("{base}/f"), "method": "PUT", "body_format": "form-urlencoded", "body": {"a": "b c"}})).await;
        assert_eq!(field(&o, "json")["method"], "PUT");
        assert_eq!(field(&o, "json")["body"], "a=b+c");
    }

    #[tokio::test]
    async fn redirects_auth_status_and_guards() {
        let (port, seen) = serve();
        let env = TestEnv::new();
        let base = format!("http://127.0.0.1:{port}");
        let o = env
            .ok(&Uri, json!({"url": format!("{base}/redirect")}))
            .await;
        assert_eq!(field(&o, "redirected"), true);
        assert_eq!(field(&o, "url"), format!("{base}/landed").as_str());
        // POST is not followed with the default `safe`.
        let e = env
            .run(
                &Uri,
                json!({"url": format!("{base}/redirect"), "method": "POST", "body": "x"}),
            )
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Status code was 302 and not [200]"),
            "{e}"
        );
        let o = env.ok(&Uri, json!({"url": format!("{base}/redirect"), "method": "POST", "body": "x", "status_code": 302})).await;
        assert_eq!(field(&o, "location"), format!("{base}/landed").as_str());
        // Credentials after a 401 challenge, or at once with force_basic_auth.
        let o = env
            .ok(
                &Uri,
                json!({"url": format!("{base}/private"), "user": "u", "password": "s3cret"}),
            )
            .await;
        assert_eq!(field(&o, "status"), 200);
        env.ok(&Uri, json!({"url": format!("{base}/private"), "url_username": "u", "url_password": "s3cret", "force_basic_auth": true})).await;
        match env
            .run(&Uri, json!({"url": format!("{base}/gone")}))
            .await
            .unwrap_err()
        {
            ModError::Failed { msg, data } => {
                assert_eq!(
                    msg,
                    "Status code was 410 and not [200]: HTTP Error 410: Gone"
                );
                assert_eq!(data["content"], "gone");
                assert_eq!(data["status"], 410);
            }
            other => panic!("{other}"),
        }
        let e = env
            .run(&Uri, json!({"url": "http://127.0.0.1:1/"}))
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("Status code was -1 and not [200]: Request failed:"),
            "{e}"
        );
        // creates/removes skip the request.
        let marker = env.write("m", "");
        let n = seen.lock().unwrap().len();
        let o = env
            .ok(&Uri, json!({"url": format!("{base}/x"), "creates": marker}))
            .await;
        assert_eq!(
            field(&o, "stdout"),
            format!("skipped, since '{marker}' exists").as_str()
        );
        env.ok(
            &Uri,
            json!({"url": format!("{base}/x"), "removes": env.path("nope")}),
        )
        .await;
        assert_eq!(seen.lock().unwrap().len(), n);
        // Check mode: skipped, no request.
        let c = env.check(&Uri, json!({"url": format!("{base}/x")})).await;
        assert!(c.skipped);
        assert_eq!(seen.lock().unwrap().len(), n);
    }

    #[tokio::test]
    async fn dest_and_src() {
        let (port, _) = serve();
        let env = TestEnv::new();
        let base = format!("http://127.0.0.1:{port}");
        let dest = env.path("saved.json");
        let o = env
            .ok(
                &Uri,
                json!({"url": format!("{base}/same"), "dest": dest, "mode": "0600"}),
            )
            .await;
        assert!(o.changed);
        assert_eq!(field(&o, "path"), dest.as_str());
        assert!(env.read("saved.json").contains("\"/same\""));
        let o = env
            .ok(
                &Uri,
                json!({"url": format!("{base}/same"), "dest": dest, "mode": "0600"}),
            )
            .await;
        assert!(!o.changed, "same body, same mode: unchanged");
        // A controller file as the body, after the config on stdin.
        let src = env.write("payload.bin", "line1\nline2 'q' \"d\"\n");
        let o = env
            .ok(
                &Uri,
                json!({"url": format!("{base}/up"), "method": "PUT", "src": src}),
            )
            .await;
        assert_eq!(field(&o, "json")["body"], "line1\nline2 'q' \"d\"\n");
        let o = env.ok(&Uri, json!({"url": format!("{base}/up"), "method": "POST", "src": src, "remote_src": true})).await;
        assert_eq!(field(&o, "json")["body"], "line1\nline2 'q' \"d\"\n");
    }

    #[tokio::test]
    async fn password_stays_out_of_argv() {
        let rec = crate::connection::recording::Recording::new();
        let (t, sc) = (
            crate::template::Templar::new(),
            crate::template::Scope::new(),
        );
        let ctx = crate::modules::testutil::ctx_on(&rec, &t, &sc, false, false);
        let args = SPEC.validate(json!({"url": "http://h/", "user": "u", "password": "pw-XYZ", "body": "token=SECRET", "method": "POST"}).as_object().unwrap().clone()).unwrap();
        let _ = Uri.run(&args, &ctx).await;
        assert!(rec
            .scripts()
            .iter()
            .all(|s| !s.contains("pw-XYZ") && !s.contains("SECRET")));
        let stdin = String::from_utf8(rec.stdins.lock().unwrap()[0].clone().unwrap()).unwrap();
        assert!(
            stdin.contains("user = \"u:pw-XYZ\"") && stdin.contains("data-raw = \"token=SECRET\"")
        );
    }
}
