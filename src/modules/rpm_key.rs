//! `rpm_key`: GPG keys in the rpm database. One script on the target fetches
//! the key (URL with curl/wget, or a path), reads its id and fingerprint with
//! gpg, checks `rpm -q gpg-pubkey-<id>` and imports or erases it.
//! Red Hat only: tested with the recording connection and a RHEL 9 facts
//! fixture (no Red Hat host runs in ferry's test lab).

use async_trait::async_trait;

use super::pkgmgr;
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    aliases: &["ansible.builtin.rpm_key", "ansible.legacy.rpm_key"],
    example: "- ansible.builtin.rpm_key:\n    key: https://dl.fedoraproject.org/pub/epel/RPM-GPG-KEY-EPEL-9\n    fingerprint: FF8A D134 4597 106E CE81 3B91 8A38 72BF 3228 467C\n",
    ..ModuleSpec::new(
        "rpm_key",
        "Add or remove a GPG key in the rpm database. Tested with recorded commands only (no Red Hat host in ferry's lab).",
        &[
            Param::new("key", Kind::Str, "URL or path of the key (present), or a key id such as 0xDEADB33F (absent).").required(),
            Param::new("state", Kind::Str, "present or absent.").choices(&["absent", "present"]).default("present"),
            Param::new("validate_certs", Kind::Bool, "Check HTTPS certificates when downloading.").default("yes"),
            Param::new("fingerprint", Kind::List, "Expected fingerprint(s) of the key; the task fails on a mismatch."),
        ],
    )
};

pub struct RpmKey;

/// `0xDEADB33F` or 8/16 hex digits: a key id rather than a file.
pub fn as_keyid(key: &str) -> Option<String> {
    let k = key.trim().trim_start_matches("0x").trim_start_matches("0X");
    (matches!(k.len(), 8 | 16) && k.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| k[k.len() - 8..].to_lowercase())
}

pub fn script(args: &Args, check: bool) -> Result<String, ModError> {
    let key = args.req_str("key")?;
    let state = args.str("state").unwrap_or("present");
    let fps: Vec<String> = args
        .list("fingerprint")
        .iter()
        .map(|f| f.replace(' ', "").to_uppercase())
        .collect();
    let mut s = String::from("export LANG=C LC_ALL=C\nH=$(mktemp -d)\ntrap 'rm -rf \"$H\"' EXIT\nexport GNUPGHOME=\"$H/home\"\nmkdir -m 700 \"$GNUPGHOME\"\n");
    let is_url = key.contains("://");
    match (as_keyid(key), is_url) {
        (Some(id), false) => s.push_str(&format!("kid={}\n", quote(&id))),
        _ => {
            if is_url {
                s.push_str("k=\"$H/key\"\n");
                s.push_str(&pkgmgr::download_snippet(
                    key,
                    "k",
                    args.bool("validate_certs"),
                ));
                s.push('\n');
            } else {
                s.push_str(&format!(
                    "k={}\n[ -f \"$k\" ] || {{ echo \"Not a valid key {}\" >&2; exit 3; }}\n",
                    quote(key),
                    key.replace(['\'', '"', '$', '`', '\\'], "")
                ));
            }
            s.push_str(
                "grep -q -- '-----BEGIN PGP PUBLIC KEY BLOCK-----' \"$k\" || { echo 'Not a public key' >&2; exit 4; }\n\
info=$(gpg --batch --with-colons --show-keys \"$k\" 2>/dev/null || gpg --batch --with-colons --fixed-list-mode \"$k\" 2>/dev/null)\n\
long=$(printf '%s\\n' \"$info\" | awk -F: '$1==\"pub\"{print $5; exit}')\n\
fpr=$(printf '%s\\n' \"$info\" | awk -F: '$1==\"pub\"{p=1;next} $1==\"fpr\"&&p{print $10; exit}')\n\
[ -n \"$long\" ] || { echo 'could not read the key id with gpg (is gnupg2 installed?)' >&2; exit 5; }\n\
kid=$(printf '%s' \"$long\" | tail -c 8 | tr 'A-F' 'a-f')\necho \"KEY|$kid|$fpr\"\n",
            );
            if !fps.is_empty() {
                s.push_str(&format!(
                    "case \" {} \" in *\" $fpr \"*) ;; *) echo \"The specified fingerprint, {}, does not match the key fingerprint $fpr\" >&2; exit 6;; esac\n",
                    fps.join(" "),
                    fps.join(", ")
                ));
            }
        }
    }
    s.push_str("if rpm -q \"gpg-pubkey-$kid\" >/dev/null 2>&1; then have=1; else have=0; fi\n");
    if state == "absent" {
        s.push_str("[ \"$have\" = 1 ] || exit 0\necho CHANGED\n");
        if !check {
            s.push_str("rpm --erase --allmatches \"gpg-pubkey-$kid\" || exit 7\n");
        }
    } else {
        if !key.contains("://") && as_keyid(key).is_some() {
            return Err(ModError::fail(format!(
                "Not a valid key {key}: give a URL or a path to import"
            )));
        }
        s.push_str("[ \"$have\" = 0 ] || exit 0\necho CHANGED\n");
        if !check {
            s.push_str("rpm --import \"$k\" || exit 8\n");
        }
    }
    Ok(s)
}

