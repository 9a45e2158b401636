//! Docker on the Debian test hosts (tests/hosts/lab), through ferry over SSH:
//! roles/docker installs and starts Debian's docker.io INSIDE lab-3 (bridge none,
//! no iptables, overlay2 on the host's /var/lib/docker), the docker_* modules
//! talk to it with bollard through a forwarded socket (and a root relay for
//! `become`), and roles/trainer builds the trainer image and trains LDA / MLP
//! on the real EEG data when this machine has it (copied at test time only,
//! never committed), else on synthetic data.
//!
//! The tests share lab-3's engine, so they run one at a time (LOCK).

mod common;

use common::{lab, on_host};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use common::Project;

const HOST: &str = "lab-3";
static LOCK: Mutex<()> = Mutex::new(());

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A project whose inventory has lab-3 in the `trainer` group, with the repo's roles.
fn project(dir: &Path, book: &str) -> Project {
    let p = Project::new();
    p.file(
        "inventory.ini",
        &format!(
            "[trainer]\n{HOST} ansible_user=deploy ansible_ssh_common_args='-F {}/ssh_config'\n",
            dir.display()
        ),
    );
    p.file("site.yml", book);
    std::os::unix::fs::symlink(repo().join("roles"), p.path("roles")).unwrap();
    p
}

fn run(p: &Project, extra: &[&str]) -> common::Out {
    let mut args = vec!["-i", "inventory.ini"];
    args.extend_from_slice(extra);
    p.playbook("site.yml", &args)
}

const DOCKER_VARS: &str =
    "docker_daemon_options: {bridge: none, iptables: false, ip-forward: false, ip-masq: false}";

/// The docker role on lab-3 (idempotent; the first call on a fresh lab installs docker.io).
fn ensure_docker(dir: &Path) {
    let p = project(dir, &format!("- hosts: trainer\n  become: true\n  gather_facts: false\n  vars:\n    {DOCKER_VARS}\n  roles: [docker]\n"));
    run(&p, &[]).success();
}

#[test]
fn docker_role_installs_and_starts_the_engine_inside_the_host() {
    let Some(dir) = lab() else { return };
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let book = format!(
        "- hosts: trainer\n  become: true\n  gather_facts: false\n  vars:\n    {DOCKER_VARS}\n    docker_users: [ferry-dkuser]\n  roles: [docker]\n"
    );
    let p = project(&dir, &book);
    // Check mode changes nothing on the host.
    let before = on_host(&dir, HOST, "cat /etc/docker/daemon.json 2>/dev/null; dpkg-query -W -f='${Status}' docker.io 2>/dev/null; id ferry-dkuser 2>&1");
    let out = run(&p, &["--check"]);
    out.success();
    assert_eq!(on_host(&dir, HOST, "cat /etc/docker/daemon.json 2>/dev/null; dpkg-query -W -f='${Status}' docker.io 2>/dev/null; id ferry-dkuser 2>&1"), before);
    // For real, then idempotent.
    run(&p, &[]).success();
    let again = run(&p, &[]);
    again.success();
    assert_eq!(
        again.recap(HOST).changed,
        0,
        "second run changed something:\n{}",
        again.stdout
    );
    let info = on_host(&dir, HOST, "docker info --format '{{.ServerVersion}} {{.Driver}}'; cat /etc/docker/daemon.json; id -nG ferry-dkuser");
    assert!(info.contains("overlay2"), "{info}");
    assert!(
        info.contains("\"bridge\": \"none\"") && info.contains("\"iptables\": false"),
        "{info}"
    );
    assert!(
        info.split_whitespace().any(|w| w == "docker"),
        "ferry-dkuser not in the docker group: {info}"
    );
    assert!(on_host(&dir, HOST, "pgrep -x dockerd >/dev/null && echo running").contains("running"));
}

