//! System modules on the Debian test hosts (no systemd there: the SysV
//! fallback): service/service_facts on a real cron daemon, user/group/
//! authorized_key/getent, sudoers with visudo, cron, hostname. Every module:
//! `--check` changes nothing, the first run changes, the second run does not.

mod common;

use common::{lab, on_host};

use std::path::Path;

use common::Project;

const HOSTS: &str = "lab-1,lab-2,lab-3";
const ALL: [&str; 3] = ["lab-1", "lab-2", "lab-3"];

fn project(dir: &Path, book: &str) -> Project {
    let p = Project::new();
    p.file(
        "inventory.ini",
        &std::fs::read_to_string(dir.join("hosts.ini")).unwrap(),
    );
    p.file("site.yml", book);
    p
}

/// --check (nothing may change: `probe` is the same before and after), then a
/// real run that changes `changed` tasks per host, then a run that changes none.
fn check_apply_again(
    dir: &Path,
    p: &Project,
    hosts: &[&str],
    changed: u32,
    probe: &dyn Fn(&str) -> String,
) -> common::Out {
    let limit = hosts.join(",");
    let before: Vec<String> = hosts.iter().map(|h| probe(h)).collect();
    let check = p.playbook(
        "site.yml",
        &["-i", "inventory.ini", "-l", &limit, "--check"],
    );
    check.success();
    for (h, b) in hosts.iter().zip(&before) {
        assert_eq!(&probe(h), b, "--check changed {h}\n{}", check.stdout);
        assert_eq!(
            check.recap(h).changed,
            changed,
            "{h} in check mode\n{}",
            check.stdout
        );
    }
    let first = p.playbook("site.yml", &["-i", "inventory.ini", "-l", &limit]);
    first.success();
    for h in hosts {
        let r = first.recap(h);
        assert_eq!(
            (r.changed, r.failed),
            (changed, 0),
            "{h}: {r:?}\n{}",
            first.stdout
        );
    }
    let _ = dir;
    let second = p.playbook("site.yml", &["-i", "inventory.ini", "-l", &limit]);
    second.success();
    for h in hosts {
        assert_eq!(
            second.recap(h).changed,
            0,
            "{h} second run\n{}",
            second.stdout
        );
    }
    first
}

#[test]
fn service_starts_enables_and_stops_cron_through_sysv() {
    let Some(dir) = lab() else { return };
    for h in ALL {
        on_host(
            &dir,
            h,
            "service cron stop >/dev/null 2>&1; update-rc.d cron disable >/dev/null 2>&1; true",
        );
    }
    let probe = |h: &str| {
        on_host(
            &dir,
            h,
            "pgrep -x cron >/dev/null && echo running || echo stopped; ls /etc/rc2.d | grep cron",
        )
    };
    let p = project(
        &dir,
        r#"
- hosts: lab
  gather_facts: false
  become: true
  tasks:
    - service: name=cron state=started enabled=yes
      register: svc
    - service_facts:
      when: not ansible_check_mode
    - assert:
        that:
          - svc.name == 'cron'
          - svc.state == 'started'
          - svc.enabled
          - svc.status is not defined
          - svc.service_mgr == 'sysvinit'
          - ansible_facts.services['cron'].state == 'running'
          - ansible_facts.services['cron'].status == 'enabled'
          - ansible_facts.services['cron'].source == 'sysv'
      when: not ansible_check_mode
"#,
    );
    check_apply_again(&dir, &p, &ALL, 1, &probe);
    for h in ALL {
        assert_eq!(probe(h), "running\nS01cron\n", "{h}");
    }
    // Stop it (and the facts say so); check mode leaves it running.
    p.file(
        "site.yml",
        r#"
- hosts: lab
  gather_facts: true
  become: true
  tasks:
    - ansible.builtin.service:
        name: cron
        state: stopped
    - service_facts:
      when: not ansible_check_mode
    - assert:
        that: ansible_facts.services['cron'].state == 'stopped'
      when: not ansible_check_mode
"#,
    );
    check_apply_again(&dir, &p, &ALL, 1, &probe);
    for h in ALL {
        assert_eq!(probe(h), "stopped\nS01cron\n", "{h}");
    }
    // A service that does not exist fails with Ansible's message.
    p.file("site.yml", "- hosts: lab\n  gather_facts: false\n  become: true\n  tasks:\n    - service: name=ferrysa-nosuch state=started\n");
    p.playbook("site.yml", &["-i", "inventory.ini", "-l", "lab-1"])
        .code(2)
        .contains("Could not find the requested service ferrysa-nosuch: host");
}

