//! `git`: clones or updates a checkout with the `git` CLI on the target.
//! One script reads the checkout (HEAD, branch, remote URL, local changes)
//! and the remote (`git ls-remote --symref`), the wanted revision is resolved
//! here, and a second script clones/fetches/checks out only when HEAD is not
//! already there. Returns `before`, `after`, `remote_url_changed`.

use async_trait::async_trait;
use serde_json::Value;

use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::{join_argv, quote};

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.git:\n    repo: https://github.com/example/app.git\n    dest: /srv/app\n    version: v1.2.0\n    depth: 1\n",
    ..ModuleSpec::new("git", "Deploy software (or files) from git checkouts (git CLI on the target).", &[
        Param::new("repo", Kind::Str, "git, SSH, HTTP(S) or file URL, or a path, of the repository.").aliases(&["name"]).required(),
        Param::new("dest", Kind::Path, "Path of the checkout (required unless clone=no)."),
        Param::new("version", Kind::Str, "Branch, tag, commit id (full or abbreviated) or HEAD (the remote's default branch).").default("HEAD"),
        Param::new("remote", Kind::Str, "Name of the remote.").default("origin"),
        Param::new("refspec", Kind::Str, "Extra refspec to fetch (e.g. refs/pull/1/head)."),
        Param::new("reference", Kind::Str, "Reference repository (git clone --reference)."),
        Param::new("update", Kind::Bool, "Fetch and check out the version when the checkout exists.").default("yes"),
        Param::new("force", Kind::Bool, "Discard local modifications.").default("no"),
        Param::new("clone", Kind::Bool, "Clone when dest does not exist (no: only report the remote revision).").default("yes"),
        Param::new("bare", Kind::Bool, "A bare repository.").default("no"),
        Param::new("depth", Kind::Int, "Shallow clone with this many commits (HEAD, branches and tags)."),
        Param::new("single_branch", Kind::Bool, "Clone only the history leading to the version.").default("no"),
        Param::new("accept_hostkey", Kind::Bool, "Accept unknown SSH host keys (StrictHostKeyChecking=no).").default("no"),
        Param::new("accept_newhostkey", Kind::Bool, "Accept new SSH host keys, refuse changed ones (accept-new).").default("no"),
        Param::new("ssh_opts", Kind::Str, "Extra options for ssh."),
        Param::new("key_file", Kind::Path, "SSH private key on the target."),
        Param::new("recursive", Kind::Bool, "Update submodules recursively.").default("yes"),
        Param::new("track_submodules", Kind::Bool, "Update submodules to their branch's latest commit.").default("no"),
        Param::new("umask", Kind::Raw, "umask for the git commands (octal)."),
        Param::new("executable", Kind::Path, "Path of the git binary."),
        Param::new("verify_commit", Kind::Bool, "Not supported by ferry (fails when true).").default("no"),
        Param::new("gpg_whitelist", Kind::List, "Not supported by ferry.").aliases(&["gpg_allowlist"]),
        Param::new("archive", Kind::Path, "Not supported by ferry (fails when set)."),
        Param::new("archive_prefix", Kind::Str, "Not supported by ferry."),
        Param::new("separate_git_dir", Kind::Path, "Not supported by ferry (fails when set)."),
    ])
};

pub struct Git;

/// What the remote advertises.
#[derive(Debug, Default, PartialEq)]
pub struct Remote {
    pub head_branch: Option<String>,
    /// (sha, ref name) pairs, `HEAD` included.
    pub refs: Vec<(String, String)>,
}

pub fn parse_ls_remote(out: &str) -> Remote {
    let mut r = Remote::default();
    for l in out.lines() {
        if let Some(rest) = l.strip_prefix("ref: ") {
            let (target, name) = rest.split_once('\t').unwrap_or((rest, ""));
            if name.trim() == "HEAD" {
                r.head_branch = target.strip_prefix("refs/heads/").map(str::to_string);
            }
        } else if let Some((sha, name)) = l.split_once('\t') {
            r.refs
                .push((sha.trim().to_string(), name.trim().to_string()));
        }
    }
    r
}

