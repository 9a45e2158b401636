//! `authorized_key` (ansible.posix): keys in `~user/.ssh/authorized_keys`,
//! parsed, merged and written back exactly like the posix module does, in one
//! atomic rename with the user's ownership and mode 0600.

use async_trait::async_trait;
use indexmap::IndexMap;
use serde_json::{json, Value};

use super::sysadmin::{failed, Passwd, Sections};
use super::{Args, Ctx, Diff, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["ansible.posix.authorized_key"],
    example: "- ansible.posix.authorized_key:\n    user: deploy\n    key: \"{{ lookup('file', 'files/deploy.pub') }}\"\n    key_options: 'no-port-forwarding,from=\"10.0.1.1\"'\n",
    ..ModuleSpec::new(
        "authorized_key",
        "Add or remove SSH authorized keys for a user.",
        &[
            Param::new("user", Kind::Str, "The user whose authorized_keys file is edited.").required(),
            Param::new("key", Kind::Str, "The public key(s), one per line, or an http(s) URL fetched on the host.").required(),
            Param::new("path", Kind::Path, "Alternate authorized_keys path (default ~user/.ssh/authorized_keys)."),
            Param::new("manage_dir", Kind::Bool, "Create the key file's directory and set its owner and mode 0700.").default("yes"),
            Param::new("state", Kind::Str, "Whether the key(s) should be in the file.").choices(&["absent", "present"]).default("present"),
            Param::new("key_options", Kind::Str, "SSH key options prepended to the key(s)."),
            Param::new("exclusive", Kind::Bool, "Remove every key not given.").default("no"),
            Param::new("validate_certs", Kind::Bool, "For a URL key: verify TLS certificates.").default("yes"),
            Param::new("comment", Kind::Str, "Replace the key's comment."),
            Param::new("follow", Kind::Bool, "Follow a symlinked key file instead of replacing it.").default("no"),
        ],
    )
};

pub struct AuthorizedKey;

const VALID_TYPES: &[&str] = &[
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "ssh-ed25519",
    "ssh-dss",
    "ssh-rsa",
];

/// Key options in order, with repeats (the posix module's `keydict`).
#[derive(Debug, Clone, Default)]
pub struct Options(pub Vec<(String, Option<String>)>);

impl Options {
    /// Splits on commas outside quotes.
    pub fn parse(s: Option<&str>) -> Options {
        let mut out = Vec::new();
        let Some(s) = s.filter(|s| !s.is_empty()) else {
            return Options(out);
        };
        let re = regex::Regex::new(r#"(?:[^,"']|"[^"]*"|'[^']*')+"#).expect("regex");
        let mut last = 0;
        let mut first = true;
        for m in re.find_iter(s) {
            let sep = &s[last..m.start()];
            if !first && sep != "," {
                out.push((sep.to_string(), None));
            }
            first = false;
            let part = m.as_str();
            match part.split_once('=') {
                Some((k, v)) => out.push((k.to_string(), Some(v.to_string()))),
                None => out.push((part.to_string(), None)),
            }
            last = m.end();
        }
        Options(out)
    }

    fn grouped(&self) -> std::collections::BTreeMap<&str, Vec<Option<&str>>> {
        let mut m: std::collections::BTreeMap<&str, Vec<Option<&str>>> =
            std::collections::BTreeMap::new();
        for (k, v) in &self.0 {
            m.entry(k.as_str()).or_default().push(v.as_deref());
        }
        m
    }

    fn render(&self) -> String {
        if self.0.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            })
            .collect();
        format!("{} ", parts.join(","))
    }
}

impl PartialEq for Options {
    /// Dict equality: the same values per option, whatever the option order.
    fn eq(&self, other: &Self) -> bool {
        self.grouped() == other.grouped()
    }
}

/// One line of the file: a key, or a line kept as is (`ktype` None).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub ktype: Option<String>,
    pub options: Options,
    pub comment: String,
    pub rank: usize,
}

impl Entry {
    fn same(&self, o: &Entry) -> bool {
        self.key == o.key
            && self.ktype == o.ktype
            && self.options == o.options
            && self.comment == o.comment
    }

    fn render(&self) -> String {
        match &self.ktype {
            None => self.key.clone(),
            Some(t) => format!(
                "{}{} {} {}\n",
                self.options.render(),
                t,
                self.key,
                self.comment
            ),
        }
    }
}