const HASH: &str = "$6$ferrysalt$oLdh1Cum0tfJZ5MtE2vVJXyvROQdtpGWdJo84DKTGqmNJWim3Hx2RosLff929VrrfhDz9eTEXmgf07TvydtGy.";
const KEY1: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFerrySysadminTestKeyNumberOne0000000000000 one@ferry";
const KEY2: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFerrySysadminTestKeyNumberTwo0000000000000 two@ferry";

#[test]
fn users_groups_authorized_keys_and_getent() {
    let Some(dir) = lab() else { return };
    for h in ALL {
        // The group exists with another gid: `group` changes it (and check mode can resolve it).
        on_host(&dir, h, "userdel -r ferrysa-usr >/dev/null 2>&1; groupdel ferrysa-grp >/dev/null 2>&1; groupadd -g 4710 ferrysa-grp");
    }
    let probe = |h: &str| {
        on_host(
            &dir,
            h,
            "id ferrysa-usr 2>&1; getent group ferrysa-grp; ls -a /home/ferrysa-usr 2>&1",
        )
    };
    let book = format!(
        r#"
- hosts: lab
  gather_facts: false
  become: true
  tasks:
    - group: name=ferrysa-grp gid=4711
    - user:
        name: ferrysa-usr
        uid: 4711
        group: ferrysa-grp
        groups: adm,sudo
        shell: /bin/bash
        comment: Ferry Sysadmin
        password: "{HASH}"
        generate_ssh_key: true
        ssh_key_type: ed25519
      register: u
    - ansible.posix.authorized_key:
        user: ferrysa-usr
        path: /home/ferrysa-usr/.ssh/authorized_keys
        key: "{KEY1}\n{KEY2}"
        key_options: no-port-forwarding
    - getent: database=passwd key=ferrysa-usr
      when: not ansible_check_mode
    - assert:
        that:
          - ansible_facts.getent_passwd['ferrysa-usr'][1] == '4711'
          - ansible_facts.getent_passwd['ferrysa-usr'][5] == '/bin/bash'
          - u.uid == 4711 and u.group == 4711 and u.home == '/home/ferrysa-usr'
          - u.password == 'NOT_LOGGING_PASSWORD'
          - u.ssh_public_key.startswith('ssh-ed25519 ')
          - u.ssh_key_file == '/home/ferrysa-usr/.ssh/id_ed25519'
      when: not ansible_check_mode
"#
    );
    let p = project(&dir, &book);
    let first = check_apply_again(&dir, &p, &ALL, 3, &probe);
    assert!(
        !first.stdout.contains(HASH) && !first.stderr.contains(HASH),
        "the hash leaked into ferry's output"
    );
    for h in ALL {
        assert_eq!(
            on_host(&dir, h, "id ferrysa-usr; getent passwd ferrysa-usr; getent shadow ferrysa-usr | cut -d: -f2"),
            format!("uid=4711(ferrysa-usr) gid=4711(ferrysa-grp) groups=4711(ferrysa-grp),4(adm),27(sudo)\nferrysa-usr:x:4711:4711:Ferry Sysadmin:/home/ferrysa-usr:/bin/bash\n{HASH}\n"),
            "{h}"
        );
        assert_eq!(
            on_host(&dir, h, "cd /home/ferrysa-usr/.ssh && stat -c '%n %a %U %G' . authorized_keys id_ed25519 id_ed25519.pub && cat authorized_keys"),
            format!(". 700 ferrysa-usr ferrysa-grp\nauthorized_keys 600 ferrysa-usr ferrysa-grp\nid_ed25519 600 ferrysa-usr ferrysa-grp\nid_ed25519.pub 644 ferrysa-usr ferrysa-grp\nno-port-forwarding {KEY1}\nno-port-forwarding {KEY2}\n"),
            "{h}"
        );
    }
    // Changes to an existing account: one group removed, exclusive keys, a lock.
    p.file(
        "site.yml",
        &format!(
            r#"
- hosts: lab
  gather_facts: false
  become: true
  tasks:
    - user: name=ferrysa-usr groups=adm password_lock=yes
    - authorized_key: user=ferrysa-usr key="{KEY2}" exclusive=yes
"#
        ),
    );
    check_apply_again(&dir, &p, &ALL, 2, &|h: &str| {
        on_host(&dir, h, "id ferrysa-usr; getent shadow ferrysa-usr | cut -c1-20; cat /home/ferrysa-usr/.ssh/authorized_keys")
    });
    for h in ALL {
        assert_eq!(
            on_host(&dir, h, "id -Gn ferrysa-usr; getent shadow ferrysa-usr | cut -d: -f2; cat /home/ferrysa-usr/.ssh/authorized_keys"),
            format!("ferrysa-grp adm\n!{HASH}\n{KEY2}\n"),
            "{h}"
        );
    }
    // And away again.
    p.file(
        "site.yml",
        "- hosts: lab\n  gather_facts: false\n  become: true\n  tasks:\n    - user: name=ferrysa-usr state=absent remove=yes\n    - group: name=ferrysa-grp state=absent\n",
    );
    check_apply_again(&dir, &p, &ALL, 2, &probe);
    for h in ALL {
        assert_eq!(on_host(&dir, h, "id ferrysa-usr >/dev/null 2>&1 || echo gone; getent group ferrysa-grp || echo gone; test -e /home/ferrysa-usr || echo gone"), "gone\ngone\ngone\n", "{h}");
    }
}

