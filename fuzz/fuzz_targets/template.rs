//! Template rendering as tasks use it (`Templar::render`): filters, tests,
//! type-preserving single expressions. Lookups and includes are filtered out
//! (they would run commands or read files).
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

#[path = "common.rs"]
mod common;

fn templar() -> &'static ferry::template::Templar {
    static T: OnceLock<ferry::template::Templar> = OnceLock::new();
    T.get_or_init(ferry::template::Templar::new)
}

fn scope() -> ferry::template::Scope {
    let mut s = ferry::template::Scope::new();
    let vars = serde_json::json!({
        "s": "text", "n": 3, "l": [1, "two", {"k": "v"}], "d": {"a": 1, "b": [true, null]},
        "inventory_hostname": "web-1", "groups": {"all": ["web-1"]}, "ip": "10.0.0.1/24"
    });
    if let serde_json::Value::Object(m) = vars {
        s.push_map(m);
    }
    s
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if common::unsafe_template(text) {
        return;
    }
    let scope = scope();
    let _ = templar().render(&serde_json::Value::String(text.to_string()), &scope);
    let _ = templar().eval_bool(&serde_json::Value::String(text.to_string()), &scope);
});