/// Parses a key line (None: not a key).
pub fn parse_key(raw: &str, rank: usize) -> Option<Entry> {
    let raw = raw.replace("\\#", "#");
    let parts: Vec<&str> = raw
        .split([' ', '\t', '\r', '\n'])
        .filter(|p| !p.is_empty())
        .collect();
    if parts.first() == Some(&"#") {
        return Some(Entry {
            key: raw.clone(),
            ktype: None,
            options: Options::default(),
            comment: String::new(),
            rank,
        });
    }
    let ti = parts.iter().position(|p| VALID_TYPES.contains(p))?;
    let options = if ti > 0 {
        Some(parts[..ti].join(" "))
    } else {
        None
    };
    let key = parts.get(ti + 1)?.to_string();
    Some(Entry {
        key,
        ktype: Some(parts[ti].to_string()),
        options: Options::parse(options.as_deref()),
        comment: parts[ti + 2..].join(" "),
        rank,
    })
}

/// The file's lines by key (blob, or the whole line for others), later lines winning.
pub fn parse_file(content: &str) -> IndexMap<String, Entry> {
    let mut keys = IndexMap::new();
    for (rank, line) in content.split_inclusive('\n').enumerate() {
        match parse_key(line, rank) {
            Some(e) => {
                keys.insert(e.key.clone(), e);
            }
            None => {
                keys.insert(
                    line.to_string(),
                    Entry {
                        key: line.to_string(),
                        ktype: None,
                        options: Options::default(),
                        comment: String::new(),
                        rank,
                    },
                );
            }
        }
    }
    keys
}

pub fn serialize(keys: &IndexMap<String, Entry>) -> String {
    let mut v: Vec<&Entry> = keys.values().collect();
    v.sort_by_key(|e| e.rank);
    v.iter().map(|e| e.render()).collect()
}

/// The posix module's merge: (new content, whether to write).
pub fn merge(
    existing: &str,
    key: &str,
    present: bool,
    key_options: Option<&str>,
    comment: Option<&str>,
    exclusive: bool,
) -> Result<(String, bool), ModError> {
    let new_keys: Vec<&str> = key
        .lines()
        .filter(|s| !s.is_empty() && !s.starts_with('#'))
        .collect();
    let mut keys = parse_file(existing);
    let max_rank = keys.len();
    let mut to_exist: Vec<String> = Vec::new();
    let mut write = false;
    for (i, nk) in new_keys.iter().enumerate() {
        let Some(mut parsed) = parse_key(nk, i) else {
            return Err(ModError::fail(format!("invalid key specified: {nk}")));
        };
        if let Some(o) = key_options {
            parsed.options = Options::parse(Some(o));
        }
        if let Some(c) = comment {
            parsed.comment = c.to_string();
        }
        let mut matched = false;
        let mut non_matching = false;
        if let Some(cur) = keys.get(&parsed.key) {
            if !parsed.same(cur) && present {
                non_matching = true;
            } else {
                matched = true;
            }
        }
        if present {
            to_exist.push(parsed.key.clone());
            if non_matching && keys.shift_remove(&parsed.key).is_some() {
                write = true;
            }
            if !matched {
                parsed.rank += max_rank;
                keys.insert(parsed.key.clone(), parsed);
                write = true;
            }
        } else if matched {
            keys.shift_remove(&parsed.key);
            write = true;
        }
    }
    if present && exclusive {
        let remove: Vec<String> = keys
            .keys()
            .filter(|k| !to_exist.contains(k))
            .cloned()
            .collect();
        for k in remove {
            keys.shift_remove(&k);
            write = true;
        }
    }
    Ok((serialize(&keys), write))
}