#[test]
fn sudoers_rule_is_validated_before_it_is_placed() {
    let Some(dir) = lab() else { return };
    for h in ALL {
        on_host(&dir, h, "rm -f /etc/sudoers.d/ferrysa-rule; id ferrysa-sudo >/dev/null 2>&1 || useradd -M ferrysa-sudo");
    }
    let probe = |h: &str| {
        on_host(
            &dir,
            h,
            "ls -A /etc/sudoers.d; cat /etc/sudoers.d/ferrysa-rule 2>/dev/null",
        )
    };
    let p = project(
        &dir,
        r#"
- hosts: lab
  gather_facts: false
  become: true
  tasks:
    - community.general.sudoers:
        name: ferrysa-rule
        user: ferrysa-sudo
        runas: root
        commands:
          - /usr/bin/whoami
          - /bin/ls
"#,
    );
    check_apply_again(&dir, &p, &ALL, 1, &probe);
    for h in ALL {
        assert_eq!(
            on_host(
                &dir,
                h,
                "stat -c '%a %U' /etc/sudoers.d/ferrysa-rule; cat /etc/sudoers.d/ferrysa-rule"
            ),
            "440 root\nferrysa-sudo ALL=(root)NOPASSWD: /usr/bin/whoami, /bin/ls\n"
        );
        let l = on_host(&dir, h, "sudo -l -U ferrysa-sudo");
        let rules: Vec<&str> = l
            .lines()
            .skip_while(|x| !x.contains("may run the following"))
            .skip(1)
            .map(str::trim)
            .collect();
        assert_eq!(
            rules,
            vec!["(root) NOPASSWD: /usr/bin/whoami, /bin/ls"],
            "{h}: {l}"
        );
    }
    // A relative command: visudo rejects it, the task fails, the old file stays.
    let before: Vec<String> = ALL.iter().map(|h| probe(h)).collect();
    p.file(
        "site.yml",
        "- hosts: lab\n  gather_facts: false\n  become: true\n  tasks:\n    - community.general.sudoers: name=ferrysa-rule user=ferrysa-sudo commands=docker\n",
    );
    let bad = p.playbook("site.yml", &["-i", "inventory.ini", "-l", HOSTS]);
    bad.code(2)
        .contains("Failed to validate sudoers rule")
        .contains("fully-qualified path");
    for (h, b) in ALL.iter().zip(&before) {
        assert_eq!(
            &probe(h),
            b,
            "{h}: the old rule must stay, with no temporary file left"
        );
        assert_eq!(bad.recap(h).failed, 1);
    }
    p.file("site.yml", "- hosts: lab\n  gather_facts: false\n  become: true\n  tasks:\n    - sudoers: name=ferrysa-rule state=absent\n");
    check_apply_again(&dir, &p, &ALL, 1, &probe);
    for h in ALL {
        assert_eq!(
            on_host(
                &dir,
                h,
                "test -e /etc/sudoers.d/ferrysa-rule || echo gone; userdel ferrysa-sudo"
            ),
            "gone\n"
        );
    }
}

