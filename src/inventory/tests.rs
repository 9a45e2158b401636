use super::*;

fn inv_from(ini: &str) -> Inventory {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("hosts");
    std::fs::write(&p, ini).unwrap();
    Inventory::load(&[p.to_string_lossy().into_owned()]).unwrap()
}

const INI: &str = "\
lone ansible_host=127.0.0.1
[web]
web[01:03].example.com http_port=8080
[db]
db1:2222 role='primary db'
[prod:children]
web
db
[prod:vars]
env=production
port=80
";

#[test]
fn ini_groups_ranges_vars() {
    let inv = inv_from(INI);
    assert_eq!(
        inv.group_hosts("web"),
        vec![
            "web01.example.com",
            "web02.example.com",
            "web03.example.com"
        ]
    );
    assert_eq!(inv.group_hosts("prod").len(), 4);
    assert_eq!(inv.group_hosts("ungrouped"), vec!["lone"]);
    let v = inv.host_vars("db1");
    assert_eq!(v["ansible_port"], 2222);
    assert_eq!(v["role"], "primary db");
    assert_eq!(v["env"], "production");
    // :vars values stay strings; inline host vars are literals.
    assert_eq!(v["port"], "80");
    assert_eq!(inv.host_vars("web01.example.com")["http_port"], 8080);
    assert_eq!(inv.group_names("db1"), vec!["db", "prod"]);
}

#[test]
fn patterns() {
    let inv = inv_from(INI);
    let sel = |p: &str| pattern::select(&inv, p).unwrap();
    assert_eq!(sel("all").len(), 5);
    assert_eq!(sel("web:db").len(), 4);
    assert_eq!(
        sel("prod:!db"),
        vec![
            "web01.example.com",
            "web02.example.com",
            "web03.example.com"
        ]
    );
    assert_eq!(sel("prod:&db"), vec!["db1"]);
    assert_eq!(sel("web*.example.com").len(), 3);
    assert_eq!(
        sel("~web0[12]"),
        vec!["web01.example.com", "web02.example.com"]
    );
    assert_eq!(sel("web[0]"), vec!["web01.example.com"]);
    assert_eq!(
        sel("web[1:2]"),
        vec!["web02.example.com", "web03.example.com"]
    );
    assert_eq!(sel("web,lone").len(), 4);
    assert!(sel("nosuch").is_empty());
}

#[test]
fn yaml_inventory_and_group_vars() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hosts.yml"),
        "all:\n  vars: {a: 1, b: 1}\n  children:\n    app:\n      hosts:\n        h1: {b: 2}\n        h2:\n      vars: {c: 3}\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("group_vars/app")).unwrap();
    std::fs::write(dir.path().join("group_vars/all.yml"), "a: 10\n").unwrap();
    std::fs::write(
        dir.path().join("group_vars/app/main.yml"),
        "c: 30\nd: yes\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("host_vars")).unwrap();
    std::fs::write(dir.path().join("host_vars/h2"), "b: 5\n").unwrap();
    let inv =
        Inventory::load(&[dir.path().join("hosts.yml").to_string_lossy().into_owned()]).unwrap();
    let h1 = inv.host_vars("h1");
    assert_eq!(
        (
            h1["a"].clone(),
            h1["b"].clone(),
            h1["c"].clone(),
            h1["d"].clone()
        ),
        (10.into(), 2.into(), 30.into(), true.into())
    );
    assert_eq!(inv.host_vars("h2")["b"], 5);
    let list = inv.to_list_json();
    assert_eq!(list["app"]["hosts"], serde_json::json!(["h1", "h2"]));
    assert_eq!(list["_meta"]["hostvars"]["h1"]["c"], 30);
}

/// A directory is read like Ansible reads it: every file but hidden ones and
/// `inventory_ignore_extensions` (`.ini` among them), group_vars beside them.
#[test]
fn inventory_directory_skips_what_ansible_skips() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("hosts"), "[web]\nw1\n").unwrap();
    std::fs::write(d.join("more.yml"), "all:\n  hosts:\n    y1:\n").unwrap();
    for skipped in [
        "old.ini", "notes.md", "x.cfg", "hosts~", ".hidden", "a.retry",
    ] {
        std::fs::write(d.join(skipped), "[skipped]\nnope\n").unwrap();
    }
    std::fs::create_dir_all(d.join("group_vars")).unwrap();
    std::fs::write(d.join("group_vars/web.yml"), "port: 80\n").unwrap();
    let inv = Inventory::load(&[d.to_string_lossy().into_owned()]).unwrap();
    let list = inv.to_list_json();
    assert_eq!(list["web"]["hosts"], serde_json::json!(["w1"]));
    assert!(list.get("skipped").is_none(), "{list}");
    assert_eq!(inv.host_vars("w1")["port"], 80);
    assert_eq!(list["ungrouped"]["hosts"], serde_json::json!(["y1"]));
}

/// Subdirectories are read too (in name order); vars directories and hidden
/// ones are not inventory, and group_vars count only beside the `-i` source.
#[test]
fn inventory_directory_reads_subdirectories_and_configured_ignores() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for sub in ["prod", "prod/group_vars", ".git", "staging"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    std::fs::write(d.join("prod/hosts"), "[web]\np1\n").unwrap();
    std::fs::write(d.join("prod/group_vars/web.yml"), "port: 81\n").unwrap();
    std::fs::write(d.join(".git/config"), "[core]\nbare\n").unwrap();
    std::fs::write(d.join("staging/hosts.yml"), "web:\n  hosts:\n    s1:\n").unwrap();
    std::fs::write(d.join("staging/hosts.local"), "[web]\nlocal1\n").unwrap();
    let load = |ignore: &Ignore| Inventory::load_with(&[d.to_string_lossy().into_owned()], ignore);
    let inv = load(&Ignore::default()).unwrap();
    let list = inv.to_list_json();
    assert_eq!(
        list["web"]["hosts"],
        serde_json::json!(["p1", "local1", "s1"])
    );
    assert!(list.get("core").is_none(), "{list}");
    assert!(inv.host_vars("p1").get("port").is_none());

    // ansible.cfg's inventory_ignore_extensions / _patterns replace the defaults.
    let ignore = Ignore::new(vec![".local".into()], &["^stag".into()]).unwrap();
    let list = load(&ignore).unwrap().to_list_json();
    assert_eq!(list["web"]["hosts"], serde_json::json!(["p1"]));
    let e = Ignore::new(vec![], &["(".into()]).unwrap_err().to_string();
    assert!(e.contains("inventory_ignore_patterns"), "{e}");
}

#[test]
fn ini_errors_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.ini");
    std::fs::write(&p, "[web\nh1\n").unwrap();
    let e = Inventory::load(&[p.to_string_lossy().into_owned()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.ini:1:1"), "{e}");
    std::fs::write(&p, "[web]\nh1 novalue\n").unwrap();
    let e = Inventory::load(&[p.to_string_lossy().into_owned()])
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.ini:2:"), "{e}");
}

#[test]
fn comma_list_inventory() {
    let inv = Inventory::load(&["a,b,".to_string()]).unwrap();
    assert_eq!(inv.group_hosts("all"), vec!["a", "b"]);
}
