//! `apt_key`: OpenPGP keys apt trusts, managed with `gpg` on the target (no
//! `apt-key`, deprecated and gone from newer releases).
//!
//! Keys are merged into a keyring file through a throwaway GNUPGHOME and
//! exported as plain OpenPGP packets ("dearmored"; armored when the keyring
//! ends in `.asc`), the format apt reads in `signed-by` and `trusted.gpg.d`.
//! Without `keyring`, keys go to `/etc/apt/trusted.gpg` (as `apt-key add`
//! did) and presence is checked across it and `/etc/apt/trusted.gpg.d/`.
//! Idempotent by fingerprint: a key already there (by `id`, or every key of
//! the given material) is not added again. One round trip.

use async_trait::async_trait;
use serde_json::Value;

use super::pkgmgr;
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["ansible.builtin.apt_key", "ansible.legacy.apt_key"],
    mutually_exclusive: &[&["data", "file", "keyserver", "url"]],
    example: "- ansible.builtin.apt_key:\n    url: https://example.com/repo/key.asc\n    keyring: /etc/apt/keyrings/example.gpg\n",
    ..ModuleSpec::new(
        "apt_key",
        "Add or remove an apt key (gpg on the target; optionally into its own keyring file).",
        &[
            Param::new("id", Kind::Str, "Key id (8 or 16 hex digits) or fingerprint; makes `present` skip the download when the key is there; required for `absent`."),
            Param::new("data", Kind::Str, "The key itself (armored or binary)."),
            Param::new("file", Kind::Path, "A key file on the target."),
            Param::new("keyring", Kind::Path, "Keyring file to manage (e.g. /etc/apt/keyrings/x.gpg); default /etc/apt/trusted.gpg."),
            Param::new("url", Kind::Str, "URL of the key, downloaded on the target with curl or wget."),
            Param::new("keyserver", Kind::Str, "Keyserver to receive `id` from (gpg --recv-keys)."),
            Param::new("state", Kind::Str, "present or absent.").choices(&["absent", "present"]).default("present"),
            Param::new("validate_certs", Kind::Bool, "Check HTTPS certificates when downloading.").default("yes"),
        ],
    )
};

pub struct AptKey;

const DEFAULT_KEYRING: &str = "/etc/apt/trusted.gpg";

/// `0xABCD1234` → `ABCD1234`; fails on anything but 8, 16 or 40 hex digits.
pub fn normalize_id(id: &str) -> Result<String, ModError> {
    let s = id
        .trim()
        .trim_start_matches("0x")
        .trim_start_matches("0X")
        .replace(' ', "")
        .to_uppercase();
    if matches!(s.len(), 8 | 16 | 40) && s.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(s)
    } else {
        Err(ModError::fail(format!(
            "Invalid key_id: {id} (8, 16 or 40 hex digits expected)"
        )))
    }
}