impl Remote {
    fn sha(&self, name: &str) -> Option<&str> {
        self.refs
            .iter()
            .find(|(_, n)| n == name)
            .map(|(s, _)| s.as_str())
    }
}

/// The wanted revision.
#[derive(Debug, Clone, PartialEq)]
pub enum Want {
    Branch(String),
    Tag(String),
    /// A commit id (maybe abbreviated) or another ref's commit.
    Sha(String),
}

/// Resolves `version` against the remote: the kind and the full commit id when known.
pub fn resolve(remote: &Remote, version: &str) -> Result<(Want, Option<String>), String> {
    if version == "HEAD" {
        let sha = remote.sha("HEAD").map(str::to_string);
        return Ok(match &remote.head_branch {
            Some(b) => (
                Want::Branch(b.clone()),
                remote
                    .sha(&format!("refs/heads/{b}"))
                    .map(str::to_string)
                    .or(sha),
            ),
            None => {
                let sha =
                    sha.ok_or("Could not determine remote revision for HEAD (empty repository?)")?;
                (Want::Sha(sha.clone()), Some(sha))
            }
        });
    }
    if let Some(s) = remote.sha(&format!("refs/heads/{version}")) {
        return Ok((Want::Branch(version.to_string()), Some(s.to_string())));
    }
    if let Some(s) = remote.sha(&format!("refs/tags/{version}")) {
        let peeled = remote
            .sha(&format!("refs/tags/{version}^{{}}"))
            .unwrap_or(s);
        return Ok((Want::Tag(version.to_string()), Some(peeled.to_string())));
    }
    if version.starts_with("refs/") {
        if let Some(s) = remote.sha(version) {
            return Ok((Want::Sha(s.to_string()), Some(s.to_string())));
        }
    }
    if (4..=40).contains(&version.len()) && version.chars().all(|c| c.is_ascii_hexdigit()) {
        let v = version.to_lowercase();
        let full = (v.len() == 40).then(|| v.clone());
        return Ok((Want::Sha(v), full));
    }
    Err(format!(
        "Cannot find version '{version}' in the repository: not a branch, tag or commit id"
    ))
}

/// Whether a checkout at `head` (and on `branch`) already is the wanted revision.
pub fn is_at(head: &str, branch: &str, want: &Want, sha: Option<&str>) -> bool {
    if head.is_empty() {
        return false;
    }
    match want {
        Want::Sha(v) => head.starts_with(v.as_str()) || sha == Some(head),
        Want::Tag(_) => sha == Some(head),
        Want::Branch(b) => sha == Some(head) && branch == b,
    }
}

/// Normalises a repository location for comparing remote URLs.
fn unfrack(u: &str) -> String {
    let u = u.strip_prefix("file://").unwrap_or(u);
    u.trim_end_matches('/').to_string()
}

/// Environment for git: no prompts, and ssh options when asked for.
fn env_lines(args: &Args) -> Result<String, ModError> {
    let mut s = String::from("export GIT_TERMINAL_PROMPT=0\n");
    if let Some(u) = args.get("umask") {
        let m = match u {
            Value::Number(n) => format!("{:o}", n.as_u64().unwrap_or(0o22)),
            Value::String(s) if !s.is_empty() && s.chars().all(|c| ('0'..='7').contains(&c)) => {
                s.clone()
            }
            other => {
                return Err(ModError::fail(format!(
                    "umask must be an octal integer, got {other}"
                )))
            }
        };
        s.push_str(&format!("umask {m}\n"));
    }
    let mut ssh: Vec<String> = Vec::new();
    if let Some(o) = args.str("ssh_opts") {
        ssh.push(o.to_string());
    }
    if args.bool("accept_hostkey") {
        ssh.push("-o StrictHostKeyChecking=no".into());
    } else if args.bool("accept_newhostkey") {
        ssh.push("-o StrictHostKeyChecking=accept-new".into());
    }
    if let Some(k) = args.str("key_file") {
        ssh.push(format!("-i {} -o IdentitiesOnly=yes", quote(k)));
    }
    if !ssh.is_empty() {
        s.push_str(&format!(
            "export GIT_SSH_COMMAND={}\n",
            quote(&format!("ssh -o BatchMode=yes {}", ssh.join(" ")))
        ));
    }
    Ok(s)
}

