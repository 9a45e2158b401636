//! Ring 3: the Debian test hosts (tests/hosts/lab) over real SSH, as `deploy`
//! with `become`. `tests/run` starts the hosts; without them these tests say
//! so and pass only when FERRY_REQUIRE_LAB is unset.

mod common;

use common::{lab, on_host};

use std::process::Command;

use common::Project;

/// The hosts shared by the ordinary tests; the last lab host is kept for fault tests.
const HOSTS: &str = "lab-1,lab-2,lab-3";

fn project(dir: &std::path::Path, book: &str) -> Project {
    let p = Project::new();
    p.file(
        "inventory.ini",
        &std::fs::read_to_string(dir.join("hosts.ini")).unwrap(),
    );
    p.file("site.yml", book);
    p
}

#[test]
fn modules_over_ssh_check_then_changed_then_ok() {
    let Some(dir) = lab() else { return };
    let base = "/srv/ferry-ssh-modules";
    let book = format!(
        r#"
- hosts: lab
  gather_facts: false
  become: true
  vars:
    base: {base}
  tasks:
    - file: path={{{{ base }}}} state=directory mode=0755 owner=deploy
    - file: path={{{{ base }}}}/sub/dir state=directory mode=u=rwx,g=rx,o=
    - copy:
        content: "host={{{{ inventory_hostname }}}}\n"
        dest: "{{{{ base }}}}/copied"
        mode: "0640"
        owner: deploy
    - template: src=t.j2 dest={{{{ base }}}}/templated
    - file: src={{{{ base }}}}/copied dest={{{{ base }}}}/link state=link
    - command: touch {{{{ base }}}}/made
      args:
        creates: "{{{{ base }}}}/made"
    - shell: echo done > {{{{ base }}}}/shell.out
      args:
        creates: "{{{{ base }}}}/shell.out"
    - stat: path={{{{ base }}}}/copied
      register: st
    - assert:
        that:
          - st.stat.exists
          - st.stat.mode == '0640'
          - st.stat.pw_name == 'deploy'
      when: not ansible_check_mode
"#
    );
    let p = project(&dir, &book);
    p.file(
        "templates/t.j2",
        "{% for g in group_names %}\ngroup={{ g }}\n{% endfor %}\nname={{ inventory_hostname }}\n",
    );
    for h in ["lab-1", "lab-2", "lab-3"] {
        on_host(&dir, h, &format!("rm -rf {base}"));
    }
    let check = p.playbook("site.yml", &["-i", "inventory.ini", "-l", HOSTS, "--check"]);
    check.success();
    for h in ["lab-1", "lab-2", "lab-3"] {
        assert_eq!(
            on_host(
                &dir,
                h,
                &format!("test -e {base} && echo present || echo absent")
            )
            .trim(),
            "absent",
            "--check touched {h}"
        );
    }
    let first = p.playbook("site.yml", &["-i", "inventory.ini", "-l", HOSTS]);
    first.success();
    for h in ["lab-1", "lab-2", "lab-3"] {
        let r = first.recap(h);
        assert_eq!(
            (r.changed, r.failed, r.unreachable),
            (7, 0, 0),
            "{h}: {r:?}\n{}",
            first.stdout
        );
        assert_eq!(
            on_host(&dir, h, &format!("cat {base}/copied")),
            format!("host={h}\n")
        );
        assert_eq!(
            on_host(
                &dir,
                h,
                &format!("stat -c '%a %U' {base}/copied {base}/sub/dir")
            ),
            "640 deploy\n750 root\n"
        );
        assert_eq!(
            on_host(&dir, h, &format!("cat {base}/templated")),
            format!("group=lab\nname={h}\n")
        );
        assert_eq!(
            on_host(&dir, h, &format!("readlink {base}/link")).trim(),
            format!("{base}/copied")
        );
    }
    let second = p.playbook("site.yml", &["-i", "inventory.ini", "-l", HOSTS]);
    second.success();
    for h in ["lab-1", "lab-2", "lab-3"] {
        assert_eq!(second.recap(h).changed, 0, "{h}\n{}", second.stdout);
    }
}

