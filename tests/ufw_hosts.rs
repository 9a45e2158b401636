//! `community.general.ufw` on a real Debian test host (lab-2 only: ufw's
//! iptables rules live in that host's network namespace). Covers: refusing to
//! enable without an SSH rule, `--check` changing nothing, rules + enable,
//! SSH still working afterwards (a second run over SSH with changed=0).
//! The firewall is reset and disabled at the end.

mod common;

use common::{lab, on_host, ssh_status};

use std::path::PathBuf;

use common::Project;

const HOST: &str = "lab-2";

fn project(dir: &std::path::Path, book: &str) -> Project {
    let p = Project::new();
    p.file(
        "inventory.ini",
        &std::fs::read_to_string(dir.join("hosts.ini")).unwrap(),
    );
    p.file("site.yml", book);
    p
}

const RESET: &str = "ufw --force reset >/dev/null 2>&1; ufw --force disable >/dev/null 2>&1; ufw logging low >/dev/null 2>&1; ufw default deny incoming >/dev/null 2>&1; ufw default allow outgoing >/dev/null 2>&1; rm -f /etc/ufw/*.rules.[0-9]*; ufw status";

/// Leaves the host's firewall off even when the test fails half-way.
struct Cleanup(PathBuf);
impl Drop for Cleanup {
    fn drop(&mut self) {
        on_host(&self.0, HOST, RESET);
    }
}

