//! Package modules on the Debian test hosts (tests/hosts/lab) over real SSH:
//! apt (with the cache update), dpkg_selections, apt_key + deb822_repository,
//! apt_repository, package_facts and package. Each module: `--check` changes
//! nothing on the host, the real run changes, the next run changes nothing.
//! Names and paths are unique to this file (tests run in parallel).

mod common;

use common::{lab, on_host, ssh_status};

use std::path::Path;

use common::Project;

/// The hosts shared by the ordinary tests; the last lab host is kept for fault tests.
const HOSTS: &str = "lab-1,lab-2,lab-3";
const EACH: [&str; 3] = ["lab-1", "lab-2", "lab-3"];

/// The tests that update the apt cache take turns (the cache-age checks race otherwise).
static APT_CACHE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn apt_turn() -> std::sync::MutexGuard<'static, ()> {
    APT_CACHE.lock().unwrap_or_else(|e| e.into_inner())
}

fn project(dir: &Path, files: &[(&str, &str)]) -> Project {
    let p = Project::new();
    p.file(
        "inventory.ini",
        &std::fs::read_to_string(dir.join("hosts.ini")).unwrap(),
    );
    for (name, text) in files {
        p.file(name, text);
    }
    p
}

/// dpkg's status of a package on a host ("installed", "config-files", or "" when unknown).
fn status(dir: &Path, host: &str, pkg: &str) -> String {
    let s = on_host(
        dir,
        host,
        &format!("dpkg-query -W -f='${{db:Status-Status}}' {pkg} 2>/dev/null"),
    )
    .trim()
    .to_string();
    if s == "not-installed" {
        String::new()
    } else {
        s
    }
}

/// Runs a playbook three times: `--check` (then `verify_check` on each host),
/// for real (each host reports `changed`), again (nothing changes).
fn check_real_again(
    p: &Project,
    book: &str,
    extra: &[&str],
    changed: u32,
    verify_check: impl Fn(&str),
) -> common::Out {
    let mut args = vec!["-i", "inventory.ini", "-l", HOSTS];
    args.extend_from_slice(extra);
    let mut check = args.clone();
    check.push("--check");
    let c = p.playbook(book, &check);
    c.success();
    for h in EACH {
        verify_check(h);
    }
    let first = p.playbook(book, &args);
    first.success();
    for h in EACH {
        let r = first.recap(h);
        assert_eq!(
            (r.changed, r.failed, r.unreachable),
            (changed, 0, 0),
            "{h}: {r:?}\n{}",
            first.stdout
        );
    }
    let again = p.playbook(book, &args);
    again.success();
    for h in EACH {
        assert_eq!(
            again.recap(h).changed,
            0,
            "{h} changed on the second run\n{}",
            again.stdout
        );
    }
    first
}

