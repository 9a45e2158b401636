//! The YAML loader (`yaml::parse_str`) and the playbook loader on the same text.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if common::unsafe_input(text) {
        return;
    }
    let path = common::scratch().join("site.yml");
    if let Ok(docs) = ferry::yaml::parse_str(text, &path) {
        for d in &docs {
            let _ = ferry::yaml::to_json(&d.root);
        }
    }
    std::fs::write(&path, text).unwrap();
    let ctx = ferry::playbook::LoadCtx::default();
    let _ = ferry::playbook::load_playbook(&path, &ctx);
});
