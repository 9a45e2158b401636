//! Faults on the Debian test hosts: a host that freezes or dies mid-task, a
//! transfer cut in the middle, a full disk, a denied write, backups, Ctrl-C,
//! retry files, changed host keys, and secrets that must stay off the hosts.
//!
//! Destructive tests use only lab-4 (frozen with SIGSTOP, or killed with
//! `kill -KILL $(cat hosts/lab-4/pid)` and brought back with `tests/hosts/lab up 4`),
//! one at a time (LAB4 lock). lab-1..3 are used without harm, with paths unique
//! to this file (`*ferry-faults*`).

mod common;

use common::{lab, on_host, ssh_status};

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::Project;

static LAB4: Mutex<()> = Mutex::new(());

fn project(dir: &Path, book: &str) -> Project {
    let p = Project::new();
    p.file(
        "inventory.ini",
        &std::fs::read_to_string(dir.join("hosts.ini")).unwrap(),
    );
    p.file("site.yml", book);
    p
}

/// lab-4 is up and answering (after a kill or a freeze).
fn restore_lab4(dir: &Path) {
    for p in netns_pids() {
        let _ = Command::new("kill").args(["-CONT", &p]).status();
    }
    let _ = Command::new("tests/hosts/lab")
        .args(["up", "4"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    assert_eq!(
        ssh_status(dir, "lab-4", "true"),
        0,
        "lab-4 did not come back"
    );
}

/// Every process in lab-4's network namespace: the host's, and the ssh
/// ProxyCommands that carry connections into it.
fn netns_pids() -> Vec<String> {
    Command::new("ip")
        .args([
            "netns",
            "pids",
            &format!(
                "{}4",
                std::env::var("FERRY_LAB_NS_PREFIX").unwrap_or_else(|_| "ferry-lab-".into())
            ),
        ])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_host_that_stops_answering_is_unreachable_and_the_others_go_on() {
    let Some(dir) = lab() else { return };
    let _l4 = LAB4.lock().unwrap_or_else(|e| e.into_inner());
    restore_lab4(&dir);
    let p = project(
        &dir,
        r#"
- hosts: lab
  gather_facts: false
  tasks:
    - ping:
    - name: lab-4 freezes during this task
      command: sleep 4
    - command: echo after
"#,
    );
    // Freeze (not kill) the host and its network path: TCP stays open, nothing answers.
    let freezer = std::thread::spawn(|| {
        std::thread::sleep(Duration::from_millis(2500));
        for p in netns_pids() {
            let _ = Command::new("kill").args(["-STOP", &p]).status();
        }
    });
    let start = Instant::now();
    let out = p.playbook(
        "site.yml",
        &["-i", "inventory.ini", "-l", "lab-1,lab-2,lab-4"],
    );
    let took = start.elapsed();
    freezer.join().unwrap();
    restore_lab4(&dir);
    out.code(3);
    assert_eq!(out.recap("lab-4").unreachable, 1, "{}", out.stdout);
    assert!(
        out.stdout.contains("fatal: [lab-4]: UNREACHABLE!"),
        "{}",
        out.stdout
    );
    for h in ["lab-1", "lab-2"] {
        let r = out.recap(h);
        assert_eq!(
            (r.ok, r.changed, r.failed, r.unreachable),
            (3, 2, 0, 0),
            "{h}: {r:?}\n{}",
            out.stdout
        );
    }
    // No hang: SSH keepalives (15 s x 3, fixed in connection/ssh.rs) notice a silent host.
    assert!(took < Duration::from_secs(120), "took {took:?}");
    eprintln!("frozen host detected; whole run took {took:?}");
}

/// Kills lab-4 while a 50 MB `copy` is being written; returns ferry's output,
/// the destination's content as left on the host's disk, and the temp files left.
fn copy_cut_by_a_dead_host(dir: &Path) -> (common::Out, Vec<u8>, Vec<String>) {
    let base = "/srv/ferry-faults";
    on_host(dir, "lab-4", &format!("rm -rf {base} && mkdir -p {base} && echo old > {base}/big.bin && chown -R deploy {base}"));
    let p = project(dir, &format!("- hosts: lab-4\n  gather_facts: false\n  tasks:\n    - copy: src=big.bin dest={base}/big.bin\n"));
    let mut data = vec![0u8; 50_000_000];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i.wrapping_mul(2654435761) >> 13) as u8;
    }
    std::fs::write(p.path("big.bin"), &data).unwrap();
    // The host's disk is an overlay whose upper dir we can watch from here.
    let upper = dir
        .join("hosts/lab-4/upper")
        .join(base.trim_start_matches('/'));
    let pidfile = dir.join("hosts/lab-4/pid");
    let up2 = upper.clone();
    let killer = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let partial = std::fs::read_dir(&up2)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
                .any(|e| {
                    e.file_name().to_string_lossy().starts_with(".ferry-tmp.")
                        && e.metadata().map(|m| m.len() > 1_000_000).unwrap_or(false)
                });
            if partial {
                let pid = std::fs::read_to_string(&pidfile).unwrap();
                let _ = Command::new("kill").args(["-KILL", pid.trim()]).status();
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    });
    let out = p.playbook("site.yml", &["-i", "inventory.ini"]);
    assert!(
        killer.join().unwrap(),
        "never saw the transfer in progress:\n{}",
        out.stdout
    );
    let left = std::fs::read(upper.join("big.bin")).unwrap_or_default();
    let temps: Vec<String> = std::fs::read_dir(&upper)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".ferry-tmp."))
        .collect();
    (out, left, temps)
}

