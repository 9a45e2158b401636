//! `unarchive` and `git` on the Debian test hosts: archives from the
//! controller (tar.gz, zip) and from the host (remote_src), and a clone of a
//! bare repository created on the host itself. `--check` first (nothing
//! written), then for real (changed), then again (changed=0); then a new
//! upstream commit (changed, before != after) and again (ok).

mod common;

use common::{lab, on_host};

use std::path::PathBuf;
use std::process::Command;

use common::Project;

const HOSTS: &[&str] = &["lab-1", "lab-3"];
const BASE: &str = "/srv/ferry-arch-test";
const REPO: &str = "/srv/ferry-git-test/repo.git";

fn project(dir: &std::path::Path, book: &str) -> Project {
    let p = Project::new();
    p.file(
        "inventory.ini",
        &std::fs::read_to_string(dir.join("hosts.ini")).unwrap(),
    );
    p.file("site.yml", book);
    p
}

struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        for h in HOSTS {
            on_host(&self.0, h, &format!("rm -rf {BASE} /srv/ferry-git-test"));
        }
    }
}

/// Commits a file to the host's bare repository through a temp clone.
fn commit_upstream(dir: &std::path::Path, host: &str, content: &str) -> String {
    on_host(
        dir,
        host,
        &format!(
            "set -e; t=$(mktemp -d); git clone -q {REPO} $t/w 2>/dev/null; cd $t/w; printf '%s\\n' '{content}' > version.txt; git add version.txt; \
             git -c user.name=ferry -c user.email=ferry@test commit -q -m '{content}'; git push -q origin HEAD:main; git rev-parse HEAD; rm -rf $t"
        ),
    )
    .trim()
    .to_string()
}

