//! Property tests for the one place where values become shell words:
//! `connection::quote` and `join_argv` must round-trip any text through
//! `/bin/sh -c 'printf ...'` locally, and through a real SSH host (lab-1,
//! with and without sudo) for a sample.
//!
//! The API takes `&str`, so only valid UTF-8 can be quoted: non-UTF-8 bytes in
//! paths cannot be expressed (and are not tested). NUL cannot be part of any
//! process argument, so it is left out too.

use std::path::PathBuf;
use std::process::Command;

use ferry::connection::{join_argv, quote, Become};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Text rich in what shells care about, plus arbitrary (non-NUL) characters.
fn shell_text() -> impl Strategy<Value = String> {
    let special = prop_oneof![
        Just('\''),
        Just('"'),
        Just('$'),
        Just('`'),
        Just('\\'),
        Just('\n'),
        Just('\t'),
        Just('\r'),
        Just(' '),
        Just('*'),
        Just('?'),
        Just('['),
        Just('('),
        Just(')'),
        Just(';'),
        Just('&'),
        Just('|'),
        Just('<'),
        Just('>'),
        Just('!'),
        Just('~'),
        Just('#'),
        Just('='),
        Just('%'),
        Just('-'),
        Just('{'),
        Just('é'),
        Just('日'),
        Just('\u{1F600}'),
        Just('\u{7f}'),
        Just('\u{1b}'),
    ];
    let any_char = any::<char>().prop_filter("no NUL in argv", |c| *c != '\0');
    let fragments = prop_oneof![
        Just("$(echo pwned)".to_string()),
        Just("`id`".to_string()),
        Just("${HOME}".to_string()),
        Just("'\"'\"'".to_string()),
        Just("-n".to_string()),
        Just("--".to_string()),
        Just("%s%d%%".to_string()),
    ];
    prop::collection::vec(prop_oneof![3 => special.prop_map(String::from), 2 => any_char.prop_map(String::from), 1 => fragments], 0..24)
        .prop_map(|v| v.concat())
}

fn sh_printf(arg_words: &str) -> Vec<u8> {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("printf '%s\\0' {arg_words}"))
        .output()
        .expect("sh");
    assert!(out.status.success(), "sh failed: {out:?}");
    out.stdout
}

fn split_nul(b: &[u8]) -> Vec<String> {
    let mut v: Vec<String> = b
        .split(|c| *c == 0)
        .map(|s| String::from_utf8(s.to_vec()).expect("utf-8 back"))
        .collect();
    v.pop(); // after the last NUL
    v
}

proptest! {
    #![proptest_config(Config { cases: 300, failure_persistence: None, ..Config::default() })]

    #[test]
    fn quote_round_trips_through_sh(s in shell_text()) {
        let q = quote(&s);
        prop_assert_eq!(split_nul(&sh_printf(&q)), vec![s.clone()]);
        // Quoting twice (a script inside `sh -c`, like `exec` does) also round-trips.
        let nested = format!("printf '%s\\0' {q}");
        let out = Command::new("/bin/sh").arg("-c").arg(format!("sh -c {}", quote(&nested))).output().unwrap();
        prop_assert_eq!(split_nul(&out.stdout), vec![s]);
    }

    #[test]
    fn join_argv_keeps_word_boundaries(v in prop::collection::vec(shell_text(), 1..6)) {
        prop_assert_eq!(split_nul(&sh_printf(&join_argv(&v))), v);
    }
}

#[test]
fn quote_is_plain_only_for_safe_words() {
    assert_eq!(quote("abc/def-1.2_x@y:z,%+="), "abc/def-1.2_x@y:z,%+=");
    assert_eq!(quote(""), "''");
    assert_eq!(quote("a b"), "'a b'");
    assert_eq!(quote("it's"), "'it'\"'\"'s'");
    assert_eq!(quote("~"), "'~'");
}

fn lab() -> Option<PathBuf> {
    let dir =
        PathBuf::from(std::env::var("FERRY_LAB_DIR").unwrap_or_else(|_| "/tmp/ferry-lab".into()));
    let ok = dir.join("hosts.ini").is_file()
        && Command::new("ssh")
            .args([
                "-F",
                &dir.join("ssh_config").to_string_lossy(),
                "-o",
                "BatchMode=yes",
                "lab-1",
                "true",
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
    if ok {
        return Some(dir);
    }
    if std::env::var_os("FERRY_REQUIRE_LAB").is_some() {
        panic!("test hosts are required but not up in {}", dir.display());
    }
    eprintln!("skipping: no test hosts in {}", dir.display());
    None
}

/// A sample of generated strings through ferry's SSH transport to lab-1, as
/// modules run scripts (`exec`: `sh -c <quoted script>`), plain and under sudo.
#[test]
fn quote_round_trips_over_ssh_on_lab_1() {
    let Some(dir) = lab() else { return };
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let strat = shell_text();
    let mut sample: Vec<String> = (0..80)
        .map(|_| strat.new_tree(&mut runner).unwrap().current())
        .collect();
    sample.extend(["", " ", "'", "\\", "$(id)", "a\nb", "日本語 ü", "*", "-e"].map(String::from));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cfg = format!("-F {}", dir.join("ssh_config").display());
        let get = move |k: &str| match k {
            "ansible_user" => Some(serde_json::Value::String("deploy".into())),
            "ansible_ssh_common_args" => Some(serde_json::Value::String(cfg.clone())),
            _ => None,
        };
        let conn = ferry::connection::ssh::open("lab-1", &get, std::time::Duration::from_secs(20), None).await.expect("ssh to lab-1");
        let script = format!("printf '%s\\0' {}", join_argv(&sample));
        let out = conn.exec(&script, None, None, Some(std::time::Duration::from_secs(60))).await.expect("exec");
        assert_eq!(out.rc, 0, "{}", out.stderr_str());
        assert_eq!(split_nul(&out.stdout), sample, "plain exec");
        let root = Become { method: "sudo".into(), user: "root".into(), password: None, flags: String::new() };
        let out = conn.exec(&format!("{script}; id -u"), None, Some(&root), Some(std::time::Duration::from_secs(60))).await.expect("exec sudo");
        assert_eq!(out.rc, 0, "{}", out.stderr_str());
        let (args, uid) = out.stdout.split_at(out.stdout.len() - 2);
        assert_eq!(uid, b"0\n");
        assert_eq!(split_nul(args), sample, "under sudo");
        // One value per exec too: each becomes a file name and comes back from ls.
        let base = "/tmp/ferry-quoting-test";
        let mk = format!("rm -rf {base} && mkdir {base} && cd {base} && for f in {}; do printf x > \"./$f\" 2>/dev/null || true; done; printf '%s\\0' *", join_argv(&["a b", "c'd", "$(x)", "é*"]));
        let out = conn.exec(&mk, None, None, None).await.expect("exec files");
        let mut names = split_nul(&out.stdout);
        names.sort();
        assert_eq!(names, vec!["$(x)", "a b", "c'd", "é*"]);
        conn.close().await;
    });
}