#[test]
fn a_copy_cut_by_a_dead_host_leaves_the_old_file_intact() {
    let Some(dir) = lab() else { return };
    let _l4 = LAB4.lock().unwrap_or_else(|e| e.into_inner());
    restore_lab4(&dir);
    let (out, left, temps) = copy_cut_by_a_dead_host(&dir);
    out.code(3);
    assert_eq!(out.recap("lab-4").unreachable, 1, "{}", out.stdout);
    // On the disk, even while the host is down: the old file, whole.
    assert_eq!(left, b"old\n");
    restore_lab4(&dir);
    assert_eq!(
        on_host(&dir, "lab-4", "cat /srv/ferry-faults/big.bin"),
        "old\n"
    );
    // The temp file ferry was writing is private (0600) while it exists.
    if let Some(t) = temps.first() {
        assert_eq!(
            on_host(&dir, "lab-4", &format!("stat -c %a /srv/ferry-faults/{t}")).trim(),
            "600"
        );
        eprintln!("KNOWN ISSUE: partial temp file left by the killed transfer: {temps:?} (see SECURITY.md)");
    }
    on_host(&dir, "lab-4", "rm -rf /srv/ferry-faults");
}

/// What `util::place` would need: a temp file orphaned by a dead host is
/// removed by the next run that writes into the same directory.
#[test]
fn the_next_run_removes_temp_files_orphaned_by_a_dead_host() {
    let Some(dir) = lab() else { return };
    let _l4 = LAB4.lock().unwrap_or_else(|e| e.into_inner());
    restore_lab4(&dir);
    let (_, _, temps) = copy_cut_by_a_dead_host(&dir);
    restore_lab4(&dir);
    assert!(
        !temps.is_empty(),
        "the kill left nothing to clean: cannot check"
    );
    let p = project(&dir, "- hosts: lab-4\n  gather_facts: false\n  tasks:\n    - copy: content=new dest=/srv/ferry-faults/big.bin\n");
    p.playbook("site.yml", &["-i", "inventory.ini"]).success();
    let left = on_host(&dir, "lab-4", "ls -A /srv/ferry-faults");
    on_host(&dir, "lab-4", "rm -rf /srv/ferry-faults");
    assert_eq!(left, "big.bin\n");
}

#[test]
fn a_full_disk_is_a_clear_failure_and_leaves_nothing() {
    let Some(dir) = lab() else { return };
    let mnt = "/mnt/ferry-faults-small";
    on_host(&dir, "lab-2", &format!("mkdir -p {mnt}; mountpoint -q {mnt} || mount -t tmpfs -o size=1m tmpfs {mnt}; chmod 777 {mnt}; rm -rf {mnt}/* {mnt}/.ferry-tmp.*"));
    let p = project(&dir, &format!("- hosts: lab-2\n  gather_facts: false\n  tasks:\n    - name: too big\n      copy: src=two.bin dest={mnt}/two.bin\n"));
    std::fs::write(p.path("two.bin"), vec![7u8; 2_000_000]).unwrap();
    let out = p.playbook("site.yml", &["-i", "inventory.ini"]);
    let left = on_host(&dir, "lab-2", &format!("ls -A {mnt}; umount {mnt}"));
    out.code(2)
        .contains("fatal: [lab-2]: FAILED!")
        .contains("No space left on device");
    assert_eq!(out.recap("lab-2").failed, 1);
    assert_eq!(left, "", "partial files left on the full disk");
}