#[test]
fn apt_installs_holds_and_removes_real_packages() {
    let Some(dir) = lab() else { return };
    let _turn = apt_turn();
    // Start from packages that are not there and a stale cache (the stamp is
    // what the module reads first); the stale time is what we set.
    let mut before = Vec::new();
    for h in EACH {
        let stale = on_host(
            &dir,
            h,
            "apt-mark unhold hello >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 purge -y -q hello sl >/dev/null 2>&1; \
             mkdir -p /var/lib/apt/periodic; touch -d '3 days ago' /var/lib/apt/periodic/update-success-stamp; stat -c %Y /var/lib/apt/periodic/update-success-stamp",
        );
        before.push(stale.trim().parse::<i64>().expect("stamp time"));
        assert_eq!(
            status(&dir, h, "hello"),
            "",
            "{h}: hello still there before the test"
        );
    }
    let install = r#"
- hosts: lab
  gather_facts: false
  become: true
  tasks:
    - name: install with a cache older than an hour
      apt:
        name: [hello, "sl=5.02*"]
        update_cache: true
        cache_valid_time: 3600
      register: inst
    - assert:
        that:
          - inst.cache_update_time > 0
          - not inst.changed or 'newly installed' in inst.stdout
      when: not ansible_check_mode
"#;
    let stamp = |h: &str| {
        on_host(
            &dir,
            h,
            "stat -c %Y /var/lib/apt/periodic/update-success-stamp",
        )
        .trim()
        .parse::<i64>()
        .unwrap_or(0)
    };
    let p = project(&dir, &[("install.yml", install)]);
    check_real_again(&p, "install.yml", &[], 1, |h| {
        assert_eq!(
            status(&dir, h, "hello"),
            "",
            "--check installed hello on {h}"
        );
        assert_eq!(status(&dir, h, "sl"), "", "--check installed sl on {h}");
    });
    for (i, h) in EACH.iter().enumerate() {
        assert_eq!(status(&dir, h, "hello"), "installed", "{h}");
        assert!(
            on_host(&dir, h, "dpkg-query -W -f='${Version}' sl").starts_with("5.02"),
            "{h}: sl version pin"
        );
        // Fresh now (another test's apt run may have refreshed it too, so no strict ordering).
        let after = stamp(h);
        let now: i64 = on_host(&dir, h, "date +%s").trim().parse().unwrap_or(0);
        assert!(
            after > before[i] && now - after < 600,
            "{h}: the stale cache was not updated ({} -> {after}, now {now})",
            before[i]
        );
    }

    // The second run above did not update the (fresh) cache: cache_valid_time held.
    let fresh = r#"
- hosts: lab
  gather_facts: false
  become: true
  tasks:
    - apt: {name: hello, update_cache: true, cache_valid_time: 3600}
      register: again
    - assert: {that: [not again.cache_updated, not again.changed]}
"#;
    p.file("fresh.yml", fresh);
    p.playbook("fresh.yml", &["-i", "inventory.ini", "-l", HOSTS])
        .success();

    // dpkg_selections: hold, then back to install.
    let hold = "- hosts: lab\n  gather_facts: false\n  become: true\n  tasks:\n    - dpkg_selections: {name: hello, selection: hold}\n";
    p.file("hold.yml", hold);
    check_real_again(&p, "hold.yml", &[], 1, |h| {
        assert!(
            on_host(&dir, h, "dpkg --get-selections hello").contains("install"),
            "--check held hello on {h}"
        );
    });
    for h in EACH {
        assert!(
            on_host(&dir, h, "dpkg --get-selections hello").contains("hold"),
            "{h}"
        );
    }
    p.file("unhold.yml", &hold.replace("hold}", "install}"));
    let un = p.playbook("unhold.yml", &["-i", "inventory.ini", "-l", HOSTS]);
    un.success();
    assert_eq!(un.recap("lab-1").changed, 1);

    // Removal with purge.
    let remove = r#"
- hosts: lab
  gather_facts: false
  become: true
  tasks:
    - apt: {name: [hello, sl], state: absent, purge: true}
"#;
    p.file("remove.yml", remove);
    check_real_again(&p, "remove.yml", &[], 1, |h| {
        assert_eq!(
            status(&dir, h, "hello"),
            "installed",
            "--check removed hello on {h}"
        );
    });
    for h in EACH {
        assert_eq!(status(&dir, h, "hello"), "", "{h}: hello not purged");
        assert_eq!(status(&dir, h, "sl"), "", "{h}: sl not purged");
    }
}