/// Fails a script step with its output: `step LABEL cmd...`.
const STEP: &str = "step() { _l=$1; shift; _o=$(\"$@\" 2>&1) || { _r=$?; printf 'Failed to %s: %s\\n' \"$_l\" \"$_o\" >&2; exit $_r; }; }\n";

#[async_trait]
impl Module for Git {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        for k in ["archive", "separate_git_dir"] {
            if args.has(k) {
                return Err(ModError::fail(format!(
                    "git: {k} is not supported by ferry"
                )));
            }
        }
        if args.bool("verify_commit") {
            return Err(ModError::fail(
                "git: verify_commit is not supported by ferry",
            ));
        }
        let repo = args.req_str("repo")?.to_string();
        if repo.starts_with('-') {
            return Err(ModError::fail(format!(
                "repo may not start with '-': {repo}"
            )));
        }
        let clone = args.bool("clone");
        let dest = match args.str("dest") {
            Some(d) => d.to_string(),
            None if !clone => String::new(),
            None => {
                return Err(ModError::fail(
                    "the destination directory must be specified unless clone=no",
                ))
            }
        };
        let version = args.str("version").unwrap_or("HEAD").to_string();
        let remote_name = args.str("remote").unwrap_or("origin").to_string();
        let bare = args.bool("bare");
        let git = args.str("executable").unwrap_or("git").to_string();
        let g = quote(&git);
        let env = env_lines(args)?;

        // 1. Read the checkout and the remote.
        let marker = if bare { "\"$d/config\"" } else { "\"$d/.git\"" };
        let read = format!(
            "{env}command -v {g} >/dev/null 2>&1 || {{ echo '==NOGIT'; exit 0; }}\nd={dq}\n\
             if [ -n \"$d\" ] && [ -e {marker} ]; then\n  echo '==REPO'\n  echo \"HEAD|$({g} -C \"$d\" rev-parse --verify -q HEAD)\"\n  echo \"BRANCH|$({g} -C \"$d\" symbolic-ref -q --short HEAD)\"\n  echo \"URL|$({g} -C \"$d\" config --get remote.{r}.url)\"\n{mods}fi\n\
             echo '==LSREMOTE'\n{g} ls-remote --symref {repo} 2>&1; echo \"==LSRC $?\"\n",
            dq = quote(&dest),
            r = quote(&remote_name),
            repo = quote(&repo),
            mods = if bare { String::new() } else { format!("  [ -n \"$({g} -C \"$d\" status --porcelain --untracked-files=no 2>/dev/null | head -n 1)\" ] && echo 'MODS|1'\n") },
        );
        let out = ctx.sh(&read).await?;
        let text = out.stdout_str();
        if text.contains("==NOGIT") {
            return Err(ModError::fail(format!("git is not installed on the target ({git} not found): install it (e.g. apt: name=git)")));
        }
        let ls_start = text
            .find("==LSREMOTE\n")
            .map(|i| i + "==LSREMOTE\n".len())
            .unwrap_or(text.len());
        let ls_end = text.rfind("==LSRC ").unwrap_or(text.len());
        let ls = &text[ls_start..ls_end.max(ls_start)];
        let ls_rc: i32 = text[ls_end..]
            .trim_start_matches("==LSRC ")
            .trim()
            .parse()
            .unwrap_or(-1);
        if ls_rc != 0 {
            return Err(ModError::fail(format!(
                "Failed to read the remote {repo} (git ls-remote rc={ls_rc}): {}",
                ls.trim()
            )));
        }
        let remote = parse_ls_remote(ls);
        let (want, wanted_sha) = resolve(&remote, &version).map_err(ModError::fail)?;
        let head_section = &text[..ls_start];
        let field = |k: &str| {
            head_section
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{k}|")))
                .unwrap_or("")
                .trim()
                .to_string()
        };
        let is_repo = head_section.contains("==REPO");
        let before = field("HEAD");
        let branch = field("BRANCH");
        let url = field("URL");
        let local_mods = head_section.lines().any(|l| l == "MODS|1");
        let remote_after = wanted_sha
            .clone()
            .map(Value::String)
            .unwrap_or_else(|| Value::String(version.clone()));

