//! Fact gathering (`setup` / `gather_facts`) on the Debian test hosts: the
//! facts match what the host itself says, the whole gather is ONE remote
//! command, and conditionals on facts work. `tests/run` starts the hosts;
//! without them these tests say so and pass only when FERRY_REQUIRE_LAB is unset.

mod common;

use common::{lab, on_host};

use std::path::Path;
use std::process::Command;

use common::Project;
use serde_json::Value;

/// Paths on the hosts used only by this file.
const BASE: &str = "/srv/ferry-facts-tests";

fn project(dir: &Path, book: &str) -> Project {
    let p = Project::new();
    p.file(
        "inventory.ini",
        &std::fs::read_to_string(dir.join("hosts.ini")).unwrap(),
    );
    p.file("site.yml", book);
    p
}

/// A key of /etc/os-release as the host has it.
fn os_release(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_default()
}

#[test]
fn facts_match_the_host() {
    let Some(dir) = lab() else { return };
    let host = "lab-1";
    let dest = format!("{BASE}/facts-{host}.json");
    on_host(&dir, host, &format!("rm -rf {BASE}/facts-{host}.json {BASE}/facts.d; mkdir -p {BASE}/facts.d && printf '[app]\\nRole = web\\n' > {BASE}/facts.d/app.fact"));
    let p = project(
        &dir,
        &format!(
            r#"
- hosts: {host}
  gather_facts: false
  tasks:
    - setup:
        fact_path: {BASE}/facts.d
    - copy:
        content: "{{{{ ansible_facts | to_nice_json }}}}"
        dest: {dest}
      become: true
"#
        ),
    );
    p.playbook("site.yml", &["-i", "inventory.ini", "-l", host])
        .success();
    let facts: Value =
        serde_json::from_str(&on_host(&dir, host, &format!("cat {dest}"))).expect("facts json");
    let osr = on_host(&dir, host, "cat /etc/os-release");
    let s = |k: &str| {
        facts[k]
            .as_str()
            .unwrap_or_else(|| panic!("fact {k} missing or not a string: {}", facts[k]))
            .to_string()
    };

    assert_eq!(s("os_family"), "Debian");
    assert_eq!(s("distribution"), "Debian");
    assert_eq!(
        s("distribution_release"),
        os_release(&osr, "VERSION_CODENAME")
    );
    assert_eq!(
        s("distribution_major_version"),
        os_release(&osr, "VERSION_ID")
    );
    assert_eq!(
        s("distribution_version"),
        on_host(&dir, host, "cat /etc/debian_version").trim()
    );
    assert_eq!(s("distribution_file_variety"), "Debian");
    assert_eq!(s("pkg_mgr"), "apt");
    assert_eq!(s("kernel"), on_host(&dir, host, "uname -r").trim());
    assert_eq!(s("machine"), on_host(&dir, host, "uname -m").trim());
    assert_eq!(s("architecture"), on_host(&dir, host, "uname -m").trim());
    assert_eq!(s("hostname"), on_host(&dir, host, "hostname").trim());
    assert_eq!(s("nodename"), on_host(&dir, host, "uname -n").trim());
    assert_eq!(s("system"), "Linux");
    // pid 1 in the lab is tini: Ansible reports pid 1's name as the service manager.
    assert_eq!(
        s("service_mgr"),
        on_host(&dir, host, "cat /proc/1/comm").trim()
    );
    assert_eq!(s("user_id"), "deploy");
    assert_eq!(facts["user_uid"], 1000);
    assert_eq!(s("user_dir"), "/home/deploy");
    assert_eq!(facts["env"]["HOME"], "/home/deploy");
    let mem_kb: i64 = on_host(&dir, host, "awk '/^MemTotal:/ {print $2}' /proc/meminfo")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(facts["memtotal_mb"], mem_kb / 1024);
    let nproc: i64 = on_host(&dir, host, "nproc").trim().parse().unwrap();
    assert_eq!(facts["processor_vcpus"], nproc);
    assert_eq!(facts["processor_nproc"], nproc);
    // The hosts live in network namespaces with only lo.
    assert_eq!(facts["interfaces"], serde_json::json!(["lo"]));
    assert_eq!(facts["lo"]["ipv4"]["address"], "127.0.0.1");
    assert_eq!(facts["default_ipv4"], serde_json::json!({}));
    assert_eq!(facts["selinux"]["status"], "disabled");
    assert_eq!(facts["lsb"], serde_json::json!({}));
    assert_eq!(facts["local"]["app"]["app"]["role"], "web");
    let now: i64 = on_host(&dir, host, "date +%s").trim().parse().unwrap();
    let got: i64 = facts["date_time"]["epoch"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (now - got).abs() < 120,
        "date_time.epoch {got} vs host {now}"
    );
    assert!(
        facts
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("python")),
        "python facts must not be reported"
    );
}

