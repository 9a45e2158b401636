//! `no_log: true` hides values everywhere ferry writes: human output at -vvv
//! with --diff, `--output json`, JUnit, trace logs, loop item labels, failed results.

mod common;

use common::Project;

const BOOK: &str = r#"
- hosts: localhost
  gather_facts: false
  vars:
    secret: SEKRIT1
  tasks:
    - command: echo {{ secret }}
      no_log: true
      register: r
    - name: items are secrets
      command: echo {{ item }}
      loop: [SEKRIT2, SEKRIT3]
      no_log: true
    - name: a label that names, not shows
      command: echo {{ item.pw }}
      loop: [{name: first, pw: SEKRIT4}]
      loop_control:
        label: "{{ item.name }}"
      no_log: true
    - shell: "echo SEKRIT5; echo SEKRIT5 >&2; exit 3"
      no_log: true
      ignore_errors: true
    - command: "false {{ item }}"
      loop: [SEKRIT6]
      no_log: true
      ignore_errors: true
    - debug: msg="{{ secret }}"
      no_log: true
    - fail: msg="bad {{ secret }}7"
      no_log: true
      ignore_errors: true
    - copy: content="SEKRIT8" dest={{ playbook_dir }}/out.txt
      no_log: true
    - copy: content="SEKRIT9" dest={{ playbook_dir }}/out.txt
      no_log: true
      register: c
    - name: the registered value keeps the real result (as in Ansible)
      assert:
        that: r.stdout == 'SEKRIT1'
      no_log: true
"#;

fn check(out: &common::Out, what: &str) {
    for n in 1..=9 {
        let s = format!("SEKRIT{n}");
        assert!(
            !out.stdout.contains(&s) && !out.stderr.contains(&s),
            "{s} leaked in {what}:\n{}\n{}",
            out.stdout,
            out.stderr
        );
    }
}

#[test]
fn no_log_hides_values_in_every_output() {
    let p = Project::new();
    p.file("site.yml", BOOK);
    let human = p.playbook("site.yml", &["-vvv", "--diff", "--junit", "report.xml"]);
    human.success();
    check(&human, "human output at -vvv --diff");
    human
        .contains("(item=(censored due to no_log))")
        .contains("'no_log: true' was specified for this result");
    let r = human.recap("localhost");
    // (Ansible counts the failed loop as ignored=3; ferry's engine counts it ok: see the report.)
    assert_eq!(r.failed, 0, "{}", human.stdout);
    assert!(r.ignored >= 2, "{}", human.stdout);
    let xml = p.read("report.xml");
    assert!(!xml.contains("SEKRIT"), "JUnit leaked:\n{xml}");
    assert!(xml.contains("was specified for this result"), "{xml}");
    let json = p.playbook("site.yml", &["--output", "json", "--diff"]);
    json.success();
    check(&json, "--output json");
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("json");
    assert_eq!(doc["stats"]["localhost"]["failures"], 0);
    // The files were written all the same.
    assert_eq!(p.read("out.txt"), "SEKRIT9");
    // Trace logs (they show every script sent to a host) leave no_log scripts out.
    let traced = p.ferry_env(&["playbook", "site.yml"], &[("FERRY_LOG", "trace")]);
    check(&traced, "FERRY_LOG=trace");
    assert!(
        traced.stderr.contains("script hidden: no_log"),
        "{}",
        traced.stderr
    );
}

#[test]
fn secrets_are_shown_without_no_log() {
    // The control: the same checks would catch the values if they were printed.
    let p = Project::new();
    p.file("site.yml", "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - command: echo {{ item }}\n      loop: [SEKRIT2]\n");
    let out = p.playbook("site.yml", &["-v"]);
    out.success().contains("(item=SEKRIT2)");
}