#[test]
fn cron_jobs_env_and_cron_d_files() {
    let Some(dir) = lab() else { return };
    for h in ALL {
        on_host(&dir, h, "rm -f /etc/cron.d/ferrysa-cron; id ferrysa-cron >/dev/null 2>&1 || useradd -M ferrysa-cron; crontab -u ferrysa-cron -r 2>/dev/null; true");
    }
    let probe = |h: &str| on_host(&dir, h, "crontab -u ferrysa-cron -l 2>&1; ls /etc/cron.d");
    let p = project(
        &dir,
        r#"
- hosts: lab
  gather_facts: false
  become: true
  tasks:
    - cron: name="ferrysa job" minute=5 hour=3 job="/usr/bin/true ferrysa" user=ferrysa-cron
    - cron: name=FERRYSA_HOME env=yes job=/opt/ferrysa user=ferrysa-cron
    - cron:
        name: ferrysa file job
        cron_file: ferrysa-cron
        user: root
        special_time: daily
        job: /bin/true
      register: c
    - assert:
        that: c.jobs == ['ferrysa file job'] and c.cron_file == 'ferrysa-cron'
      when: not ansible_check_mode
"#,
    );
    check_apply_again(&dir, &p, &ALL, 3, &probe);
    for h in ALL {
        assert_eq!(
            on_host(&dir, h, "crontab -u ferrysa-cron -l; stat -c '%a %U' /etc/cron.d/ferrysa-cron; cat /etc/cron.d/ferrysa-cron"),
            "FERRYSA_HOME=\"/opt/ferrysa\"\n#Ansible: ferrysa job\n5 3 * * * /usr/bin/true ferrysa\n644 root\n#Ansible: ferrysa file job\n@daily root /bin/true\n",
            "{h}"
        );
    }
    p.file(
        "site.yml",
        r#"
- hosts: lab
  gather_facts: false
  become: true
  tasks:
    - cron: name="ferrysa job" state=absent user=ferrysa-cron
    - cron: name=FERRYSA_HOME env=yes state=absent user=ferrysa-cron
    - cron: name="ferrysa file job" cron_file=ferrysa-cron state=absent
"#,
    );
    check_apply_again(&dir, &p, &ALL, 3, &probe);
    for h in ALL {
        assert_eq!(on_host(&dir, h, "crontab -u ferrysa-cron -l; test -e /etc/cron.d/ferrysa-cron || echo gone; crontab -u ferrysa-cron -r; userdel ferrysa-cron"), "gone\n", "{h}");
    }
}

