//! The error catalogue: broken inputs run through the binary, each checked for
//! its exit code, the exact place (file:line:column, or host and task) and a
//! message that says what is wrong. Cases marked `poor` document messages that
//! should get better (see SECURITY.md / the reliability report); they assert
//! today's behaviour so a change is noticed.
//!
//! Runtime errors point at the task as ferry records it (`task.loc`: the
//! position of the task's first value, e.g. `site.yml:4:12` for
//! `    - debug: msg=x`; Ansible points at the task's first key, 4:7).

mod common;

use common::Project;

struct Case {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    code: i32,
    /// All must appear in stdout or stderr.
    want: &'static [&'static str],
}

const PLAY: &str = "- hosts: localhost\n  gather_facts: false\n  tasks:\n";

fn play(tasks: &str) -> String {
    format!("{PLAY}{tasks}")
}

fn cases() -> Vec<(Case, Option<String>)> {
    // (case, site.yml contents when the case uses the standard play header)
    let t = |name: &'static str, tasks: &str, code: i32, want: &'static [&'static str]| {
        (
            Case {
                name,
                files: &[],
                args: &[],
                code,
                want,
            },
            Some(play(tasks)),
        )
    };
    let f = |name: &'static str,
             files: &'static [(&'static str, &'static str)],
             args: &'static [&'static str],
             code: i32,
             want: &'static [&'static str]| {
        (
            Case {
                name,
                files,
                args,
                code,
                want,
            },
            None,
        )
    };
    vec![
        // --- YAML syntax
        t("bad indentation", "    - debug: msg=hi\n   - debug: msg=x\n", 4, &["site.yml:5:4: YAML syntax error: while parsing a block mapping, did not find expected key", "   - debug: msg=x\n   ^ here"]),
        t("tab indentation", "\t- debug: msg=x\n", 4, &["site.yml:4:2: YAML syntax error: tabs disallowed"]),
        t("unclosed flow sequence", "    - debug: {msg: [1, 2}\n", 4, &["site.yml:4:", "YAML syntax error"]),
        t("quote inside a quoted template", "    - debug: msg=x\n      loop: \"{{ {\"a\": 1} }}\"\n", 4, &["site.yml:5:19: YAML syntax error: invalid trailing content after double-quoted scalar"]),
        t("task at the wrong level", "    - name: a\n    debug: msg=x\n", 4, &["site.yml:5:5: YAML syntax error: while parsing a block collection, did not find expected '-' indicator"]),
        f("alias bomb", &[("site.yml", "- hosts: localhost\n  vars:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n    f: [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n  tasks: []\n")], &[], 4, &["site.yml:8:", "YAML aliases expand to more than 200000 nodes (alias bomb?)"]),
        // --- playbook structure
        f("a playbook that is a mapping", &[("site.yml", "a: 1\n")], &[], 4, &["site.yml:1:1: a playbook must be a list of plays"]),
        f("unknown play keyword", &[("site.yml", "- hostss: localhost\n  tasks: []\n")], &[], 4, &["site.yml:1:3: 'hostss' is not a valid attribute for a Play"]),
        f("play without hosts", &[("site.yml", "- name: x\n  tasks: []\n")], &[], 4, &["site.yml:1:3: the field 'hosts' is required but was not set"]),
        f("tasks is a mapping", &[("site.yml", "- hosts: localhost\n  tasks: {a: 1}\n")], &[], 4, &["site.yml:2:10: a task list must be a list, found a mapping"]),
        t("task is a string", "    - \"just a string\"\n", 4, &["site.yml:4:7: a task must be a mapping, found a string"]),
        t("block is a mapping", "    - block: {debug: {msg: x}}\n", 4, &["site.yml:4:14: a task list must be a list, found a mapping"]),
        t("unknown module", "    - name: x\n      nosuchmodule: a=b\n", 4, &["site.yml:5:7: couldn't resolve module/action 'nosuchmodule'"]),
        t("unknown task keyword", "    - name: x\n      debug: msg=hi\n      whenn: true\n", 4, &["site.yml:6:7: conflicting action statements: debug, whenn (or 'whenn' is not a valid task keyword)"]),
        t("unknown module parameter", "    - file: path=/tmp/x stat=touch\n", 4, &["site.yml:4:13: file: Unsupported parameters for (file) module: stat. Supported parameters include:"]),
        t("unknown loop_control option", "    - debug: msg=x\n      loop: [1]\n      loop_control: {lop_var: x}\n", 4, &["site.yml:6:22: 'lop_var' is not a valid loop_control option"]),
        t("bad register name", "    - debug: msg=x\n      register: \"bad name\"\n", 4, &["site.yml:5:17: invalid variable name in 'register': \"bad name\""]),
        // --- files that are not there
        f("missing imported task file", &[("site.yml", "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - import_tasks: missing.yml\n")], &[], 4, &["site.yml:4:21: could not find imported task file missing.yml"]),
        f("missing included task file", &[("site.yml", "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - include_tasks: missing.yml\n")], &[], 1, &["site.yml:4:7: could not find or access included file missing.yml"]),
        f("missing imported playbook", &[("site.yml", "- import_playbook: nope.yml\n")], &[], 4, &["site.yml:1:20: imported playbook nope.yml does not exist"]),
        f("missing role", &[("site.yml", "- hosts: localhost\n  gather_facts: false\n  roles: [nosuchrole]\n")], &[], 1, &["site.yml:3:11: the role 'nosuchrole' was not found in ./roles, the roles path"]),
        f("empty playbook", &[("site.yml", "# nothing here yet\n")], &[], 4, &["site.yml:1:1: Empty playbook, nothing to do"]),
        f("playbook of no plays", &[("site.yml", "[]\n")], &[], 4, &["site.yml:1:1: Empty playbook, nothing to do"]),
        // poor: points at the play (1:8), not at the vars_files entry.
        f("missing vars file", &[("site.yml", "- hosts: localhost\n  gather_facts: false\n  vars_files: [nope.yml]\n  tasks: []\n")], &[], 1, &["site.yml:1:", "vars file \"nope.yml\" was not found"]),
        t("tags as a mapping", "    - debug: msg=x\n      tags: {a: 1}\n", 4, &["site.yml:5:13: tags must be a string or a list of strings"]),
        t("loop and with_items together", "    - debug: msg={{ item }}\n      loop: [1]\n      with_items: [2]\n", 4, &["site.yml:6:7: a task takes one loop: 'loop' and 'with_items' cannot be used together"]),
        f("missing playbook", &[], &["playbook", "nope.yml"], 5, &["the playbook: nope.yml could not be found"]),
        f("missing inventory", &[("site.yml", "- hosts: all\n  tasks: []\n")], &["playbook", "site.yml", "-i", "nope.ini"], 5, &["inventory source nope.ini does not exist"]),
        // --- runtime: templates, conditions, loops (host and task are named)
        t("undefined variable", "    - name: show it\n      debug: msg=\"{{ nope }}\"\n", 2, &["TASK [show it]", "fatal: [localhost]: FAILED!", "'nope' is undefined", "The error appears to be in 'site.yml:4:7'"]),
        t("template syntax error", "    - debug: msg=\"{{ foo \"\n", 2, &["fatal: [localhost]: FAILED!", "syntax error (unexpected end of input, expected end of variable block)", "site.yml:4:7'"]),
        t("unknown filter", "    - debug: msg=\"{{ 1 | nosuchfilter }}\"\n", 2, &["unknown filter (filter nosuchfilter is unknown)", "site.yml:4:7'"]),
        t("bad when", "    - name: cond\n      debug: msg=x\n      when: \"x ===\"\n", 2, &["TASK [cond]", "The conditional check 'x ===' failed.", "syntax error", "site.yml:4:7'"]),
        t("undefined variable in when", "    - debug: msg=x\n      when: \"{{ nope }}\"\n", 2, &["The conditional check '{{ nope }}' failed. The error was: 'nope' is undefined", "site.yml:4:7'"]),
        t("loop over a number", "    - debug: msg={{ item }}\n      loop: \"{{ 5 }}\"\n", 2, &["invalid data passed to 'loop', it requires a list, got this instead: 5", "site.yml:4:7'"]),
        t("loop over an undefined variable", "    - debug: msg={{ item }}\n      loop: \"{{ nope }}\"\n", 2, &["'nope' is undefined", "site.yml:4:7'"]),
        t("unsupported with_ lookup", "    - debug: msg=x\n      with_itemz: [1]\n", 2, &["with_itemz is not supported by ferry", "site.yml:4:7'"]),
        // poor (no file:line:col; the task banner names it): argument checks.
        t("wrong parameter type", "    - name: typed\n      file: {path: /tmp/x, state: [a]}\n", 2, &["TASK [typed]", "argument 'state' is of type list and we were unable to convert to str"]),
        t("missing required parameter", "    - name: req\n      copy: content=x\n", 2, &["TASK [req]", "missing required arguments: dest"]),
        t("value not in choices", "    - file: path=/tmp/x state=bogus\n", 2, &["value of state must be one of: file, directory, link, hard, touch, absent, got: bogus"]),
        t("mutually exclusive parameters", "    - debug:\n        msg: x\n        var: y\n", 2, &["parameters are mutually exclusive: msg|var"]),
        t("bad symbolic mode", "    - file: path=/tmp/ferry-errors-x mode=abc state=touch\n", 2, &["bad symbolic mode \\\"abc\\\""]),
        t("unknown handler", "    - debug: msg=x\n      notify: nohandler\n      changed_when: true\n", 2, &["The requested handler 'nohandler' was not found"]),
        t("unsupported become_method", "    - debug: msg=x\n      become_method: sux\n      become: true\n", 2, &["become_method sux is not supported (sudo, su)"]),
        t("bad set_fact name", "    - set_fact:\n        \"bad-name\": 1\n", 2, &["The variable name 'bad-name' is not valid"]),
        t("missing include_vars file", "    - include_vars: nope.yml\n", 2, &["Could not find or access 'nope.yml'"]),
        // --- inventories
        f("INI section not closed", &[("hosts.ini", "[web\nh1\n"), ("site.yml", "- hosts: all\n  tasks: []\n")], &["playbook", "site.yml", "-i", "hosts.ini"], 4, &["hosts.ini:1:1: section header must end with ']'"]),
        f("INI stray word after host", &[("hosts.ini", "[web]\nh1 a=b c\n")], &["inventory", "-i", "hosts.ini", "--list"], 4, &["hosts.ini:2:8: expected key=value after the host name, found \"c\""]),
        f("INI vars without value", &[("hosts.ini", "[web:vars]\nnovalue\n")], &["inventory", "-i", "hosts.ini", "--list"], 4, &["hosts.ini:2:1: expected key=value in a :vars section"]),
        f("INI host range too large", &[("hosts.ini", "[web]\nweb-[01:99999999999]\n")], &["inventory", "-i", "hosts.ini", "--list"], 4, &["hosts.ini:2:", "expands to 99999999999 hosts (at most 100000)"]),
        f("INI unknown section type", &[("hosts.ini", "[web:bogus]\nx\n")], &["inventory", "-i", "hosts.ini", "--list"], 4, &["hosts.ini:1:2: unknown section type :bogus (use :vars or :children)"]),
        f("YAML inventory hosts as a list", &[("hosts.yml", "all:\n  hosts: [a, b]\n")], &["inventory", "-i", "hosts.yml", "--list"], 4, &["hosts.yml:2:10: hosts of group \"all\" must be a mapping"]),
        f("YAML inventory unknown key", &[("hosts.yml", "all:\n  childrn:\n    x: {}\n")], &["inventory", "-i", "hosts.yml", "--list"], 4, &["hosts.yml:2:3: unknown key \"childrn\" in group \"all\" (expected hosts, vars or children)"]),
        f("YAML inventory syntax", &[("hosts.yml", "all:\n  hosts:\n    a: {b: [\n")], &["inventory", "-i", "hosts.yml", "--list"], 4, &["hosts.yml:4:1: YAML syntax error"]),
        f("unknown host for --host", &[("hosts.ini", "h1\n")], &["inventory", "-i", "hosts.ini", "--host", "nosuch"], 5, &["you must pass a single valid host to --host; nosuch is not in the inventory"]),
        // --- command line
        f("-e without =", &[("site.yml", "- hosts: localhost\n  tasks: []\n")], &["playbook", "site.yml", "-e", "foo"], 5, &["-e \"foo\": expected key=value, found \"foo\""]),
        f("-e YAML syntax", &[("site.yml", "- hosts: localhost\n  tasks: []\n")], &["playbook", "site.yml", "-e", "{a: [1"], 4, &["<extra vars>:", "YAML syntax error"]),
        f("-e a list", &[("site.yml", "- hosts: localhost\n  tasks: []\n")], &["playbook", "site.yml", "-e", "[1,2]"], 5, &["extra vars \"[1,2]\" must be a mapping"]),
        f("-e @missing file", &[("site.yml", "- hosts: localhost\n  tasks: []\n")], &["playbook", "site.yml", "-e", "@nofile.yml"], 1, &["nofile.yml: No such file or directory"]),
        f("-e @file that is a list", &[("site.yml", "- hosts: localhost\n  tasks: []\n"), ("ev.yml", "- 1\n")], &["playbook", "site.yml", "-e", "@ev.yml"], 4, &["ev.yml:1:1: a variables file must be a mapping, found a list"]),
        f("--forks 0", &[("site.yml", "- hosts: localhost\n  tasks: []\n")], &["playbook", "site.yml", "-f", "0"], 5, &["--forks must be at least 1"]),
        f("ad-hoc unknown module", &[], &["run", "localhost", "-m", "nosuch"], 5, &["module nosuch not found"]),
        f("ad-hoc unknown parameter", &[], &["run", "localhost", "-m", "ping", "-a", "bogus=1"], 5, &["Unsupported parameters for (ping) module: bogus. Supported parameters include: data."]),
        // --- vault
        f("vaulted value without a password", &[("site.yml", "- hosts: localhost\n  gather_facts: false\n  vars:\n    pw: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      6162\n  tasks: []\n")], &[], 4, &["site.yml:4:5: cannot decrypt the !vault value of 'pw': Attempting to decrypt but no vault secrets found"]),
    ]
}

#[test]
fn error_catalogue() {
    let mut bad = Vec::new();
    let all = cases();
    assert!(all.len() >= 30, "{} cases", all.len());
    for (c, book) in &all {
        let p = Project::new();
        if let Some(b) = book {
            p.file("site.yml", b);
        }
        for (path, text) in c.files {
            p.file(path, text);
        }
        let out = if c.args.is_empty() {
            p.playbook("site.yml", &[])
        } else {
            p.ferry(c.args)
        };
        let text = format!("{}\n{}", out.stdout, out.stderr);
        let missing: Vec<&&str> = c.want.iter().filter(|w| !text.contains(**w)).collect();
        if out.code != c.code || !missing.is_empty() {
            bad.push(format!(
                "--- {}: exit {} (want {}), missing {:?}\n{}",
                c.name,
                out.code,
                c.code,
                missing,
                text.trim()
            ));
        }
        // No error may be a crash.
        if text.contains("panicked at") {
            bad.push(format!("--- {}: panicked\n{text}", c.name));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {} cases differ:\n{}",
        bad.len(),
        all.len(),
        bad.join("\n\n")
    );
}