#[test]
fn a_denied_write_is_a_clear_failure() {
    let Some(dir) = lab() else { return };
    // Root's directory, readable but not writable by deploy.
    let d = "/srv/ferry-faults-denied";
    on_host(
        &dir,
        "lab-2",
        &format!("rm -rf {d}; install -d -m 755 -o root {d}"),
    );
    let p = project(
        &dir,
        &format!(
            "- hosts: lab-2\n  gather_facts: false\n  tasks:\n    - copy: content=x dest={d}/f\n"
        ),
    );
    let out = p.playbook("site.yml", &["-i", "inventory.ini"]);
    out.code(2)
        .contains("fatal: [lab-2]: FAILED!")
        .contains("Permission denied");
    assert_eq!(on_host(&dir, "lab-2", &format!("ls -A {d}")), "");
    // With become it works.
    p.playbook("site.yml", &["-i", "inventory.ini", "--become"])
        .success();
    assert_eq!(
        on_host(&dir, "lab-2", &format!("cat {d}/f; rm -rf {d}")),
        "x"
    );
}

#[test]
fn backup_keeps_a_timestamped_copy() {
    let Some(dir) = lab() else { return };
    let d = "/srv/ferry-faults-backup";
    on_host(
        &dir,
        "lab-3",
        &format!("rm -rf {d}; install -d -o deploy {d}"),
    );
    let book = format!(
        "- hosts: lab-3\n  gather_facts: false\n  tasks:\n    - copy: content=v1 dest={d}/f\n    - copy: content=v2 dest={d}/f backup=yes\n      register: b\n    - copy: content=v2 dest={d}/f backup=yes\n      register: again\n    - assert:\n        that:\n          - b.backup_file is match('{d}/f[.].*[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}@[0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}~$')\n          - again.backup_file is not defined\n"
    );
    let p = project(&dir, &book);
    p.playbook("site.yml", &["-i", "inventory.ini"]).success();
    let listing = on_host(
        &dir,
        "lab-3",
        &format!(
            "cd {d} && for f in *; do printf '%s=%s\\n' \"$f\" \"$(cat \"$f\")\"; done; rm -rf {d}"
        ),
    );
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 2, "{listing}");
    assert_eq!(lines[0], "f=v2");
    assert!(
        lines[1].starts_with("f.") && lines[1].ends_with("~=v1"),
        "{listing}"
    );
}