#[test]
fn hostname_sets_etc_hostname_and_the_kernel_name() {
    let Some(dir) = lab() else { return };
    // One host, restored at the end; the new name resolves like the old one.
    let h = "lab-3";
    on_host(
        &dir,
        h,
        "grep -q ferrysa-host /etc/hosts || echo '127.0.1.1\tferrysa-host' >> /etc/hosts",
    );
    let probe = |h: &str| on_host(&dir, h, "hostname; cat /etc/hostname");
    let p = project(
        &dir,
        r#"
- hosts: lab-3
  gather_facts: false
  become: true
  tasks:
    - hostname: name=ferrysa-host
      register: hn
    - assert:
        that: ansible_hostname == 'ferrysa-host' and ansible_facts.nodename == 'ferrysa-host' and hn.name == 'ferrysa-host'
"#,
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_apply_again(&dir, &p, &[h], 1, &probe);
        assert_eq!(probe(h), "ferrysa-host\nferrysa-host\n");
    }));
    p.file("site.yml", "- hosts: lab-3\n  gather_facts: false\n  become: true\n  tasks:\n    - hostname: name=lab-3 use=debian\n");
    let back = p.playbook("site.yml", &["-i", "inventory.ini", "-l", h]);
    on_host(
        &dir,
        h,
        "hostname lab-3; echo lab-3 > /etc/hostname; sed -i '/ferrysa-host/d' /etc/hosts",
    );
    back.success();
    assert_eq!(back.recap(h).changed, 1);
    assert_eq!(probe(h), "lab-3\nlab-3\n");
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

/// `async` + `poll: 0` leaves a job running on the host (it outlives ferry's
/// run); `async_status` reports it running, then finished with the command's
/// result; `async` bounds the job's time; `poll > 0` waits at most `async`.
#[test]
fn async_jobs_outlive_the_run_and_async_status_reads_them() {
    let Some(dir) = lab() else { return };
    let p = project(
        &dir,
        r#"
- hosts: lab-1
  gather_facts: false
  tasks:
    - shell: sleep 2; echo "out:$(id -un)"; echo err >&2; exit 3
      async: 30
      poll: 0
      register: job
    - async_status: jid={{ job.ansible_job_id }}
      register: early
    - async_status: jid={{ job.ansible_job_id }}
      register: done
      until: done.finished
      retries: 40
      delay: 0.25
      failed_when: done.finished and done.rc != 3
    - shell: sleep 30
      async: 1
      poll: 0
      become: true
      register: slow
    - async_status: jid={{ slow.ansible_job_id }}
      become: true
      register: slowdone
      until: slowdone.finished
      retries: 40
      delay: 0.25
      failed_when: false
    - command: sleep 5
      async: 1
      poll: 1
      register: waited
      ignore_errors: true
    - command: echo hi
      async: 10
      poll: 2
      register: quick
    - async_status: jid={{ job.ansible_job_id }} mode=cleanup
    - async_status: jid={{ job.ansible_job_id }}
      register: gone
      ignore_errors: true
    - assert:
        that:
          - job.changed and job.started == 1 and job.finished == 0
          - early.finished == 0 and not early.changed
          - done.finished == 1 and done.rc == 3 and done.stdout == 'out:deploy' and done.stderr == 'err'
          - done.cmd == 'sleep 2; echo "out:$(id -un)"; echo err >&2; exit 3' and done.changed
          - slowdone.finished == 1 and slowdone.msg == 'Job reached maximum time limit of 1 seconds.'
          - waited is failed and waited.msg == 'async task did not complete within the requested time - 1s'
          - quick.stdout == 'hi' and quick.finished == 1
          - gone is failed and gone.msg == 'could not find job'
    - shell: sleep 1; echo late
      async: 60
      poll: 0
      register: late
    - debug: msg="JID={{ late.ansible_job_id }}"
"#,
    );
    let first = p.playbook("site.yml", &["-i", "inventory.ini", "-l", "lab-1"]);
    first.success();
    let jid = first
        .stdout
        .split("JID=")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no job id:\n{}", first.stdout))
        .to_string();
    // The run is over and its connection closed; the job goes on.
    std::thread::sleep(std::time::Duration::from_secs(2));
    p.file(
        "site.yml",
        &format!("- hosts: lab-1\n  gather_facts: false\n  tasks:\n    - async_status: jid={jid}\n      register: r\n    - assert:\n        that: r.finished == 1 and r.stdout == 'late' and r.rc == 0\n    - async_status: jid={jid} mode=cleanup\n"),
    );
    p.playbook("site.yml", &["-i", "inventory.ini", "-l", "lab-1"])
        .success();
    assert_eq!(
        on_host(&dir, "lab-1", "ls -A /home/deploy/.ansible_async").trim(),
        "",
        "cleanup left files"
    );
}

