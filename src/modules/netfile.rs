//! Shared by `get_url`, `uri` and `unarchive`: HTTP requests run with curl
//! (or wget) ON THE TARGET, with every option (URL, credentials, headers,
//! body) passed as a config on stdin (`curl -K -`), never in argv; parsing
//! of what the request script prints; placing a downloaded temp file; and
//! setting mode/owner/group with a report of what changed.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{Args, ModError};
use crate::connection::quote;

/// HTTP client parameters `get_url` and `uri` share (Ansible's `url_argument_spec`),
/// after the module's own, then the compatibility file attributes.
#[macro_export]
macro_rules! with_http_params {
    ($($p:expr),* $(,)?) => {$crate::with_compat_attr_params![$($p,)*
    $crate::modules::Param::new("force_basic_auth", $crate::modules::Kind::Bool, "Send Basic credentials with the first request instead of after a 401.").default("no"),
    $crate::modules::Param::new("use_proxy", $crate::modules::Kind::Bool, "Use proxies from the environment.").default("yes"),
    $crate::modules::Param::new("http_agent", $crate::modules::Kind::Str, "User-Agent header.").default("ansible-httpget"),
    $crate::modules::Param::new("client_cert", $crate::modules::Kind::Path, "PEM client certificate."),
    $crate::modules::Param::new("client_key", $crate::modules::Kind::Path, "PEM client key."),
    $crate::modules::Param::new("ca_path", $crate::modules::Kind::Path, "PEM CA bundle to verify the server with."),
    $crate::modules::Param::new("ciphers", $crate::modules::Kind::List, "TLS ciphers to use."),
    $crate::modules::Param::new("use_gssapi", $crate::modules::Kind::Bool, "Use GSSAPI (Negotiate) authentication.").default("no"),
    $crate::modules::Param::new("use_netrc", $crate::modules::Kind::Bool, "Read credentials from ~/.netrc when present.").default("yes"),
    $crate::modules::Param::new("unredirected_headers", $crate::modules::Kind::List, "Accepted; curl already keeps credentials from other hosts on redirects."),
    ]};
}

/// One HTTP request, as modules describe it.
#[derive(Debug, Clone, Default)]
pub struct HttpReq {
    pub url: String,
    /// Upper-case method; `GET` when empty.
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Send credentials on the first request (otherwise only after a 401).
    pub force_basic_auth: bool,
    pub follow_redirects: bool,
    /// Seconds without progress before giving up (and connect timeout).
    pub timeout: Option<i64>,
    pub validate_certs: bool,
    /// Request body sent as is (no `@file` interpretation).
    pub body: Option<String>,
    /// A file on the target sent as the body.
    pub body_file: Option<String>,
    /// `form-multipart` text fields.
    pub form: Vec<(String, String)>,
    pub unix_socket: Option<String>,
    pub client_cert: Option<String>,
    pub client_key: Option<String>,
    pub ca_path: Option<String>,
    pub user_agent: Option<String>,
    pub use_proxy: bool,
    pub use_netrc: bool,
    pub ciphers: Option<String>,
    pub gssapi: bool,
}