        let mut o = Outcome::ok();
        if !is_repo {
            o = o.with("before", Value::Null);
            if ctx.check_mode || !clone {
                o.changed = true;
                return Ok(o.with("after", remote_after));
            }
            let script = format!(
                "{env}{STEP}{}",
                clone_script(
                    args,
                    &g,
                    &repo,
                    &dest,
                    &remote_name,
                    &want,
                    wanted_sha.as_deref()
                )?
            );
            let after = run_change(ctx, &script).await?;
            o.changed = true;
            return Ok(o.with("after", after));
        }
        o = o.with("before", before.clone());
        if !args.bool("update") {
            return Ok(o.with("after", before));
        }
        if local_mods && !args.bool("force") {
            let mut data = o.data.clone();
            data.insert("after".into(), Value::String(before.clone()));
            return Err(ModError::Failed {
                msg: format!("Local modifications exist in the destination: {dest} (force=no)."),
                data,
            });
        }
        let remote_url_changed =
            !url.is_empty() && url != repo && unfrack(&url) != unfrack(&repo) || url.is_empty();
        o = o.with("remote_url_changed", remote_url_changed);
        let at = if bare {
            wanted_sha.as_deref() == Some(before.as_str()) && args.str("refspec").is_none()
        } else {
            is_at(&before, &branch, &want, wanted_sha.as_deref())
        };
        if ctx.check_mode {
            o.changed = !at || remote_url_changed || local_mods;
            return Ok(o.with("after", remote_after));
        }
        if at && !remote_url_changed && !local_mods && args.str("refspec").is_none() {
            return Ok(o.with("after", before));
        }
        let script = format!(
            "{env}{STEP}{}",
            update_script(
                args,
                &g,
                &repo,
                &dest,
                &remote_name,
                &want,
                remote_url_changed,
                local_mods
            )?
        );
        let after = run_change(ctx, &script).await?;
        o.changed = after != before || local_mods || remote_url_changed;
        if local_mods {
            o = o.msg(format!(
                "Local modifications exist in the destination: {dest}"
            ));
        }
        Ok(o.with("after", after))
    }
}

async fn run_change(ctx: &Ctx<'_>, script: &str) -> Result<String, ModError> {
    let out = ctx.sh(script).await?;
    if out.rc != 0 {
        let e = out.stderr_str();
        return Err(ModError::fail(if e.trim().is_empty() {
            format!("git failed (rc={})", out.rc)
        } else {
            e.trim().to_string()
        }));
    }
    Ok(out
        .stdout_str()
        .lines()
        .find_map(|l| l.strip_prefix("AFTER|"))
        .unwrap_or_default()
        .trim()
        .to_string())
}