/// The script: list the keys apt has, fetch the new one, compare, change.
pub fn script(args: &Args, id: Option<&str>, check: bool) -> String {
    let explicit = args.str("keyring");
    let kr = explicit.unwrap_or(DEFAULT_KEYRING);
    let mut s = format!(
        "export LANG=C LC_ALL=C\nkr={kr}\nwant={want}\nH=$(mktemp -d)\ntrap 'rm -rf \"$H\"' EXIT\nexport GNUPGHOME=\"$H/home\"\nmkdir -m 700 \"$GNUPGHOME\"\n\
command -v gpg >/dev/null 2>&1 || {{ echo 'gpg is not installed on the host (apt-get install gnupg)' >&2; exit 86; }}\n\
fprs() {{ gpg --batch --with-colons --show-keys \"$1\" 2>/dev/null | awk -F: '$1==\"pub\"{{p=1;next}} $1==\"fpr\"&&p{{print $10;p=0}}'; }}\n\
if [ -s \"$kr\" ] && ! gpg --batch --show-keys \"$kr\" >/dev/null 2>&1; then echo \"cannot read keyring $kr (not an OpenPGP keyring)\" >&2; exit 85; fi\n\
files=\"$kr\"\n",
        kr = quote(kr),
        want = quote(id.unwrap_or("")),
    );
    if explicit.is_none() {
        s.push_str("for f in /etc/apt/trusted.gpg.d/*.gpg /etc/apt/trusted.gpg.d/*.asc; do [ -f \"$f\" ] && files=\"$files $f\"; done\n");
    }
    s.push_str(
        "have() { for f in $files; do [ -s \"$f\" ] && fprs \"$f\" | sed \"s|^|$f |\"; done; }\n\
have > \"$H/have\"\nawk '{print \"BEFORE|\" $2}' \"$H/have\"\n\
matches() { [ -n \"$want\" ] && grep -q \"$want\\$\" \"$H/have\"; }\n",
    );
    if args.str("state") == Some("absent") {
        s.push_str("matches || { echo 'STATE|ok'; exit 0; }\n");
        if check {
            s.push_str("echo 'STATE|changed'; exit 0\n");
        } else {
            // Rewrite every file holding the key without it (a file left empty goes).
            s.push_str(
                "for f in $(grep \"$want\\$\" \"$H/have\" | awk '{print $1}' | sort -u); do\n\
  rm -rf \"$GNUPGHOME\"; mkdir -m 700 \"$GNUPGHOME\"\n\
  gpg --batch -q --import \"$f\" 2>/dev/null\n\
  for fp in $(grep \"^$f \" \"$H/have\" | awk '{print $2}' | grep \"$want\\$\"); do gpg --batch --yes -q --delete-keys \"$fp\" || exit 87; done\n\
  case \"$f\" in *.asc) arm=--armor;; *) arm=;; esac\n\
  gpg --batch --export $arm > \"$H/out\" || exit 87\n\
  if [ -s \"$H/out\" ]; then cat \"$H/out\" > \"$f.ferry-tmp\" && chmod 0644 \"$f.ferry-tmp\" && mv -f \"$f.ferry-tmp\" \"$f\" || exit 88; else rm -f \"$f\"; fi\n\
done\necho 'STATE|changed'\n",
            );
        }
    } else {
        s.push_str("if matches; then echo 'STATE|ok'; exit 0; fi\n");
        // Get the key material into $H/new.
        if let Some(f) = args.str("file") {
            s.push_str(&format!("cp -- {} \"$H/new\" || exit 89\n", quote(f)));
        } else if args.has("data") {
            s.push_str("cat > \"$H/new\"\n");
        } else if let Some(url) = args.str("url") {
            s.push_str(&pkgmgr::download_snippet(
                url,
                "H/new",
                args.bool("validate_certs"),
            ));
            s.push('\n');
        } else if let Some(ks) = args.str("keyserver") {
            s.push_str(&format!(
                "gpg --batch -q --keyserver {} --recv-keys \"$want\" >&2 || exit 90\ngpg --batch --export \"$want\" > \"$H/new\"\n",
                quote(ks)
            ));
        }
        s.push_str(
            "fprs \"$H/new\" > \"$H/newfp\"\n[ -s \"$H/newfp\" ] || { echo 'no OpenPGP public key found in the given key material' >&2; exit 91; }\n\
sed 's/^/NEW|/' \"$H/newfp\"\n\
if [ -n \"$want\" ] && ! grep -q \"$want\\$\" \"$H/newfp\"; then echo \"the key material does not contain key $want\" >&2; exit 92; fi\n\
missing=0; while read -r fp; do grep -q \" $fp\\$\" \"$H/have\" || missing=1; done < \"$H/newfp\"\n\
[ \"$missing\" = 1 ] || { echo 'STATE|ok'; exit 0; }\n",
        );
        if check {
            s.push_str("echo 'STATE|changed'; exit 0\n");
        } else {
            s.push_str(
                "mkdir -p \"$(dirname -- \"$kr\")\"\n\
if [ -s \"$kr\" ]; then gpg --batch -q --import \"$kr\" 2>/dev/null || exit 93; fi\n\
gpg --batch -q --import \"$H/new\" 2>/dev/null || { echo 'gpg could not import the key' >&2; exit 93; }\n\
case \"$kr\" in *.asc) arm=--armor;; *) arm=;; esac\n\
gpg --batch --export $arm > \"$H/out\" && [ -s \"$H/out\" ] || exit 94\n\
cat \"$H/out\" > \"$kr.ferry-tmp\" && chmod 0644 \"$kr.ferry-tmp\" && mv -f \"$kr.ferry-tmp\" \"$kr\" || exit 95\n\
echo 'STATE|changed'\n",
            );
        }
    }
    s.push_str("have > \"$H/have\"; awk '{print \"AFTER|\" $2}' \"$H/have\"\n");
    s
}

