//! Shared by the fuzz targets: a private scratch directory per process, and
//! the filter that keeps inputs away from the machine (device files, commands).
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

/// `$TMPDIR/ferry-fuzz-<pid>/`, made once.
pub fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("ferry-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch dir");
        d
    })
}

/// Inputs that would read endless device files are skipped: they test the
/// machine, not the parser.
pub fn unsafe_input(s: &str) -> bool {
    ["/dev", "/proc", "/sys"].iter().any(|w| s.contains(w))
}

/// For templates, also anything that could run a command or read a file
/// (lookups such as `pipe`, `{% include %}`).
pub fn unsafe_template(s: &str) -> bool {
    unsafe_input(s)
        || [
            "lookup", "query", "q(", "include", "import", "extends", "from",
        ]
        .iter()
        .any(|w| s.contains(w))
}
