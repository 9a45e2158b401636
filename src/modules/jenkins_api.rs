//! Shared by the `jenkins_*` modules: talking to Jenkins' REST API from the
//! target (Ansible runs these modules on the host, where Jenkins usually
//! listens on `http://localhost:8080`), and canonical job XML.
//!
//! Requests run as `curl` in one remote script per round trip. Credentials
//! travel on the script's stdin as a curl config (`curl -K -`), never in argv
//! or on disk. When a batch holds a POST, the script first fetches a CSRF
//! crumb from `/crumbIssuer/api/json` with a cookie jar (Jenkins binds crumbs
//! to the web session) and sends it as a header with every request of the
//! batch. Each response comes back as one line:
//! `@@FERRY-HTTP|<id>|<status>|<b64 Location>|<b64 body>|<b64 curl stderr>`.

use base64::Engine;

use super::{Args, Ctx, Kind, ModError, Param};
use crate::connection::quote;

/// Connection parameters shared by the jenkins modules (Ansible's names).
#[macro_export]
macro_rules! with_jenkins_params {
    ($($p:expr),* $(,)?) => {&[$($p,)*
    $crate::modules::Param::new("url", $crate::modules::Kind::Str, "URL of the Jenkins server (reached from the target).").default("http://localhost:8080"),
    $crate::modules::Param::new("user", $crate::modules::Kind::Str, "User to authenticate with the Jenkins server."),
    $crate::modules::Param::new("password", $crate::modules::Kind::Str, "Password to authenticate with the Jenkins server."),
    $crate::modules::Param::new("token", $crate::modules::Kind::Str, "API token used to authenticate (instead of a password)."),
    $crate::modules::Param::new("validate_certs", $crate::modules::Kind::Bool, "If false, SSL certificates are not validated.").default("yes"),
    ]};
}

/// `timeout` as the jenkins modules declare it.
pub const TIMEOUT: Param = Param::new("timeout", Kind::Int, "Seconds each HTTP request may take.");

/// A request of a batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Req {
    pub method: &'static str,
    /// Path below the server URL, starting with `/`, already URL-encoded.
    pub path: String,
    pub body: Option<Vec<u8>>,
    pub content_type: Option<&'static str>,
}

impl Req {
    pub fn get(path: impl Into<String>) -> Req {
        Req {
            method: "GET",
            path: path.into(),
            body: None,
            content_type: None,
        }
    }
    pub fn post(path: impl Into<String>) -> Req {
        Req {
            method: "POST",
            path: path.into(),
            body: None,
            content_type: None,
        }
    }
    pub fn post_xml(path: impl Into<String>, xml: &str) -> Req {
        Req {
            method: "POST",
            path: path.into(),
            body: Some(xml.as_bytes().to_vec()),
            content_type: Some("text/xml; charset=utf-8"),
        }
    }
    pub fn post_form(path: impl Into<String>, fields: &[(&str, &str)]) -> Req {
        Req {
            method: "POST",
            path: path.into(),
            body: Some(form_encode(fields).into_bytes()),
            content_type: Some("application/x-www-form-urlencoded"),
        }
    }
}

/// A response; `status` 0 when no HTTP answer came (connection refused...).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resp {
    pub status: u16,
    pub location: String,
    pub body: Vec<u8>,
    /// curl's error message, if any.
    pub error: String,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn ok(&self) -> bool {
        (200..400).contains(&self.status)
    }
    pub fn json(&self) -> Result<serde_json::Value, ModError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            ModError::fail(format!(
                "Jenkins answered with invalid JSON ({e}): {}",
                short(&self.text())
            ))
        })
    }
}

/// Where and how to reach Jenkins.
#[derive(Debug, Clone)]
pub struct Jenkins {
    pub url: String,
    pub user: Option<String>,
    secret: Option<String>,
    pub validate_certs: bool,
    pub timeout: u64,
}

