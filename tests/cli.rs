//! Ring 2: the built binary on playbooks in temp dirs, over the local connection.

mod common;

use common::{snapshot, Project};

const INV: &str = "localhost ansible_connection=local\n";

/// The issue's end-to-end case: roles, handlers, loops, block/rescue, templates.
#[test]
fn roles_handlers_loops_blocks_templates_idempotent_and_check_safe() {
    let p = Project::new();
    p.file("inventory", INV)
        .file(
            "site.yml",
            r#"
- name: Site
  hosts: localhost
  gather_facts: false
  vars:
    out: "{{ playbook_dir }}/out"
    greeting: "hello {{ who }}"
    who: world
  roles:
    - role: web
      port: 8081
  tasks:
    - name: one file per item
      ansible.builtin.copy:
        content: "{{ item.body }}\n"
        dest: "{{ out }}/{{ item.name }}.txt"
        mode: 0640
      loop:
        - { name: a, body: alpha }
        - { name: b, body: beta }
      loop_control:
        label: "{{ item.name }}"
      notify: files changed
    - block:
        - name: fails on purpose (also in check mode)
          fail:
            msg: planned failure
      rescue:
        - name: record the rescue
          set_fact:
            rescued: true
      always:
        - name: always runs
          debug:
            msg: "always {{ greeting }}"
    - name: rescue happened
      assert:
        that: rescued | default(false)
  handlers:
    - name: files changed
      copy:
        content: "handled\n"
        dest: "{{ out }}/handler.txt"
"#,
        )
        .file("roles/web/defaults/main.yml", "port: 80\nweb_user: nobody\n")
        .file(
            "roles/web/tasks/main.yml",
            "- name: out dir\n  file: path={{ out }} state=directory mode=0755\n- name: config\n  template: src=web.conf.j2 dest={{ out }}/web.conf\n  notify: restart web\n",
        )
        .file("roles/web/handlers/main.yml", "- name: restart web\n  copy:\n    content: \"restarted {{ port }}\\n\"\n    dest: \"{{ out }}/restarted\"\n")
        .file("roles/web/templates/web.conf.j2", "# {{ ansible_managed }}\nport={{ port }}\n{% for u in ['a', 'b'] %}\nuser={{ u }}\n{% endfor %}\ngreeting={{ greeting | upper }}\n");

    let before = snapshot(p.dir.path());
    let check = p.playbook("site.yml", &["-i", "inventory", "--check"]);
    check.success();
    assert!(check.recap("localhost").changed > 0);
    assert_eq!(
        snapshot(p.dir.path()),
        before,
        "--check must not touch the disk"
    );

    let first = p.playbook("site.yml", &["-i", "inventory"]);
    first.success();
    let r = first.recap("localhost");
    assert!(
        r.changed > 0 && r.failed == 0 && r.rescued == 1,
        "{r:?}\n{}",
        first.stdout
    );
    assert_eq!(p.read("out/a.txt"), "alpha\n");
    assert_eq!(p.read("out/handler.txt"), "handled\n");
    assert_eq!(p.read("out/restarted"), "restarted 8081\n");
    let conf = p.read("out/web.conf");
    assert!(
        conf.contains("port=8081\nuser=a\nuser=b\ngreeting=HELLO WORLD\n"),
        "{conf}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(p.path("out/a.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o640
    );

    let second = p.playbook("site.yml", &["-i", "inventory"]);
    second.success();
    assert_eq!(second.recap("localhost").changed, 0, "{}", second.stdout);
    assert!(
        !second.stdout.contains("RUNNING HANDLER"),
        "handlers must not run when nothing changed"
    );
}

/// One case per module: `--check` leaves the disk alone, then changed, then ok.
struct Case {
    name: &'static str,
    setup: &'static [(&'static str, &'static str)],
    task: &'static str,
    verify: fn(&Project),
}

