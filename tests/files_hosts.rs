//! File and utility modules on the Debian test hosts (lab-1..3): lineinfile,
//! blockinfile, replace, slurp, fetch, find, tempfile, wait_for, pause and
//! script — each run with `--check` (host untouched), then for real
//! (changed), then again (ok) where the module can change anything.
//! `tests/run` starts the hosts; without them these tests say so and pass
//! only when FERRY_REQUIRE_LAB is unset.

mod common;

use common::{lab, on_host};

use std::path::Path;

use common::Project;

/// Everything this file touches on the hosts lives under here.
const BASE: &str = "/srv/ferry-files-tests";
const HOSTS: [&str; 3] = ["lab-1", "lab-2", "lab-3"];
const LIMIT: &str = "lab-1,lab-2,lab-3";

fn project(dir: &Path, book: &str) -> Project {
    let p = Project::new();
    p.file(
        "inventory.ini",
        &std::fs::read_to_string(dir.join("hosts.ini")).unwrap(),
    );
    p.file("site.yml", book);
    p
}

/// Names, modes and contents of everything under a directory on a host.
fn tree(dir: &Path, host: &str, d: &str) -> String {
    on_host(dir, host, &format!("cd {d} 2>/dev/null && find . -printf '%p %m %u\\n' | sort && find . -type f | sort | xargs -r cat"))
}