#[test]
fn sigint_exits_99_with_the_recap_so_far() {
    let Some(dir) = lab() else { return };
    let p = project(
        &dir,
        r#"
- hosts: lab-1,lab-2,lab-3
  gather_facts: false
  become: true
  tasks:
    - ping:
    - name: long task
      command: sleep 31.7391
    - command: echo never
"#,
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["playbook", "site.yml", "-i", "inventory.ini"])
        .current_dir(p.dir.path())
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the long task runs on the hosts, then press Ctrl-C.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !on_host(&dir, "lab-1", "pgrep -f 'slee[p] 31.7391' || true").contains(char::is_numeric) {
        assert!(Instant::now() < deadline, "the long task never started");
        std::thread::sleep(Duration::from_millis(200));
    }
    let sent = Instant::now();
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = loop {
        if let Some(_st) = child.try_wait().unwrap() {
            break child.wait_with_output().unwrap();
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "ferry did not stop within 10 s of SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(99), "{stdout}\n{stderr}");
    assert!(stderr.contains("User interrupted execution"), "{stderr}");
    let o = common::Out {
        code: 99,
        stdout: stdout.to_string(),
        stderr: stderr.to_string(),
    };
    for h in ["lab-1", "lab-2", "lab-3"] {
        assert_eq!(o.recap(h).ok, 1, "{stdout}");
    }
    assert!(!stdout.contains("never"));
    // The remote commands were stopped (through sudo: the play has become) and the
    // remote shells' private temp directories are gone (a directory of a shell that
    // still runs belongs to another test on the same host).
    for h in ["lab-1", "lab-2", "lab-3"] {
        let deadline = Instant::now() + Duration::from_secs(5);
        let left = loop {
            let left = on_host(
                &dir,
                h,
                "pgrep -f 'slee[p] 31.7391'; for d in /tmp/.ferry-sh.*; do p=${d#/tmp/.ferry-sh.}; \
                 p=${p%%.*}; [ -e \"$d\" ] && [ ! -d /proc/$p ] && echo \"$d\"; done; true",
            );
            if left.trim().is_empty() || Instant::now() > deadline {
                break left;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        on_host(&dir, h, "pkill -f 'slee[p] 31.7391' || true");
        assert!(left.trim().is_empty(), "{h} still has: {left}");
    }
}

#[test]
fn limit_from_a_retry_file() {
    let Some(dir) = lab() else { return };
    let p = project(
        &dir,
        "- hosts: lab-1,lab-2,lab-3\n  gather_facts: false\n  tasks:\n    - ping:\n",
    );
    p.file("site.retry", "lab-2\n");
    let out = p.playbook(
        "site.yml",
        &["-i", "inventory.ini", "--limit", "@site.retry"],
    );
    out.success();
    assert_eq!(out.recap("lab-2").ok, 1);
    assert!(
        !out.stdout.contains("lab-1 ") && !out.stdout.contains("lab-3 "),
        "{}",
        out.stdout
    );
}

#[test]
fn host_keys_are_checked_by_default_and_a_changed_key_is_refused() {
    let Some(dir) = lab() else { return };
    let p = Project::new();
    // A different key recorded for the lab's host key alias: a man in the middle.
    let key = p.path("k");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let pubkey = std::fs::read_to_string(p.path("k.pub")).unwrap();
    let fields: Vec<&str> = pubkey.split_whitespace().collect();
    p.file(
        "bad_known_hosts",
        &format!("ferry-lab {} {}\n", fields[0], fields[1]),
    );
    p.file("empty_known_hosts", "");
    let cfg = std::fs::read_to_string(dir.join("ssh_config")).unwrap();
    let real_known = dir.join("known_hosts").display().to_string();
    p.file(
        "changed_cfg",
        &cfg.replace(
            &real_known,
            &p.path("bad_known_hosts").display().to_string(),
        ),
    );
    // No StrictHostKeyChecking line: ferry's own default must refuse an unknown host.
    let unknown = cfg
        .replace(
            &real_known,
            &p.path("empty_known_hosts").display().to_string(),
        )
        .replace("    StrictHostKeyChecking yes\n", "");
    p.file("unknown_cfg", &unknown);
    p.file(
        "inv.ini",
        &format!(
            "[changed]\nlab-1 ansible_user=deploy ansible_ssh_common_args='-F {}'\n[unknown]\nlab-1-unknown ansible_host=lab-1 ansible_user=deploy ansible_ssh_common_args='-F {}'\n",
            p.path("changed_cfg").display(),
            p.path("unknown_cfg").display()
        ),
    );
    let out = p.ferry(&["run", "all", "-i", "inv.ini", "-m", "ping"]);
    out.code(3)
        .contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        .contains("the host key is unknown or has changed");
    // `ferry run` prints like `ansible`: one `host | UNREACHABLE!` line per host.
    assert!(
        out.stdout.contains("lab-1 | UNREACHABLE! =>"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("lab-1-unknown | UNREACHABLE! =>"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("Host key verification failed"),
        "{}",
        out.stdout
    );
    // The unknown key was not learnt.
    assert_eq!(
        std::fs::read_to_string(p.path("empty_known_hosts")).unwrap(),
        ""
    );
}

/// Vault and become passwords never reach the host: not in any process's
/// arguments (sampled while the play runs), not in the environment of remote
/// commands, not in files under the host's temp and home dirs.
#[test]
fn vault_and_become_passwords_stay_off_the_host() {
    let Some(dir) = lab() else { return };
    let host = "lab-2";
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let become_pw = format!("BecomePw-{nanos}");
    let vault_pw = format!("VaultPw-{nanos}");
    on_host(
        &dir,
        host,
        &format!(
            "id faultsec >/dev/null 2>&1 || useradd -m -s /bin/bash -G sudo faultsec; echo 'faultsec:{become_pw}' | chpasswd; \
             install -d -m 700 -o faultsec -g faultsec /home/faultsec/.ssh; install -m 600 -o faultsec -g faultsec /root/.ssh/authorized_keys /home/faultsec/.ssh/authorized_keys"
        ),
    );
    let p = project(
        &dir,
        r#"
- hosts: lab-2
  gather_facts: false
  vars_files: [secrets.yml]
  tasks:
    - command: sleep 2.4173
      become: true
    - shell: env; echo; cat /proc/$$/environ | tr '\0' '\n'
      become: true
      register: e
    - copy: content="{{ db_pass }}" dest=/tmp/ferry-faults-secret mode=0600
      become: true
      no_log: true
    - assert:
        that: e.stdout is defined
"#,
    );
    p.file("vpw", &format!("{vault_pw}\n"));
    p.file("bpw", &format!("{become_pw}\n"));
    p.file("secrets.yml", "db_pass: the-db-password\n");
    p.ferry(&[
        "vault",
        "encrypt",
        "--vault-password-file",
        "vpw",
        "secrets.yml",
    ])
    .success();
    let d2 = dir.clone();
    let sampler = std::thread::spawn(move || {
        on_host(&d2, host, "for i in $(seq 1 30); do ps -eo args; cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n'; sleep 0.1; done")
    });
    let out = p.playbook(
        "site.yml",
        &[
            "-i",
            "inventory.ini",
            "-e",
            "ansible_user=faultsec",
            "--become-password-file",
            "bpw",
            "--vault-password-file",
            "vpw",
            "-vvv",
        ],
    );
    let seen = sampler.join().unwrap();
    out.success();
    assert!(seen.contains("sleep 2.4173"), "the sampler missed the task");
    for pw in [&become_pw, &vault_pw] {
        assert!(
            !seen.contains(pw.as_str()),
            "{pw} seen in a process's argv or environment on the host"
        );
        assert!(
            !out.stdout.contains(pw.as_str()) && !out.stderr.contains(pw.as_str()),
            "{pw} in ferry's output"
        );
    }
    // Files on the host (temp dirs, homes, logs) never hold a password.
    let hits = on_host(&dir, host, &format!("grep -rlF -e {become_pw} -e {vault_pw} /tmp /var/tmp /home /root /var/log 2>/dev/null; true"));
    assert_eq!(hits.trim(), "", "password found in files on the host");
    assert_eq!(
        on_host(
            &dir,
            host,
            "cat /tmp/ferry-faults-secret; rm -f /tmp/ferry-faults-secret"
        ),
        "the-db-password"
    );
}

/// `validate` runs on the temp file before it is placed: a failing check
/// leaves the old file and no temp file.
#[test]
fn validate_runs_before_the_file_is_placed() {
    let Some(dir) = lab() else { return };
    let d = "/srv/ferry-faults-validate";
    on_host(
        &dir,
        "lab-3",
        &format!("rm -rf {d}; install -d -o deploy {d}; echo good-old > {d}/f; chown deploy {d}/f"),
    );
    let p = project(
        &dir,
        &format!("- hosts: lab-3\n  gather_facts: false\n  tasks:\n    - copy: content=\"{{{{ c }}}}\" dest={d}/f validate=\"grep -q good %s\"\n"),
    );
    let bad = p.playbook("site.yml", &["-i", "inventory.ini", "-e", "c=bad"]);
    bad.code(2).contains("failed to validate");
    assert_eq!(
        on_host(&dir, "lab-3", &format!("ls -A {d}; cat {d}/f")),
        "f\ngood-old\n"
    );
    p.playbook("site.yml", &["-i", "inventory.ini", "-e", "c=good-new"])
        .success();
    assert_eq!(
        on_host(&dir, "lab-3", &format!("ls -A {d}; cat {d}/f; rm -rf {d}")),
        "f\ngood-new"
    );
}