/// sysctl: the running value (sysctl_set) and a drop-in file, rewritten
/// atomically; `--check` changes neither; `state: absent` removes the line.
#[test]
fn sysctl_sets_the_kernel_and_the_file() {
    let Some(dir) = lab() else { return };
    let h = "lab-2";
    let f = "/etc/sysctl.d/90-ferry-test.conf";
    on_host(&dir, h, &format!("rm -f {f}; printf '# kept\\nvm.swappiness = 60\\n' > {f}; sysctl -w net.ipv4.ip_forward=0 >/dev/null"));
    let probe = |h: &str| on_host(&dir, h, &format!("sysctl -n net.ipv4.ip_forward; cat {f}"));
    let p = project(
        &dir,
        &format!("- hosts: {h}\n  gather_facts: false\n  become: true\n  tasks:\n    - sysctl: name=net.ipv4.ip_forward value=1 sysctl_set=true sysctl_file={f}\n    - ansible.posix.sysctl:\n        key: net.ipv4.conf.all.rp_filter\n        val: 2\n        sysctl_file: {f}\n        reload: false\n"),
    );
    check_apply_again(&dir, &p, &[h], 2, &probe);
    assert_eq!(
        probe(h),
        "1\n# kept\nvm.swappiness=60\nnet.ipv4.ip_forward=1\nnet.ipv4.conf.all.rp_filter=2\n"
    );
    p.file(
        "site.yml",
        &format!("- hosts: {h}\n  gather_facts: false\n  become: true\n  tasks:\n    - sysctl: name=net.ipv4.conf.all.rp_filter state=absent sysctl_file={f} reload=false\n    - sysctl: name=net.ipv4.ip_forward value=0 sysctl_set=true sysctl_file={f}\n"),
    );
    let out = p.playbook("site.yml", &["-i", "inventory.ini", "-l", h]);
    out.success();
    assert_eq!(out.recap(h).changed, 2, "{}", out.stdout);
    assert_eq!(
        probe(h),
        "0\n# kept\nvm.swappiness=60\nnet.ipv4.ip_forward=0\n"
    );
    on_host(&dir, h, &format!("rm -f {f}"));
}