#[async_trait]
impl Module for AuthorizedKey {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let user = args.req_str("user")?;
        let key_param = args.req_str("key")?;
        let path = args.str("path");
        let follow = args.bool("follow");
        let manage_dir = args.bool("manage_dir");
        let present = args.str("state") != Some("absent");
        // One script: the user, the key file (and the URL's keys).
        let mut s = format!(
            "PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"\nferry_u={}\nferry_path={}\n\
             if ferry_pw=$(getent passwd \"$ferry_u\"); then printf '@@PW=%s\\n' \"$ferry_pw\"; fi\n\
             if [ -z \"$ferry_path\" ] && [ -n \"$ferry_pw\" ]; then ferry_path=\"$(printf '%s' \"$ferry_pw\" | cut -d: -f6)/.ssh/authorized_keys\"; fi\n\
             printf '@@KEYFILE=%s\\n' \"$ferry_path\"\n\
             if [ -n \"$ferry_path\" ]; then printf '@@REAL=%s\\n' \"$(readlink -f -- \"$ferry_path\" 2>/dev/null || printf '%s' \"$ferry_path\")\"; fi\n",
            quote(user),
            quote(path.unwrap_or(""))
        );
        let url = key_param.starts_with("http");
        if url {
            let (ck, wk) = if args.bool("validate_certs") {
                ("", "")
            } else {
                (" -k", " --no-check-certificate")
            };
            s.push_str(&format!(
                "echo @@URL\nif command -v curl >/dev/null 2>&1; then curl -fsSL{ck} {u} || echo @@URLFAILED=1; elif command -v wget >/dev/null 2>&1; then wget -qO-{wk} {u} || echo @@URLFAILED=1; else echo @@URLFAILED=1; fi\necho\n",
                u = quote(key_param)
            ));
        }
        s.push_str("if [ -n \"$ferry_path\" ] && [ -f \"$ferry_path\" ]; then echo @@@FILE; cat -- \"$ferry_path\"; fi\n");
        let out = ctx.sh(&s).await?;
        let so = out.stdout_str();
        let sec = Sections::parse(&so);
        let pw = sec.val("PW").and_then(Passwd::parse);
        if pw.is_none() && !(ctx.check_mode && path.is_some()) {
            return Err(ModError::fail(if ctx.check_mode && path.is_none() {
                "Either user must exist or you must provide full path to key file in check mode"
                    .to_string()
            } else {
                format!("Failed to lookup user {user}: getpwnam(): name not found: '{user}'")
            }));
        }
        let keyfile = sec.val("KEYFILE").unwrap_or_default().to_string();
        let target = if follow {
            sec.val("REAL").unwrap_or(&keyfile).to_string()
        } else {
            keyfile.clone()
        };
        let keys = if url {
            if sec.has("URLFAILED") {
                return Err(ModError::fail(format!(
                    "Error getting key from: {key_param}"
                )));
            }
            sec.body("URL").unwrap_or("").to_string()
        } else {
            key_param.to_string()
        };
        let existing = sec.body("FILE").unwrap_or("").to_string();
        let (content, write) = merge(
            &existing,
            &keys,
            present,
            args.str("key_options"),
            args.str("comment"),
            args.bool("exclusive"),
        )?;
        let mut o = Outcome::changed(write);
        if write && ctx.diff_mode {
            o = o.diff(Diff {
                before: existing.clone(),
                after: content.clone(),
                before_header: keyfile.clone(),
                after_header: target.clone(),
            });
        }
        if ctx.check_mode {
            return Ok(o);
        }
        if write {
            let pw = pw.expect("checked above");
            let sshdir = match path {
                None => format!("{}/.ssh", pw.home),
                Some(p) => std::path::Path::new(p)
                    .parent()
                    .map(|d| d.to_string_lossy().into_owned())
                    .unwrap_or_else(|| ".".into()),
            };
            let mut w = format!(
                "set -e\nferry_f={f}\nferry_d=$(dirname -- \"$ferry_f\")\nferry_own={uid}:{gid}\n",
                f = quote(&target),
                uid = pw.uid,
                gid = pw.gid
            );
            if manage_dir {
                w.push_str(&format!("ferry_sd={}\n[ -d \"$ferry_sd\" ] || mkdir -m 700 -- \"$ferry_sd\"\nchown \"$ferry_own\" \"$ferry_sd\"\nchmod 700 \"$ferry_sd\"\n", quote(&sshdir)));
            }
            w.push_str(
                "if [ ! -e \"$ferry_f\" ]; then mkdir -p -- \"$ferry_d\"; : > \"$ferry_f\"; fi\n\
                 chown \"$ferry_own\" \"$ferry_f\" 2>/dev/null || true; chmod 600 \"$ferry_f\" 2>/dev/null || true\n\
                 ferry_tmp=$(mktemp \"$ferry_d/.ferry-tmp.XXXXXXXX\")\ntrap 'rm -f \"$ferry_tmp\"' EXIT\ncat > \"$ferry_tmp\"\n\
                 chown --reference=\"$ferry_f\" \"$ferry_tmp\" 2>/dev/null || chown \"$ferry_own\" \"$ferry_tmp\"\n\
                 chmod --reference=\"$ferry_f\" \"$ferry_tmp\" 2>/dev/null || chmod 600 \"$ferry_tmp\"\n\
                 mv -f -- \"$ferry_tmp\" \"$ferry_f\"\ntrap - EXIT\n",
            );
            let done = ctx.sh_in(&w, Some(content.as_bytes())).await?;
            if done.rc != 0 {
                let err = done.stderr_str();
                return Err(failed(
                    format!("Failed to write {target}: {}", err.trim()),
                    done.rc,
                    &done.stdout_str(),
                    &err,
                ));
            }
        }
        for (k, v) in [
            ("user", json!(user)),
            ("key", json!(key_param)),
            ("path", path.map(Value::from).unwrap_or(Value::Null)),
            ("manage_dir", json!(manage_dir)),
            ("state", json!(if present { "present" } else { "absent" })),
            (
                "key_options",
                args.str("key_options")
                    .map(Value::from)
                    .unwrap_or(Value::Null),
            ),
            ("exclusive", json!(args.bool("exclusive"))),
            (
                "comment",
                args.str("comment").map(Value::from).unwrap_or(Value::Null),
            ),
            ("validate_certs", json!(args.bool("validate_certs"))),
            ("follow", json!(follow)),
            ("keyfile", json!(keyfile)),
        ] {
            o = o.with(k, v);
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ssh-ed25519 AAAAC3NzaA alice@host";
    const B: &str = "ssh-rsa AAAAB3NzaB bob@host";

    #[test]
    fn adds_after_existing_and_is_idempotent() {
        let (c, w) = merge(
            "# keep me\nssh-rsa AAAAold old\n",
            A,
            true,
            None,
            None,
            false,
        )
        .unwrap();
        assert!(w);
        assert_eq!(c, format!("# keep me\nssh-rsa AAAAold old\n{A}\n"));
        let (c2, w2) = merge(&c, A, true, None, None, false).unwrap();
        assert!(!w2);
        assert_eq!(c2, c);
        // No comment: the posix module writes a trailing space.
        assert_eq!(
            merge("", "ssh-rsa AAAAx", true, None, None, false)
                .unwrap()
                .0,
            "ssh-rsa AAAAx \n"
        );
    }

    #[test]
    fn options_comment_exclusive_absent() {
        let (c, _) = merge(
            "",
            &format!("{A}\n{B}"),
            true,
            Some("no-port-forwarding,from=\"10.0.0.1,10.0.0.2\""),
            None,
            false,
        )
        .unwrap();
        assert_eq!(c, format!("no-port-forwarding,from=\"10.0.0.1,10.0.0.2\" {A}\nno-port-forwarding,from=\"10.0.0.1,10.0.0.2\" {B}\n"));
        // Same options in another order are the same key.
        assert!(
            !merge(
                &c,
                A,
                true,
                Some("from=\"10.0.0.1,10.0.0.2\",no-port-forwarding"),
                None,
                false
            )
            .unwrap()
            .1
        );
        // Changed options: replaced and moved after the others.
        let (c2, w) = merge(&c, A, true, None, None, false).unwrap();
        assert!(w);
        assert_eq!(
            c2,
            format!("no-port-forwarding,from=\"10.0.0.1,10.0.0.2\" {B}\n{A}\n")
        );
        // Comment override.
        assert_eq!(
            merge("", A, true, None, Some("deploy key"), false)
                .unwrap()
                .0,
            "ssh-ed25519 AAAAC3NzaA deploy key\n"
        );
        // Exclusive drops everything else (comments too).
        let (c3, _) = merge(&format!("# hi\n{B}\n{A}\n"), A, true, None, None, true).unwrap();
        assert_eq!(c3, format!("{A}\n"));
        // Absent.
        let (c4, w4) = merge(&format!("{B}\n{A}\n"), A, false, None, None, false).unwrap();
        assert!(w4);
        assert_eq!(c4, format!("{B}\n"));
        assert!(!merge(&c4, A, false, None, None, false).unwrap().1);
        assert!(merge("", "not a key", true, None, None, false)
            .unwrap_err()
            .to_string()
            .starts_with("invalid key specified"));
    }

    #[tokio::test]
    async fn writes_with_owner_and_mode_locally() {
        use crate::modules::testutil::TestEnv;
        use serde_json::json;
        use std::os::unix::fs::PermissionsExt;
        let env = TestEnv::new();
        let me = std::process::Command::new("id")
            .arg("-un")
            .output()
            .unwrap();
        let me = String::from_utf8_lossy(&me.stdout).trim().to_string();
        let path = env.path("keys/.ssh/authorized_keys");
        std::fs::create_dir_all(env.pathbuf("keys")).unwrap();
        let args = json!({"user": me, "key": A, "path": path});
        let o = env.check(&AuthorizedKey, args.clone()).await;
        assert!(o.changed);
        assert!(
            !env.pathbuf("keys/.ssh").exists(),
            "check mode wrote nothing"
        );
        let o = env.ok(&AuthorizedKey, args.clone()).await;
        assert!(o.changed);
        assert_eq!(o.data["keyfile"], path.as_str());
        assert_eq!(env.read("keys/.ssh/authorized_keys"), format!("{A}\n"));
        assert_eq!(
            std::fs::metadata(env.pathbuf("keys/.ssh/authorized_keys"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(env.pathbuf("keys/.ssh"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
        assert!(!env.ok(&AuthorizedKey, args).await.changed);
    }
}
