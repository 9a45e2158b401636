//! Test helpers: a local "host" on a temporary directory and a `Ctx` for it.

use std::path::PathBuf;

use serde_json::Value;

use super::{Ctx, ModError, ModResult, Module, Outcome};
use crate::connection::local::Local;
use crate::template::{Scope, Templar};

/// Everything a module run needs, owned, so tests can borrow a `Ctx`.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub conn: Local,
    pub templar: Templar,
    pub scope: Scope,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv {
            dir: tempfile::tempdir().expect("tempdir"),
            conn: Local::new(),
            templar: Templar::new(),
            scope: Scope::new(),
        }
    }

    /// Absolute path (as a string) of `rel` inside the temp dir.
    pub fn path(&self, rel: &str) -> String {
        self.dir.path().join(rel).to_string_lossy().into_owned()
    }

    pub fn pathbuf(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) -> String {
        let p = self.pathbuf(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        p.to_string_lossy().into_owned()
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.pathbuf(rel)).unwrap()
    }

    pub fn ctx(&self, check_mode: bool, diff_mode: bool) -> Ctx<'_> {
        Ctx {
            host: "testhost",
            conn: &self.conn,
            escalate: None,
            check_mode,
            diff_mode,
            templar: &self.templar,
            scope: &self.scope,
            env: vec![],
            search_dirs: vec![self.dir.path().to_path_buf()],
            timeout: None,
            no_log: false,
            memo: None,
        }
    }

    /// Validates `args` against the module's spec and runs it.
    pub async fn run_with(
        &self,
        m: &dyn Module,
        args: Value,
        check_mode: bool,
        diff_mode: bool,
    ) -> ModResult {
        let map = args.as_object().cloned().unwrap_or_default();
        let args = m.spec().validate(map).map_err(super::ModError::fail)?;
        m.run(&args, &self.ctx(check_mode, diff_mode)).await
    }

    pub async fn run(&self, m: &dyn Module, args: Value) -> ModResult {
        self.run_with(m, args, false, false).await
    }

    /// Runs and unwraps, with the error message on failure.
    pub async fn ok(&self, m: &dyn Module, args: Value) -> Outcome {
        match self.run(m, args).await {
            Ok(o) => o,
            Err(e) => panic!("module failed: {e}"),
        }
    }

    pub async fn check(&self, m: &dyn Module, args: Value) -> Outcome {
        match self.run_with(m, args, true, false).await {
            Ok(o) => o,
            Err(e) => panic!("module failed in check mode: {e}"),
        }
    }
}

/// A string field of an outcome's data.
pub fn field<'a>(o: &'a Outcome, k: &str) -> &'a Value {
    o.data.get(k).unwrap_or(&Value::Null)
}

/// A `Ctx` over any connection (e.g. `connection::recording::Recording` for
/// recorded-command tests of paths no test host can run, such as Red Hat's).
pub fn ctx_on<'a>(
    conn: &'a dyn crate::connection::Connection,
    templar: &'a Templar,
    scope: &'a Scope,
    check_mode: bool,
    diff_mode: bool,
) -> Ctx<'a> {
    Ctx {
        host: "testhost",
        conn,
        escalate: None,
        check_mode,
        diff_mode,
        templar,
        scope,
        env: vec![],
        search_dirs: vec![],
        timeout: None,
        no_log: false,
        memo: None,
    }
}

/// Runs `m` on a recording (or any) connection with `args` checked by its spec,
/// in a scope holding `facts` (`None`: an empty scope).
pub async fn run_on(
    conn: &dyn crate::connection::Connection,
    m: &dyn Module,
    args: Value,
    facts: Option<Value>,
    check_mode: bool,
    diff_mode: bool,
) -> ModResult {
    let templar = Templar::new();
    let scope = facts.map(facts_scope).unwrap_or_default();
    let ctx = ctx_on(conn, &templar, &scope, check_mode, diff_mode);
    let a = m
        .spec()
        .validate(args.as_object().cloned().unwrap_or_default())
        .map_err(ModError::fail)?;
    m.run(&a, &ctx).await
}

/// One response line of the jenkins modules' request script (`jenkins_api`).
pub fn http_line(status: u16, body: &str) -> String {
    use base64::Engine;
    format!(
        "@@FERRY-HTTP|0|{status}||{}|\n",
        base64::engine::general_purpose::STANDARD.encode(body)
    )
}

/// A scope holding facts as the engine exposes them (`ansible_facts` and `ansible_*`),
/// e.g. a RHEL 9 fixture for modules that branch on `ansible_os_family`.
pub fn facts_scope(facts: serde_json::Value) -> Scope {
    let mut layer = serde_json::Map::new();
    if let Some(m) = facts.as_object() {
        for (k, v) in m {
            layer.insert(format!("ansible_{k}"), v.clone());
        }
    }
    layer.insert("ansible_facts".into(), facts);
    let mut s = Scope::new();
    s.push_map(layer);
    s
}