impl Jenkins {
    /// From the module's `url`, `user`, `password`/`token`, `validate_certs`
    /// (and `url_username`/`url_password` where the module has them).
    pub fn from_args(args: &Args) -> Result<Jenkins, ModError> {
        let user = args
            .str("user")
            .or(args.str("url_username"))
            .map(str::to_string);
        let secret = args
            .str("token")
            .or(args.str("password"))
            .or(args.str("url_password"))
            .map(str::to_string);
        if args.has("token") && args.has("password") {
            return Err(ModError::fail(
                "parameters are mutually exclusive: password|token",
            ));
        }
        for s in [&user, &secret].into_iter().flatten() {
            if s.contains(['\n', '\r', '\0']) {
                return Err(ModError::fail(
                    "user, password and token may not contain line breaks",
                ));
            }
        }
        Ok(Jenkins {
            url: args
                .str("url")
                .unwrap_or("http://localhost:8080")
                .trim_end_matches('/')
                .to_string(),
            user,
            secret,
            validate_certs: args
                .get("validate_certs")
                .map(|_| args.bool("validate_certs"))
                .unwrap_or(true),
            timeout: args.int("timeout").filter(|t| *t > 0).unwrap_or(30) as u64,
        })
    }

    /// The curl config given on stdin: the credentials only.
    pub fn stdin_config(&self) -> String {
        match (&self.user, &self.secret) {
            (Some(u), s) => format!(
                "user = \"{}:{}\"\n",
                curl_escape(u),
                curl_escape(s.as_deref().unwrap_or(""))
            ),
            _ => String::new(),
        }
    }

    /// The remote script for a batch (pure; unit-tested).
    pub fn script(&self, reqs: &[Req]) -> String {
        let mut s = String::from(
            "command -v curl >/dev/null 2>&1 || { echo 'curl is required on the target to talk to Jenkins (install the curl package)' >&2; exit 127; }\n\
             FERRY_CFG=$(cat)\n\
             d=$(mktemp -d) || exit 1\n\
             trap 'rm -rf \"$d\"' EXIT\n",
        );
        s.push_str(&format!("u={}\n", quote(&self.url)));
        s.push_str(&format!(
            "jc() {{ printf '%s\\n' \"$FERRY_CFG\" | curl -K - -sS -b \"$d/cj\" -c \"$d/cj\" -H 'Expect:' --max-time {}{} -o \"$d/out\" -w '%{{http_code}} %{{redirect_url}}' \"$@\" 2>\"$d/err\"; }}\n",
            self.timeout,
            if self.validate_certs { "" } else { " --insecure" }
        ));
        s.push_str(
            "emit() { : > \"$d/out.x\"; [ -f \"$d/out\" ] && cat \"$d/out\" > \"$d/out.x\"; \
             printf '@@FERRY-HTTP|%s|%s|%s|%s|%s\\n' \"$1\" \"${w%% *}\" \"$(printf '%s' \"${w#* }\" | base64 -w0)\" \"$(base64 -w0 < \"$d/out.x\")\" \"$(base64 -w0 < \"$d/err\")\"; rm -f \"$d/out\"; }\n",
        );
        if reqs.iter().any(|r| r.method != "GET") {
            // Jenkins binds crumbs to the session: same cookie jar for all.
            s.push_str(
                "w=$(jc \"$u/crumbIssuer/api/json\")\n\
                 case ${w%% *} in\n\
                 200) f=$(sed -n 's/.*\"crumbRequestField\" *: *\"\\([^\"]*\\)\".*/\\1/p' \"$d/out\"); c=$(sed -n 's/.*\"crumb\" *: *\"\\([^\"]*\\)\".*/\\1/p' \"$d/out\")\n\
                 FERRY_CFG=\"$FERRY_CFG\nheader = \\\"$f: $c\\\"\"; rm -f \"$d/out\" ;;\n\
                 404) rm -f \"$d/out\" ;;\n\
                 *) emit crumb; exit 0 ;;\n\
                 esac\n",
            );
        }
        for (i, r) in reqs.iter().enumerate() {
            let mut args = vec![format!("-X {}", r.method)];
            if let Some(body) = &r.body {
                s.push_str(&format!(
                    "base64 -d > \"$d/b{i}\" <<'FERRY_B64_EOF'\n{}\nFERRY_B64_EOF\n",
                    base64::engine::general_purpose::STANDARD.encode(body)
                ));
                args.push(format!("--data-binary @\"$d/b{i}\""));
            } else if r.method == "POST" {
                args.push("--data-binary ''".into());
            }
            if let Some(ct) = r.content_type {
                args.push(format!("-H {}", quote(&format!("Content-Type: {ct}"))));
            }
            s.push_str(&format!(
                "w=$(jc {} \"$u\"{})\nemit {i}\n",
                args.join(" "),
                quote(&r.path)
            ));
            // Later requests depend on earlier ones: stop at the first failure.
            s.push_str("case ${w%% *} in 000|4*|5*) exit 0 ;; esac\n");
        }
        s
    }