const CASES: &[Case] = &[
    Case {
        name: "file_directory",
        setup: &[],
        task: "file: path={{ t }}/d state=directory mode=0750",
        verify: |p| assert!(p.path("t/d").is_dir()),
    },
    Case {
        name: "file_touch_then_mode",
        setup: &[("t/f", "x")],
        task: "file:\n    path: \"{{ t }}/f\"\n    mode: u=rw,g=,o=",
        verify: |p| {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(p.path("t/f")).unwrap().permissions().mode() & 0o777, 0o600)
        },
    },
    Case {
        name: "file_link",
        setup: &[("t/target", "x")],
        task: "file: src={{ t }}/target dest={{ t }}/link state=link",
        verify: |p| assert_eq!(std::fs::read_link(p.path("t/link")).unwrap(), p.path("t/target")),
    },
    Case {
        name: "file_absent",
        setup: &[("t/gone", "x")],
        task: "file: path={{ t }}/gone state=absent",
        verify: |p| assert!(!p.path("t/gone").exists()),
    },
    Case {
        name: "copy_content",
        setup: &[],
        task: "copy:\n    content: \"line\\n\"\n    dest: \"{{ t }}/c.txt\"\n    mode: '0644'",
        verify: |p| assert_eq!(p.read("t/c.txt"), "line\n"),
    },
    Case {
        name: "copy_src_backup",
        setup: &[("files/src.txt", "new\n"), ("t/dst.txt", "old\n")],
        task: "copy: src=src.txt dest={{ t }}/dst.txt backup=yes",
        verify: |p| {
            assert_eq!(p.read("t/dst.txt"), "new\n");
            let backups: Vec<_> = std::fs::read_dir(p.path("t")).unwrap().filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().starts_with("dst.txt.")).collect();
            assert_eq!(backups.len(), 1);
        },
    },
    Case {
        name: "template",
        setup: &[("templates/x.j2", "v={{ t | basename }}\n")],
        task: "template: src=x.j2 dest={{ t }}/x.conf",
        verify: |p| assert_eq!(p.read("t/x.conf"), "v=t\n"),
    },
    Case {
        name: "command_creates",
        setup: &[],
        task: "command: touch {{ t }}/made creates={{ t }}/made",
        verify: |p| assert!(p.path("t/made").exists()),
    },
    Case {
        name: "shell_removes",
        setup: &[("t/old", "x")],
        task: "shell: rm {{ t }}/old && echo done > {{ t }}/log\n  args:\n    removes: \"{{ t }}/old\"",
        verify: |p| assert_eq!(p.read("t/log"), "done\n"),
    },
];

#[test]
fn every_module_check_then_changed_then_ok() {
    for case in CASES {
        let p = Project::new();
        std::fs::create_dir_all(p.path("t")).unwrap();
        for (f, body) in case.setup {
            p.file(f, body);
        }
        p.file("inventory", INV).file(
            "m.yml",
            &format!("- hosts: localhost\n  gather_facts: false\n  vars:\n    t: \"{{{{ playbook_dir }}}}/t\"\n  tasks:\n  - {}\n", case.task.replace('\n', "\n  ")),
        );
        let before = snapshot(p.dir.path());
        let c = p.playbook("m.yml", &["-i", "inventory", "--check"]);
        c.success();
        assert_eq!(
            snapshot(p.dir.path()),
            before,
            "{}: --check changed the disk\n{}",
            case.name,
            c.stdout
        );
        let r1 = p.playbook("m.yml", &["-i", "inventory"]);
        r1.success();
        assert_eq!(
            r1.recap("localhost").changed,
            1,
            "{}: first run\n{}",
            case.name,
            r1.stdout
        );
        (case.verify)(&p);
        let r2 = p.playbook("m.yml", &["-i", "inventory"]);
        r2.success();
        assert_eq!(
            r2.recap("localhost").changed,
            0,
            "{}: second run\n{}",
            case.name,
            r2.stdout
        );
    }
}

