//! Ansible Vault compatibility and secrecy, through the `ferry` binary.
//! Fixtures in tests/fixtures/vault were made by the real ansible-vault (see
//! its README); when `ansible-vault` is installed the reverse direction
//! (ferry encrypts, ansible-vault decrypts) is checked live too.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::Project;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vault")
}

/// A project holding copies of the vault fixtures.
fn project() -> Project {
    let p = Project::new();
    for e in std::fs::read_dir(fixtures()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), p.path(&e.file_name().to_string_lossy())).unwrap();
    }
    p
}

fn ansible_vault() -> Option<PathBuf> {
    let mut cands: Vec<PathBuf> = std::env::var_os("FERRY_ANSIBLE_VAULT")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    cands.push("/tmp/ansible-venv/bin/ansible-vault".into());
    if let Ok(path) = std::env::var("PATH") {
        cands.extend(std::env::split_paths(&path).map(|d| d.join("ansible-vault")));
    }
    cands.into_iter().find(|p| p.is_file())
}

#[test]
fn views_files_ansible_vault_wrote() {
    let p = project();
    p.ferry(&[
        "vault",
        "view",
        "--vault-password-file",
        "password",
        "file_default.yml",
    ])
    .success()
    .contains("vault_db_password: hunter2\nvault_list: [a, b]\n");
    // 1.2 header with a vault id.
    p.ferry(&[
        "vault",
        "view",
        "--vault-id",
        "prod@password_prod",
        "file_prod.yml",
    ])
    .success()
    .contains("prod_token: \"tok-prod-42\"");
    // Decrypt in place, then encrypt again: same plaintext.
    p.ferry(&[
        "vault",
        "decrypt",
        "--vault-password-file",
        "password",
        "file_default.yml",
    ])
    .success();
    assert_eq!(
        p.read("file_default.yml"),
        "vault_db_password: hunter2\nvault_list: [a, b]\n"
    );
    p.ferry(&[
        "vault",
        "encrypt",
        "--vault-password-file",
        "password",
        "file_default.yml",
    ])
    .success();
    assert!(p
        .read("file_default.yml")
        .starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
    // Already encrypted / not encrypted are refused.
    p.ferry(&[
        "vault",
        "encrypt",
        "--vault-password-file",
        "password",
        "file_default.yml",
    ])
    .code(5)
    .contains("already encrypted");
    p.ferry(&[
        "vault",
        "decrypt",
        "--vault-password-file",
        "password",
        "README.md",
    ])
    .code(5)
    .contains("not vault encrypted");
}

#[test]
fn playbook_reads_vaulted_vars_files_and_inline_values() {
    let p = project();
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  vars_files: [file_default.yml, file_prod.yml, vars_inline.yml, made_by_ferry_string.yml]
  tasks:
    - debug:
        msg: "{{ vault_db_password }}|{{ prod_token }}|{{ inline_secret }}|{{ plain_var }}|{{ ferry_string }}|{{ vault_list | join(',') }}"
"#,
    );
    let args = [
        "playbook",
        "site.yml",
        "--vault-password-file",
        "password",
        "--vault-id",
        "prod@password_prod",
    ];
    // Vault values are masked in output by default (values under 4 characters are not).
    p.ferry(&args)
        .success()
        .contains("\"msg\": \"********|********|********|visible|********|a,b\"");
    p.ferry_env(&args, &[("FERRY_SHOW_VAULT_VALUES", "1")])
        .success()
        .contains("\"msg\": \"hunter2|tok-prod-42|inline_secret|visible|ferry made this|a,b\"");
}