/// Checks out the wanted revision in `$d` (not for bare repositories).
fn switch_lines(g: &str, remote: &str, want: &Want) -> String {
    match want {
        Want::Branch(b) => {
            let qb = quote(b);
            let rb = quote(&format!("{remote}/{b}"));
            format!(
                "if {g} -C \"$d\" show-ref --verify -q {}; then\n  step 'checkout branch {b}' {g} -C \"$d\" checkout --force {qb}\n  step 'reset to {remote}/{b}' {g} -C \"$d\" reset --hard {rb} --\nelse\n  step 'checkout branch {b}' {g} -C \"$d\" checkout --track -b {qb} {rb}\nfi\n",
                quote(&format!("refs/heads/{b}"))
            )
        }
        Want::Tag(t) => format!(
            "step 'checkout tag {t}' {g} -C \"$d\" checkout --force {}\n",
            quote(&format!("refs/tags/{t}"))
        ),
        Want::Sha(s) => format!(
            "step 'checkout {s}' {g} -C \"$d\" checkout --force {}\n",
            quote(s)
        ),
    }
}

fn submodule_lines(args: &Args, g: &str) -> String {
    if !args.bool("recursive") || args.bool("bare") {
        return String::new();
    }
    let remote = if args.bool("track_submodules") {
        " --remote"
    } else {
        ""
    };
    format!("if [ -f \"$d/.gitmodules\" ]; then\n  step 'sync submodules' {g} -C \"$d\" submodule sync --recursive\n  step 'update submodules' {g} -C \"$d\" submodule update --init --recursive{remote}\nfi\n")
}

fn clone_script(
    args: &Args,
    g: &str,
    repo: &str,
    dest: &str,
    remote: &str,
    want: &Want,
    _sha: Option<&str>,
) -> Result<String, ModError> {
    let bare = args.bool("bare");
    let mut c: Vec<String> = vec!["clone".into()];
    if bare {
        c.push("--bare".into());
    } else {
        c.extend(["--origin".into(), remote.into()]);
    }
    let named = match want {
        Want::Branch(b) | Want::Tag(b) => Some(b.clone()),
        Want::Sha(_) => None,
    };
    let version = args.str("version").unwrap_or("HEAD");
    if let Some(depth) = args.int("depth") {
        if version == "HEAD" || args.has("refspec") {
            c.extend(["--depth".into(), depth.to_string()]);
        } else if let Some(n) = &named {
            c.extend([
                "--depth".into(),
                depth.to_string(),
                "--branch".into(),
                n.clone(),
            ]);
        }
    }
    if let Some(r) = args.str("reference") {
        c.extend(["--reference".into(), r.into()]);
    }
    if args.bool("single_branch") {
        c.push("--single-branch".into());
        if let (Some(n), false) = (&named, c.contains(&"--branch".to_string())) {
            c.extend(["--branch".into(), n.clone()]);
        }
    }
    c.extend(["--".into(), repo.into(), dest.into()]);
    let mut s = format!(
        "d={}\nmkdir -p -- \"$(dirname -- \"$d\")\"\nstep 'clone {repo}' {g} {}\n",
        quote(dest),
        join_argv(&c)
    );
    if bare && remote != "origin" {
        s.push_str(&format!(
            "step 'add remote' {g} -C \"$d\" remote add {} {}\n",
            quote(remote),
            quote(repo)
        ));
    }
    if let Some(rs) = args.str("refspec") {
        s.push_str(&format!(
            "step 'fetch refspec' {g} -C \"$d\" fetch {} {}\n",
            quote(remote),
            quote(rs)
        ));
    }
    if !bare {
        s.push_str(&switch_lines(g, remote, want));
        s.push_str(&submodule_lines(args, g));
    }
    s.push_str(&format!("echo \"AFTER|$({g} -C \"$d\" rev-parse HEAD)\"\n"));
    Ok(s)
}

