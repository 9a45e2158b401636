//! `deb822_repository`: apt sources in deb822 format,
//! `/etc/apt/sources.list.d/<name>.sources`, written like Ansible writes
//! them (fields in parameter order, `X-Repolib-Name` for the name).
//!
//! `signed_by` may be a key file on the target (referenced as is), a URL
//! (downloaded on the target into `/etc/apt/keyrings/<name>.asc|.gpg`) or
//! inline key material / fingerprints (embedded in the file). Like Ansible,
//! the cache is not updated: notify an `apt: update_cache=yes` handler.
//! Round trips: one to read (and fetch a URL key), one to write when needed.

use async_trait::async_trait;
use base64::Engine;
use serde_json::Value;

use super::pkgmgr;
use super::util::{self, Place};
use super::{Args, Ctx, Diff, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["ansible.builtin.deb822_repository", "ansible.legacy.deb822_repository"],
    example: "- ansible.builtin.deb822_repository:\n    name: example\n    uris: https://example.com/apt\n    suites: bookworm\n    components: main\n    signed_by: /etc/apt/keyrings/example.gpg\n",
    ..ModuleSpec::new(
        "deb822_repository",
        "Add or remove a deb822 apt source (/etc/apt/sources.list.d/<name>.sources).",
        &[
            Param::new("name", Kind::Str, "Name of the repository (X-Repolib-Name; also names the files).").required(),
            Param::new("types", Kind::List, "deb and/or deb-src.").default("deb"),
            Param::new("uris", Kind::List, "Base URIs of the archive."),
            Param::new("suites", Kind::List, "Suites (codenames) or exact paths ending in /."),
            Param::new("components", Kind::List, "Components (main, contrib, ...)."),
            Param::new("signed_by", Kind::Str, "Key file path on the target, URL of a key, or inline armored key / fingerprints."),
            Param::new("architectures", Kind::List, "Architectures to fetch."),
            Param::new("enabled", Kind::Bool, "Enabled: yes/no."),
            Param::new("trusted", Kind::Bool, "Trusted: yes (no signature check)."),
            Param::new("allow_downgrade_to_insecure", Kind::Bool, "Allow-Downgrade-To-Insecure."),
            Param::new("allow_insecure", Kind::Bool, "Allow-Insecure."),
            Param::new("allow_weak", Kind::Bool, "Allow-Weak."),
            Param::new("by_hash", Kind::Bool, "By-Hash."),
            Param::new("check_date", Kind::Bool, "Check-Date."),
            Param::new("check_valid_until", Kind::Bool, "Check-Valid-Until."),
            Param::new("date_max_future", Kind::Int, "Date-Max-Future (seconds)."),
            Param::new("inrelease_path", Kind::Str, "Inrelease-Path."),
            Param::new("languages", Kind::List, "Languages."),
            Param::new("pdiffs", Kind::Bool, "PDiffs."),
            Param::new("targets", Kind::List, "Targets."),
            Param::new("mode", Kind::Mode, "Mode of the .sources file (default 0644)."),
            Param::new("state", Kind::Str, "present or absent.").choices(&["absent", "present"]).default("present"),
            Param::new("install_python_debian", Kind::Bool, "Accepted for compatibility (python-debian is not used).").default("yes"),
        ],
    )
};

pub struct Deb822Repository;

const KEYRINGS: &str = "/etc/apt/keyrings";

/// Ansible's slug: lower case, `_` and spaces to `-`, anything else dropped.
pub fn slug(name: &str) -> String {
    let lower = name.to_lowercase();
    let dashed = regex::Regex::new(r"[_\s]+")
        .expect("re")
        .replace_all(&lower, "-")
        .to_string();
    regex::Regex::new(r"[^a-z0-9-]+")
        .expect("re")
        .replace_all(&dashed, "")
        .to_string()
}

fn field_name(k: &str) -> String {
    match k {
        "name" => "X-Repolib-Name".into(),
        "uris" => "URIs".into(),
        _ => k
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join("-"),
    }
}

