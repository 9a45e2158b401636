//! The INI inventory parser (through `Inventory::load`, as `-i hosts.ini` reads it).
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
    let path = common::scratch().join("hosts.ini");
    std::fs::write(&path, text).unwrap();
    if let Ok(inv) = ferry::inventory::Inventory::load(&[path.to_string_lossy().into_owned()]) {
        let _ = inv.to_list_json();
        let _ = ferry::inventory::pattern::select(&inv, "all:!ungrouped");
    }
});