#[test]
fn apt_key_and_deb822_repository_with_a_throwaway_key() {
    let Some(dir) = lab() else { return };
    let key = "/root/ferry-pkgtest-key.asc";
    let keyring = "/etc/apt/keyrings/ferry-pkgtest.gpg";
    let sources = "/etc/apt/sources.list.d/ferry-pkgtest.sources";
    let mut fprs = Vec::new();
    for h in EACH {
        let fpr = on_host(
            &dir,
            h,
            &format!(
                "rm -f {keyring} {sources} {key}; export GNUPGHOME=$(mktemp -d); \
                 gpg --batch --passphrase '' --quick-gen-key 'Ferry Pkgtest <pkgtest@example.com>' ed25519 sign never >/dev/null 2>&1; \
                 gpg --armor --export > {key}; gpg --with-colons --list-keys | awk -F: '$1==\"fpr\"{{print $10; exit}}'; rm -rf $GNUPGHOME"
            ),
        );
        assert_eq!(fpr.trim().len(), 40, "{h}: no key generated: {fpr:?}");
        fprs.push(fpr.trim().to_string());
    }
    let book = format!(
        r#"
- hosts: lab
  gather_facts: false
  become: true
  tasks:
    - apt_key:
        file: {key}
        keyring: {keyring}
      register: k
    - deb822_repository:
        name: ferry-pkgtest
        types: [deb, deb-src]
        uris: http://deb.debian.org/debian
        suites: [bookworm-backports]
        components: [main, contrib]
        architectures: amd64
        signed_by: {keyring}
        enabled: false
      register: repo
    - assert:
        that:
          - k.fp | length == 40
          - repo.dest == '{sources}'
      when: not ansible_check_mode
"#
    );
    let p = project(&dir, &[("site.yml", &book)]);
    check_real_again(&p, "site.yml", &[], 2, |h| {
        assert_eq!(
            on_host(&dir, h, &format!("ls {keyring} {sources} 2>/dev/null")),
            "",
            "--check wrote files on {h}"
        );
    });
    for (i, h) in EACH.iter().enumerate() {
        let listed = on_host(&dir, h, &format!("GNUPGHOME=$(mktemp -d) gpg --batch --with-colons --show-keys {keyring} | awk -F: '$1==\"fpr\"{{print $10; exit}}'"));
        assert_eq!(listed.trim(), fprs[i], "{h}: keyring does not hold the key");
        assert_ne!(
            on_host(&dir, h, &format!("head -c 5 {keyring}")),
            "-----",
            "{h}: keyring should be dearmored"
        );
        assert_eq!(
            on_host(&dir, h, &format!("stat -c %a {keyring} {sources}")),
            "644\n644\n"
        );
        assert_eq!(
            on_host(&dir, h, &format!("cat {sources}")),
            format!(
                "Architectures: amd64\nComponents: main contrib\nEnabled: no\nX-Repolib-Name: ferry-pkgtest\nSigned-By: {keyring}\nSuites: bookworm-backports\nTypes: deb deb-src\nURIs: http://deb.debian.org/debian\n"
            ),
            "{h}"
        );
        // apt still reads its sources.
        assert!(
            ssh_status(
                &dir,
                &format!("root@{h}"),
                // Another test may be running `apt-get update` on this host: its lists
                // are replaced meanwhile, so give apt a few tries.
                "for i in 1 2 3 4 5 6; do apt-cache policy >/dev/null 2>&1 && exit 0; sleep 2; done; exit 1"
            ) == 0,
            "{h}: apt cannot read the sources"
        );
    }

    // And away again: the key by id (the keyring file goes with its last key), the source file.
    for (i, h) in EACH.iter().enumerate() {
        let gone = format!(
            "- hosts: {h}\n  gather_facts: false\n  become: true\n  tasks:\n    - apt_key: {{id: '{}', keyring: {keyring}, state: absent}}\n    - deb822_repository: {{name: ferry-pkgtest, state: absent}}\n",
            &fprs[i][24..]
        );
        p.file(&format!("gone-{h}.yml"), &gone);
        let c = p.playbook(
            &format!("gone-{h}.yml"),
            &["-i", "inventory.ini", "--check"],
        );
        c.success();
        assert_eq!(c.recap(h).changed, 2, "{}", c.stdout);
        let r = p.playbook(&format!("gone-{h}.yml"), &["-i", "inventory.ini"]);
        r.success();
        assert_eq!(r.recap(h).changed, 2, "{}", r.stdout);
        assert_eq!(
            on_host(&dir, h, &format!("ls {keyring} {sources} 2>/dev/null")),
            "",
            "{h}: files left"
        );
        let again = p.playbook(&format!("gone-{h}.yml"), &["-i", "inventory.ini"]);
        again.success();
        assert_eq!(again.recap(h).changed, 0, "{}", again.stdout);
        on_host(&dir, h, &format!("rm -f {key}"));
    }
}

