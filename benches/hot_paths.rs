//! Controller-side hot paths: template rendering, a 10,000-host inventory with
//! pattern matching, variable resolution through precedence layers, and
//! playbook parsing. Run with `cargo bench --bench hot_paths`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

use ferry::inventory::{pattern, Inventory};
use ferry::template::{Scope, Templar};

fn big_inventory(dir: &std::path::Path) -> String {
    let mut ini = String::new();
    for g in 0..100 {
        ini.push_str(&format!("[g{g}]\n"));
        for h in 0..100 {
            ini.push_str(&format!(
                "host-{g}-{h} ansible_host=127.0.0.{} idx={h}\n",
                (h % 250) + 1
            ));
        }
        ini.push_str(&format!("[g{g}:vars]\ngroup_var={g}\n"));
    }
    ini.push_str("[even:children]\n");
    for g in (0..100).step_by(2) {
        ini.push_str(&format!("g{g}\n"));
    }
    let p = dir.join("hosts.ini");
    std::fs::write(&p, ini).unwrap();
    p.to_string_lossy().into_owned()
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let inv_path = big_inventory(dir.path());
    c.bench_function("inventory: parse 10,000 hosts", |b| {
        b.iter(|| Inventory::load(black_box(std::slice::from_ref(&inv_path))).unwrap())
    });
    let inv = Inventory::load(std::slice::from_ref(&inv_path)).unwrap();
    c.bench_function(
        "inventory: pattern even:!g0:&~host-.*-1.$ on 10,000 hosts",
        |b| b.iter(|| pattern::select(&inv, black_box("even:!g0:&~host-.*-1.$")).unwrap()),
    );
    c.bench_function("inventory: host_vars of one host", |b| {
        b.iter(|| inv.host_vars(black_box("host-50-50")))
    });

    let t = Templar::new();
    let mut scope = Scope::new();
    for layer in 0..8 {
        let mut m = serde_json::Map::new();
        for i in 0..50 {
            m.insert(format!("v{layer}_{i}"), json!(format!("value {i}")));
        }
        scope.push_map(m);
    }
    scope.push_map(
        json!({"lazy": "{{ v0_1 }}-{{ v7_49 }}", "items": (0..20).collect::<Vec<_>>()})
            .as_object()
            .unwrap()
            .clone(),
    );
    let tmpl = json!("{% for i in items %}{{ i }}:{{ lazy | upper }} {% endfor %}");
    c.bench_function("template: loop of 20 with a lazy variable", |b| {
        b.iter(|| t.render(black_box(&tmpl), &scope).unwrap())
    });
    let expr = json!("{{ v3_10 }}");
    c.bench_function("template: one variable through 9 layers", |b| {
        b.iter(|| t.render(black_box(&expr), &scope).unwrap())
    });
    c.bench_function("template: conditional", |b| {
        b.iter(|| {
            t.eval_bool(
                black_box(&json!("v1_1 == 'value 1' and items | length > 3")),
                &scope,
            )
            .unwrap()
        })
    });

    let book = dir.path().join("site.yml");
    let mut text = String::from("- hosts: all\n  tasks:\n");
    for i in 0..200 {
        text.push_str(&format!(
            "    - name: task {i}\n      ansible.builtin.copy:\n        content: \"{{{{ x }}}} {i}\"\n        dest: /tmp/f{i}\n        mode: '0644'\n      when: x is defined\n      tags: [t{i}]\n"
        ));
    }
    std::fs::write(&book, text).unwrap();
    let ctx = ferry::playbook::LoadCtx::default();
    c.bench_function("playbook: load and check 200 tasks", |b| {
        b.iter(|| ferry::playbook::load_playbook(black_box(&book), &ctx).unwrap())
    });
}

criterion_group!(hot, benches);
criterion_main!(hot);