#[test]
fn unarchive_and_git_on_the_hosts() {
    let Some(dir) = lab() else { return };
    let _cleanup = Cleanup(dir.clone());
    let mut first_sha = std::collections::HashMap::new();
    for h in HOSTS {
        let ok = on_host(
            &dir,
            h,
            &format!(
                "export DEBIAN_FRONTEND=noninteractive; A='apt-get -o DPkg::Lock::Timeout=600 -y -q'; \
                 {{ command -v git && command -v unzip; }} >/dev/null 2>&1 || $A install git unzip >/dev/null 2>&1 || {{ $A update >/dev/null 2>&1; $A install git unzip >/dev/null 2>&1; }}; \
                 rm -rf {BASE} /srv/ferry-git-test; mkdir -p {BASE}/tgz {BASE}/zip {BASE}/remote /srv/ferry-git-test; \
                 mkdir -p {BASE}/srcdir/conf && printf 'remote=1\\n' > {BASE}/srcdir/conf/r.conf && tar czf {BASE}/remote.tar.gz -C {BASE}/srcdir conf && rm -rf {BASE}/srcdir; \
                 git init -q --bare -b main {REPO} && command -v git && command -v unzip"
            ),
        );
        assert!(
            ok.contains("/git") && ok.contains("/unzip"),
            "setup failed on {h}: {ok}"
        );
        first_sha.insert(*h, commit_upstream(&dir, h, "v1"));
    }

    let book = format!(
        r#"
- hosts: lab-1,lab-3
  gather_facts: false
  become: true
  tasks:
    - name: tarball from the controller
      unarchive:
        src: app.tar.gz
        dest: {BASE}/tgz
        list_files: true
      register: u
    - assert:
        that:
          - "'app/bin/run.sh' in u.files"
          - u.handler == 'TgzArchive'
      when: not ansible_check_mode
    - name: zip from the controller
      ansible.builtin.unarchive:
        src: app.zip
        dest: {BASE}/zip
        mode: u=rwX,g=rX,o=
    - name: archive already on the host, owned by deploy
      unarchive:
        src: {BASE}/remote.tar.gz
        dest: {BASE}/remote
        remote_src: true
        owner: deploy
    - name: checkout
      git:
        repo: {REPO}
        dest: {BASE}/checkout
      register: g
"#
    );
    let p = project(&dir, &book);
    p.file("files/app/bin/run.sh", "#!/bin/sh\necho run\n");
    p.file("files/app/conf/app.conf", "port=8080\n");
    let files = p.path("files");
    let st = Command::new("sh")
        .arg("-c")
        .arg("chmod 755 app/bin/run.sh && tar czf app.tar.gz app && zip -qr app.zip app && rm -rf app")
        .current_dir(&files)
        .status()
        .unwrap();
    assert!(st.success());
    let hosts = HOSTS.join(",");

    let check = p.playbook(
        "site.yml",
        &["-i", "inventory.ini", "-l", &hosts, "--check"],
    );
    check.success();
    for h in HOSTS {
        assert_eq!(check.recap(h).changed, 4, "{h}\n{}", check.stdout);
        assert_eq!(on_host(&dir, h, &format!("ls -A {BASE}/tgz {BASE}/zip {BASE}/remote; test -e {BASE}/checkout && echo cloned")), format!("{BASE}/remote:\n\n{BASE}/tgz:\n\n{BASE}/zip:\n"), "--check wrote on {h}");
    }

    let first = p.playbook("site.yml", &["-i", "inventory.ini", "-l", &hosts]);
    first.success();
    for h in HOSTS {
        let r = first.recap(h);
        assert_eq!(
            (r.changed, r.failed),
            (4, 0),
            "{h}: {r:?}\n{}",
            first.stdout
        );
        assert_eq!(
            on_host(
                &dir,
                h,
                &format!("cat {BASE}/tgz/app/conf/app.conf {BASE}/zip/app/conf/app.conf")
            ),
            "port=8080\nport=8080\n"
        );
        assert_eq!(on_host(&dir, h, &format!("stat -c '%a' {BASE}/tgz/app/bin/run.sh {BASE}/zip/app/bin/run.sh {BASE}/zip/app/conf/app.conf")), "755\n750\n640\n");
        assert_eq!(
            on_host(&dir, h, &format!("stat -c '%U' {BASE}/remote/conf/r.conf")).trim(),
            "deploy"
        );
        assert_eq!(
            on_host(&dir, h, &format!("cat {BASE}/checkout/version.txt")),
            "v1\n"
        );
        assert_eq!(
            on_host(&dir, h, &format!("git -C {BASE}/checkout rev-parse HEAD")).trim(),
            first_sha[h]
        );
    }

    let second = p.playbook("site.yml", &["-i", "inventory.ini", "-l", &hosts]);
    second.success();
    for h in HOSTS {
        assert_eq!(second.recap(h).changed, 0, "{h}\n{}", second.stdout);
    }

    // A new upstream commit: only git changes, with before != after.
    let mut second_sha = std::collections::HashMap::new();
    for h in HOSTS {
        second_sha.insert(*h, commit_upstream(&dir, h, "v2"));
    }
    let gitbook = format!(
        r#"
- hosts: lab-1,lab-3
  gather_facts: false
  become: true
  tasks:
    - git: repo={REPO} dest={BASE}/checkout
      register: g
    - assert:
        that:
          - g.before != g.after
          - g.after == shas[inventory_hostname]
          - not g.remote_url_changed
      when: g.changed
"#
    );
    let gp = project(&dir, &gitbook);
    let mut shas = String::from("shas:\n");
    for h in HOSTS {
        shas.push_str(&format!("  {h}: '{}'\n", second_sha[h]));
    }
    gp.file("group_vars/all.yml", &shas);
    let c = gp.playbook(
        "site.yml",
        &["-i", "inventory.ini", "-l", &hosts, "--check"],
    );
    c.success();
    for h in HOSTS {
        assert_eq!(c.recap(h).changed, 1, "{h}\n{}", c.stdout);
        assert_eq!(
            on_host(&dir, h, &format!("cat {BASE}/checkout/version.txt")),
            "v1\n",
            "--check updated {h}"
        );
    }
    let g1 = gp.playbook("site.yml", &["-i", "inventory.ini", "-l", &hosts]);
    g1.success();
    for h in HOSTS {
        assert_eq!(g1.recap(h).changed, 1, "{h}\n{}", g1.stdout);
        assert_eq!(
            on_host(&dir, h, &format!("cat {BASE}/checkout/version.txt")),
            "v2\n"
        );
    }
    let g2 = gp.playbook("site.yml", &["-i", "inventory.ini", "-l", &hosts]);
    g2.success();
    for h in HOSTS {
        assert_eq!(g2.recap(h).changed, 0, "{h}\n{}", g2.stdout);
    }
}