#[test]
fn variable_precedence_follows_ansible() {
    let p = Project::new();
    p.file("inventory/hosts", "localhost ansible_connection=local v_inv=inv\n[all:vars]\nv_grp=group\n")
        .file("inventory/group_vars/all.yml", "v_gv: group_vars\nv_play: from_group_vars\n")
        .file("inventory/host_vars/localhost.yml", "v_hv: host_vars\n")
        .file("roles/r/defaults/main.yml", "v_role: default\nv_def: default\n")
        .file("roles/r/vars/main.yml", "v_role: role_vars\n")
        .file(
            "roles/r/tasks/main.yml",
            "- assert:\n    that:\n      - v_def == 'default'\n      - v_role == 'role_vars'\n      - v_play == 'play'\n",
        )
        .file("vars.yml", "v_file: vars_file\nv_play: from_vars_file\n")
        .file(
            "p.yml",
            r#"
- hosts: localhost
  gather_facts: false
  vars:
    v_play: play
    v_extra: play
    v_lazy: "{{ v_inv }}-{{ v_gv }}"
  vars_files: [vars.yml]
  pre_tasks:
    - assert:
        that:
          - v_inv == 'inv'
          - v_grp == 'group'
          - v_gv == 'group_vars'
          - v_hv == 'host_vars'
          - v_play == 'from_vars_file'
          - v_file == 'vars_file'
          - v_extra == 'extra'
          - v_lazy == 'inv-group_vars'
          - inventory_hostname == 'localhost'
          - "'all' in groups"
    - set_fact: v_fact=fact
    - assert:
        that: v_fact == 'fact'
      vars:
        v_fact: task
  roles: []
  tasks:
    - include_role:
        name: r
      vars:
        v_play: play
"#,
        );
    p.playbook("p.yml", &["-i", "inventory", "-e", "v_extra=extra"])
        .success();
}

#[test]
fn when_loop_register_until_and_failed_when() {
    let p = Project::new();
    p.file("inventory", INV).file(
        "p.yml",
        r#"
- hosts: localhost
  gather_facts: false
  tasks:
    - command: echo {{ item }}
      loop: [1, 2, 3]
      when: item != 2
      register: looped
    - assert:
        that:
          - looped.results | length == 3
          - looped.results[1].skipped
          - looped.results[2].stdout == '3'
          - looped.changed
    - command: /bin/false
      register: f
      failed_when: false
    - assert:
        that: f.rc == 1
    - shell: "echo -n x >> {{ playbook_dir }}/count; wc -c < {{ playbook_dir }}/count"
      register: c
      until: c.stdout | int >= 3
      retries: 5
      delay: 0
    - assert:
        that: c.attempts == 3
    - debug: msg="skipped"
      when:
        - true
        - undefined_var_is_never_evaluated_after_false is defined
        - undefined_var_xyz
    - command: echo {{ item.0 }}-{{ item.1 }}
      with_nested: [[a, b], [1, 2]]
      register: n
    - assert:
        that: n.results | map(attribute='stdout') | list == ['a-1', 'a-2', 'b-1', 'b-2']
    # Facts set by one item are seen by the next (Ansible's accumulation idiom).
    - set_fact:
        acc: "{{ (acc | default([])) + [item] }}"
      loop: [1, 2, 3]
    - assert:
        that: acc == [1, 2, 3]
"#,
    );
    let out = p.playbook("p.yml", &["-i", "inventory"]);
    out.success();
}

#[test]
fn failures_give_exit_code_2_and_ignore_errors_goes_on() {
    let p = Project::new();
    p.file("inventory", INV).file(
        "p.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - command: /bin/false\n      ignore_errors: true\n    - fail: msg=\"stop here\"\n    - debug: msg=never\n",
    );
    let out = p.playbook("p.yml", &["-i", "inventory"]);
    out.code(2).contains("stop here").contains("...ignoring");
    let r = out.recap("localhost");
    assert_eq!((r.failed, r.ignored), (1, 1));
    assert!(!out.stdout.contains("never"));
}

