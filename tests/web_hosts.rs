//! `get_url` and `uri` on the Debian test hosts: a small socat-based HTTP
//! responder runs on each host's loopback, and the modules fetch from it ON
//! THE HOST (curl there). `--check` first (nothing written), then for real
//! (changed), then again (changed=0).

mod common;

use common::{lab, on_host};

use std::path::PathBuf;

use common::Project;

const HOSTS: &[&str] = &["lab-1", "lab-3"];
const BASE: &str = "/srv/ferry-web-test";
const PORT: u16 = 18091;

fn project(dir: &std::path::Path, book: &str) -> Project {
    let p = Project::new();
    p.file(
        "inventory.ini",
        &std::fs::read_to_string(dir.join("hosts.ini")).unwrap(),
    );
    p.file("site.yml", book);
    p
}

/// One HTTP/1.0 exchange on stdin/stdout (socat EXEC): static files from www/,
/// /private/* behind Basic auth (u:s3cret), /redirect → /hello.txt,
/// POST /api/items stores the body and answers 201 with JSON.
const SERVE: &str = r#"#!/bin/sh
base=/srv/ferry-web-test
read -r method path proto
len=0; auth=
while IFS= read -r line; do
  line=$(printf '%s' "$line" | tr -d '\r')
  [ -z "$line" ] && break
  case "$line" in
    [Cc]ontent-[Ll]ength:*) len=$(printf '%s' "${line#*:}" | tr -d ' ');;
    [Aa]uthorization:*) auth=${line#*: };;
  esac
done
[ "$len" -gt 0 ] && dd bs=1 count="$len" of="$base/last_body" 2>/dev/null
path=${path%%\?*}
case "$path" in
  *..*) path=/nonexistent;;
  /redirect) printf 'HTTP/1.0 302 Found\r\nLocation: /hello.txt\r\nContent-Length: 0\r\n\r\n'; exit 0;;
  /api/items)
    b="{\"created\": true, \"method\": \"$method\", \"length\": $len}"
    printf 'HTTP/1.0 201 Created\r\nContent-Type: application/json\r\nContent-Length: %s\r\nX-Request-Id: r-42\r\n\r\n%s' "${#b}" "$b"; exit 0;;
  /private/*)
    if [ "$auth" != "Basic dTpzM2NyZXQ=" ]; then printf 'HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm="t"\r\nContent-Length: 0\r\n\r\n'; exit 0; fi
    path=${path#/private};;
esac
f="$base/www$path"
if [ -f "$f" ]; then
  case "$f" in *.json) ct=application/json;; *) ct=text/plain;; esac
  printf 'HTTP/1.0 200 OK\r\nContent-Type: %s\r\nContent-Length: %s\r\n\r\n' "$ct" "$(wc -c < "$f")"
  [ "$method" = HEAD ] || cat "$f"
else
  printf 'HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found'
fi
"#;

/// Stops the responder and removes the test tree, even when the test fails.
struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for h in HOSTS {
            on_host(&self.0, h, &format!("[ -f {BASE}/socat.pid ] && kill $(cat {BASE}/socat.pid) 2>/dev/null; rm -rf {BASE}"));
        }
    }
}

fn setup(dir: &std::path::Path, host: &str) {
    let serve_b64 = base64_encode(SERVE.as_bytes());
    let script = format!(
        r#"set -e
[ -f {BASE}/socat.pid ] && kill $(cat {BASE}/socat.pid) 2>/dev/null || true
rm -rf {BASE}; mkdir -p {BASE}/www {BASE}/out
printf 'hello from {host}\n' > {BASE}/www/hello.txt
head -c 3000 /dev/urandom > {BASE}/www/data.bin
(cd {BASE}/www && sha256sum data.bin hello.txt > SHA256SUMS)
printf 'top secret\n' > {BASE}/www/secret.txt
printf '{{"name": "ferry", "items": [1, 2]}}' > {BASE}/www/app.json
echo {serve_b64} | base64 -d > {BASE}/serve.sh; chmod 755 {BASE}/serve.sh
command -v curl >/dev/null
nohup setsid socat TCP-LISTEN:{PORT},bind=127.0.0.1,fork,reuseaddr EXEC:{BASE}/serve.sh </dev/null >/dev/null 2>&1 &
echo $! > {BASE}/socat.pid
for i in 1 2 3 4 5 6 7 8 9 10; do curl -fsS http://127.0.0.1:{PORT}/hello.txt >/dev/null 2>&1 && break; sleep 0.3; done
curl -fsS http://127.0.0.1:{PORT}/hello.txt
"#
    );
    let out = on_host(dir, host, &script);
    assert_eq!(
        out,
        format!("hello from {host}\n"),
        "responder on {host} did not start"
    );
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in data.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= c.len() {
                s.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[test]
fn get_url_and_uri_on_the_hosts() {
    let Some(dir) = lab() else { return };
    let _cleanup = Cleanup(dir.clone());
    for h in HOSTS {
        setup(&dir, h);
    }
    let book = format!(
        r#"
- hosts: lab-1,lab-3
  gather_facts: false
  become: true
  vars:
    base: {BASE}
    web: http://127.0.0.1:{PORT}
  tasks:
    - name: download with a checksum and a mode
      get_url:
        url: "{{{{ web }}}}/hello.txt"
        dest: "{{{{ base }}}}/out/hello.txt"
        checksum: "sha256:{{{{ lookup_sum }}}}"
        mode: "0640"
      vars:
        lookup_sum: "{{{{ sums[inventory_hostname] }}}}"
      register: g1
    - name: checksum from a checksums URL, into a directory
      ansible.builtin.get_url:
        url: "{{{{ web }}}}/data.bin"
        dest: "{{{{ base }}}}/out/"
        checksum: "sha256:{{{{ web }}}}/SHA256SUMS"
    - name: basic auth (the password never reaches argv)
      get_url:
        url: "{{{{ web }}}}/private/secret.txt"
        dest: "{{{{ base }}}}/out/secret.txt"
        url_username: u
        url_password: s3cret
        force_basic_auth: true
    - name: force compares content
      get_url:
        url: "{{{{ web }}}}/hello.txt"
        dest: "{{{{ base }}}}/out/forced.txt"
        force: true
    - name: GET json
      uri:
        url: "{{{{ web }}}}/app.json"
        return_content: true
      register: r
    - assert:
        that:
          - r.status == 200
          - r.json.name == 'ferry'
          - r.json['items'] | length == 2
          - r.content_type == 'application/json'
          - not r.changed
          - "'ferry' in r.content"
      when: not ansible_check_mode
    - name: POST json
      ansible.builtin.uri:
        url: "{{{{ web }}}}/api/items"
        method: POST
        body_format: json
        body:
          name: web
          port: 8080
        status_code: [200, 201]
        headers:
          X-Trace: t1
      register: p
    - assert:
        that:
          - p.status == 201
          - p.json.created
          - p.x_request_id == 'r-42'
      when: not ansible_check_mode
    - name: follow a redirect
      uri:
        url: "{{{{ web }}}}/redirect"
      register: red
    - assert:
        that:
          - red.redirected
          - red.url.endswith('/hello.txt')
      when: not ansible_check_mode
    - name: an expected 404
      uri:
        url: "{{{{ web }}}}/missing"
        status_code: 404
    - name: save a response
      uri:
        url: "{{{{ web }}}}/hello.txt"
        dest: "{{{{ base }}}}/out/uri-hello.txt"
"#
    );
    let p = project(&dir, &book);
    let mut sums = String::from("sums:\n");
    for h in HOSTS {
        let s = on_host(
            &dir,
            h,
            &format!("sha256sum {BASE}/www/hello.txt | cut -d' ' -f1"),
        );
        sums.push_str(&format!("  {h}: {}\n", s.trim()));
    }
    p.file("group_vars/all.yml", &sums);
    let hosts = HOSTS.join(",");

    let check = p.playbook(
        "site.yml",
        &["-i", "inventory.ini", "-l", &hosts, "--check"],
    );
    check.success();
    for h in HOSTS {
        let r = check.recap(h);
        assert_eq!(
            r.changed, 4,
            "{h}: get_url predicts 4 downloads\n{}",
            check.stdout
        );
        assert_eq!(
            on_host(&dir, h, &format!("ls -A {BASE}/out")),
            "",
            "--check wrote files on {h}"
        );
    }

    let first = p.playbook("site.yml", &["-i", "inventory.ini", "-l", &hosts]);
    first.success();
    for h in HOSTS {
        let r = first.recap(h);
        assert_eq!(
            (r.changed, r.failed),
            (5, 0),
            "{h}: {r:?}\n{}",
            first.stdout
        );
        assert_eq!(
            on_host(&dir, h, &format!("cat {BASE}/out/hello.txt")),
            format!("hello from {h}\n")
        );
        assert_eq!(
            on_host(&dir, h, &format!("stat -c %a {BASE}/out/hello.txt")).trim(),
            "640"
        );
        assert_eq!(
            on_host(
                &dir,
                h,
                &format!("cmp {BASE}/www/data.bin {BASE}/out/data.bin && echo same")
            )
            .trim(),
            "same"
        );
        assert_eq!(
            on_host(&dir, h, &format!("cat {BASE}/out/secret.txt")),
            "top secret\n"
        );
        assert_eq!(
            on_host(&dir, h, &format!("cat {BASE}/out/uri-hello.txt")),
            format!("hello from {h}\n")
        );
        let body: serde_json::Value =
            serde_json::from_str(&on_host(&dir, h, &format!("cat {BASE}/last_body"))).unwrap();
        assert_eq!(body, serde_json::json!({"name": "web", "port": 8080}));
        assert_eq!(
            on_host(&dir, h, &format!("ls -A {BASE}/out | grep -c ferry")).trim(),
            "0",
            "temp files left on {h}"
        );
    }

    let second = p.playbook("site.yml", &["-i", "inventory.ini", "-l", &hosts]);
    second.success();
    for h in HOSTS {
        assert_eq!(second.recap(h).changed, 0, "{h}\n{}", second.stdout);
    }

    // A wrong checksum fails and leaves the existing file alone.
    let bad = project(&dir, &format!("- hosts: lab-1\n  gather_facts: false\n  become: true\n  tasks:\n    - get_url: url=http://127.0.0.1:{PORT}/hello.txt dest={BASE}/out/hello.txt checksum=sha1:0000000000000000000000000000000000000000\n"));
    let out = bad.playbook("site.yml", &["-i", "inventory.ini", "-l", "lab-1"]);
    assert_ne!(out.code, 0);
    out.contains("did not match");
    assert_eq!(
        on_host(&dir, "lab-1", &format!("cat {BASE}/out/hello.txt")),
        "hello from lab-1\n"
    );
}