#[async_trait]
impl Module for RpmKey {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let out = ctx.sh(&script(args, ctx.check_mode)?).await?;
        if out.rc != 0 {
            let err = out.stderr_str();
            return Err(ModError::fail(if err.trim().is_empty() {
                format!("rpm_key failed (rc={})", out.rc)
            } else {
                err.trim().to_string()
            }));
        }
        let changed = out.stdout_str().lines().any(|l| l == "CHANGED");
        Ok(Outcome::changed(changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::recording::Recording;
    use crate::modules::dnf::run_recorded;
    use serde_json::json;

    #[test]
    fn key_ids() {
        assert_eq!(as_keyid("0xDEADB33F").as_deref(), Some("deadb33f"));
        assert_eq!(as_keyid("8A3872BF3228467C").as_deref(), Some("3228467c"));
        assert_eq!(as_keyid("/etc/pki/rpm-gpg/KEY"), None);
    }

    #[test]
    fn import_once_and_check_mode() {
        let url = "https://dl.fedoraproject.org/pub/epel/RPM-GPG-KEY-EPEL-9";
        let rec = Recording::new();
        rec.on(
            "rpm -q",
            0,
            "KEY|3228467c|FF8AD1344597106ECE813B918A3872BF3228467C\nCHANGED\n",
        );
        let o = run_recorded(
            &RpmKey,
            &rec,
            json!({"key": url, "fingerprint": "FF8A D134 4597 106E CE81 3B91 8A38 72BF 3228 467C"}),
            false,
        )
        .unwrap();
        assert!(o.changed);
        let s = &rec.scripts()[0];
        assert!(
            s.contains(
                "curl -fsSL -o \"$k\" https://dl.fedoraproject.org/pub/epel/RPM-GPG-KEY-EPEL-9"
            ),
            "{s}"
        );
        assert!(s.contains("rpm --import \"$k\"") && s.contains("*\" $fpr \"*"));
        assert_eq!(rec.scripts().len(), 1, "one round trip");
        // Already imported: the script exits before importing and prints no CHANGED.
        let rec = Recording::new();
        rec.on(
            "rpm -q",
            0,
            "KEY|3228467c|FF8AD1344597106ECE813B918A3872BF3228467C\n",
        );
        assert!(
            !run_recorded(&RpmKey, &rec, json!({"key": url}), false)
                .unwrap()
                .changed
        );
        // Check mode: no import command in the script.
        let rec = Recording::new();
        rec.on("rpm -q", 0, "CHANGED\n");
        assert!(
            run_recorded(&RpmKey, &rec, json!({"key": url}), true)
                .unwrap()
                .changed
        );
        assert!(!rec.ran("rpm --import"));
    }

    #[test]
    fn erase_by_id() {
        let rec = Recording::new();
        rec.on("rpm -q", 0, "CHANGED\n");
        let o = run_recorded(
            &RpmKey,
            &rec,
            json!({"key": "0x3228467C", "state": "absent"}),
            false,
        )
        .unwrap();
        assert!(o.changed);
        assert!(
            rec.scripts()[0].contains("kid=3228467c")
                && rec.ran("rpm --erase --allmatches \"gpg-pubkey-$kid\"")
        );
        assert!(
            run_recorded(&RpmKey, &rec, json!({"key": "0x3228467C"}), false).is_err(),
            "an id cannot be imported"
        );
    }
}