#[test]
fn bad_input_names_file_line_and_column() {
    let p = Project::new();
    p.file("inventory", INV)
        .file("bad_yaml.yml", "- hosts: localhost\n  tasks:\n    - debug: {msg: [1, 2}\n")
        .file("bad_module.yml", "- hosts: localhost\n  tasks:\n    - name: x\n      debgu: msg=hi\n")
        .file("bad_param.yml", "- hosts: localhost\n  tasks:\n    - copy:\n        dest: /tmp/x\n        contnet: hi\n")
        .file("bad_keyword.yml", "- hosts: localhost\n  tasks: []\n  hostz: x\n");
    let cases = [
        ("bad_yaml.yml", "bad_yaml.yml:3:"),
        (
            "bad_module.yml",
            "bad_module.yml:4:7: couldn't resolve module/action 'debgu'",
        ),
        (
            "bad_param.yml",
            "bad_param.yml:5:9: copy: Unsupported parameters for (copy) module: contnet",
        ),
        (
            "bad_keyword.yml",
            "bad_keyword.yml:3:3: 'hostz' is not a valid attribute for a Play",
        ),
    ];
    for (file, want) in cases {
        let out = p.playbook(file, &["-i", "inventory"]);
        out.code(4).contains(want);
    }
    let out = p.ferry(&["playbook", "nope.yml", "-i", "inventory"]);
    out.code(5);
}

#[test]
fn inventory_list_graph_and_host() {
    let p = Project::new();
    p.file(
        "hosts.ini",
        "[web]\nweb[1:2] http_port=80\n[db]\ndb1\n[prod:children]\nweb\ndb\n",
    );
    let out = p.ferry(&["inventory", "-i", "hosts.ini", "--list"]);
    out.success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["web"]["hosts"], serde_json::json!(["web1", "web2"]));
    assert_eq!(v["prod"]["children"], serde_json::json!(["web", "db"]));
    assert_eq!(v["_meta"]["hostvars"]["web1"]["http_port"], 80);
    // ansible-inventory's tree, to the character.
    p.ferry(&["inventory", "-i", "hosts.ini", "--graph"])
        .success()
        .contains("@all:\n  |--@ungrouped:\n  |--@prod:\n  |  |--@web:\n  |  |  |--web1\n");
    p.ferry(&["inventory", "-i", "hosts.ini", "--graph", "db"])
        .success()
        .contains("@db:\n  |--db1\n");
    p.ferry(&["inventory", "-i", "hosts.ini", "--graph", "nope"])
        .code(5)
        .contains("valid group name");
    let list = p.ferry(&["inventory", "-i", "hosts.ini", "--list"]);
    assert!(!list.stdout.contains("\"db1\": {}"), "{}", list.stdout);
    p.ferry(&["inventory", "-i", "hosts.ini", "--host", "web2"])
        .success()
        .contains("\"http_port\": 80");
}

#[test]
fn doc_lists_modules_from_their_specs() {
    let p = Project::new();
    let out = p.ferry(&["doc"]);
    out.success();
    for m in [
        "command", "copy", "file", "template", "debug", "set_fact", "assert",
    ] {
        assert!(
            out.stdout.lines().any(|l| l.starts_with(m)),
            "{m} missing from ferry doc"
        );
    }
    p.ferry(&["doc", "ansible.builtin.copy"])
        .success()
        .contains("= dest")
        .contains("validate");
}