    /// Runs a batch; returns the responses that came (a failed request ends the batch).
    pub async fn run(&self, ctx: &Ctx<'_>, reqs: &[Req]) -> Result<Vec<Resp>, ModError> {
        let out = ctx
            .sh_in(&self.script(reqs), Some(self.stdin_config().as_bytes()))
            .await?;
        if out.rc != 0 {
            return Err(ModError::fail(format!(
                "could not run curl on the target (rc={}): {}",
                out.rc,
                out.stderr_str().trim()
            )));
        }
        let (crumb, resps) = parse_output(&out.stdout_str());
        if let Some(c) = crumb {
            return Err(ModError::fail(self.describe(
                "get a CSRF crumb from",
                "/crumbIssuer/api/json",
                &c,
            )));
        }
        Ok(resps)
    }

    /// Runs a batch and requires every response to be a success (2xx/3xx).
    pub async fn run_ok(
        &self,
        ctx: &Ctx<'_>,
        reqs: &[Req],
        what: &str,
    ) -> Result<Vec<Resp>, ModError> {
        let resps = self.run(ctx, reqs).await?;
        for (i, r) in reqs.iter().enumerate() {
            match resps.get(i) {
                Some(resp) if resp.ok() => {}
                Some(resp) => return Err(ModError::fail(self.describe(what, &r.path, resp))),
                None => {
                    return Err(ModError::fail(format!(
                        "Unable to {what} {}{}: no response",
                        self.url, r.path
                    )))
                }
            }
        }
        Ok(resps)
    }

    /// An error message for a failed request, like Ansible's.
    pub fn describe(&self, what: &str, path: &str, r: &Resp) -> String {
        let url = format!("{}{}", self.url, path);
        match r.status {
            0 => format!(
                "Unable to connect to Jenkins server at {}: {}",
                self.url,
                r.error.trim()
            ),
            401 => format!("Unable to {what} {url}: HTTP 401 (invalid user or password/token)"),
            403 => format!("Unable to {what} {url}: HTTP 403 {}", html_title(&r.text())),
            s => format!("Unable to {what} {url}: HTTP {s} {}", short(&r.text())),
        }
    }
}

/// Splits the script's output into the crumb failure (if any) and the responses.
pub fn parse_output(out: &str) -> (Option<Resp>, Vec<Resp>) {
    let b64 = |s: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .unwrap_or_default()
    };
    let mut crumb = None;
    let mut resps = Vec::new();
    for line in out.lines() {
        let Some(rest) = line.strip_prefix("@@FERRY-HTTP|") else {
            continue;
        };
        let f: Vec<&str> = rest.split('|').collect();
        if f.len() < 5 {
            continue;
        }
        let r = Resp {
            status: f[1].parse().unwrap_or(0),
            location: String::from_utf8_lossy(&b64(f[2])).into_owned(),
            body: b64(f[3]),
            error: String::from_utf8_lossy(&b64(f[4])).into_owned(),
        };
        if f[0] == "crumb" {
            crumb = Some(r);
        } else {
            resps.push(r);
        }
    }
    (crumb, resps)
}

/// `a/b` -> `/job/a/job/b` (python-jenkins' folder convention), URL-encoded.
pub fn job_path(name: &str) -> String {
    name.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| format!("/job/{}", encode(s)))
        .collect()
}

/// The folder part and the short name: `a/b/c` -> (`/job/a/job/b`, `c`).
pub fn split_job(name: &str) -> (String, String) {
    let name = name.trim_matches('/');
    match name.rsplit_once('/') {
        Some((folder, short)) => (job_path(folder), short.to_string()),
        None => (String::new(), name.to_string()),
    }
}

/// Percent-encoding of everything but unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn form_encode(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn curl_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn short(s: &str) -> String {
    let t = html_title(s);
    let t = if t.is_empty() {
        s.trim().to_string()
    } else {
        t
    };
    if t.chars().count() > 300 {
        format!("{}...", t.chars().take(300).collect::<String>())
    } else {
        t
    }
}