#[allow(clippy::too_many_arguments)]
fn update_script(
    args: &Args,
    g: &str,
    repo: &str,
    dest: &str,
    remote: &str,
    want: &Want,
    url_changed: bool,
    local_mods: bool,
) -> Result<String, ModError> {
    let bare = args.bool("bare");
    let r = quote(remote);
    let mut s = format!("d={}\n", quote(dest));
    if url_changed {
        s.push_str(&format!("{g} -C \"$d\" remote set-url {r} {q} 2>/dev/null || step 'add remote' {g} -C \"$d\" remote add {r} {q}\n", q = quote(repo)));
    }
    if local_mods {
        s.push_str(&format!(
            "step 'discard local modifications' {g} -C \"$d\" reset --hard HEAD\n"
        ));
    }
    let mut fetch: Vec<String> = vec!["fetch".into()];
    let mut refspecs: Vec<String> = Vec::new();
    if let Some(depth) = args.int("depth") {
        match want {
            Want::Branch(b) => refspecs.push(format!("+refs/heads/{b}:refs/remotes/{remote}/{b}")),
            Want::Tag(t) => refspecs.push(format!("+refs/tags/{t}:refs/tags/{t}")),
            Want::Sha(_) => {}
        }
        if let Some(rs) = args.str("refspec") {
            refspecs.push(rs.into());
        }
        if !refspecs.is_empty() {
            fetch.extend(["--depth".into(), depth.to_string()]);
        }
    }
    if refspecs.is_empty() {
        if bare {
            refspecs = vec![
                "+refs/heads/*:refs/heads/*".into(),
                "+refs/tags/*:refs/tags/*".into(),
            ];
        } else {
            fetch.push("--tags".into());
        }
        if let Some(rs) = args.str("refspec") {
            refspecs.push(rs.into());
        }
    }
    if args.bool("force") {
        fetch.push("--force".into());
    }
    fetch.push(remote.into());
    fetch.extend(refspecs);
    s.push_str(&format!(
        "step 'download remote objects and refs' {g} -C \"$d\" {}\n",
        join_argv(&fetch)
    ));
    if !bare {
        s.push_str(&switch_lines(g, remote, want));
        s.push_str(&submodule_lines(args, g));
    }
    s.push_str(&format!("echo \"AFTER|$({g} -C \"$d\" rev-parse HEAD)\"\n"));
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{field, TestEnv};
    use serde_json::json;
    use std::process::Command;

    const LS: &str = "ref: refs/heads/main\tHEAD\naaaa000000000000000000000000000000000001\tHEAD\naaaa000000000000000000000000000000000001\trefs/heads/main\nbbbb000000000000000000000000000000000002\trefs/heads/dev\ncccc000000000000000000000000000000000003\trefs/tags/v1\ndddd000000000000000000000000000000000004\trefs/tags/v1^{}\n";

    #[test]
    fn resolving_versions() {
        let r = parse_ls_remote(LS);
        assert_eq!(r.head_branch.as_deref(), Some("main"));
        assert_eq!(
            resolve(&r, "HEAD").unwrap(),
            (
                Want::Branch("main".into()),
                Some("aaaa000000000000000000000000000000000001".into())
            )
        );
        assert_eq!(resolve(&r, "dev").unwrap().0, Want::Branch("dev".into()));
        assert_eq!(
            resolve(&r, "v1").unwrap(),
            (
                Want::Tag("v1".into()),
                Some("dddd000000000000000000000000000000000004".into())
            ),
            "annotated tags peel"
        );
        assert_eq!(
            resolve(&r, "ABCDEF1").unwrap(),
            (Want::Sha("abcdef1".into()), None)
        );
        assert!(resolve(&r, "no-such-branch").is_err());
        assert!(is_at(
            "aaaa000000000000000000000000000000000001",
            "main",
            &Want::Branch("main".into()),
            Some("aaaa000000000000000000000000000000000001")
        ));
        assert!(!is_at(
            "aaaa000000000000000000000000000000000001",
            "other",
            &Want::Branch("main".into()),
            Some("aaaa000000000000000000000000000000000001")
        ));
        assert!(is_at("abcdef1234", "", &Want::Sha("abcdef1".into()), None));
        assert!(!is_at("", "", &Want::Sha("abcdef1".into()), None));
        assert_eq!(unfrack("file:///srv/r.git/"), "/srv/r.git");
    }

    fn git(dir: &std::path::Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
                "-c",
                "protocol.file.allow=always",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A bare repo with one commit on main, and a work clone to push more from.
    fn upstream(env: &TestEnv) -> (String, std::path::PathBuf) {
        let bare = env.path("up.git");
        git(
            env.dir.path(),
            &["init", "-q", "--bare", "-b", "main", &bare],
        );
        let work = env.pathbuf("work");
        git(env.dir.path(), &["clone", "-q", &bare, "work"]);
        std::fs::write(work.join("a.txt"), "one\n").unwrap();
        git(&work, &["add", "a.txt"]);
        git(&work, &["commit", "-q", "-m", "one"]);
        git(&work, &["push", "-q", "origin", "HEAD:main"]);
        (bare, work)
    }

    #[tokio::test]
    async fn clone_update_and_idempotence() {
        if Command::new("git").arg("--version").output().is_err() {
            return;
        }
        let env = TestEnv::new();
        let (bare, work) = upstream(&env);
        let dest = env.path("co");
        let args = json!({"repo": bare, "dest": dest});
        let c = env.check(&Git, args.clone()).await;
        assert!(c.changed);
        assert!(!env.pathbuf("co").exists(), "--check cloned");
        let first_sha = git(&work, &["rev-parse", "HEAD"]);
        assert_eq!(field(&c, "after"), first_sha.as_str());
        let o = env.ok(&Git, args.clone()).await;
        assert!(o.changed);
        assert!(field(&o, "before").is_null());
        assert_eq!(field(&o, "after"), first_sha.as_str());
        assert_eq!(env.read("co/a.txt"), "one\n");
        let o = env.ok(&Git, args.clone()).await;
        assert!(!o.changed);
        assert_eq!(field(&o, "remote_url_changed"), false);
        // A new upstream commit: changed, before != after.
        std::fs::write(work.join("a.txt"), "two\n").unwrap();
        git(&work, &["commit", "-qam", "two"]);
        git(&work, &["tag", "-a", "v2", "-m", "v2"]);
        git(&work, &["push", "-q", "--tags", "origin", "HEAD:main"]);
        let second_sha = git(&work, &["rev-parse", "HEAD"]);
        let c = env.check(&Git, args.clone()).await;
        assert!(c.changed);
        assert_eq!(env.read("co/a.txt"), "one\n", "--check updated");
        let o = env.ok(&Git, args.clone()).await;
        assert!(o.changed);
        assert_eq!(
            (field(&o, "before"), field(&o, "after")),
            (&json!(first_sha), &json!(second_sha))
        );
        assert_eq!(env.read("co/a.txt"), "two\n");
        assert!(!env.ok(&Git, args.clone()).await.changed);
        // Tag and sha versions.
        let o = env
            .ok(
                &Git,
                json!({"repo": bare, "dest": dest, "version": &first_sha[..10]}),
            )
            .await;
        assert!(o.changed);
        assert_eq!(env.read("co/a.txt"), "one\n");
        assert!(
            !env.ok(
                &Git,
                json!({"repo": bare, "dest": dest, "version": &first_sha[..10]})
            )
            .await
            .changed
        );
        let o = env
            .ok(&Git, json!({"repo": bare, "dest": dest, "version": "v2"}))
            .await;
        assert!(o.changed);
        assert_eq!(field(&o, "after"), second_sha.as_str());
        assert!(
            !env.ok(&Git, json!({"repo": bare, "dest": dest, "version": "v2"}))
                .await
                .changed
        );
        // Back on the branch.
        let o = env
            .ok(&Git, json!({"repo": bare, "dest": dest, "version": "main"}))
            .await;
        assert_eq!(field(&o, "after"), second_sha.as_str());
        assert_eq!(
            git(&env.pathbuf("co"), &["symbolic-ref", "--short", "HEAD"]),
            "main"
        );
        assert!(
            !env.ok(&Git, json!({"repo": bare, "dest": dest, "version": "main"}))
                .await
                .changed
        );
    }

    #[tokio::test]
    async fn local_mods_depth_bare_and_url_change() {
        if Command::new("git").arg("--version").output().is_err() {
            return;
        }
        let env = TestEnv::new();
        let (bare, work) = upstream(&env);
        let dest = env.path("co");
        env.ok(&Git, json!({"repo": bare, "dest": dest})).await;
        std::fs::write(work.join("a.txt"), "two\n").unwrap();
        git(&work, &["commit", "-qam", "two"]);
        git(&work, &["push", "-q", "origin", "HEAD:main"]);
        env.write("co/a.txt", "local edit\n");
        let e = env
            .run(&Git, json!({"repo": bare, "dest": dest}))
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("Local modifications exist in the destination"),
            "{e}"
        );
        assert_eq!(env.read("co/a.txt"), "local edit\n");
        let o = env
            .ok(&Git, json!({"repo": bare, "dest": dest, "force": true}))
            .await;
        assert!(o.changed);
        assert_eq!(env.read("co/a.txt"), "two\n");
        // The same repository by file:// URL: the remote URL changes once.
        let url = format!("file://{bare}");
        let o = env.ok(&Git, json!({"repo": url, "dest": dest})).await;
        assert_eq!(
            field(&o, "remote_url_changed"),
            false,
            "same path, other spelling"
        );
        // A shallow clone of a branch, and a bare clone.
        let o = env
            .ok(
                &Git,
                json!({"repo": url, "dest": env.path("shallow"), "depth": 1, "version": "main"}),
            )
            .await;
        assert!(o.changed);
        assert_eq!(
            git(&env.pathbuf("shallow"), &["rev-list", "--count", "HEAD"]),
            "1"
        );
        assert!(
            !env.ok(
                &Git,
                json!({"repo": url, "dest": env.path("shallow"), "depth": 1, "version": "main"})
            )
            .await
            .changed
        );
        let o = env
            .ok(
                &Git,
                json!({"repo": bare, "dest": env.path("mirror.git"), "bare": true}),
            )
            .await;
        assert!(o.changed);
        assert!(env.pathbuf("mirror.git/config").exists());
        assert!(
            !env.ok(
                &Git,
                json!({"repo": bare, "dest": env.path("mirror.git"), "bare": true})
            )
            .await
            .changed
        );
        // clone=no on a missing dest: only the remote revision.
        let o = env
            .ok(
                &Git,
                json!({"repo": bare, "dest": env.path("none"), "clone": false}),
            )
            .await;
        assert!(!env.pathbuf("none").exists());
        assert_eq!(field(&o, "after").as_str().unwrap().len(), 40);
        let e = env
            .run(
                &Git,
                json!({"repo": bare, "dest": env.path("x"), "version": "nope"}),
            )
            .await
            .unwrap_err();
        assert!(e.to_string().contains("Cannot find version 'nope'"), "{e}");
    }

    #[test]
    fn ssh_environment() {
        let a = SPEC.validate(json!({"repo": "git@h:r.git", "dest": "/d", "accept_hostkey": true, "key_file": "/k ey", "umask": "022"}).as_object().unwrap().clone()).unwrap();
        let e = env_lines(&a).unwrap();
        assert!(e.contains("umask 022\n"));
        assert!(e.contains("export GIT_SSH_COMMAND='ssh -o BatchMode=yes -o StrictHostKeyChecking=no -i '\"'\"'/k ey'\"'\"' -o IdentitiesOnly=yes'"), "{e}");
        assert!(e.contains("GIT_TERMINAL_PROMPT=0"));
    }
}