#[test]
fn a_host_that_dies_is_unreachable_and_the_others_finish() {
    let Some(dir) = lab() else { return };
    let victim = "lab-4";
    let pidfile = dir.join("hosts").join(victim).join("pid");
    if !pidfile.is_file() {
        panic!("{victim} is not running: tests/run starts 4 hosts");
    }
    let p = project(
        &dir,
        r#"
- hosts: lab
  gather_facts: false
  tasks:
    - ping:
    - name: the victim dies during this task
      command: sleep 2
    - command: echo after
      register: after
"#,
    );
    let pid = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .to_string();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(900));
        let _ = Command::new("kill").args(["-KILL", &pid]).status();
    });
    let out = p.playbook(
        "site.yml",
        &[
            "-i",
            "inventory.ini",
            "-l",
            &format!("lab-1,lab-2,{victim}"),
        ],
    );
    killer.join().unwrap();
    // Bring the victim back for later runs.
    let _ = Command::new("tests/hosts/lab")
        .args(["up", "4"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    out.code(3);
    assert_eq!(out.recap(victim).unreachable, 1, "{}", out.stdout);
    for h in ["lab-1", "lab-2"] {
        let r = out.recap(h);
        assert_eq!(
            (r.ok, r.failed, r.unreachable),
            (3, 0, 0),
            "{h}: {r:?}\n{}",
            out.stdout
        );
    }
    assert!(
        out.stdout
            .contains(&format!("fatal: [{victim}]: UNREACHABLE!")),
        "{}",
        out.stdout
    );
}

#[test]
fn become_password_goes_through_stdin_only() {
    let Some(dir) = lab() else { return };
    let host = "lab-3";
    let pw = "Secr3t-ferry-pw";
    // A user whose sudo needs a password (Debian's %sudo rule), reachable with the lab key.
    on_host(
        &dir,
        host,
        &format!(
            "id sudopw >/dev/null 2>&1 || useradd -m -s /bin/bash -G sudo sudopw; echo 'sudopw:{pw}' | chpasswd; \
             install -d -m 700 -o sudopw -g sudopw /home/sudopw/.ssh; install -m 600 -o sudopw -g sudopw /root/.ssh/authorized_keys /home/sudopw/.ssh/authorized_keys"
        ),
    );
    let p = project(
        &dir,
        r#"
- hosts: lab-3
  gather_facts: false
  tasks:
    - command: id -u
      become: true
      register: uid
    - command: sleep 2
      become: true
    - assert:
        that: uid.stdout == '0'
"#,
    );
    p.file("pw", &format!("{pw}\n"));
    // Sample the process table on the host while the play runs.
    let d2 = dir.clone();
    let sampler = std::thread::spawn(move || {
        on_host(
            &d2,
            host,
            "for i in $(seq 1 25); do ps -eo args; sleep 0.1; done",
        )
    });
    let out = p.playbook(
        "site.yml",
        &[
            "-i",
            "inventory.ini",
            "-e",
            "ansible_user=sudopw",
            "--become-password-file",
            "pw",
            "-vvv",
        ],
    );
    let ps = sampler.join().unwrap();
    out.success();
    assert!(
        ps.contains("sudo"),
        "the sampler saw no sudo process:\n{ps}"
    );
    assert!(!ps.contains(pw), "password visible in ps on the host");
    assert!(
        !out.stdout.contains(pw) && !out.stderr.contains(pw),
        "password in ferry's output"
    );
    // A wrong password is a clear error, not a hang.
    p.file("bad", "wrong\n");
    let bad = p.playbook(
        "site.yml",
        &[
            "-i",
            "inventory.ini",
            "-e",
            "ansible_user=sudopw",
            "--become-password-file",
            "bad",
        ],
    );
    bad.code(2).contains("incorrect sudo password");
    // No password at all: sudo would prompt; we say what is missing.
    let none = p.playbook(
        "site.yml",
        &["-i", "inventory.ini", "-e", "ansible_user=sudopw"],
    );
    none.code(2).contains("needs a password");
}