/// The first heading or title of an HTML error page (Jenkins' error pages).
fn html_title(s: &str) -> String {
    for tag in ["h2", "title", "h1"] {
        let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
        if let (Some(a), Some(b)) = (s.find(&open), s.find(&close)) {
            if a + open.len() <= b {
                return s[a + open.len()..b].trim().to_string();
            }
        }
    }
    String::new()
}

// ------------------------------------------------------------ job XML

/// Job XML in a canonical, indented form: comments, processing instructions
/// and the XML declaration dropped, whitespace-only text between elements
/// dropped, attributes sorted, line ends normalised, and the `plugin="x@v"`
/// attributes Jenkins adds when it stores a job left out. Two configs with the
/// same canonical form are the same job to Jenkins. Text inside elements
/// (shell steps, descriptions) is kept exactly.
pub fn canonical_xml(xml: &str) -> Result<String, String> {
    let xml = xml.replace("\r\n", "\n");
    // roxmltree accepts only XML 1.0 declarations; Jenkins writes version='1.1'.
    let body = strip_declaration(&xml);
    let doc = roxmltree::Document::parse(body).map_err(|e| format!("invalid XML: {e}"))?;
    let mut out = String::new();
    write_node(doc.root_element(), 0, &mut out);
    Ok(out)
}

fn strip_declaration(xml: &str) -> &str {
    let t = xml.trim_start_matches('\u{feff}').trim_start();
    if t.starts_with("<?xml") {
        if let Some(end) = t.find("?>") {
            return &t[end + 2..];
        }
    }
    t
}

fn qname(n: roxmltree::Node) -> String {
    let tag = n.tag_name();
    match n.lookup_prefix(tag.namespace().unwrap_or("")) {
        Some(p) if !p.is_empty() && tag.namespace().is_some() => format!("{p}:{}", tag.name()),
        _ => tag.name().to_string(),
    }
}

fn write_node(n: roxmltree::Node, depth: usize, out: &mut String) {
    let pad = "  ".repeat(depth);
    let mut attrs: Vec<(String, String)> = n
        .attributes()
        .filter(|a| a.name() != "plugin" || a.namespace().is_some())
        .map(|a| (a.name().to_string(), a.value().to_string()))
        .collect();
    attrs.sort();
    let attrs: String = attrs
        .iter()
        .map(|(k, v)| format!(" {k}=\"{}\"", esc(v, true)))
        .collect();
    let name = qname(n);
    let kids: Vec<roxmltree::Node> = n
        .children()
        .filter(|c| c.is_element() || (c.is_text() && !c.text().unwrap_or("").trim().is_empty()))
        .collect();
    if kids.is_empty() {
        out.push_str(&format!("{pad}<{name}{attrs}/>\n"));
    } else if kids.iter().all(|c| c.is_text()) {
        let text: String = n
            .children()
            .filter(|c| c.is_text())
            .map(|c| c.text().unwrap_or(""))
            .collect();
        out.push_str(&format!(
            "{pad}<{name}{attrs}>{}</{name}>\n",
            esc(&text, false)
        ));
    } else {
        out.push_str(&format!("{pad}<{name}{attrs}>\n"));
        for c in kids {
            if c.is_element() {
                write_node(c, depth + 1, out);
            } else {
                out.push_str(&format!(
                    "{pad}  {}\n",
                    esc(c.text().unwrap_or("").trim(), false)
                ));
            }
        }
        out.push_str(&format!("{pad}</{name}>\n"));
    }
}

fn esc(s: &str, attr: bool) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' if attr => o.push_str("&quot;"),
            '\n' if attr => o.push_str("&#10;"),
            c => o.push(c),
        }
    }
    o
}