#[test]
fn json_output_and_junit_report() {
    let p = Project::new();
    p.file("inventory", INV).file(
        "p.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: hello\n      debug: msg=hi\n    - name: secret\n      debug: msg=s3cret\n      no_log: true\n",
    );
    let out = p.ferry(&[
        "playbook",
        "p.yml",
        "-i",
        "inventory",
        "--output",
        "json",
        "--junit",
        "report.xml",
    ]);
    out.success();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"], "hi");
    // Durations as Ansible's json callback writes them (ISO 8601 UTC, start <= end).
    let d = &v["plays"][0]["tasks"][1]["task"]["duration"];
    let (start, end) = (d["start"].as_str().unwrap(), d["end"].as_str().unwrap());
    assert!(
        start.ends_with('Z') && start.contains('T') && start <= end,
        "{d}"
    );
    assert!(v["plays"][0]["play"]["duration"]["end"].as_str() >= Some(end));
    assert_eq!(v["stats"]["localhost"]["ok"], 2);
    assert!(!out.stdout.contains("s3cret"), "no_log value leaked");
    let xml = p.read("report.xml");
    assert!(xml.contains("<testcase") && xml.contains("[localhost] hello"));
    assert!(!xml.contains("s3cret"));
}

#[test]
fn adhoc_run_and_tags() {
    let p = Project::new();
    p.file("inventory", INV);
    p.ferry(&[
        "run",
        "localhost",
        "-i",
        "inventory",
        "-m",
        "shell",
        "-a",
        "echo adhoc-ok",
    ])
    .success()
    .contains("localhost | CHANGED | rc=0 >>\nadhoc-ok");
    p.ferry(&["run", "localhost", "-i", "inventory", "-m", "ping"])
        .success()
        .contains("localhost | SUCCESS => {");
    p.file(
        "t.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - {debug: {msg: a-task}, tags: [a]}\n    - {debug: {msg: b-task}, tags: [b]}\n    - {debug: {msg: never-task}, tags: [never]}\n",
    );
    let out = p.playbook("t.yml", &["-i", "inventory", "--tags", "b"]);
    out.success();
    assert!(
        out.stdout.contains("b-task")
            && !out.stdout.contains("a-task")
            && !out.stdout.contains("never-task")
    );
    let out = p.playbook("t.yml", &["-i", "inventory", "--list-tasks"]);
    out.success().contains("TAGS: [a]");
}

#[test]
fn includes_imports_meta_run_once_serial_and_free_strategy() {
    let p = Project::new();
    p.file("inventory", "[grp]\nh1\nh2\nh3\n[grp:vars]\nansible_connection=local\n")
        .file("inc.yml", "- name: included for {{ inventory_hostname }}\n  copy: content={{ x }} dest={{ playbook_dir }}/out/inc-{{ inventory_hostname }}\n")
        .file("imp.yml", "- name: imported\n  set_fact: imported=yes\n")
        .file("other.yml", "- hosts: h1\n  gather_facts: false\n  tasks:\n    - copy: content=other dest={{ playbook_dir }}/out/other\n")
        .file(
            "site.yml",
            r#"
- hosts: grp
  gather_facts: false
  serial: [1, 2]
  tasks:
    - file: path={{ playbook_dir }}/out state=directory
      run_once: true
    - include_tasks: inc.yml
      vars:
        x: "{{ inventory_hostname | upper }}"
      when: inventory_hostname != 'h2'
    - import_tasks: imp.yml
    - assert:
        that: imported
    - shell: echo {{ ansible_play_batch | length }} >> {{ playbook_dir }}/out/batches
      run_once: true
    - meta: end_host
      when: inventory_hostname == 'h3'
    - copy: content=after dest={{ playbook_dir }}/out/after-{{ inventory_hostname }}
- import_playbook: other.yml
- hosts: grp
  gather_facts: false
  strategy: free
  tasks:
    - copy: content=free dest={{ playbook_dir }}/out/free-{{ inventory_hostname }}
"#,
        );
    let out = p.playbook("site.yml", &["-i", "inventory"]);
    out.success();
    assert_eq!(p.read("out/inc-h1"), "H1");
    assert!(
        !p.path("out/inc-h2").exists(),
        "include_tasks with a false when must not run"
    );
    assert_eq!(p.read("out/inc-h3"), "H3");
    // serial [1, 2]: a batch of 1 host, then a batch of 2.
    assert_eq!(p.read("out/batches"), "1\n2\n");
    assert!(p.path("out/after-h1").exists() && p.path("out/after-h2").exists());
    assert!(!p.path("out/after-h3").exists(), "meta: end_host");
    assert_eq!(p.read("out/other"), "other");
    for h in ["h1", "h2", "h3"] {
        assert_eq!(p.read(&format!("out/free-{h}")), "free");
    }
    // --start-at-task skips what comes before.
    let out = p.playbook(
        "site.yml",
        &["-i", "inventory", "--start-at-task", "imported", "-l", "h1"],
    );
    out.success();
    assert!(!out.stdout.contains("included for"), "{}", out.stdout);
}