/// Quotes a value for a curl config file (`name = "value"`).
pub fn cfg_quote(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '\x0b' => o.push_str("\\v"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// The curl config (read by `curl -K -`) for a request.
pub fn curl_config(r: &HttpReq) -> String {
    let mut c = String::new();
    let mut kv = |k: &str, v: &str| c.push_str(&format!("{k} = {}\n", cfg_quote(v)));
    kv("url", &r.url);
    let method = if r.method.is_empty() {
        "GET"
    } else {
        r.method.as_str()
    };
    let has_body = r.body.is_some() || r.body_file.is_some() || !r.form.is_empty();
    match method {
        "HEAD" => {}
        "GET" if !has_body => {}
        "POST" if has_body => {}
        m => kv("request", m),
    }
    for (k, v) in &r.headers {
        kv("header", &format!("{k}: {v}"));
    }
    if let Some(u) = &r.user {
        kv(
            "user",
            &format!("{u}:{}", r.password.as_deref().unwrap_or("")),
        );
    }
    if let Some(b) = &r.body {
        kv("data-raw", b);
    }
    if let Some(f) = &r.body_file {
        kv("data-binary", &format!("@{f}"));
    }
    for (k, v) in &r.form {
        kv("form-string", &format!("{k}={v}"));
    }
    if let Some(s) = &r.unix_socket {
        kv("unix-socket", s);
    }
    if let Some(s) = &r.client_cert {
        kv("cert", s);
    }
    if let Some(s) = &r.client_key {
        kv("key", s);
    }
    if let Some(s) = &r.ca_path {
        kv("cacert", s);
    }
    if let Some(s) = &r.user_agent {
        kv("user-agent", s);
    }
    if let Some(s) = &r.ciphers {
        kv("ciphers", s);
    }
    if let Some(t) = r.timeout.filter(|t| *t > 0) {
        kv("connect-timeout", &t.to_string());
        kv("speed-time", &t.to_string());
        kv("speed-limit", "1");
    }
    if !r.use_proxy {
        kv("noproxy", "*");
    }
    let mut flags: Vec<&str> = Vec::new();
    if method == "HEAD" {
        flags.push("head");
    }
    if r.follow_redirects {
        flags.push("location");
    }
    if !r.validate_certs {
        flags.push("insecure");
    }
    if r.user.is_some() {
        flags.push(if r.force_basic_auth {
            "basic"
        } else {
            "anyauth"
        });
    }
    if r.gssapi {
        flags.push("negotiate");
    }
    if r.use_netrc {
        flags.push("netrc-optional");
    }
    for f in flags {
        c.push_str(f);
        c.push('\n');
    }
    c
}

/// A wgetrc (read with `wget --config`) for a request; the URL goes on a
/// `#FERRY-URL ` comment line the script moves into an input file.
pub fn wgetrc(r: &HttpReq) -> Result<String, ModError> {
    if r.body.is_some() || r.body_file.is_some() || !r.form.is_empty() || r.unix_socket.is_some() {
        return Err(ModError::fail(
            "this request needs curl on the target (wget cannot send it): install curl",
        ));
    }
    let mut c = String::new();
    let mut line = |k: &str, v: &str| -> Result<(), ModError> {
        if v.contains('\n') || v.contains('\r') {
            return Err(ModError::fail(format!("{k} may not contain a newline")));
        }
        c.push_str(&format!("{k} = {v}\n"));
        Ok(())
    };
    for (k, v) in &r.headers {
        line("header", &format!("{k}: {v}"))?;
    }
    if let Some(u) = &r.user {
        line("user", u)?;
        line("password", r.password.as_deref().unwrap_or(""))?;
        if r.force_basic_auth {
            line("auth_no_challenge", "on")?;
        }
    }
    if !r.validate_certs {
        line("check_certificate", "off")?;
    }
    if let Some(s) = &r.ca_path {
        line("ca_certificate", s)?;
    }
    if let Some(s) = &r.client_cert {
        line("certificate", s)?;
    }
    if let Some(s) = &r.client_key {
        line("private_key", s)?;
    }
    if let Some(s) = &r.user_agent {
        line("user_agent", s)?;
    }
    if let Some(t) = r.timeout.filter(|t| *t > 0) {
        line("timeout", &t.to_string())?;
    }
    if !r.use_proxy {
        line("use_proxy", "off")?;
    }
    line("max_redirect", if r.follow_redirects { "20" } else { "0" })?;
    line("tries", "1")?;
    if r.url.contains('\n') {
        return Err(ModError::fail("url may not contain a newline"));
    }
    c.push_str(&format!("#FERRY-URL {}\n", r.url));
    Ok(c)
}

/// Which downloader the target has: a shell snippet setting `$tool`.
pub const DETECT_TOOL: &str = "if command -v curl >/dev/null 2>&1; then tool=curl; elif command -v wget >/dev/null 2>&1; then tool=wget; else tool=none; fi\n";

/// Shell that fetches `$url_cfg` (read from stdin) into the file `"$out"`,
/// with response headers into `"$hdr"`, for the tool in `$tool`. Prints
/// `CURL|rc|error` and `W|code redirects seconds size url`.
pub fn fetch_snippet(head: bool) -> String {
    let wget_head = if head { "--spider " } else { "" };
    format!(
        r#"if [ "$tool" = curl ]; then
  w=$(curl -sS -K - -o "$out" -D "$hdr" -w '%{{http_code}} %{{num_redirects}} %{{time_total}} %{{size_download}} %{{url_effective}}' 2>"$hdr.err"); rc=$?
else
  cfg=$(mktemp) || exit 3
  chmod 600 "$cfg"; cat > "$cfg"
  sed -n 's/^#FERRY-URL //p' "$cfg" > "$cfg.url"
  wget -nv -S {wget_head}--config="$cfg" -i "$cfg.url" -O "$out" 2>"$hdr.err"; rc=$?
  u=$(cat "$cfg.url"); rm -f "$cfg" "$cfg.url"
  [ -f "$out" ] || : > "$out"
  sed -n 's/^  \(HTTP\/\)/\1/p; s/^  \([A-Za-z0-9-]*:\)/\1/p' "$hdr.err" > "$hdr"
  code=$(sed -n 's/^HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$hdr" | tail -n 1)
  [ $rc -eq 8 ] && rc=0
  w="${{code:-000}} 0 0 $(wc -c < "$out") $u"
fi
printf 'CURL|%s|%s\n' "$rc" "$(grep -v '^  ' "$hdr.err" | head -c 2000 | tr '\n' ' ')"
rm -f "$hdr.err"
printf 'W|%s\n' "$w"
"#
    )
}

/// Lines and length-prefixed blocks (`NAME|len\n<bytes>`) a script printed.
#[derive(Debug, Default)]
pub struct Printed {
    pub lines: Vec<String>,
    pub blocks: BTreeMap<String, Vec<u8>>,
}

impl Printed {
    /// Splits output; `block_names` are the prefixes followed by raw bytes.
    pub fn parse(out: &[u8], block_names: &[&str]) -> Printed {
        let mut p = Printed::default();
        let mut i = 0;
        while i < out.len() {
            let end = out[i..]
                .iter()
                .position(|b| *b == b'\n')
                .map(|e| i + e)
                .unwrap_or(out.len());
            let line = String::from_utf8_lossy(&out[i..end]).into_owned();
            i = end + 1;
            let block = block_names.iter().find_map(|n| {
                line.strip_prefix(n)
                    .and_then(|r| r.strip_prefix('|'))
                    .and_then(|l| l.trim().parse::<usize>().ok())
                    .map(|l| (n, l))
            });
            if let Some((name, len)) = block {
                let stop = (i + len).min(out.len());
                p.blocks
                    .insert(name.to_string(), out[i.min(out.len())..stop].to_vec());
                i = stop;
            } else {
                p.lines.push(line);
            }
        }
        p
    }

    /// The rest of the first line starting with `prefix|`.
    pub fn get(&self, prefix: &str) -> Option<&str> {
        let p = format!("{prefix}|");
        self.lines.iter().find_map(|l| l.strip_prefix(p.as_str()))
    }

    pub fn all(&self, prefix: &str) -> Vec<&str> {
        let p = format!("{prefix}|");
        self.lines
            .iter()
            .filter_map(|l| l.strip_prefix(p.as_str()))
            .collect()
    }

    pub fn has(&self, line: &str) -> bool {
        self.lines.iter().any(|l| l == line)
    }
}

/// What a fetch reported (`CURL|` and `W|` lines).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    /// Tool exit code (curl's; wget's 8 = HTTP error is mapped to 0).
    pub rc: i32,
    pub error: String,
    /// HTTP status; -1 when the request failed.
    pub status: i64,
    pub redirects: i64,
    pub seconds: f64,
    pub size: u64,
    pub url: String,
}

pub fn parse_fetched(p: &Printed) -> Fetched {
    let mut f = Fetched {
        status: -1,
        ..Fetched::default()
    };
    if let Some(c) = p.get("CURL") {
        let (rc, err) = c.split_once('|').unwrap_or((c, ""));
        f.rc = rc.trim().parse().unwrap_or(-1);
        f.error = err.trim().to_string();
    }
    if let Some(w) = p.get("W") {
        let mut it = w.splitn(5, ' ');
        let code: i64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        f.redirects = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        f.seconds = it.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
        f.size = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        f.url = it.next().unwrap_or_default().trim().to_string();
        if f.rc == 0 {
            f.status = code;
        }
    }
    f
}

/// The last response's status line and headers from a `-D` dump (which holds
/// one block per response: redirects, `100 Continue`).
pub fn parse_headers(raw: &str) -> (i64, String, Vec<(String, String)>) {
    let mut blocks: Vec<Vec<&str>> = Vec::new();
    for line in raw.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with("HTTP/") {
            blocks.push(vec![line]);
        } else if !line.is_empty() {
            if let Some(b) = blocks.last_mut() {
                b.push(line);
            }
        }
    }
    let Some(last) = blocks.last() else {
        return (0, String::new(), Vec::new());
    };
    let mut parts = last[0].splitn(3, ' ');
    parts.next();
    let code = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
    let reason = parts.next().unwrap_or_default().trim().to_string();
    let headers = last[1..]
        .iter()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    (
        code,
        if reason.is_empty() {
            reason_phrase(code).to_string()
        } else {
            reason
        },
        headers,
    )
}

/// Standard reason phrases (HTTP/2 status lines carry none).
pub fn reason_phrase(code: i64) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

/// Headers as Ansible returns them: lower-case keys, duplicates joined with ", ".
pub fn header_map(headers: &[(String, String)]) -> Map<String, Value> {
    let mut m: Map<String, Value> = Map::new();
    for (k, v) in headers {
        let k = k.to_lowercase();
        let joined = match m.get(&k).and_then(Value::as_str) {
            Some(old) => format!("{old}, {v}"),
            None => v.clone(),
        };
        m.insert(k, Value::String(joined));
    }
    m
}

/// Ansible's `msg` for a response: `OK (N bytes)` or `HTTP Error N: Reason`.
pub fn status_msg(code: i64, reason: &str, headers: &[(String, String)]) -> String {
    if (200..400).contains(&code) {
        let len = headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.as_str())
            .unwrap_or("unknown");
        format!("OK ({len} bytes)")
    } else {
        format!("HTTP Error {code}: {reason}")
    }
}