#[test]
fn vaulted_copy_and_template_sources_and_file_lookups_with_the_password_from_ansible_cfg() {
    let p = project();
    p.file(
        "ansible.cfg",
        "[defaults]\nvault_password_file = password\n",
    );
    p.file("files/secret.txt", "top secret\n");
    p.file("templates/conf.j2", "token={{ token }}\n");
    // Encrypted with ferry's own CLI; the password comes from ansible.cfg.
    p.ferry(&["vault", "encrypt", "files/secret.txt", "templates/conf.j2"])
        .success();
    assert!(p
        .read("files/secret.txt")
        .starts_with("$ANSIBLE_VAULT;1.1;AES256"));
    p.file(
        "site.yml",
        r#"
- hosts: localhost
  gather_facts: false
  vars:
    token: t-42
  tasks:
    - copy: src=secret.txt dest={{ playbook_dir }}/out/copied.txt
    - template: src=conf.j2 dest={{ playbook_dir }}/out/conf
    - copy:
        content: "{{ lookup('file', 'secret.txt') }}"
        dest: "{{ playbook_dir }}/out/looked-up.txt"
    - copy: src=secret.txt dest={{ playbook_dir }}/out/still-vaulted.txt decrypt=no
"#,
    );
    std::fs::create_dir_all(p.path("out")).unwrap();
    p.playbook("site.yml", &[]).success();
    assert_eq!(p.read("out/copied.txt"), "top secret\n");
    assert_eq!(p.read("out/conf"), "token=t-42\n");
    assert_eq!(p.read("out/looked-up.txt"), "top secret");
    assert!(p
        .read("out/still-vaulted.txt")
        .starts_with("$ANSIBLE_VAULT;"));
    // Without the password the task fails and names the file.
    p.file("ansible.cfg", "[defaults]\n");
    let out = p.playbook("site.yml", &[]);
    out.code(2).contains("secret.txt: vault-encrypted file");
}

#[test]
fn missing_and_wrong_passwords_name_the_place() {
    let p = project();
    p.file("inline.yml", "- hosts: localhost\n  gather_facts: false\n  vars_files: [vars_inline.yml]\n  tasks: [{debug: {var: inline_secret}}]\n");
    p.file("whole.yml", "- hosts: localhost\n  gather_facts: false\n  vars_files: [file_default.yml]\n  tasks: [{debug: {var: vault_db_password}}]\n");
    p.file("wrong", "not-the-password\n");
    let none = p.playbook("inline.yml", &[]);
    none.code(4).contains("vars_inline.yml:2:1: cannot decrypt the !vault value of 'inline_secret': Attempting to decrypt but no vault secrets found");
    let wrong = p.playbook("inline.yml", &["--vault-password-file", "wrong"]);
    wrong.code(4).contains("vars_inline.yml:2:1: cannot decrypt the !vault value of 'inline_secret': Decryption failed");
    p.playbook("whole.yml", &[]).code(4).contains("file_default.yml:1:1: vault-encrypted file: Attempting to decrypt but no vault secrets found");
    let w = p.playbook("whole.yml", &["--vault-password-file", "wrong"]);
    w.code(4)
        .contains("file_default.yml:1:1: vault-encrypted file: Decryption failed");
    // The wrong password itself is never echoed.
    assert!(!w.stdout.contains("not-the-password") && !w.stderr.contains("not-the-password"));
    // A missing password file is a usage error.
    p.playbook("whole.yml", &["--vault-password-file", "nope"])
        .code(5)
        .contains("The vault password file nope was not found");
    // -e @vaulted-file works too, and an -e file that fails says where.
    p.ferry(&["playbook", "whole.yml", "-e", "@vars_inline.yml"])
        .code(4)
        .contains("vars_inline.yml:2:1");
}

#[test]
fn password_script_and_prompt_on_stdin() {
    use std::os::unix::fs::PermissionsExt;
    let p = project();
    // An executable password file: its stdout is the password (Ansible's rule).
    p.file("pw.sh", "#!/bin/sh\necho ferry-vault-pw\n");
    std::fs::set_permissions(p.path("pw.sh"), std::fs::Permissions::from_mode(0o700)).unwrap();
    p.ferry(&[
        "vault",
        "view",
        "--vault-password-file",
        "pw.sh",
        "file_default.yml",
    ])
    .success()
    .contains("hunter2");
    // A failing script is a clear error.
    p.file("bad.sh", "#!/bin/sh\nexit 3\n");
    std::fs::set_permissions(p.path("bad.sh"), std::fs::Permissions::from_mode(0o700)).unwrap();
    p.ferry(&[
        "vault",
        "view",
        "--vault-password-file",
        "bad.sh",
        "file_default.yml",
    ])
    .code(5)
    .contains("returned non-zero (3)");
    // --ask-vault-pass (-J) reads one line of stdin when it is not a terminal.
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["vault", "view", "-J", "file_default.yml"])
        .current_dir(p.dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"ferry-vault-pw\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hunter2"),
        "{out:?}"
    );
}