#[test]
fn ansible_cfg_supplies_inventory_and_roles_path() {
    let p = Project::new();
    p.file(
        "ansible.cfg",
        "[defaults]\ninventory = hosts\nroles_path = shared_roles\ngathering = explicit\n",
    )
    .file("hosts", "localhost ansible_connection=local\n")
    .file(
        "shared_roles/hello/tasks/main.yml",
        "- debug: msg=hello-from-shared-role\n",
    )
    .file("p.yml", "- hosts: localhost\n  roles: [hello]\n");
    let out = p.ferry(&["playbook", "p.yml"]);
    out.success().contains("hello-from-shared-role");
    assert!(
        !out.stdout.contains("Gathering Facts"),
        "gathering = explicit"
    );
}

/// `ansible_managed` and the inventory ignore lists come from ansible.cfg.
#[test]
fn ansible_cfg_sets_managed_string_and_inventory_ignores() {
    let p = Project::new();
    p.file(
        "ansible.cfg",
        "[defaults]\ninventory = inv\ngathering = explicit\nansible_managed = Managed: {file}\ninventory_ignore_extensions = .off\n",
    )
    .file("inv/sub/hosts", "localhost ansible_connection=local\n")
    .file("inv/broken.off", "[unclosed\n")
    .file("templates/motd.j2", "# {{ ansible_managed }}\nfrom {{ template_path }}\n")
    .file(
        "p.yml",
        "- hosts: localhost\n  tasks:\n    - template: src=motd.j2 dest={{ playbook_dir }}/motd\n",
    );
    p.ferry(&["playbook", "p.yml"]).success();
    let text = std::fs::read_to_string(p.path("motd")).unwrap();
    assert_eq!(text, "# Managed: motd.j2\nfrom motd.j2\n");
    // Without the setting the broken file is read (`.off` is not ignored by default).
    p.file("ansible.cfg", "[defaults]\ninventory = inv\n");
    p.ferry(&["playbook", "p.yml"])
        .code(4)
        .contains("broken.off:1:1");
}

/// ansible-playbook's connection options: `-c local` runs a host with no
/// connection variable here; `-u` and `--become-user` are defaults the
/// inventory's variables override.
#[test]
fn connection_options_on_the_command_line() {
    let p = Project::new();
    p.file("hosts", "somehost\nother ansible_user=carol\n").file(
        "p.yml",
        "- hosts: all\n  gather_facts: false\n  tasks:\n    - command: echo ran-here\n      register: r\n    - debug: msg=\"{{ inventory_hostname }}={{ r.stdout }}/{{ ansible_user }}/{{ ansible_become_user }}\"\n",
    );
    let out = p.ferry(&[
        "playbook",
        "-i",
        "hosts",
        "-c",
        "local",
        "-u",
        "alice",
        "--become-user",
        "bob",
        "-T",
        "5",
        "p.yml",
    ]);
    out.success()
        .contains("somehost=ran-here/alice/bob")
        .contains("other=ran-here/carol/bob");
}