fn multiline(v: &str) -> String {
    let body: Vec<String> = v
        .trim()
        .lines()
        .map(|l| {
            if l.trim().is_empty() {
                ".".to_string()
            } else {
                l.trim().to_string()
            }
        })
        .collect();
    format!(
        "\n{}",
        body.iter()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// The deb822 stanza, fields sorted by parameter name as Ansible does.
pub fn render(args: &Args, signed_by: Option<&str>) -> String {
    let mut keys: Vec<&str> = SPEC
        .params
        .iter()
        .map(|p| p.name)
        .filter(|k| !matches!(*k, "mode" | "state" | "install_python_debian"))
        .collect();
    keys.sort_unstable();
    let mut out = String::new();
    for k in keys {
        let v = match (k, args.get(k)) {
            ("signed_by", _) => match signed_by {
                Some(s) => s.to_string(),
                None => continue,
            },
            (_, None) => continue,
            (_, Some(Value::Bool(b))) => if *b { "yes" } else { "no" }.to_string(),
            (_, Some(Value::Array(_))) => args.list(k).join(" "),
            (_, Some(Value::String(s))) => s.clone(),
            (_, Some(other)) => other.to_string(),
        };
        let v = if v.contains('\n') { multiline(&v) } else { v };
        if v.is_empty() || v.starts_with('\n') {
            out.push_str(&format!("{}:{v}\n", field_name(k)));
        } else {
            out.push_str(&format!("{}: {v}\n", field_name(k)));
        }
    }
    out
}

#[async_trait]
impl Module for Deb822Repository {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let name = args.req_str("name")?;
        let slug = slug(name);
        if slug.is_empty() {
            return Err(ModError::fail(format!(
                "name {name:?} gives an empty file name"
            )));
        }
        let dest = format!("/etc/apt/sources.list.d/{slug}.sources");
        let key_base = format!("{KEYRINGS}/{slug}");
        if args.str("state") == Some("absent") {
            let script = format!(
                "changed=0; for f in {d} {k}.asc {k}.gpg; do if [ -e \"$f\" ]; then changed=1; {rm}; fi; done; echo \"CHANGED|$changed\"",
                d = quote(&dest),
                k = quote(&key_base),
                rm = if ctx.check_mode { ":" } else { "rm -f -- \"$f\" || exit 1" }
            );
            let out = util::run_ok(ctx, &script).await?;
            let changed = out.stdout_str().contains("CHANGED|1");
            return Ok(Outcome::changed(changed)
                .with("repo", Value::Null)
                .with("dest", dest)
                .with("key_filename", format!("{key_base}.gpg")));
        }
        for t in args.list("types") {
            if t != "deb" && t != "deb-src" {
                return Err(ModError::fail(format!(
                    "value of types must be one or more of: deb, deb-src, got: {t}"
                )));
            }
        }
        for req in ["uris", "suites"] {
            if args.list(req).is_empty() {
                return Err(ModError::fail(format!(
                    "{req} is required when state=present"
                )));
            }
        }
        let want_mode = util::parse_mode(
            args.get("mode").unwrap_or(&Value::from("0644")),
            0o644,
            false,
        )
        .map_err(ModError::fail)?
        .unwrap_or(0o644);

        // Read: the current file and its mode; resolve signed_by (a URL key is fetched and placed).
        let sb = args.str("signed_by");
        let mut s = format!("d={}\n{}\nif [ -f \"$d\" ]; then echo CONTENT-BEGIN; base64 < \"$d\"; echo CONTENT-END; fi\n", quote(&dest), util::stat_snippet("d", false));
        let is_url = sb
            .map(|v| {
                regex::Regex::new(r"^[A-Za-z][A-Za-z0-9+.-]*://")
                    .expect("re")
                    .is_match(v)
            })
            .unwrap_or(false);
        if let Some(v) = sb {
            if is_url {
                s.push_str(&format!(
                    "H=$(mktemp -d); trap 'rm -rf \"$H\"' EXIT; k=\"$H/key\"\n{}\n\
if grep -q -- '-----BEGIN PGP PUBLIC KEY BLOCK-----' \"$k\"; then ext=asc; else ext=gpg; fi\nkf={kb}.$ext\necho \"KEYFILE|$kf\"\n\
if ! cmp -s \"$k\" \"$kf\" || [ \"$(stat -c %a \"$kf\" 2>/dev/null)\" != 644 ]; then echo KEYCHANGED; {w}; fi\n",
                    pkgmgr::download_snippet(v, "k", true),
                    kb = quote(&key_base),
                    w = if ctx.check_mode {
                        ":".to_string()
                    } else {
                        format!("mkdir -p {KEYRINGS} && chmod 0755 {KEYRINGS} && cp -- \"$k\" \"$kf.ferry-tmp\" && chmod 0644 \"$kf.ferry-tmp\" && mv -f -- \"$kf.ferry-tmp\" \"$kf\" || exit 1")
                    }
                ));
            }
        }
        let out = util::run_ok(ctx, &s).await?;
        let text = out.stdout_str();
        let st = util::parse_stat(&text);
        let current = match (text.find("CONTENT-BEGIN\n"), text.find("CONTENT-END")) {
            (Some(a), Some(b)) if b > a => {
                let b64: String = text[a + 14..b].split_whitespace().collect();
                String::from_utf8_lossy(
                    &base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .unwrap_or_default(),
                )
                .into_owned()
            }
            _ => String::new(),
        };
        let key_file = text
            .lines()
            .find_map(|l| l.strip_prefix("KEYFILE|"))
            .map(str::to_string);
        let key_changed = text.lines().any(|l| l == "KEYCHANGED");
        let signed_by: Option<String> = match sb {
            None => None,
            Some(_) if is_url => key_file.clone(),
            Some(v) => Some(v.to_string()),
        };
        let repo = render(args, signed_by.as_deref());
        let content_changed = !st.exists || current != repo;
        let mode_changed = st.exists && st.mode & 0o7777 != want_mode;
        let changed = content_changed || mode_changed || key_changed;
        if !ctx.check_mode {
            if content_changed {
                util::place(
                    ctx,
                    repo.as_bytes(),
                    &Place {
                        dest: &dest,
                        mode: Some(want_mode),
                        ..Place::default()
                    },
                )
                .await?;
            } else if mode_changed {
                util::run_ok(ctx, &format!("chmod {want_mode:o} {}", quote(&dest))).await?;
            }
        }
        let mut o = Outcome::changed(changed)
            .with("repo", repo.clone())
            .with("dest", dest.clone())
            .with(
                "key_filename",
                key_file.map(Value::String).unwrap_or(Value::Null),
            );
        if ctx.diff_mode && content_changed {
            o = o.diff(Diff {
                before: current,
                after: repo,
                before_header: if st.exists {
                    dest.clone()
                } else {
                    "/dev/null".into()
                },
                after_header: dest,
            });
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slugs_and_fields() {
        assert_eq!(slug("My Repo_1!"), "my-repo-1");
        assert_eq!(field_name("signed_by"), "Signed-By");
        assert_eq!(field_name("uris"), "URIs");
        assert_eq!(
            field_name("allow_downgrade_to_insecure"),
            "Allow-Downgrade-To-Insecure"
        );
    }

    #[test]
    fn renders_like_ansible() {
        let a = SPEC
            .validate(
                json!({"name": "example", "uris": "https://example.com/apt", "suites": ["bookworm"], "components": ["main", "contrib"], "trusted": true, "architectures": "amd64"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .unwrap();
        assert_eq!(
            render(&a, Some("/etc/apt/keyrings/example.gpg")),
            "Architectures: amd64\nComponents: main contrib\nX-Repolib-Name: example\nSigned-By: /etc/apt/keyrings/example.gpg\nSuites: bookworm\nTrusted: yes\nTypes: deb\nURIs: https://example.com/apt\n"
        );
        let inline = render(
            &a,
            Some(
                "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nabc\n-----END PGP PUBLIC KEY BLOCK-----\n",
            ),
        );
        assert!(inline.contains("Signed-By:\n    -----BEGIN PGP PUBLIC KEY BLOCK-----\n    .\n    abc\n    -----END PGP PUBLIC KEY BLOCK-----\n"), "{inline}");
    }
}