#[track_caller]
fn changed(out: &common::Out, want: (u32, u32)) {
    for h in HOSTS {
        let r = out.recap(h);
        assert_eq!(
            (r.changed, r.skipped, r.failed, r.unreachable),
            (want.0, want.1, 0, 0),
            "{h}: {r:?}\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

#[test]
fn lineinfile_blockinfile_replace() {
    let Some(dir) = lab() else { return };
    let d = format!("{BASE}/edit");
    for h in HOSTS {
        on_host(
            &dir,
            h,
            &format!(
                "rm -rf {d} && mkdir -p {d} && printf 'port=1\\n# old\\nname=x\\n' > {d}/app.conf"
            ),
        );
    }
    let p = project(
        &dir,
        &format!(
            r##"
- hosts: lab
  gather_facts: false
  become: true
  vars:
    d: {d}
  tasks:
    - lineinfile:
        path: "{{{{ d }}}}/app.conf"
        regexp: '^port='
        line: port=8080
    - lineinfile:
        path: "{{{{ d }}}}/new.conf"
        line: a=1
        create: true
        mode: "0640"
    - lineinfile:
        path: "{{{{ d }}}}/app.conf"
        regexp: '^# old'
        state: absent
    - blockinfile:
        path: "{{{{ d }}}}/app.conf"
        marker: "# {{mark}} FERRY"
        block: |
          x=1
          y=2
    - replace:
        path: "{{{{ d }}}}/app.conf"
        regexp: '^name=(\w+)$'
        replace: 'name=\1-new'
"##
        ),
    );
    let before: Vec<String> = HOSTS.iter().map(|h| tree(&dir, h, &d)).collect();
    let check = p.playbook(
        "site.yml",
        &["-i", "inventory.ini", "-l", LIMIT, "--check", "--diff"],
    );
    check.success();
    changed(&check, (5, 0));
    for (h, b) in HOSTS.iter().zip(&before) {
        assert_eq!(&tree(&dir, h, &d), b, "--check touched {h}");
    }
    let first = p.playbook("site.yml", &["-i", "inventory.ini", "-l", LIMIT]);
    first.success();
    changed(&first, (5, 0));
    for h in HOSTS {
        assert_eq!(
            on_host(&dir, h, &format!("cat {d}/app.conf")),
            "port=8080\nname=x-new\n# BEGIN FERRY\nx=1\ny=2\n# END FERRY\n",
            "{h}"
        );
        assert_eq!(
            on_host(
                &dir,
                h,
                &format!("stat -c '%a %U' {d}/new.conf; cat {d}/new.conf")
            ),
            "640 root\na=1\n",
            "{h}"
        );
    }
    let second = p.playbook("site.yml", &["-i", "inventory.ini", "-l", LIMIT]);
    second.success();
    changed(&second, (0, 0));
}

/// A become play on lab-1 with these tasks (YAML, indented 4).
fn lab1_play(dir: &Path, tasks: &str) -> Project {
    project(
        dir,
        &format!("- hosts: lab-1\n  gather_facts: false\n  become: true\n  tasks:\n{tasks}"),
    )
}

const STATS: [(&str, &str); 1] = [("FERRY_LOG", "ferry::stats=info")];

/// A first run sends one command per task (check and change in one script)
/// for the common file modules, `group` and `user`: a text file never seen is
/// guessed absent with the identity the host's shell reported when it started.
/// A re-run: one each.
#[test]
fn one_round_trip_per_task() {
    let Some(dir) = lab() else { return };
    let d = format!("{BASE}/rt");
    on_host(
        &dir,
        "lab-1",
        &format!("rm -rf {d}; userdel ferry-rt-u 2>/dev/null; groupdel ferry-rt 2>/dev/null; true"),
    );
    let p = lab1_play(
        &dir,
        &format!(
            r##"    - file: {{ path: {d}, state: directory, mode: "0750" }}
    - copy: {{ content: "a\n", dest: {d}/a.txt, mode: "0640" }}
    - template: {{ src: t.j2, dest: {d}/t.conf }}
    - group: {{ name: ferry-rt }}
    - user: {{ name: ferry-rt-u, group: ferry-rt, create_home: false }}
    - lineinfile: {{ path: {d}/l.conf, line: k0=1, create: true }}
    - lineinfile: {{ path: {d}/l.conf, line: k1=1 }}
    - blockinfile: {{ path: {d}/b.conf, block: x=1, create: true }}
"##
        ),
    );
    p.file("t.j2", "host={{ inventory_hostname }}\n");
    let args = ["playbook", "site.yml", "-i", "inventory.ini"];
    let first = p.ferry_env(&args, &STATS);
    first.success();
    assert_eq!(first.recap("lab-1").changed, 8, "{}", first.stdout);
    assert_eq!(first.remote_commands(), 8, "{}", first.stderr);
    assert_eq!(
        on_host(
            &dir,
            "lab-1",
            &format!("cd {d} && stat -c '%n %a' . a.txt && cat a.txt t.conf l.conf b.conf && getent group ferry-rt | cut -d: -f1 && id -gn ferry-rt-u")
        ),
        ". 750\na.txt 640\na\nhost=lab-1\nk0=1\nk1=1\n# BEGIN ANSIBLE MANAGED BLOCK\nx=1\n# END ANSIBLE MANAGED BLOCK\nferry-rt\nferry-rt\n"
    );
    let again = p.ferry_env(&args, &STATS);
    again.success();
    assert_eq!(again.recap("lab-1").changed, 0, "{}", again.stdout);
    assert_eq!(again.remote_commands(), 8, "{}", again.stderr);
}

/// `user` creates a new account in the round trip that looks for it only when
/// what it planned for is true: a missing group is still reported, and a home
/// whose parent is missing gets the parent made first.
#[test]
fn new_account_in_one_round_trip_only_when_its_plan_holds() {
    let Some(dir) = lab() else { return };
    let d = format!("{BASE}/acct");
    on_host(
        &dir,
        "lab-1",
        &format!(
            "rm -rf {d}; for u in ferry-sp-a ferry-sp-b; do userdel $u 2>/dev/null; done; true"
        ),
    );
    let p = lab1_play(
        &dir,
        &format!(
            r##"    - user: {{ name: ferry-sp-a, group: ferry-sp-nogroup }}
      register: nog
      ignore_errors: true
    - assert: {{ that: [nog is failed, "nog.msg == 'Group ferry-sp-nogroup does not exist'"] }}
    - user: {{ name: ferry-sp-b, home: {d}/deep/b }}
"##
        ),
    );
    let out = p.ferry_env(&["playbook", "site.yml", "-i", "inventory.ini"], &STATS);
    out.success();
    // The failed assumption costs nothing extra; the missing parent one more.
    assert_eq!(out.remote_commands(), 3, "{}", out.stderr);
    assert_eq!(
        on_host(
            &dir,
            "lab-1",
            &format!("getent passwd ferry-sp-a; stat -c '%U' {d}/deep/b")
        ),
        "ferry-sp-b\n"
    );
}

/// Edits of a file ferry remembers are guarded: a change made behind its
/// back (a shell task, a copy, a chmod) or a wrong guess that a file is
/// absent is noticed, and the edit is made on the file as it is.
#[test]
fn remembered_files_are_checked_before_use() {
    let Some(dir) = lab() else { return };
    let d = format!("{BASE}/memo");
    on_host(
        &dir,
        "lab-1",
        &format!("rm -rf {d} && mkdir -p {d} && printf 'keep\\n' > {d}/pre.conf && head -c 70000 /dev/zero | tr '\\0' x > {d}/big.conf && echo >> {d}/big.conf"),
    );
    let p = lab1_play(
        &dir,
        &format!(
            r##"    - lineinfile: {{ path: {d}/s.conf, line: a=1, create: true }}
    - shell: echo b=2 >> {d}/s.conf
    - lineinfile: {{ path: {d}/s.conf, regexp: "^a=", line: a=9 }}
    - command: cat {d}/s.conf
      register: mid
    - assert: {{ that: ['mid.stdout == "a=9\nb=2"'] }}
    - copy: {{ content: "c=3\n", dest: {d}/s.conf }}
    - lineinfile: {{ path: {d}/s.conf, line: d=4 }}
    - shell: chmod 600 {d}/s.conf
    - lineinfile: {{ path: {d}/s.conf, line: d=4, mode: "0644" }}
      register: perms
    - assert: {{ that: [perms is changed] }}
    - blockinfile: {{ path: {d}/pre.conf, block: x=1 }}
    - lineinfile: {{ path: {d}/big.conf, line: last=1 }}
"##
        ),
    );
    p.playbook("site.yml", &["-i", "inventory.ini"]).success();
    assert_eq!(
        on_host(
            &dir,
            "lab-1",
            &format!("cd {d} && stat -c '%a' s.conf && cat s.conf pre.conf")
        ),
        "644\nc=3\nd=4\nkeep\n# BEGIN ANSIBLE MANAGED BLOCK\nx=1\n# END ANSIBLE MANAGED BLOCK\n"
    );
    // A file too large to remember, guessed absent: read again, edited in place.
    assert_eq!(
        on_host(
            &dir,
            "lab-1",
            &format!("wc -c < {d}/big.conf; tail -n 1 {d}/big.conf")
        ),
        "70008\nlast=1\n"
    );
}

#[test]
fn slurp_fetch_find() {
    let Some(dir) = lab() else { return };
    let d = format!("{BASE}/read");
    for h in HOSTS {
        on_host(&dir, h, &format!("rm -rf {d} && mkdir -p {d}/sub && printf 'hello from %s\\n' {h} > {d}/data.txt && touch {d}/a.log {d}/b.txt {d}/sub/c.log {d}/.hidden.log"));
    }
    let p = project(
        &dir,
        &format!(
            r#"
- hosts: lab
  gather_facts: false
  vars:
    d: {d}
  tasks:
    - slurp:
        src: "{{{{ d }}}}/data.txt"
      register: s
    - assert:
        that:
          - (s.content | b64decode).startswith('hello from ' + inventory_hostname + '\n')
          - s.encoding == 'base64'
    - fetch:
        src: "{{{{ d }}}}/data.txt"
        dest: fetched
    - find:
        paths: "{{{{ d }}}}"
        patterns: '*.log'
        recurse: true
      register: f
    - assert:
        that:
          - f.matched == 2
          - f.files | map(attribute='path') | sort | list == [d + '/a.log', d + '/sub/c.log']
"#
        ),
    );
    let fetched = |h: &str| p.path(&format!("fetched/{h}{d}/data.txt"));
    let before: Vec<String> = HOSTS.iter().map(|h| tree(&dir, h, &d)).collect();
    let check = p.playbook("site.yml", &["-i", "inventory.ini", "-l", LIMIT, "--check"]);
    check.success();
    // fetch does not run in check mode (skipped); slurp and find only read.
    changed(&check, (0, 1));
    assert!(!p.path("fetched").exists(), "--check fetched files");
    for (h, b) in HOSTS.iter().zip(&before) {
        assert_eq!(&tree(&dir, h, &d), b, "--check touched {h}");
    }
    let first = p.playbook("site.yml", &["-i", "inventory.ini", "-l", LIMIT]);
    first.success();
    changed(&first, (1, 0));
    for h in HOSTS {
        assert_eq!(
            std::fs::read_to_string(fetched(h)).unwrap(),
            format!("hello from {h}\n")
        );
    }
    let second = p.playbook("site.yml", &["-i", "inventory.ini", "-l", LIMIT]);
    second.success();
    changed(&second, (0, 0));
    // A changed remote file is fetched again.
    on_host(&dir, "lab-2", &format!("echo more >> {d}/data.txt"));
    let third = p.playbook("site.yml", &["-i", "inventory.ini", "-l", "lab-2"]);
    third.success();
    assert_eq!(third.recap("lab-2").changed, 1, "{}", third.stdout);
    assert_eq!(
        std::fs::read_to_string(fetched("lab-2")).unwrap(),
        "hello from lab-2\nmore\n"
    );
}

#[test]
fn tempfile_wait_for_pause_script() {
    let Some(dir) = lab() else { return };
    let d = format!("{BASE}/misc");
    let port = 18431;
    for h in HOSTS {
        on_host(
            &dir,
            h,
            &format!(
                "[ -f {d}/socat.pid ] && kill $(cat {d}/socat.pid) 2>/dev/null; rm -rf {d} && mkdir -p {d}/tmp && touch {d}/ready && \
                 (socat TCP-LISTEN:{port},reuseaddr,fork SYSTEM:'echo ferry-ready' </dev/null >/dev/null 2>&1 & echo $! > {d}/socat.pid)"
            ),
        );
    }
    let p = project(
        &dir,
        &format!(
            r#"
- hosts: lab
  gather_facts: false
  vars:
    d: {d}
  tasks:
    - tempfile:
        path: "{{{{ d }}}}/tmp"
        prefix: t.
        suffix: .x
      become: true
      register: t
    - wait_for:
        path: "{{{{ d }}}}/ready"
        timeout: 10
    - wait_for:
        port: {port}
        search_regex: 'ferry-(\w+)'
        timeout: 20
      register: w
    - wait_for:
        port: {closed}
        state: stopped
        timeout: 5
    - pause:
        seconds: 1
      register: pz
    - script: hello.sh {{{{ d }}}}/ran
      args:
        creates: "{{{{ d }}}}/ran"
      become: true
      register: sc
    - assert:
        that:
          - pz.delta >= 1
          - ansible_check_mode or w.match_groups == ['ready']
          - ansible_check_mode or t.path.startswith(d + '/tmp/t.')
          - sc is skipped or ansible_check_mode or sc.stdout == 'hello ' + inventory_hostname + '\n'
"#,
            closed = port + 1
        ),
    );
    p.file(
        "files/hello.sh",
        "#!/bin/sh\necho \"hello $(hostname)\"\ntouch \"$1\"\n",
    );
    let before: Vec<String> = HOSTS.iter().map(|h| tree(&dir, h, &d)).collect();
    let check = p.playbook("site.yml", &["-i", "inventory.ini", "-l", LIMIT, "--check"]);
    check.success();
    // tempfile and script report they would change; the three wait_for are skipped (no check mode).
    changed(&check, (2, 3));
    for (h, b) in HOSTS.iter().zip(&before) {
        assert_eq!(&tree(&dir, h, &d), b, "--check touched {h}");
    }
    let first = p.playbook("site.yml", &["-i", "inventory.ini", "-l", LIMIT]);
    first.success();
    changed(&first, (2, 0));
    let count = |h: &str| {
        on_host(&dir, h, &format!("ls {d}/tmp | grep -c '^t\\..*\\.x$'"))
            .trim()
            .to_string()
    };
    for h in HOSTS {
        assert_eq!(count(h), "1", "{h}");
        assert_eq!(
            on_host(&dir, h, &format!("test -e {d}/ran && echo yes")),
            "yes\n",
            "{h}"
        );
    }
    // Again: the script is skipped by `creates`; tempfile, like Ansible's, always makes a new one.
    let second = p.playbook("site.yml", &["-i", "inventory.ini", "-l", LIMIT]);
    second.success();
    changed(&second, (1, 1));
    for h in HOSTS {
        assert_eq!(count(h), "2", "{h}");
    }
    // A port that never opens times out with Ansible's message.
    let q = project(
        &dir,
        &format!(
            "- hosts: lab-1\n  gather_facts: false\n  tasks:\n    - wait_for: port={} timeout=2\n",
            port + 2
        ),
    );
    q.playbook("site.yml", &["-i", "inventory.ini"])
        .code(2)
        .contains(&format!("Timeout when waiting for 127.0.0.1:{}", port + 2));
    for h in HOSTS {
        on_host(
            &dir,
            h,
            &format!("kill $(cat {d}/socat.pid) 2>/dev/null; rm -f {d}/socat.pid"),
        );
    }
}

/// A source of 1 MiB or more is streamed from its file (never read whole):
/// under `become`, on 3 hosts at once, the bytes on each disk are the file's,
/// with the mode asked for; the re-run changes nothing.
#[test]
fn large_copy_is_streamed_under_become() {
    let Some(dir) = lab() else { return };
    let d = format!("{BASE}/stream");
    let p = project(
        &dir,
        &format!("- hosts: {LIMIT}\n  gather_facts: false\n  become: true\n  tasks:\n    - file: path={d} state=directory\n    - copy: src=big.bin dest={d}/big.bin mode=0640 owner=root\n"),
    );
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 11) as u8)
        .collect();
    std::fs::write(p.path("big.bin"), &data).unwrap();
    let want = {
        use sha1::Digest;
        hex::encode(sha1::Sha1::digest(&data))
    };
    for h in HOSTS {
        on_host(&dir, h, &format!("rm -rf {d}"));
    }
    let first = p.playbook("site.yml", &["-i", "inventory.ini", "-l", LIMIT]);
    changed(&first, (2, 0));
    for h in HOSTS {
        assert_eq!(
            on_host(
                &dir,
                h,
                &format!("sha1sum < {d}/big.bin | cut -d' ' -f1; stat -c '%a %U %s' {d}/big.bin")
            ),
            format!("{want}\n640 root 3000000\n"),
            "{h}"
        );
    }
    let again = p.playbook("site.yml", &["-i", "inventory.ini", "-l", LIMIT]);
    changed(&again, (0, 0));
}

/// ini_file on a host's disk: an option changed where it stands (even
/// commented out), one added, a section appended, another removed; `--check`
/// leaves the file; the re-run changes nothing. (Same results as Ansible's
/// module for this sequence, compared locally.)
#[test]
fn ini_file_edits_in_place() {
    let Some(dir) = lab() else { return };
    let d = format!("{BASE}/ini");
    let f = format!("{d}/app.ini");
    on_host(&dir, "lab-1", &format!("rm -rf {d} && mkdir -p {d} && printf '; app\\n[server]\\n# port = 80\\nhost = a\\n\\n[old]\\nx = 1\\n' > {f} && chmod 0640 {f}"));
    let p = lab1_play(
        &dir,
        &format!("    - community.general.ini_file: {{path: {f}, section: server, option: port, value: '8080'}}\n    - ini_file: {{path: {f}, section: server, option: workers, value: '4'}}\n    - ini_file: {{path: {f}, section: db, option: url, value: 'pg://x', no_extra_spaces: true}}\n    - ini_file: {{path: {f}, section: old, state: absent}}\n"),
    );
    let before = on_host(&dir, "lab-1", &format!("cat {f}"));
    let check = p.playbook(
        "site.yml",
        &["-i", "inventory.ini", "-l", "lab-1", "--check"],
    );
    check.success();
    assert_eq!(check.recap("lab-1").changed, 4, "{}", check.stdout);
    assert_eq!(on_host(&dir, "lab-1", &format!("cat {f}")), before);
    let first = p.playbook("site.yml", &["-i", "inventory.ini", "-l", "lab-1"]);
    first.success();
    assert_eq!(first.recap("lab-1").changed, 4, "{}", first.stdout);
    assert_eq!(
        on_host(&dir, "lab-1", &format!("cat {f}; stat -c %a {f}")),
        "; app\n[server]\nport = 8080\nhost = a\nworkers = 4\n\n[db]\nurl=pg://x\n640\n"
    );
    let again = p.playbook("site.yml", &["-i", "inventory.ini", "-l", "lab-1"]);
    again.success();
    assert_eq!(again.recap("lab-1").changed, 0, "{}", again.stdout);
}