#[test]
fn gathering_is_one_remote_command() {
    let Some(dir) = lab() else { return };
    let host = "lab-2";
    let p = project(
        &dir,
        &format!("- hosts: {host}\n  gather_facts: true\n  tasks: []\n"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["playbook", "site.yml", "-i", "inventory.ini", "-l", host])
        .current_dir(p.dir.path())
        .env("NO_COLOR", "1")
        .env("FERRY_LOG", "ferry::modules=trace")
        .env_remove("FERRY_INVENTORY")
        .output()
        .expect("run ferry");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("TASK [Gathering Facts]"), "{text}");
    let execs = text
        .lines()
        .filter(|l| l.contains("ferry::modules") && l.contains(" exec "))
        .count();
    assert_eq!(
        execs, 1,
        "fact gathering must be one remote command:\n{text}"
    );
}

#[test]
fn conditionals_on_facts() {
    let Some(dir) = lab() else { return };
    let hosts = "lab-1,lab-2,lab-3";
    let marker = |h: &str| format!("{BASE}/when-{h}");
    for h in ["lab-1", "lab-2", "lab-3"] {
        on_host(
            &dir,
            h,
            &format!("mkdir -p {BASE} && rm -f {BASE}/when-{h}"),
        );
    }
    let p = project(
        &dir,
        &format!(
            r#"
- hosts: lab
  become: true
  tasks:
    - name: Debian only
      copy:
        content: "{{{{ ansible_distribution }}}} {{{{ ansible_distribution_major_version }}}} {{{{ ansible_facts['pkg_mgr'] }}}}\n"
        dest: "{BASE}/when-{{{{ inventory_hostname }}}}"
      when: ansible_os_family == 'Debian'
    - name: Red Hat only
      command: /bin/false
      when: ansible_os_family == 'RedHat'
    - assert:
        that:
          - ansible_distribution_version is version('11', '>=')
          - ansible_hostname == inventory_hostname
          - ansible_facts.architecture == ansible_machine
"#
        ),
    );
    let out = p.playbook("site.yml", &["-i", "inventory.ini", "-l", hosts]);
    out.success();
    for h in ["lab-1", "lab-2", "lab-3"] {
        let r = out.recap(h);
        assert_eq!(
            (r.changed, r.skipped, r.failed),
            (1, 1, 0),
            "{h}: {r:?}\n{}",
            out.stdout
        );
        let major = on_host(&dir, h, "cut -d. -f1 /etc/debian_version")
            .trim()
            .to_string();
        assert_eq!(
            on_host(&dir, h, &format!("cat {}", marker(h))),
            format!("Debian {major} apt\n")
        );
    }
}

#[test]
fn subsets_and_filters() {
    let Some(dir) = lab() else { return };
    let host = "lab-3";
    let dest = format!("{BASE}/subset-{host}.json");
    on_host(&dir, host, &format!("mkdir -p {BASE} && rm -f {dest}"));
    let p = project(
        &dir,
        &format!(
            r#"
- hosts: {host}
  gather_facts: true
  gather_subset: ['!all']
  tasks:
    - assert:
        that:
          - ansible_os_family == 'Debian'
          - ansible_memtotal_mb is not defined
          - ansible_interfaces is not defined
    - setup:
        gather_subset: ['!all', '!min', 'network']
        filter: ['ansible_default_ipv4', 'ansible_lo', 'interfaces']
      register: net
    - copy:
        content: "{{{{ net.ansible_facts | to_nice_json }}}}"
        dest: {dest}
      become: true
"#
        ),
    );
    p.playbook("site.yml", &["-i", "inventory.ini", "-l", host])
        .success();
    let f: Value =
        serde_json::from_str(&on_host(&dir, host, &format!("cat {dest}"))).expect("json");
    let mut keys: Vec<&String> = f.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["default_ipv4", "interfaces", "lo"], "{f}");
}