#[test]
fn encrypt_string_block_round_trips() {
    let p = project();
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "vault",
            "encrypt_string",
            "--vault-password-file",
            "password",
            "--name",
            "api_key",
            "k-123 $(x) 'q'",
        ])
        .current_dir(p.dir.path())
        .output()
        .unwrap();
    let block = String::from_utf8(out.stdout).unwrap();
    assert!(
        block.starts_with("api_key: !vault |\n          $ANSIBLE_VAULT;1.1;AES256\n          "),
        "{block}"
    );
    assert!(block
        .lines()
        .skip(2)
        .all(|l| l.len() <= 90 && l.starts_with("          ")));
    p.file("vars.yml", &block);
    p.file("site.yml", "- hosts: localhost\n  gather_facts: false\n  vars_files: [vars.yml]\n  tasks: [{debug: {var: api_key}}]\n");
    p.playbook("site.yml", &["--vault-password-file", "password"])
        .success()
        .contains("\"api_key\": \"********\"");
    p.ferry_env(
        &["playbook", "site.yml", "--vault-password-file", "password"],
        &[("FERRY_SHOW_VAULT_VALUES", "1")],
    )
    .success()
    .contains("\"api_key\": \"k-123 $(x) 'q'\"");
    // Two strings, both named; with several secrets --encrypt-vault-id chooses.
    let two = p.ferry(&[
        "vault",
        "encrypt_string",
        "--vault-password-file",
        "password",
        "--vault-id",
        "prod@password_prod",
        "a",
        "b",
    ]);
    two.code(5).contains("--encrypt-vault-id");
    let two = p.ferry(&[
        "vault",
        "encrypt_string",
        "--vault-password-file",
        "password",
        "--vault-id",
        "prod@password_prod",
        "--encrypt-vault-id",
        "prod",
        "-n",
        "x",
        "-n",
        "y",
        "a",
        "b",
    ]);
    two.success();
    assert!(
        two.stdout
            .starts_with("x: !vault |\n          $ANSIBLE_VAULT;1.2;AES256;prod\n"),
        "{}",
        two.stdout
    );
    assert!(two.stdout.contains("\ny: !vault |\n"), "{}", two.stdout);
}