/// alternatives with Debian's update-alternatives: install and select one
/// (manual mode), install another without selecting it, then auto mode
/// follows the priority, and absent removes it.
#[test]
fn alternatives_install_select_auto_and_remove() {
    let Some(dir) = lab() else { return };
    let h = "lab-1"; // not lab-3: the hostname test renames it meanwhile
    on_host(&dir, h, "update-alternatives --remove-all ferry-tool >/dev/null 2>&1; rm -rf /opt/ferry-alt; mkdir -p /opt/ferry-alt && for t in a b; do printf '#!/bin/sh\\necho %s\\n' $t > /opt/ferry-alt/$t; chmod 755 /opt/ferry-alt/$t; done");
    let probe = |h: &str| {
        on_host(&dir, h, "ferry-tool 2>&1; update-alternatives --query ferry-tool 2>/dev/null | grep -E '^(Status|Alternative):'")
    };
    let book = |tasks: &str| {
        format!("- hosts: {h}\n  gather_facts: false\n  become: true\n  tasks:\n{tasks}")
    };
    let p = project(
        &dir,
        &book("    - community.general.alternatives: name=ferry-tool link=/usr/local/bin/ferry-tool path=/opt/ferry-alt/a priority=10\n    - alternatives: name=ferry-tool link=/usr/local/bin/ferry-tool path=/opt/ferry-alt/b priority=20 state=present\n"),
    );
    check_apply_again(&dir, &p, &[h], 2, &probe);
    assert_eq!(
        probe(h),
        "a\nStatus: manual\nAlternative: /opt/ferry-alt/a\nAlternative: /opt/ferry-alt/b\n"
    );
    p.file("site.yml", &book("    - alternatives: name=ferry-tool path=/opt/ferry-alt/b state=auto\n    - alternatives: name=ferry-tool path=/opt/ferry-alt/a state=absent\n"));
    check_apply_again(&dir, &p, &[h], 2, &probe);
    assert_eq!(probe(h), "b\nStatus: auto\nAlternative: /opt/ferry-alt/b\n");
    on_host(
        &dir,
        h,
        "update-alternatives --remove-all ferry-tool; rm -rf /opt/ferry-alt",
    );
}

/// mount: a tmpfs in the host's own mount namespace, through an fstab of
/// its own: mounted (line written, mounted with it), changed options
/// (remounted), absent (unmounted, line and directory gone).
#[test]
fn mount_writes_fstab_and_mounts() {
    let Some(dir) = lab() else { return };
    let h = "lab-2";
    let (m, f) = ("/srv/ferry-mnt", "/etc/ferry-test.fstab");
    on_host(
        &dir,
        h,
        &format!("umount {m} 2>/dev/null; rm -rf {m}; printf '# test fstab\\n' > {f}"),
    );
    let probe = |h: &str| {
        on_host(&dir, h, &format!("grep -c ' {m} ' /proc/self/mountinfo; grep -o 'size=[0-9a-z]*' /proc/mounts | grep -v 'size=[0-9]*k$' ; cat {f}"))
    };
    let book = |opts: &str, state: &str| {
        format!("- hosts: {h}\n  gather_facts: false\n  become: true\n  tasks:\n    - ansible.posix.mount: path={m} src=tmpfs fstype=tmpfs opts={opts} state={state} fstab={f}\n")
    };
    let p = project(&dir, &book("size=1m", "mounted"));
    check_apply_again(&dir, &p, &[h], 1, &probe);
    let opts_of = |h: &str| {
        on_host(
            &dir,
            h,
            &format!("grep ' {m} ' /proc/mounts | cut -d' ' -f4"),
        )
    };
    assert!(opts_of(h).contains("size=1024k"), "{}", opts_of(h));
    assert!(
        on_host(&dir, h, &format!("cat {f}")).ends_with(&format!("tmpfs {m} tmpfs size=1m 0 0\n"))
    );
    p.file("site.yml", &book("size=2m", "mounted"));
    check_apply_again(&dir, &p, &[h], 1, &probe);
    assert!(opts_of(h).contains("size=2048k"), "{}", opts_of(h));
    p.file("site.yml", &book("size=2m", "absent"));
    check_apply_again(&dir, &p, &[h], 1, &probe);
    assert_eq!(
        on_host(
            &dir,
            h,
            &format!("grep -c ' {m} ' /proc/self/mountinfo; cat {f}; test -e {m} || echo gone")
        ),
        "0\n# test fstab\ngone\n"
    );
    on_host(&dir, h, &format!("rm -f {f}"));
}