/// `vars_prompt` without a terminal: nothing is asked (Ansible's warning),
/// the default is used, and `-e` wins.
#[test]
fn vars_prompt_without_a_terminal_uses_defaults_and_extra_vars() {
    let p = Project::new();
    p.file("inventory", INV).file(
        "p.yml",
        "- hosts: localhost\n  gather_facts: false\n  vars_prompt:\n    - name: env\n      prompt: Where\n      default: staging\n    - name: user\n  tasks:\n    - debug: msg=\"{{ env }}/{{ user }}\"\n",
    );
    p.playbook("p.yml", &["-i", "inventory", "-e", "user=ada"])
        .success()
        .contains("Not prompting as we are not in interactive mode")
        .contains("staging/ada");
    p.file(
        "bad.yml",
        "- hosts: localhost\n  vars_prompt:\n    - prompt: no name\n  tasks: []\n",
    );
    p.playbook("bad.yml", &["-i", "inventory"])
        .code(4)
        .contains("bad.yml:3:7: a vars_prompt entry must be a mapping with a name");
}

/// `--force-handlers` runs what was notified before a failure;
/// `--flush-cache` forgets cached facts.
#[test]
fn force_handlers_and_flush_cache_flags() {
    let p = Project::new();
    p.file(
        "ansible.cfg",
        "[defaults]\ngathering = smart\nfact_caching = jsonfile\nfact_caching_connection = cache\n",
    )
    .file("inventory", INV)
    .file("cache/localhost", "{\"ferry_marker\": \"cached\"}")
    .file(
        "p.yml",
        "- hosts: localhost\n  tasks:\n    - debug: msg=\"marker={{ ansible_facts.ferry_marker | default('none') }}\"\n    - command: echo hi\n      notify: h\n    - fail: msg=boom\n  handlers:\n    - name: h\n      copy: content=ran dest={{ playbook_dir }}/handler-ran\n",
    );
    let out = p.playbook("p.yml", &["-i", "inventory"]);
    out.code(2).contains("marker=cached");
    assert!(!p.path("handler-ran").exists());
    let out = p.playbook(
        "p.yml",
        &["-i", "inventory", "--force-handlers", "--flush-cache"],
    );
    out.code(2).contains("marker=none");
    assert!(p.path("handler-ran").exists(), "{}", out.stdout);
    assert!(!p.read("cache/localhost").contains("ferry_marker"));
}

/// What `async` cannot do in ferry fails clearly, on the task.
#[test]
fn async_limits_are_said_on_the_task() {
    let p = Project::new();
    p.file("inventory", INV).file(
        "p.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - copy: content=x dest={{ playbook_dir }}/x\n      async: 10\n      poll: 0\n      ignore_errors: true\n    - command: echo hi\n      async: soon\n",
    );
    let out = p.playbook("p.yml", &["-i", "inventory"]);
    out.code(2)
        .contains("for command and shell only, not copy")
        .contains("async must be a whole number of seconds, got \\\"soon\\\"");
    assert!(!p.path("x").exists());
}

#[test]
fn play_and_role_keywords_reach_tasks_inside_blocks() {
    let p = Project::new();
    p.file("inventory", INV)
        .file("roles/r/tasks/main.yml", "- block:\n    - copy: content=x dest={{ playbook_dir }}/from-role\n")
        .file(
            "p.yml",
            "- hosts: localhost\n  gather_facts: false\n  check_mode: true\n  roles: [r]\n  tasks:\n    - block:\n        - copy: content=x dest={{ playbook_dir }}/from-play\n",
        );
    let out = p.playbook("p.yml", &["-i", "inventory"]);
    out.success();
    assert!(
        !p.path("from-play").exists() && !p.path("from-role").exists(),
        "check_mode of the play must reach block children\n{}",
        out.stdout
    );
    assert_eq!(out.recap("localhost").changed, 2);
}

#[test]
fn task_timeout_stops_a_command_that_hangs() {
    let p = Project::new();
    p.file("inventory", INV).file(
        "p.yml",
        "- hosts: localhost\n  gather_facts: false\n  tasks:\n    - command: sleep 30\n      timeout: 1\n",
    );
    let start = std::time::Instant::now();
    let out = p.playbook("p.yml", &["-i", "inventory"]);
    out.code(2).contains("timed out");
    assert!(
        start.elapsed().as_secs() < 20,
        "the timeout was not enforced"
    );
}