#[test]
fn create_and_edit_use_a_private_temp_file() {
    use std::os::unix::fs::PermissionsExt;
    let p = project();
    // The "editor" records its file's mode and directory mode, then writes new content.
    let log = p.path("editor.log");
    p.file(
        "ed.sh",
        &format!("#!/bin/sh\nstat -c '%a' \"$1\" \"$(dirname \"$1\")\" >> {}\necho \"$1\" >> {}\nprintf 'edited: 1\\n' > \"$1\"\n", log.display(), log.display()),
    );
    std::fs::set_permissions(p.path("ed.sh"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .current_dir(p.dir.path())
            .env("EDITOR", p.path("ed.sh"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    };
    run(&[
        "vault",
        "create",
        "--vault-password-file",
        "password",
        "new.yml",
    ]);
    assert!(p.read("new.yml").starts_with("$ANSIBLE_VAULT;1.1;AES256\n"));
    assert_eq!(
        std::fs::metadata(p.path("new.yml"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    run(&[
        "vault",
        "edit",
        "--vault-id",
        "prod@password_prod",
        "file_prod.yml",
    ]);
    // The vault id of the file is kept.
    assert!(p
        .read("file_prod.yml")
        .starts_with("$ANSIBLE_VAULT;1.2;AES256;prod\n"));
    p.ferry(&[
        "vault",
        "view",
        "--vault-id",
        "prod@password_prod",
        "file_prod.yml",
    ])
    .success()
    .contains("edited: 1");
    let lines: Vec<String> = p.read("editor.log").lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    for chunk in lines.chunks(3) {
        assert_eq!(
            (chunk[0].as_str(), chunk[1].as_str()),
            ("600", "700"),
            "{lines:?}"
        );
        // The plaintext copy is gone afterwards, directory and all.
        assert!(
            !Path::new(&chunk[2]).exists() && !Path::new(&chunk[2]).parent().unwrap().exists(),
            "{}",
            chunk[2]
        );
    }
    // No temp files next to the edited file either.
    let stray: Vec<_> = std::fs::read_dir(p.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("ferry-tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

/// ferry's output decrypts with the real ansible-vault (when installed).
#[test]
fn ansible_vault_reads_what_ferry_wrote() {
    let Some(av) = ansible_vault() else {
        eprintln!("skipping the live half: ansible-vault not found (checked-in fixtures made_by_ferry*.yml were verified with it once)");
        return;
    };
    let p = project();
    p.file("plain.yml", "k: v\nlist: [1, 2]\n");
    p.ferry(&[
        "vault",
        "encrypt",
        "--vault-password-file",
        "password",
        "plain.yml",
    ])
    .success();
    p.file("id.yml", "x: 1\n");
    p.ferry(&[
        "vault",
        "encrypt",
        "--vault-id",
        "dev@password_prod",
        "id.yml",
    ])
    .success();
    for (file, args, want) in [
        (
            "plain.yml",
            vec!["--vault-password-file", "password"],
            "k: v\nlist: [1, 2]\n",
        ),
        ("id.yml", vec!["--vault-id", "dev@password_prod"], "x: 1\n"),
        (
            "made_by_ferry.yml",
            vec!["--vault-password-file", "password"],
            "ferry_made: \"written by ferry vault encrypt\"\n",
        ),
    ] {
        let out = Command::new(&av)
            .arg("view")
            .args(&args)
            .arg(file)
            .current_dir(p.dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{file}: {out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), want, "{file}");
    }
}

/// The vault password is in no process's arguments or environment while ferry
/// runs, nor in its output at -vvv with trace logging, nor in temp files.
#[test]
fn vault_password_never_leaks_locally() {
    let p = Project::new();
    // A password no other test uses, so a hit can only come from this run.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let pw = format!("leakcheck-{}-{nanos}", std::process::id());
    p.file("pw", &format!("{pw}\n"));
    p.file("secrets.yml", "db_pass: hunter2\n");
    p.ferry(&[
        "vault",
        "encrypt",
        "--vault-password-file",
        "pw",
        "secrets.yml",
    ])
    .success();
    p.file(
        "site.yml",
        &format!(
            r#"
- hosts: localhost
  gather_facts: false
  vars_files: [secrets.yml]
  tasks:
    - command: sleep 1.5
    - shell: env
      register: e
    - assert:
        that: "'{pw}' not in e.stdout and db_pass == 'hunter2'"
"#
        ),
    );
    let started = std::time::SystemTime::now();
    let child = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args([
            "playbook",
            "site.yml",
            "--vault-password-file",
            "pw",
            "-vvv",
        ])
        .current_dir(p.dir.path())
        .env("FERRY_LOG", "trace")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = String::new();
    for _ in 0..12 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        // Every process's argv and environment (we are root: all are readable).
        for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
            for f in ["cmdline", "environ"] {
                if let Ok(b) = std::fs::read(e.path().join(f)) {
                    seen.push_str(&String::from_utf8_lossy(&b).replace('\0', " "));
                    seen.push('\n');
                }
            }
        }
    }
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        seen.contains("sleep 1.5"),
        "the sampler did not see the task run"
    );
    assert!(
        !seen.contains(&pw),
        "vault password in a process's argv or environment"
    );
    assert!(
        !stdout.contains(&pw) && !stderr.contains(&pw),
        "vault password in the output"
    );
    // No file written during the run in the temp dir holds it.
    let tmp = std::env::temp_dir();
    let mut checked = 0;
    for e in walk(&tmp, 3) {
        let Ok(m) = std::fs::metadata(&e) else {
            continue;
        };
        if m.is_file() && m.len() < 1 << 20 && m.modified().map(|t| t >= started).unwrap_or(false) {
            checked += 1;
            if let Ok(b) = std::fs::read(&e) {
                assert!(
                    !String::from_utf8_lossy(&b).contains(&pw) || e == p.path("pw"),
                    "vault password in temp file {}",
                    e.display()
                );
            }
        }
    }
    eprintln!("checked {checked} recent temp files");
}

fn walk(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() && depth > 0 => out.extend(walk(&path, depth - 1)),
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
    out
}

#[test]
fn vaulted_group_vars_and_inline_values_in_yaml_inventories() {
    let p = project();
    std::fs::create_dir_all(p.path("group_vars/all")).unwrap();
    std::fs::copy(
        p.path("file_default.yml"),
        p.path("group_vars/all/vault.yml"),
    )
    .unwrap();
    let block = std::fs::read_to_string(p.path("string_default.vault")).unwrap();
    // `secret: !vault |` indented under the host.
    let indented: String = block.lines().map(|l| format!("        {l}\n")).collect();
    p.file(
        "hosts.yml",
        &format!("all:\n  hosts:\n    localhost:\n        ansible_connection: local\n{indented}"),
    );
    p.ferry(&[
        "inventory",
        "-i",
        "hosts.yml",
        "--host",
        "localhost",
        "--vault-password-file",
        "password",
    ])
    .success()
    .contains("\"secret\": \"s3cret value\\n\"")
    .contains("\"vault_db_password\": \"hunter2\"");
    p.ferry(&["inventory", "-i", "hosts.yml", "--list"])
        .code(4)
        .contains("hosts.yml:5:9: cannot decrypt the !vault value of 'secret'");
}