/// The file name a URL would be saved under (`index.html` for `/`).
pub fn url_filename(url: &str) -> String {
    let no_frag = url.split('#').next().unwrap_or(url);
    let no_query = no_frag.split('?').next().unwrap_or(no_frag);
    let path = match no_query.split_once("://") {
        Some((_, rest)) => rest.find('/').map(|i| &rest[i..]).unwrap_or(""),
        None => no_query,
    };
    let name = path.rsplit('/').next().unwrap_or("");
    if name.is_empty() {
        "index.html".to_string()
    } else {
        percent_decode(name)
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && s.is_char_boundary(i + 1) && s.is_char_boundary(i + 3)
        {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `mode:` as an argument for chmod (octal digits or a symbolic mode).
pub fn chmod_arg(v: &Value) -> Result<Option<String>, ModError> {
    super::util::parse_mode(v, 0o644, false).map_err(ModError::fail)?;
    Ok(match v {
        Value::Null => None,
        Value::Number(n) => n.as_u64().map(|m| format!("{:o}", m & 0o7777)),
        Value::String(s) if s.trim() == "preserve" => None,
        Value::String(s) => Some(s.trim().to_string()),
        _ => None,
    })
}

/// Shell function `ferry_attr PATH`: applies mode/owner/group from `args`
/// and prints `ATTR|PATH` when something changed. Symlinks keep their mode.
pub fn attr_function(args: &Args) -> Result<String, ModError> {
    let mut body = String::new();
    if let Some(m) = args.get("mode").map(chmod_arg).transpose()?.flatten() {
        body.push_str(&format!(
            "  [ -L \"$1\" ] || chmod -- {} \"$1\" || exit 5\n",
            quote(&m)
        ));
    }
    if let Some(o) = args.str("owner") {
        body.push_str(&format!("  chown -h -- {} \"$1\" || exit 5\n", quote(o)));
    }
    if let Some(g) = args.str("group") {
        body.push_str(&format!("  chgrp -h -- {} \"$1\" || exit 5\n", quote(g)));
    }
    if body.is_empty() {
        return Ok("ferry_attr() { :; }\n".into());
    }
    Ok(format!(
        "ferry_attr() {{\n  [ -e \"$1\" ] || [ -L \"$1\" ] || return 0\n  _b=$(stat -c '%a|%u|%g' -- \"$1\")\n{body}  _a=$(stat -c '%a|%u|%g' -- \"$1\")\n  [ \"$_b\" = \"$_a\" ] || printf 'ATTR|%s\\n' \"$1\"\n}}\n"
    ))
}

/// Shell placing the temp file `"$t"` at `"$d"` unless the content is the
/// same (sha1 in `$sum`): keeps the old file's mode/owner, else the umask's;
/// prints `PLACE|same` or `PLACE|new` and `BACKUP|file` when one was made.
pub fn place_snippet(backup: bool) -> String {
    let b = if backup {
        "    _bk=\"$d.$(date +%Y-%m-%d@%H:%M:%S)~\"; cp -p -- \"$d\" \"$_bk\" && printf 'BACKUP|%s\\n' \"$_bk\"\n"
    } else {
        ""
    };
    format!(
        r#"if [ -f "$d" ] && [ "$(sha1sum < "$d" | cut -d' ' -f1)" = "$sum" ]; then
  rm -f -- "$t"; echo 'PLACE|same'
else
  if [ -e "$d" ]; then
    chmod --reference="$d" "$t"; chown --reference="$d" "$t" 2>/dev/null || true
{b}  else
    _m=$(umask); chmod "$(printf '%o' $(( 0666 & ~_m )))" "$t"
  fi
  mv -f -- "$t" "$d" || exit 6
  echo 'PLACE|new'
fi
"#
    )
}

/// Shell snippet: the hex digest of the file `"$1"` with `algo` (`sha256`...).
pub fn digest_cmd(algo: &str) -> Result<String, ModError> {
    match algo {
        "md5" | "sha1" | "sha224" | "sha256" | "sha384" | "sha512" => Ok(format!("{algo}sum")),
        other => Err(ModError::fail(format!(
            "Unsupported hash algorithm: {other} (use md5, sha1, sha224, sha256, sha384 or sha512)"
        ))),
    }
}

/// A header dict (`headers:`) as pairs, values rendered as text.
pub fn header_pairs(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s.clone(),
                    Value::Bool(b) => {
                        if *b {
                            "True".into()
                        } else {
                            "False".into()
                        }
                    }
                    other => other.to_string(),
                };
                (k.clone(), v)
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Fields common to every request module (Ansible's `url_argument_spec`).
pub fn base_request(args: &Args, url: &str) -> HttpReq {
    HttpReq {
        url: url.to_string(),
        headers: header_pairs(args.get("headers")),
        user: args.str("url_username").map(str::to_string),
        password: args.str("url_password").map(str::to_string),
        force_basic_auth: args.bool("force_basic_auth"),
        follow_redirects: true,
        timeout: args.int("timeout"),
        validate_certs: args
            .get("validate_certs")
            .map(|_| args.bool("validate_certs"))
            .unwrap_or(true),
        user_agent: args.str("http_agent").map(str::to_string),
        use_proxy: args
            .get("use_proxy")
            .map(|_| args.bool("use_proxy"))
            .unwrap_or(true),
        use_netrc: args
            .get("use_netrc")
            .map(|_| args.bool("use_netrc"))
            .unwrap_or(true),
        client_cert: args.str("client_cert").map(str::to_string),
        client_key: args.str("client_key").map(str::to_string),
        ca_path: args.str("ca_path").map(str::to_string),
        ciphers: args
            .get("ciphers")
            .map(|_| args.list("ciphers").join(":"))
            .filter(|s| !s.is_empty()),
        gssapi: args.bool("use_gssapi"),
        ..HttpReq::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_quotes_and_options() {
        let r = HttpReq {
            url: "http://h/x?a=\"b\"".into(),
            method: "PUT".into(),
            headers: vec![("X-T".into(), "a\\b".into())],
            user: Some("u".into()),
            password: Some("p:w\"d".into()),
            body: Some("{\"k\":\n1}".into()),
            follow_redirects: true,
            validate_certs: false,
            timeout: Some(5),
            use_proxy: true,
            ..HttpReq::default()
        };
        let c = curl_config(&r);
        assert!(c.contains("url = \"http://h/x?a=\\\"b\\\"\"\n"), "{c}");
        assert!(c.contains("request = \"PUT\"\n"));
        assert!(c.contains("header = \"X-T: a\\\\b\"\n"));
        assert!(c.contains("user = \"u:p:w\\\"d\"\n"));
        assert!(c.contains("data-raw = \"{\\\"k\\\":\\n1}\"\n"));
        assert!(
            c.contains("\nlocation\n") && c.contains("\ninsecure\n") && c.contains("\nanyauth\n")
        );
        assert!(c.contains("speed-time = \"5\""));
        // GET and POST-with-body need no explicit method; HEAD is a flag.
        let get = curl_config(&HttpReq {
            url: "u".into(),
            method: "GET".into(),
            ..HttpReq::default()
        });
        assert!(!get.contains("request"));
        let head = curl_config(&HttpReq {
            url: "u".into(),
            method: "HEAD".into(),
            ..HttpReq::default()
        });
        assert!(head.contains("\nhead\n") && !head.contains("request"));
    }

    #[test]
    fn curl_reads_our_config() {
        // curl itself must accept the quoting (file:// needs no server).
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a \"q\" b.txt");
        std::fs::write(&f, "hello").unwrap();
        let r = HttpReq {
            url: format!("file://{}", f.display())
                .replace(' ', "%20")
                .replace('"', "%22"),
            validate_certs: true,
            use_proxy: true,
            ..HttpReq::default()
        };
        let mut child = std::process::Command::new("curl")
            .args(["-sS", "-K", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(curl_config(&r).as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello");
    }

    #[test]
    fn wgetrc_lines() {
        let r = HttpReq {
            url: "http://h/f".into(),
            user: Some("u".into()),
            password: Some("p".into()),
            force_basic_auth: true,
            timeout: Some(3),
            ..HttpReq::default()
        };
        let c = wgetrc(&r).unwrap();
        assert!(c.contains("user = u\npassword = p\nauth_no_challenge = on\n"));
        assert!(c.ends_with("#FERRY-URL http://h/f\n"));
        assert!(wgetrc(&HttpReq {
            body: Some("x".into()),
            ..r.clone()
        })
        .is_err());
        assert!(wgetrc(&HttpReq {
            headers: vec![("a".into(), "b\nc".into())],
            ..r
        })
        .is_err());
    }

    #[test]
    fn printed_blocks() {
        let out = b"A|1\nHDR|5\nab\ncdB|x\nBODY|3\n\x00\x01\x02C|y\n";
        let p = Printed::parse(out, &["HDR", "BODY"]);
        assert_eq!(p.blocks["HDR"], b"ab\ncd");
        assert_eq!(p.blocks["BODY"], vec![0, 1, 2]);
        assert_eq!(p.get("A"), Some("1"));
        assert_eq!(p.get("B"), Some("x"));
        assert_eq!(p.get("C"), Some("y"));
    }

    #[test]
    fn fetched_and_headers() {
        let p = Printed::parse(b"CURL|0|\nW|200 1 0.25 12 http://h/final\n", &[]);
        let f = parse_fetched(&p);
        assert_eq!(
            (f.status, f.redirects, f.size, f.url.as_str()),
            (200, 1, 12, "http://h/final")
        );
        let p = Printed::parse(
            b"CURL|7|curl: (7) Failed to connect\nW|000 0 0 0 http://h/\n",
            &[],
        );
        assert_eq!(parse_fetched(&p).status, -1);
        let raw = "HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\nSet-Cookie: a=1\r\nSet-Cookie: b=2\r\n\r\n";
        let (code, reason, h) = parse_headers(raw);
        assert_eq!((code, reason.as_str()), (200, "OK"));
        let m = header_map(&h);
        assert_eq!(m["set-cookie"], "a=1, b=2");
        assert_eq!(m["content-type"], "application/json");
        assert_eq!(parse_headers("HTTP/2 404\r\n\r\n").1, "Not Found");
        assert_eq!(
            status_msg(200, "OK", &[("Content-Length".into(), "4".into())]),
            "OK (4 bytes)"
        );
        assert_eq!(
            status_msg(404, "Not Found", &[]),
            "HTTP Error 404: Not Found"
        );
    }

    #[test]
    fn filenames() {
        assert_eq!(url_filename("http://h/a/b.tar.gz?x=1#f"), "b.tar.gz");
        assert_eq!(url_filename("http://h/"), "index.html");
        assert_eq!(url_filename("http://h"), "index.html");
        assert_eq!(url_filename("http://h/my%20file"), "my file");
    }

    #[test]
    fn attr_function_shell() {
        let env = super::super::testutil::TestEnv::new();
        let f = env.write("f", "x");
        std::fs::set_permissions(&f, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let args = Args {
            map: serde_json::json!({"mode": "0644"})
                .as_object()
                .unwrap()
                .clone(),
        };
        let script = format!(
            "{}ferry_attr {}\nferry_attr {}\n",
            attr_function(&args).unwrap(),
            quote(&f),
            quote(&f)
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .unwrap();
        // Changed the first time only.
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("ATTR|{f}\n"));
        let sym = Args {
            map: serde_json::json!({"mode": "u+x,go-r"})
                .as_object()
                .unwrap()
                .clone(),
        };
        assert!(attr_function(&sym).unwrap().contains("chmod -- u+x,go-r"));
        let bad = Args {
            map: serde_json::json!({"mode": "rwx"})
                .as_object()
                .unwrap()
                .clone(),
        };
        assert!(attr_function(&bad).is_err());
    }
}