#[test]
fn ufw_rules_enable_keeps_ssh_and_refuses_without_ssh_rule() {
    let Some(dir) = lab() else { return };
    let installed = on_host(
        &dir,
        HOST,
        "export DEBIAN_FRONTEND=noninteractive; command -v ufw >/dev/null || { apt-get -o DPkg::Lock::Timeout=600 install -y -q ufw >/dev/null 2>&1 || { apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null 2>&1 && apt-get -o DPkg::Lock::Timeout=600 install -y -q ufw >/dev/null 2>&1; }; }; command -v ufw",
    );
    assert!(installed.contains("ufw"), "could not install ufw on {HOST}");
    let _cleanup = Cleanup(dir.clone());
    assert!(on_host(&dir, HOST, RESET).contains("Status: inactive"));

    // 1. Enabling on a freshly reset host (no SSH rule) is refused; ufw stays off.
    let refuse = project(&dir, "- hosts: lab-2\n  gather_facts: false\n  become: true\n  tasks:\n    - community.general.ufw: state=enabled\n");
    let out = refuse.playbook("site.yml", &["-i", "inventory.ini", "-l", HOST]);
    assert_ne!(
        out.code, 0,
        "enabling without an SSH rule must fail:\n{}",
        out.stdout
    );
    out.contains("Refusing to enable ufw: no rule allows incoming SSH on port 22/tcp");
    out.contains("rule=allow port=22 proto=tcp");
    assert!(on_host(&dir, HOST, "ufw status").contains("Status: inactive"));

    // 2. The real playbook: rules, policy, logging, enable.
    let book = r#"
- hosts: lab-2
  gather_facts: false
  become: true
  tasks:
    - name: ssh
      community.general.ufw: rule=allow port=22 proto=tcp
    - name: web
      ufw:
        rule: allow
        port: "8080"
        proto: tcp
        comment: web app
    - name: range from a network
      community.general.ufw:
        rule: allow
        port: "60000:61000"
        proto: udp
        from_ip: 10.0.0.0/8
    - name: deny incoming by default
      community.general.ufw: default=deny direction=incoming
    - name: logging
      community.general.ufw: logging=medium
    - name: enable
      community.general.ufw: state=enabled
      register: fw
    - assert:
        that:
          - "'Status: active' in fw.msg"
          - "'ufw -f enable' in fw.commands"
      when: not ansible_check_mode
"#;
    let p = project(&dir, book);
    let check = p.playbook("site.yml", &["-i", "inventory.ini", "-l", HOST, "--check"]);
    check.success();
    assert!(
        on_host(&dir, HOST, "ufw status").contains("Status: inactive"),
        "--check enabled ufw"
    );
    assert!(
        on_host(&dir, HOST, "ufw show added").contains("(None)"),
        "--check added rules:\n{}",
        on_host(&dir, HOST, "ufw show added")
    );
    assert_eq!(
        on_host(&dir, HOST, "grep ^LOGLEVEL /etc/ufw/ufw.conf").trim(),
        "LOGLEVEL=low",
        "--check changed logging"
    );

    let first = p.playbook("site.yml", &["-i", "inventory.ini", "-l", HOST]);
    first.success();
    let r = first.recap(HOST);
    // The default policy is already deny: 3 rules + logging + enable.
    assert_eq!((r.changed, r.failed), (5, 0), "{r:?}\n{}", first.stdout);
    let status = on_host(&dir, HOST, "ufw status verbose");
    assert!(status.contains("Status: active"), "{status}");
    assert!(status.contains("Logging: on (medium)"), "{status}");
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("22/tcp ") && l.contains("ALLOW IN")),
        "{status}"
    );
    assert!(
        status.lines().any(|l| l.starts_with("8080/tcp ")
            && l.contains("ALLOW IN")
            && l.contains("# web app")),
        "{status}"
    );
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("60000:61000/udp") && l.contains("10.0.0.0/8")),
        "{status}"
    );

    // 3. SSH still works: a second run over SSH changes nothing.
    assert_eq!(
        ssh_status(&dir, HOST, "true"),
        0,
        "SSH to {HOST} broke after enabling ufw"
    );
    let second = p.playbook("site.yml", &["-i", "inventory.ini", "-l", HOST]);
    second.success();
    assert_eq!(second.recap(HOST).changed, 0, "{}", second.stdout);
    let again = p.playbook("site.yml", &["-i", "inventory.ini", "-l", HOST, "--check"]);
    again.success();
    assert_eq!(again.recap(HOST).changed, 0, "{}", again.stdout);

    // 3b. An existing rule with another comment is updated (ufw's dry run
    // does not just skip it), and the rerun leaves it.
    for (comment, expected) in [("web v2", 1), ("web v2", 0), ("web app", 1)] {
        let r = project(&dir, &format!("- hosts: lab-2\n  gather_facts: false\n  become: true\n  tasks:\n    - community.general.ufw: rule=allow port=8080 proto=tcp comment='{comment}'\n"))
            .playbook("site.yml", &["-i", "inventory.ini", "-l", HOST]);
        r.success();
        assert_eq!(r.recap(HOST).changed, expected, "{comment}: {}", r.stdout);
        let status = on_host(&dir, HOST, "ufw status");
        assert!(status.contains(&format!("# {comment}")), "{status}");
    }

    // 4. Deleting a rule: --check predicts it, the run does it, the rerun is ok.
    let del = project(&dir, "- hosts: lab-2\n  gather_facts: false\n  become: true\n  tasks:\n    - community.general.ufw: rule=allow port=8080 proto=tcp comment='web app' delete=true\n");
    let c = del.playbook("site.yml", &["-i", "inventory.ini", "-l", HOST, "--check"]);
    c.success();
    assert_eq!(c.recap(HOST).changed, 1, "{}", c.stdout);
    assert!(on_host(&dir, HOST, "ufw status").contains("8080/tcp"));
    let d1 = del.playbook("site.yml", &["-i", "inventory.ini", "-l", HOST]);
    d1.success();
    assert_eq!(d1.recap(HOST).changed, 1, "{}", d1.stdout);
    assert!(!on_host(&dir, HOST, "ufw status").contains("8080/tcp"));
    let d2 = del.playbook("site.yml", &["-i", "inventory.ini", "-l", HOST]);
    d2.success();
    assert_eq!(d2.recap(HOST).changed, 0, "{}", d2.stdout);

    // 5. Reset at the end (also done by Cleanup on failure).
    let reset = project(&dir, "- hosts: lab-2\n  gather_facts: false\n  become: true\n  tasks:\n    - community.general.ufw: state=reset\n");
    reset
        .playbook("site.yml", &["-i", "inventory.ini", "-l", HOST])
        .success();
    assert!(on_host(&dir, HOST, "ufw status").contains("Status: inactive"));
}
