//! The article's Jenkins server on a Debian test host (lab-1), over SSH: the
//! java, jenkins, sudoers, firewall and jenkins_jobs roles, and the jenkins_*
//! modules.
//!
//! Jenkins itself cannot be downloaded here, so Jenkins is a TEST DOUBLE:
//! tests/doubles/jenkins-deb builds a stand-in `jenkins` package whose server
//! is tests/doubles/jenkins-api/jenkins-api-double (a bash responder for the
//! parts of Jenkins' REST API the modules use), publishes it in a signed
//! local APT repository laid out like pkg.jenkins.io's, and serves it on the
//! host's loopback (127.0.0.1:8089). The jenkins role's repository, key,
//! package, service, settings, setup-wizard and plugin tasks run unchanged
//! against it. Java, sudo and ufw are Debian's real packages.

mod common;

use common::{lab, on_host, ssh_status};

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::Project;

const HOST: &str = "lab-1";

/// Copies tests/doubles to `dest` on the host (tar over ssh).
fn copy_doubles(dir: &Path, host: &str, dest: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/doubles");
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&src)
        .args(["-cf", "-", "."])
        .output()
        .expect("tar");
    assert!(tar.status.success());
    let mut ssh = Command::new("ssh")
        .args([
            "-F",
            &dir.join("ssh_config").to_string_lossy(),
            "-o",
            "BatchMode=yes",
            &format!("root@{host}"),
        ])
        .arg(format!(
            "rm -rf {dest} && mkdir -p {dest} && tar -C {dest} -xf -"
        ))
        .stdin(Stdio::piped())
        .spawn()
        .expect("ssh");
    ssh.stdin.take().unwrap().write_all(&tar.stdout).unwrap();
    assert!(
        ssh.wait().unwrap().success(),
        "copying the doubles to {host}"
    );
}

fn project(dir: &Path, book: &str) -> Project {
    let p = Project::new();
    p.file(
        "inventory.ini",
        &std::fs::read_to_string(dir.join("hosts.ini")).unwrap(),
    );
    p.file("site.yml", book);
    p
}