/// Whether a job XML says `<disabled>true</disabled>` at its top level.
pub fn xml_disabled(xml: &str) -> Option<bool> {
    let xml = xml.replace("\r\n", "\n");
    let doc = roxmltree::Document::parse(strip_declaration(&xml)).ok()?;
    let d = doc
        .root_element()
        .children()
        .find(|c| c.has_tag_name("disabled"))?;
    Some(d.text().unwrap_or("").trim() == "true")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use crate::modules::testutil::ctx_on;
    use crate::template::{Scope, Templar};
    use serde_json::json;

    #[test]
    fn canonical_ignores_layout_order_and_plugin_attrs() {
        let a = "<?xml version='1.1' encoding='UTF-8'?>\n<project>\n  <!-- made by hand -->\n  <scm class=\"hudson.plugins.git.GitSCM\" plugin=\"git@5.2.1\">\n    <url>https://x/y.git</url>\n  </scm>\n  <builders><hudson.tasks.Shell><command>echo a\n  echo b</command></hudson.tasks.Shell></builders>\n</project>\n";
        let b = "<project><scm plugin='git@4.0' class='hudson.plugins.git.GitSCM'><url>https://x/y.git</url></scm>\r\n<builders>\n<hudson.tasks.Shell>\n<command>echo a\n  echo b</command>\n</hudson.tasks.Shell>\n</builders></project>";
        assert_eq!(canonical_xml(a).unwrap(), canonical_xml(b).unwrap());
        assert_eq!(
            canonical_xml(b).unwrap(),
            "<project>\n  <scm class=\"hudson.plugins.git.GitSCM\">\n    <url>https://x/y.git</url>\n  </scm>\n  <builders>\n    <hudson.tasks.Shell>\n      <command>echo a\n  echo b</command>\n    </hudson.tasks.Shell>\n  </builders>\n</project>\n"
        );
        // Text inside elements is significant.
        let c = b.replace("echo b", "echo  b");
        assert_ne!(canonical_xml(b).unwrap(), canonical_xml(&c).unwrap());
        // Other attributes are significant, whatever their order.
        assert_ne!(
            canonical_xml("<a x='1'/>").unwrap(),
            canonical_xml("<a x='2'/>").unwrap()
        );
        assert_eq!(
            canonical_xml("<a x='1' y='2'/>").unwrap(),
            canonical_xml("<a y=\"2\"  x=\"1\"></a>").unwrap()
        );
        // Entities and CDATA read as the text they stand for.
        assert_eq!(
            canonical_xml("<c>a &amp;&amp; b</c>").unwrap(),
            canonical_xml("<c><![CDATA[a && b]]></c>").unwrap()
        );
        assert!(canonical_xml("<project><x></project>")
            .unwrap_err()
            .starts_with("invalid XML"));
        assert_eq!(
            xml_disabled("<project><disabled>true</disabled></project>"),
            Some(true)
        );
        assert_eq!(
            xml_disabled("<project><a><disabled>true</disabled></a></project>"),
            None
        );
    }

    #[test]
    fn paths_and_encoding() {
        assert_eq!(job_path("a/b c"), "/job/a/job/b%20c");
        assert_eq!(split_job("a/b/c"), ("/job/a/job/b".into(), "c".into()));
        assert_eq!(split_job("train-lda"), (String::new(), "train-lda".into()));
        assert_eq!(
            form_encode(&[("script", "println \"x&y\"")]),
            "script=println%20%22x%26y%22"
        );
    }

    fn jenkins(v: serde_json::Value) -> Jenkins {
        static P: &[Param] = crate::with_jenkins_params![TIMEOUT];
        static S: super::super::ModuleSpec = super::super::ModuleSpec::new("t", "t", P);
        Jenkins::from_args(&S.validate(v.as_object().unwrap().clone()).unwrap()).unwrap()
    }

    #[test]
    fn credentials_only_on_stdin() {
        let j = jenkins(
            json!({"user": "admin", "password": "p\"w $(x)", "url": "http://localhost:8080/"}),
        );
        assert_eq!(j.stdin_config(), "user = \"admin:p\\\"w $(x)\"\n");
        let s = j.script(&[
            Req::get("/job/x/config.xml"),
            Req::post_xml("/createItem?name=x", "<project/>"),
        ]);
        assert!(!s.contains("admin") && !s.contains("p\"w"), "{s}");
        assert!(s.contains("u=http://localhost:8080\n"));
        assert!(s.contains("curl -K - "));
        // The crumb comes first (a POST is in the batch) and rides in the config.
        let crumb = s.find("/crumbIssuer/api/json").unwrap();
        assert!(crumb < s.find("createItem").unwrap());
        assert!(s.contains("header = "));
        // No POST, no crumb.
        assert!(!j.script(&[Req::get("/api/json")]).contains("crumbIssuer"));
        let t = jenkins(json!({"user": "u", "token": "t", "validate_certs": false}));
        assert_eq!(t.stdin_config(), "user = \"u:t\"\n");
        assert!(t.script(&[Req::get("/")]).contains("--insecure"));
    }

    fn line(id: &str, status: &str, loc: &str, body: &str, err: &str) -> String {
        let e = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        format!(
            "@@FERRY-HTTP|{id}|{status}|{}|{}|{}\n",
            e(loc),
            e(body),
            e(err)
        )
    }

    #[test]
    fn output_parsing() {
        let out = format!(
            "noise\n{}{}",
            line("0", "200", "", "<project/>", ""),
            line("1", "404", "", "<h2>HTTP ERROR 404 Not Found</h2>", "")
        );
        let (crumb, r) = parse_output(&out);
        assert!(crumb.is_none());
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].status, r[0].text().as_str()), (200, "<project/>"));
        assert!(!r[1].ok());
        let (crumb, r) = parse_output(&line("crumb", "401", "", "", ""));
        assert_eq!(crumb.unwrap().status, 401);
        assert!(r.is_empty());
    }

    #[tokio::test]
    async fn crumb_failure_is_reported_against_a_recorded_connection() {
        let rec = Recording::new();
        rec.on(
            "crumbIssuer",
            0,
            &line(
                "crumb",
                "403",
                "",
                "<h2>HTTP ERROR 403 Access Denied</h2>",
                "",
            ),
        );
        let (t, s) = (Templar::new(), Scope::new());
        let ctx = ctx_on(&rec, &t, &s, false, false);
        let j = jenkins(json!({"user": "admin", "password": "pw"}));
        let e = j
            .run(&ctx, &[Req::post("/job/x/disable")])
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("CSRF crumb") && e.contains("403 HTTP ERROR 403 Access Denied"),
            "{e}"
        );
        // The password went on stdin only.
        let stdin = rec.stdins.lock().unwrap()[0].clone().unwrap();
        assert_eq!(String::from_utf8(stdin).unwrap(), "user = \"admin:pw\"\n");
        assert!(!rec.scripts()[0].contains("pw"));
    }

    /// The generated script against a throwaway HTTP responder on this
    /// machine's loopback: the crumb fetched with a session cookie comes back
    /// with the POST, credentials arrive as basic auth.
    #[tokio::test]
    async fn script_runs_curl_with_crumb_and_cookie() {
        use std::io::{BufRead, BufReader, Read, Write};
        if std::process::Command::new("curl")
            .arg("--version")
            .output()
            .is_err()
        {
            eprintln!("skipping: no curl");
            return;
        }
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for _ in 0..2 {
                let (mut s, _) = listener.accept().unwrap();
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut head = String::new();
                let mut len = 0;
                loop {
                    let mut l = String::new();
                    r.read_line(&mut l).unwrap();
                    if l.trim().is_empty() {
                        break;
                    }
                    if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap();
                    }
                    head.push_str(&l);
                }
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                head.push_str(&String::from_utf8_lossy(&body));
                let reply = if head.starts_with("GET /crumbIssuer") {
                    "HTTP/1.1 200 OK\r\nSet-Cookie: JSESSIONID.x=s1; Path=/\r\nContent-Length: 48\r\nConnection: close\r\n\r\n{\"crumb\":\"c-123\",\"crumbRequestField\":\"J-Crumb\"}"
                } else {
                    "HTTP/1.1 302 Found\r\nLocation: http://x/y/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                s.write_all(reply.as_bytes()).unwrap();
                seen.push(head);
            }
            seen
        });
        let env = crate::modules::testutil::TestEnv::new();
        let j = jenkins(
            json!({"user": "admin", "password": "pw", "url": format!("http://127.0.0.1:{port}")}),
        );
        let r = j
            .run(
                &env.ctx(false, false),
                &[Req::post_xml("/job/a/config.xml", "<p>x</p>")],
            )
            .await
            .unwrap();
        assert_eq!((r[0].status, r[0].location.as_str()), (302, "http://x/y/"));
        let seen = server.join().unwrap();
        let post = &seen[1];
        assert!(post.starts_with("POST /job/a/config.xml"), "{post}");
        assert!(
            post.contains("J-Crumb: c-123") && post.contains("JSESSIONID.x=s1"),
            "{post}"
        );
        assert!(
            post.contains("Authorization: Basic YWRtaW46cHc=") && post.ends_with("<p>x</p>"),
            "{post}"
        );
        assert!(post.contains("Content-Type: text/xml; charset=utf-8"));
    }
}