#[test]
fn apt_repository_line_in_its_own_file() {
    let Some(dir) = lab() else { return };
    let file = "/etc/apt/sources.list.d/ferry-pkgtest-line.list";
    for h in EACH {
        on_host(&dir, h, &format!("rm -f {file}"));
    }
    let line = "deb http://deb.debian.org/debian bookworm-backports main";
    let book = format!(
        "- hosts: lab\n  gather_facts: false\n  become: true\n  tasks:\n    - apt_repository: {{repo: '{line}', filename: ferry-pkgtest-line, update_cache: false, mode: '0640'}}\n"
    );
    let p = project(
        &dir,
        &[
            ("add.yml", &book),
            (
                "remove.yml",
                &book.replace("mode: '0640'}", "state: absent}"),
            ),
        ],
    );
    check_real_again(&p, "add.yml", &[], 1, |h| {
        assert_eq!(
            on_host(&dir, h, &format!("ls {file} 2>/dev/null")),
            "",
            "--check wrote {file} on {h}"
        );
    });
    for h in EACH {
        assert_eq!(
            on_host(&dir, h, &format!("cat {file}; stat -c %a {file}")),
            format!("{line}\n640\n"),
            "{h}"
        );
    }
    check_real_again(&p, "remove.yml", &[], 1, |h| {
        assert_eq!(
            on_host(&dir, h, &format!("cat {file}")),
            format!("{line}\n"),
            "--check removed the line on {h}"
        );
    });
    for h in EACH {
        assert_eq!(
            on_host(&dir, h, &format!("ls {file} 2>/dev/null")),
            "",
            "{h}: emptied file left behind"
        );
    }
}

#[test]
fn package_facts_and_generic_package_on_debian() {
    let Some(dir) = lab() else { return };
    let _turn = apt_turn();
    for h in EACH {
        on_host(&dir, h, "DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 purge -y -q pv >/dev/null 2>&1");
        assert_eq!(status(&dir, h, "pv"), "", "{h}");
    }
    // No facts gathered: `package` finds apt on the host.
    let book = r#"
- hosts: lab
  gather_facts: false
  become: true
  tasks:
    - package_facts:
    - assert:
        that:
          - ansible_facts.packages['openssh-server'][0].source == 'apt'
          - "'p1' in ansible_facts.packages['openssh-server'][0].version"
          - ansible_facts.packages['openssh-server'][0].arch == 'amd64'
          - "'pv' not in ansible_facts.packages or not ansible_check_mode"
    - package: {name: pv, state: present, update_cache: true, cache_valid_time: 86400}
      register: pkg
    - assert:
        that: pkg.ansible_pkg_mgr == 'apt'
"#;
    let p = project(&dir, &[("site.yml", book)]);
    check_real_again(&p, "site.yml", &[], 1, |h| {
        assert_eq!(status(&dir, h, "pv"), "", "--check installed pv on {h}");
    });
    for h in EACH {
        assert_eq!(status(&dir, h, "pv"), "installed", "{h}");
    }
    // package_facts sees it now; `package` removes it.
    let after = r#"
- hosts: lab
  gather_facts: false
  become: true
  tasks:
    - package_facts: {manager: apt}
    - assert: {that: "ansible_facts.packages.pv[0].name == 'pv'"}
    - package: {name: pv, state: absent, use: apt}
"#;
    p.file("after.yml", after);
    let r = p.playbook("after.yml", &["-i", "inventory.ini", "-l", HOSTS]);
    r.success();
    for h in EACH {
        assert_eq!(r.recap(h).changed, 1, "{}", r.stdout);
        assert_eq!(status(&dir, h, "pv"), "", "{h}");
    }
}