#[async_trait]
impl Module for AptKey {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let id = args.str("id").map(normalize_id).transpose()?;
        let state = args.str("state").unwrap_or("present");
        if state == "absent" && id.is_none() {
            return Err(ModError::fail("id is required when state=absent"));
        }
        if state == "present"
            && !(args.has("data") || args.has("file") || args.has("url") || args.has("keyserver"))
        {
            return Err(ModError::fail(
                "one of data, file, url or keyserver is required when state=present",
            ));
        }
        if args.has("keyserver") && id.is_none() {
            return Err(ModError::fail("keyserver requires id"));
        }
        let script = script(args, id.as_deref(), ctx.check_mode);
        let stdin = args.str("data").map(|d| d.as_bytes().to_vec());
        let out = ctx.sh_in(&script, stdin.as_deref()).await?;
        let so = out.stdout_str();
        if out.rc != 0 {
            let err = out.stderr_str();
            return Err(ModError::fail(if err.trim().is_empty() {
                format!("apt_key failed (rc={})", out.rc)
            } else {
                err.trim().to_string()
            }));
        }
        let pick = |p: &str| -> Vec<Value> {
            let mut v: Vec<String> = so
                .lines()
                .filter_map(|l| l.strip_prefix(p))
                .map(long_id)
                .collect();
            v.dedup();
            v.into_iter().map(Value::String).collect()
        };
        let changed = so.lines().any(|l| l == "STATE|changed");
        let before = pick("BEFORE|");
        let after = if ctx.check_mode || !so.contains("AFTER|") {
            before.clone()
        } else {
            pick("AFTER|")
        };
        let fp = so
            .lines()
            .filter_map(|l| l.strip_prefix("NEW|"))
            .find(|f| id.as_deref().map(|i| f.ends_with(i)).unwrap_or(true))
            .map(str::to_string)
            .or_else(|| id.clone().filter(|i| i.len() == 40));
        let mut o = Outcome::changed(changed)
            .with("before", before)
            .with("after", after);
        if let Some(i) = args.str("id") {
            o = o.with("id", i);
        }
        if let Some(fp) = fp {
            o = o
                .with("key_id", long_id(&fp))
                .with("short_id", fp[fp.len().saturating_sub(8)..].to_string())
                .with("fp", fp);
        } else if let Some(i) = &id {
            o = o
                .with("key_id", i[i.len().saturating_sub(16)..].to_string())
                .with("short_id", i[i.len().saturating_sub(8)..].to_string());
        }
        Ok(o)
    }
}

fn long_id(fp: &str) -> String {
    fp[fp.len().saturating_sub(16)..].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids() {
        assert_eq!(normalize_id("0xabcd1234").unwrap(), "ABCD1234");
        assert_eq!(
            normalize_id("519E31CD9153F82E28E5CB041BC21A68D5D7899A")
                .unwrap()
                .len(),
            40
        );
        assert!(normalize_id("xyz").is_err());
        assert_eq!(
            long_id("519E31CD9153F82E28E5CB041BC21A68D5D7899A"),
            "1BC21A68D5D7899A"
        );
    }

    #[test]
    fn scripts() {
        let a = SPEC
            .validate(
                json!({"url": "https://example.com/k.asc", "keyring": "/etc/apt/keyrings/x.gpg"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .unwrap();
        let s = script(&a, None, false);
        assert!(s.contains("kr=/etc/apt/keyrings/x.gpg"));
        assert!(
            s.contains("curl -fsSL -o \"$H/new\" https://example.com/k.asc"),
            "{s}"
        );
        assert!(!s.contains("trusted.gpg.d"));
        let c = script(&a, None, true);
        assert!(!c.contains("--import \"$H/new\"") && c.contains("STATE|changed'; exit 0"));
        let a = SPEC
            .validate(
                json!({"id": "ABCD1234", "state": "absent"})
                    .as_object()
                    .unwrap()
                    .clone(),
            )
            .unwrap();
        let s = script(&a, Some("ABCD1234"), false);
        assert!(
            s.contains("kr=/etc/apt/trusted.gpg")
                && s.contains("trusted.gpg.d")
                && s.contains("--delete-keys")
        );
    }
}