/// `ferry playbook` with the repository's roles and an absolute playbook path.
fn play(p: &Project, extra: &[&str]) -> common::Out {
    let roles = Path::new(env!("CARGO_MANIFEST_DIR")).join("roles");
    let book = p.path("site.yml");
    let mut args = vec![
        "-i",
        "inventory.ini",
        "-l",
        HOST,
        "--roles-path",
        roles.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    p.playbook(book.to_str().unwrap(), &args)
}

const REPO_DIR: &str = "/srv/ferry-jenkins-double";

/// A clean host: no Jenkins, no rule, no firewall; the stand-in repository
/// built (with a fresh throwaway key) and served on 127.0.0.1:8089.
fn prepare(dir: &Path) {
    let reset = r#"
        service jenkins stop >/dev/null 2>&1
        # Other tests may hold the dpkg lock: wait for it.
        DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 purge -y -q jenkins >/dev/null 2>&1
        userdel jenkins >/dev/null 2>&1; groupdel jenkins >/dev/null 2>&1
        rm -rf /var/lib/jenkins /var/log/jenkins /etc/default/jenkins /etc/apt/sources.list.d/jenkins.list \
               /usr/share/keyrings/jenkins-keyring.asc /etc/sudoers.d/jenkins /srv/ferry-jenkins-mlops \
               /var/lib/apt/lists/127.0.0.1_*
        if command -v ufw >/dev/null; then ufw --force reset >/dev/null 2>&1; ufw --force disable >/dev/null 2>&1; fi
        [ -f /srv/ferry-jenkins-double/repo/.serve.pid ] && kill "$(cat /srv/ferry-jenkins-double/repo/.serve.pid)" 2>/dev/null
        # The lab's apt proxy only reaches Debian's archive: the local repository is direct.
        echo 'Acquire::http::Proxy::127.0.0.1 "DIRECT";' > /etc/apt/apt.conf.d/02ferry-jenkins-double
        true
    "#;
    on_host(dir, HOST, reset);
    let status = on_host(
        dir,
        HOST,
        "dpkg-query -W -f '${Status}' jenkins 2>/dev/null",
    );
    assert_ne!(
        status.trim(),
        "install ok installed",
        "jenkins is still installed on {HOST}"
    );
    copy_doubles(dir, HOST, &format!("{REPO_DIR}/src"));
    let built = on_host(
        dir,
        HOST,
        &format!("{REPO_DIR}/src/jenkins-deb/build-repo.sh {REPO_DIR}/repo >/dev/null && {REPO_DIR}/src/jenkins-deb/serve-repo.sh start {REPO_DIR}/repo && curl -sf http://127.0.0.1:8089/debian-stable/binary/Release >/dev/null && echo served"),
    );
    assert_eq!(
        built.trim(),
        "served",
        "the stand-in repository is not served on {HOST}"
    );
}

const ADMIN_PASSWORD: &str = "ferry-Adm1n's pw";

fn site(plugins_url: &str) -> String {
    format!(
        r#"
- hosts: {HOST}
  become: true
  vars:
    # The stand-in repository (TEST DOUBLE of pkg.jenkins.io) on the host.
    jenkins_repo_url: http://127.0.0.1:8089/debian-stable
    jenkins_repo_key_url: http://127.0.0.1:8089/debian-stable/jenkins.io-2023.key
    jenkins_java_options: -Djava.awt.headless=true -Xmx512m
    jenkins_skip_setup_wizard: true
    jenkins_admin_username: ferry-admin
    jenkins_admin_password: "{ADMIN_PASSWORD}"
    jenkins_start_delay: 1
    jenkins_plugins:
      - git
      - name: email-ext
        version: "2.100"
    jenkins_plugin_updates_url: ["{plugins_url}"]
    jenkins_jobs_repo_url: https://git.example.com/mlops/eeg-letters.git
    jenkins_jobs_deploy_dir: /srv/ferry-jenkins-mlops
    jenkins_jobs_notify_email: ml-team@example.com
  roles:
    - java
    - jenkins
    - sudoers
    - firewall
    - jenkins_jobs
"#
    )
}

/// GET from the Jenkins (double) on the host, as the admin the role created.
fn api(dir: &Path, path: &str) -> String {
    on_host(dir, HOST, &format!("printf 'user = \"ferry-admin:%s\"\\n' \"$(cat /tmp/ferry-jenkins-pw)\" | curl -s -K - http://127.0.0.1:8080{path}"))
}

#[test]
fn jenkins_server_roles_end_to_end() {
    let Some(dir) = lab() else { return };
    prepare(&dir);
    on_host(
        &dir,
        HOST,
        &format!(
            "printf '%s' '{}' > /tmp/ferry-jenkins-pw",
            ADMIN_PASSWORD.replace('\'', "'\\''")
        ),
    );
    let p = project(&dir, &site("http://127.0.0.1:8080/ferry-double/updates"));

    let first = play(&p, &[]);
    first.success();
    let r = first.recap(HOST);
    assert!(r.changed > 10 && r.failed == 0, "{r:?}\n{}", first.stdout);
    assert!(
        !first.stdout.contains(ADMIN_PASSWORD),
        "the admin password was printed"
    );

    // java: the JRE from Debian's archive runs.
    let java = on_host(&dir, HOST, "java -version 2>&1");
    assert!(java.contains("openjdk version \"17"), "{java}");

    // jenkins: the package from the signed repository, port and JVM options
    // in /etc/default/jenkins (no systemd on the lab hosts), started with them.
    assert!(on_host(&dir, HOST, "cat /etc/apt/sources.list.d/jenkins.list").contains("deb [signed-by=/usr/share/keyrings/jenkins-keyring.asc] http://127.0.0.1:8089/debian-stable binary/"));
    assert_eq!(
        on_host(&dir, HOST, "dpkg-query -W -f '${Status}' jenkins"),
        "install ok installed"
    );
    let runtime = on_host(&dir, HOST, "cat /var/lib/jenkins/ferry-double/runtime.env");
    assert!(runtime.contains("port=8080\n"), "{runtime}");
    assert!(
        runtime.contains(
            "java_args=-Djava.awt.headless=true -Xmx512m -Djenkins.install.runSetupWizard=false\n"
        ),
        "{runtime}"
    );
    assert_eq!(
        on_host(
            &dir,
            HOST,
            "stat -c '%U %a' /var/lib/jenkins/init.groovy.d/basic-security.groovy"
        )
        .trim(),
        "jenkins 600"
    );
    let me = api(&dir, "/whoAmI/api/json");
    assert!(me.contains("\"name\":\"ferry-admin\""), "{me}");
    // Plugins: git from the update centre with its dependencies, email-ext pinned to a version.
    let plugins = api(&dir, "/pluginManager/api/json?depth=1");
    for want in [
        "\"shortName\":\"git\"",
        "\"shortName\":\"git-client\"",
        "\"shortName\":\"email-ext\",\"longName\":\"email-ext\",\"version\":\"2.100\"",
    ] {
        assert!(plugins.contains(want), "{want} not in {plugins}");
    }

    // sudoers: exactly the narrow rule.
    let sudo = on_host(&dir, HOST, "sudo -l -U jenkins");
    let rules: Vec<&str> = sudo
        .lines()
        .skip_while(|l| !l.contains("may run the following commands"))
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(rules, vec!["(root) NOPASSWD: /usr/bin/docker"], "{sudo}");
    // As community.general.sudoers writes it (no space before the tag).
    assert_eq!(
        on_host(&dir, HOST, "cat /etc/sudoers.d/jenkins"),
        "jenkins ALL=(root)NOPASSWD: /usr/bin/docker\n"
    );

    // firewall: ufw active with SSH and Jenkins allowed; SSH still works.
    let ufw = on_host(&dir, HOST, "ufw status");
    assert!(ufw.contains("Status: active"), "{ufw}");
    for port in ["22/tcp", "8080/tcp"] {
        assert!(
            ufw.lines()
                .any(|l| l.starts_with(port) && l.contains("ALLOW")),
            "{port} not allowed:\n{ufw}"
        );
    }
    assert_eq!(
        ssh_status(&dir, HOST, "true"),
        0,
        "SSH broke after ufw was enabled"
    );

    // jenkins_jobs: the jobs exist, with the rendered XML.
    let jobs = api(&dir, "/api/json");
    for job in ["download", "train-lda", "train-nn", "mlops-pipeline"] {
        assert!(
            jobs.contains(&format!("\"name\":\"{job}\"")),
            "{job} missing: {jobs}"
        );
    }
    let download = api(&dir, "/job/download/config.xml");
    assert!(
        download.contains("<url>https://git.example.com/mlops/eeg-letters.git</url>"),
        "{download}"
    );
    assert!(
        download.contains("<childProjects>train-lda, train-nn</childProjects>")
            && download.contains("<name>SUCCESS</name>")
    );
    assert!(download.contains("DEST=/srv/ferry-jenkins-mlops"));
    let lda = api(&dir, "/job/train-lda/config.xml");
    assert!(
        lda.contains(
            "sudo -n /usr/bin/docker run --rm --network none -v \"$DATA:/data\" ferry/trainer"
        ),
        "{lda}"
    );
    assert!(
        lda.contains("train-lda.py --model-dir /data/models")
            && lda.contains("<unstableReturn>3</unstableReturn>")
    );
    assert!(
        lda.contains("exit !(a &lt; t)")
            && lda.contains("<recipientList>ml-team@example.com</recipientList>")
    );
    let nn = api(&dir, "/job/train-nn/config.xml");
    assert!(
        nn.contains("train-auto-nn.py") && nn.contains("--max-seconds 120"),
        "{nn}"
    );
    let pipeline = api(&dir, "/job/mlops-pipeline/config.xml");
    assert!(
        pipeline.contains("<flow-definition")
            && pipeline.contains("pipeline {")
            && pipeline.contains("stage('Train LDA')"),
        "{pipeline}"
    );
    assert_eq!(
        on_host(&dir, HOST, "stat -c '%U' /srv/ferry-jenkins-mlops").trim(),
        "jenkins"
    );

    // Converged: check mode and a second run change nothing.
    let check = play(&p, &["--check"]);
    check.success();
    assert_eq!(check.recap(HOST).changed, 0, "{}", check.stdout);
    let second = play(&p, &[]);
    second.success();
    assert_eq!(second.recap(HOST).changed, 0, "{}", second.stdout);

    // The article's rule is an opt-in; in check mode it is reported, not written.
    let all = project(&dir, &format!("- hosts: {HOST}\n  become: true\n  vars:\n    sudoers_jenkins_all: true\n  roles: [sudoers]\n"));
    let opt_in = play(&all, &["--check"]);
    opt_in.success();
    assert_eq!(opt_in.recap(HOST).changed, 1, "{}", opt_in.stdout);
    assert_eq!(
        on_host(&dir, HOST, "cat /etc/sudoers.d/jenkins"),
        "jenkins ALL=(root)NOPASSWD: /usr/bin/docker\n"
    );

    // jenkins_jobs_state: absent deletes the jobs (the deploy directory stays).
    let gone = project(
        &dir,
        &format!(
            "- hosts: {HOST}\n  gather_facts: false\n  vars:\n    jenkins_jobs_state: absent\n    jenkins_jobs_user: ferry-admin\n    jenkins_jobs_password: \"{ADMIN_PASSWORD}\"\n  roles: [jenkins_jobs]\n"
        ),
    );
    let removed = play(&gone, &[]);
    removed.success();
    assert_eq!(removed.recap(HOST).changed, 2, "{}", removed.stdout);
    assert!(api(&dir, "/api/json").contains("\"jobs\":[]"));

    // Leave lab-1 as other tests expect it: no firewall, no Jenkins running.
    on_host(&dir, HOST, &format!("ufw --force disable >/dev/null; service jenkins stop >/dev/null; {REPO_DIR}/src/jenkins-deb/serve-repo.sh stop {REPO_DIR}/repo; rm -f /tmp/ferry-jenkins-pw /etc/apt/sources.list.d/jenkins.list /var/lib/apt/lists/127.0.0.1_*"));
}

/// The modules against the API double run by hand (not the package) on its
/// own port: check mode, change, no change; folders, builds, scripts, plugins.
#[test]
fn jenkins_modules_against_the_api_double() {
    let Some(dir) = lab() else { return };
    let base = "/srv/ferry-jenkins-modules";
    copy_doubles(&dir, HOST, &format!("{base}/src"));
    let started = on_host(
        &dir,
        HOST,
        &format!(
            "[ -f {base}/pid ] && kill $(cat {base}/pid) 2>/dev/null; rm -rf {base}/home; mkdir -p {base}/home/secrets && echo s3cret > {base}/home/secrets/initialAdminPassword && \
             (JENKINS_DOUBLE_STARTUP_SECONDS=0 setsid {base}/src/jenkins-api/jenkins-api-double serve --port 18081 --home {base}/home </dev/null >{base}/log 2>&1 & echo $! > {base}/pid) && \
             for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:18081/login && break; sleep 0.1; done; echo up"
        ),
    );
    assert_eq!(started.trim(), "up");
    let book = format!(
        r#"
- hosts: {HOST}
  gather_facts: false
  vars:
    j: &j
      url: http://127.0.0.1:18081
      user: admin
      password: s3cret
  tasks:
    - community.general.jenkins_job:
        <<: *j
        name: team
        config: <com.cloudbees.hudson.plugins.folder.Folder><description>team</description></com.cloudbees.hudson.plugins.folder.Folder>
    - community.general.jenkins_job:
        <<: *j
        name: team/nightly
        config: "{{{{ lookup('template', 'job.xml.j2') }}}}"
    # Created enabled, then disabled: a config and `enabled` for the same job
    # disagree on <disabled>, so later runs skip the creation (tag).
    - community.general.jenkins_job:
        <<: *j
        name: team/old
        config: <project><disabled>false</disabled></project>
      tags: [create-old]
    - community.general.jenkins_job:
        <<: *j
        name: team/old
        enabled: false
      when: not ansible_check_mode
    - community.general.jenkins_build:
        <<: *j
        name: team/nightly
        args: {{DATA: /srv/data}}
        time_between_checks: 1
      register: build
      when: not ansible_check_mode
    - assert:
        that:
          - build.build_info.result == 'SUCCESS'
          - build.build_info.actions[0].parameters[0].value == '/srv/data'
      when: not ansible_check_mode and build is changed
    - community.general.jenkins_script:
        <<: *j
        script: println "hello $who"
        args: {{who: ferry}}
      register: script
    - assert:
        that: script.output == 'hello ferry\n'
      when: not ansible_check_mode
    - community.general.jenkins_plugin:
        name: timestamper
        url: http://127.0.0.1:18081
        url_username: admin
        url_password: s3cret
        jenkins_home: {base}/home
        owner: root
        group: root
      become: true
"#
    );
    let p = project(&dir, &book);
    p.file("templates/job.xml.j2", "<?xml version='1.1' encoding='UTF-8'?>\n<project>\n  <description>nightly on {{ inventory_hostname }}</description>\n  <disabled>false</disabled>\n  <builders>\n    <hudson.tasks.Shell>\n      <command>echo {{ 'a < b' | e }}</command>\n    </hudson.tasks.Shell>\n  </builders>\n</project>\n");
    let book_path = p.path("site.yml");
    let run = |extra: &[&str]| {
        let mut args = vec!["-i", "inventory.ini", "-l", HOST];
        args.extend_from_slice(extra);
        p.playbook(book_path.to_str().unwrap(), &args)
    };
    let api = |path: &str| {
        on_host(
            &dir,
            HOST,
            &format!("curl -s -u admin:s3cret http://127.0.0.1:18081{path}"),
        )
    };

    let check = run(&["--check"]);
    check.success();
    assert!(
        api("/api/json").contains("\"jobs\":[]"),
        "--check created jobs"
    );
    assert!(
        on_host(&dir, HOST, &format!("ls {base}/home/plugins"))
            .trim()
            .is_empty(),
        "--check installed a plugin"
    );

    let first = run(&["--diff"]);
    first.success();
    // 4 jobs, 1 build, 1 script, 1 plugin.
    assert_eq!(first.recap(HOST).changed, 7, "{}", first.stdout);
    assert!(
        first
            .stdout
            .contains("+      <command>echo a &lt; b</command>"),
        "{}",
        first.stdout
    );
    assert_eq!(api("/job/team/job/nightly/config.xml"), "<?xml version='1.1' encoding='UTF-8'?>\n<project>\n  <description>nightly on lab-1</description>\n  <disabled>false</disabled>\n  <builders>\n    <hudson.tasks.Shell>\n      <command>echo a &lt; b</command>\n    </hudson.tasks.Shell>\n  </builders>\n</project>\n");
    assert!(api("/job/team/job/old/api/json").contains("\"color\":\"disabled\""));
    assert!(on_host(
        &dir,
        HOST,
        &format!("cat {base}/home/plugins/timestamper.jpi")
    )
    .contains("Short-Name: timestamper"));

    // Again: only the build and the script (always changed, as in Ansible).
    let second = run(&["--skip-tags", "create-old"]);
    second.success();
    assert_eq!(second.recap(HOST).changed, 2, "{}", second.stdout);
    on_host(
        &dir,
        HOST,
        &format!("kill $(cat {base}/pid); rm -rf {base}"),
    );
}