/// A tiny rootfs (the controller's dash and libc: both Debian 12) as a tarball.
fn tiny_rootfs(path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    let mut b = tar::Builder::new(f);
    for (src, dst) in [
        ("/usr/bin/dash", "bin/sh"),
        (
            "/lib/x86_64-linux-gnu/libc.so.6",
            "lib/x86_64-linux-gnu/libc.so.6",
        ),
        ("/lib64/ld-linux-x86-64.so.2", "lib64/ld-linux-x86-64.so.2"),
    ] {
        b.append_path_with_name(std::fs::canonicalize(src).unwrap(), dst)
            .unwrap();
    }
    b.finish().unwrap();
}

#[test]
fn docker_modules_build_run_and_stay_idempotent() {
    let Some(dir) = lab() else { return };
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    ensure_docker(&dir);
    let p = project(&dir, "");
    tiny_rootfs(&p.path("tiny.tar"));
    p.file("ctx/Dockerfile", "FROM ferry-dktest/tiny:1\nCOPY msg.txt /msg.txt\nCMD [\"/bin/sh\", \"-c\", \"read l < /msg.txt; echo \\\"out:$l\\\"; echo err-line >&2\"]\n");
    p.file("ctx/msg.txt", "hello\n");
    p.file("ctx/.dockerignore", "*.csv\n");
    p.file("ctx/big.csv", "ignored,1\n");
    let book = r#"
- hosts: trainer
  become: true
  gather_facts: false
  tasks:
    - copy: src=tiny.tar dest=/var/tmp/ferry-dktest-tiny.tar mode=0600
    - community.docker.docker_image:
        name: ferry-dktest/tiny:1
        source: import
        load_path: /var/tmp/ferry-dktest-tiny.tar
      register: imp
    - community.docker.docker_image:
        name: ferry-dktest/app
        source: build
        build:
          path: ctx
          remote: false
          args: {GREETING: "hi"}
      register: img
    - community.docker.docker_container:
        name: ferry-dktest-once
        image: ferry-dktest/app
        network_mode: none
        detach: false
        cleanup: true
      register: once
      when: not ansible_check_mode
    - community.docker.docker_container:
        name: ferry-dktest-daemon
        image: ferry-dktest/app
        command: ["/bin/sh", "-c", "while :; do read x < /msg.txt; done"]
        env: {MODE: "daemon"}
        volumes: ["/var/tmp:/host-tmp:ro"]
        network_mode: none
        restart_policy: "no"
        state: started
      register: daemon
    - community.docker.docker_container_info:
        name: ferry-dktest-daemon
      register: info
    - community.docker.docker_image_info:
        name: ferry-dktest/app
      register: iinfo
    - community.docker.docker_network:
        name: none
    - debug:
        msg: >-
          RESULT imp={{ imp.changed }} img={{ img.changed }} daemon={{ daemon.changed }}
          exists={{ info.exists }}
          {% if not ansible_check_mode %}status={{ once.status }} output={{ once.container.Output | to_json }}
          stdout_kept={{ 'stdout' in once }} labels={{ iinfo.images[0].Config.Labels | to_json }}{% endif %}
"#;
    p.file("site.yml", book);
    // A clean start (the names are this test's own).
    on_host(&dir, HOST, "docker rm -f ferry-dktest-daemon ferry-dktest-once >/dev/null 2>&1; docker rmi -f ferry-dktest/app ferry-dktest/tiny:1 >/dev/null 2>&1; true");

    let check = run(&p, &["--check"]);
    check
        .success()
        .contains("RESULT imp=True img=True daemon=True exists=False");
    assert!(
        on_host(&dir, HOST, "docker images -q ferry-dktest/tiny:1")
            .trim()
            .is_empty(),
        "check mode imported an image"
    );

    let first = run(&p, &[]);
    first
        .success()
        .contains("RESULT imp=True img=True daemon=True exists=True");
    first
        .contains("status=0")
        // container.Output holds both streams; no return values beyond Ansible's.
        .contains(r#"out:hello\\n"#)
        .contains("err-line")
        .contains("stdout_kept=False")
        .contains("ferry.context.sha256");
    let second = run(&p, &[]);
    // The one-shot container always runs (changed); nothing else changes.
    second
        .success()
        .contains("RESULT imp=False img=False daemon=False exists=True");
    assert_eq!(second.recap(HOST).changed, 1, "{}", second.stdout);
    // The ignored file is not in the image; the built-in labels are.
    let ls = on_host(&dir, HOST, "docker inspect -f '{{.HostConfig.NetworkMode}} {{.State.Running}} {{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}}{{end}}' ferry-dktest-daemon");
    assert_eq!(ls.trim(), "none true /var/tmp:/host-tmp:false");
    // A changed option recreates the container; a changed context rebuilds the image.
    p.file(
        "site.yml",
        &book.replace("MODE: \"daemon\"", "MODE: \"other\""),
    );
    let third = run(&p, &[]);
    third
        .success()
        .contains("RESULT imp=False img=False daemon=True");
    p.file("ctx/msg.txt", "changed\n");
    let fourth = run(&p, &[]);
    fourth
        .success()
        .contains("RESULT imp=False img=True daemon=True")
        .contains(r#"out:changed\\n"#);
    p.file("ctx/big.csv", "still ignored,2\n");
    run(&p, &[])
        .success()
        .contains("RESULT imp=False img=False daemon=False");

    // A failing one-shot container fails the task with its output and status.
    let p2 = project(&dir, "");
    p2.file(
        "site.yml",
        "- hosts: trainer\n  become: true\n  gather_facts: false\n  tasks:\n    - docker_container:\n        name: ferry-dktest-fail\n        image: ferry-dktest/app\n        command: [/bin/sh, -c, 'echo boom; exit 3']\n        network_mode: none\n        detach: false\n        cleanup: true\n",
    );
    let f = run(&p2, &[]);
    assert_ne!(f.code, 0);
    f.contains("boom").contains("\"status\": 3");
    // Absent removes; cleanup left nothing behind.
    p2.file(
        "site.yml",
        "- hosts: trainer\n  become: true\n  gather_facts: false\n  tasks:\n    - docker_container: {name: ferry-dktest-daemon, state: absent}\n    - docker_image: {name: ferry-dktest/app, state: absent}\n",
    );
    run(&p2, &[]).success();
    assert_eq!(
        on_host(
            &dir,
            HOST,
            "docker ps -aq --filter name=ferry-dktest | wc -l"
        )
        .trim(),
        "0"
    );
}

/// The trainer base image's rootfs tarball (built once, cached).
fn trainer_base() -> PathBuf {
    let out = Command::new(repo().join("tests/hosts/trainer-base"))
        .output()
        .expect("tests/hosts/trainer-base");
    assert!(
        out.status.success(),
        "trainer-base failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn accuracy(text: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with("accuracy="))
        .unwrap_or_else(|| panic!("no accuracy= line in {text:?}"));
    let a: f64 = line["accuracy=".len()..].trim().parse().unwrap();
    assert!((0.0..=1.0).contains(&a), "{line}");
    a
}

#[test]
fn trainer_builds_the_image_and_trains_lda_and_mlp() {
    let Some(dir) = lab() else { return };
    let _g = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let base = trainer_base();
    // The article's data sits in shared/ beside the checkout (never in the repo).
    let real_dir = std::env::var("FERRY_EEG_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/eeg"));
    let real = real_dir.as_path();
    let data_src = if real.join("train.csv").is_file() && real.join("test.csv").is_file() {
        real.to_string_lossy().into_owned()
    } else {
        String::new()
    };
    let tdir = "/srv/ferry-dktest-trainer";
    let vars = format!(
        "    {DOCKER_VARS}\n    trainer_dir: {tdir}\n    trainer_image: ferry-dktest/trainer\n    trainer_base_image: ferry/trainer-base:bookworm\n    trainer_base_image_tarball: {}\n    trainer_install_requirements: \"0\"\n    trainer_data_src: \"{data_src}\"\n    trainer_tune_max_seconds: 15\n    trainer_tune_n_iter: 4\n    trainer_container_prefix: ferry-dktest\n",
        base.display()
    );
    let book = |scenario: u32| {
        format!(
            "- hosts: trainer\n  become: true\n  gather_facts: false\n  vars:\n{vars}    trainer_scenario: {scenario}\n  roles: [docker, trainer]\n  post_tasks:\n    - debug:\n        msg: \"IMAGE_CHANGED={{{{ trainer_image_build.changed }}}} RESULT={{{{ trainer_result | to_json }}}}\"\n"
        )
    };
    let p = project(&dir, &book(1));
    let t0 = std::time::Instant::now();
    let s1 = run(&p, &[]);
    s1.success().contains("LDA accuracy=");
    eprintln!("scenario 1 (first run): {:.1}s", t0.elapsed().as_secs_f64());
    let result = on_host(&dir, HOST, &format!("cat {tdir}/result.txt"));
    let lda = accuracy(&result);
    assert!(
        s1.stdout.contains(result.trim()),
        "result.txt {result:?} is not the printed accuracy:\n{}",
        s1.stdout
    );
    let models = on_host(&dir, HOST, &format!("ls {tdir}/data/models"));
    assert!(models.contains("lda.joblib"), "{models}");
    let below = lda < 0.80;
    assert!(s1.stdout.contains(if below {
        "BELOW the threshold"
    } else {
        "meets the threshold"
    }));
    if !data_src.is_empty() {
        // The measured value on the real data (roles/trainer/README.md).
        assert!(
            (lda - 0.6915).abs() < 0.02,
            "LDA accuracy on the real data: {lda}"
        );
    }

    // Second run: nothing is rebuilt.
    let t1 = std::time::Instant::now();
    let again = run(&p, &[]);
    again.success().contains("IMAGE_CHANGED=False");
    eprintln!(
        "scenario 1 (second run): {:.1}s",
        t1.elapsed().as_secs_f64()
    );
    assert_eq!(
        accuracy(&on_host(&dir, HOST, &format!("cat {tdir}/result.txt"))),
        lda
    );

    // Scenario 2: the MLP, tuned when below the threshold.
    p.file("site.yml", &book(2));
    let t2 = std::time::Instant::now();
    let s2 = run(&p, &[]);
    s2.success()
        .contains("MLP accuracy=")
        .contains("IMAGE_CHANGED=False");
    eprintln!("scenario 2: {:.1}s", t2.elapsed().as_secs_f64());
    let report = on_host(&dir, HOST, &format!("cat {tdir}/report.json"));
    let r: serde_json::Value = serde_json::from_str(&report).unwrap();
    let nn = r["nn_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&nn));
    let final_line = on_host(&dir, HOST, &format!("cat {tdir}/result.txt"));
    let fin = accuracy(&final_line);
    assert_eq!(r["accuracy"].as_f64().unwrap(), fin);
    let models = on_host(&dir, HOST, &format!("ls {tdir}/data/models"));
    assert!(models.contains("nn.joblib"), "{models}");
    if nn < 0.80 {
        assert_eq!(r["tuned"], serde_json::Value::Bool(true), "{report}");
        assert!(
            r["best_params"]["hidden_layer_sizes"].is_array(),
            "{report}"
        );
        assert!(models.contains("nn-tuned.joblib"), "{models}");
        assert!(s2.stdout.contains("best_params="), "{}", s2.stdout);
    }
    if !data_src.is_empty() {
        assert!(
            (nn - 0.6554).abs() < 0.02,
            "MLP accuracy on the real data: {nn}"
        );
    }
    eprintln!("accuracies: LDA {lda}, MLP {nn}, final {fin} ({report})");
}
