//! Vault on the command line: the password flags every command takes
//! (`--ask-vault-pass`, `--vault-password-file`, `--vault-id`) and the
//! `ferry vault` subcommand (ansible-vault's create, edit, encrypt, decrypt,
//! view, encrypt_string, rekey).

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::error::{Error, Result};
use crate::vault::{self, Secret};

/// Where vault passwords come from. They are loaded once, into the process
/// keyring, before any file is read.
#[derive(Args, Debug, Clone, Default)]
pub struct VaultArgs {
    /// Ask for the vault password.
    #[arg(
        short = 'J',
        long = "ask-vault-pass",
        visible_alias = "ask-vault-password"
    )]
    pub ask_vault_pass: bool,
    /// Vault password file, or an executable script printing the password (repeatable).
    #[arg(
        long = "vault-password-file",
        visible_alias = "vault-pass-file",
        env = "ANSIBLE_VAULT_PASSWORD_FILE"
    )]
    pub vault_password_file: Vec<PathBuf>,
    /// A vault identity: [ID@]SOURCE, SOURCE being `prompt`, a file or a script (repeatable).
    #[arg(long = "vault-id")]
    pub vault_id: Vec<String>,
}

impl VaultArgs {
    pub fn any(&self) -> bool {
        self.ask_vault_pass || !self.vault_password_file.is_empty() || !self.vault_id.is_empty()
    }
}

/// Loads the passwords the flags name; errors are usage errors (exit code 5).
pub fn load_secrets(a: &VaultArgs) -> Result<Vec<Secret>> {
    let mut out = Vec::new();
    for spec in &a.vault_id {
        let (id, _) = vault::parse_vault_id(spec);
        if id.contains(';') {
            return Err(Error::Usage(format!(
                "'{id}' is not a valid vault id. The character ';' is not allowed in vault ids"
            )));
        }
        out.push(vault::secret_from_spec(spec).map_err(Error::Usage)?);
    }
    for f in &a.vault_password_file {
        out.push(vault::secret_from_file("default", f).map_err(Error::Usage)?);
    }
    if a.ask_vault_pass {
        out.push(Secret::new(
            "default",
            vault::prompt("Vault password: ").map_err(Error::Usage)?,
        ));
    }
    Ok(out)
}

/// Fills the process keyring from the flags and `ansible.cfg` (call before
/// loading anything). As in Ansible, the configured identities come before the
/// `--vault-id` flags, and the configured password file is used only when no
/// password file was given.
pub fn setup(a: &VaultArgs, cfg: &crate::config::AnsibleCfg) -> Result<()> {
    vault::set_keyring(load_secrets(&with_config(a, cfg))?);
    Ok(())
}

fn with_config(a: &VaultArgs, cfg: &crate::config::AnsibleCfg) -> VaultArgs {
    let mut a = a.clone();
    a.vault_id = cfg
        .vault_identity_list
        .iter()
        .cloned()
        .chain(a.vault_id)
        .collect();
    if a.vault_password_file.is_empty() {
        a.vault_password_file
            .extend(cfg.vault_password_file.clone());
    }
    a
}

#[derive(Args, Debug)]
pub struct VaultCmd {
    #[command(subcommand)]
    pub action: VaultAction,
}

#[derive(Args, Debug, Clone)]
pub struct VaultOpts {
    #[command(flatten)]
    pub vault: VaultArgs,
    /// The vault id to encrypt with when several are given.
    #[arg(long = "encrypt-vault-id")]
    pub encrypt_vault_id: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum VaultAction {
    /// Create a new encrypted file with $EDITOR.
    Create {
        file: PathBuf,
        #[command(flatten)]
        opts: VaultOpts,
    },
    /// Edit an encrypted file with $EDITOR (decrypted only in a private temp file).
    Edit {
        file: PathBuf,
        #[command(flatten)]
        opts: VaultOpts,
    },
    /// Encrypt files in place (or stdin to stdout, or to --output).
    Encrypt {
        files: Vec<PathBuf>,
        /// Write here instead of in place (`-` for stdout).
        #[arg(long = "output")]
        output: Option<PathBuf>,
        #[command(flatten)]
        opts: VaultOpts,
    },
    /// Decrypt files in place (or stdin to stdout, or to --output).
    Decrypt {
        files: Vec<PathBuf>,
        /// Write here instead of in place (`-` for stdout).
        #[arg(long = "output")]
        output: Option<PathBuf>,
        #[command(flatten)]
        opts: VaultOpts,
    },
    /// Print decrypted files.
    View {
        files: Vec<PathBuf>,
        #[command(flatten)]
        opts: VaultOpts,
    },
    /// Encrypt strings into `!vault |` YAML blocks (args, `-` or nothing for stdin).
    #[command(name = "encrypt_string", visible_alias = "encrypt-string")]
    EncryptString {
        strings: Vec<String>,
        /// Variable names for the strings, in order (repeatable).
        #[arg(short = 'n', long = "name")]
        name: Vec<String>,
        /// Variable name for the string read from stdin.
        #[arg(long = "stdin-name")]
        stdin_name: Option<String>,
        /// Prompt for the string (hidden).
        #[arg(short = 'p', long = "prompt")]
        prompt: bool,
        /// Write here instead of stdout.
        #[arg(long = "output")]
        output: Option<PathBuf>,
        #[command(flatten)]
        opts: VaultOpts,
    },
    /// Re-encrypt files with a new password.
    Rekey {
        files: Vec<PathBuf>,
        /// The new password's file.
        #[arg(long = "new-vault-password-file")]
        new_vault_password_file: Option<PathBuf>,
        /// The new vault identity ([ID@]SOURCE).
        #[arg(long = "new-vault-id")]
        new_vault_id: Option<String>,
        #[command(flatten)]
        opts: VaultOpts,
    },
}

/// Runs `ferry vault ...`; returns the exit code.
pub fn run(cmd: VaultCmd) -> Result<i32> {
    match cmd.action {
        VaultAction::Create { file, opts } => {
            let secret = encrypt_secret(&opts)?;
            if file.exists() {
                return Err(Error::Usage(format!(
                    "{} exists, please use 'edit' instead",
                    file.display()
                )));
            }
            let text = edit_in_private_file(&file, b"")?;
            write_atomic(&file, vault::encrypt(&text, &secret).as_bytes())?;
        }
        VaultAction::Edit { file, opts } => {
            setup(&opts.vault, &crate::config::load())?;
            let ciphertext = read_file(&file)?;
            let text = String::from_utf8_lossy(&ciphertext).into_owned();
            if !vault::is_vault(&text) {
                return Err(Error::Usage(format!(
                    "{} is not a vault encrypted file",
                    file.display()
                )));
            }
            let plain = decrypt(&file, &text)?;
            // Keep the file's vault id: find which secret opened it.
            let ring = vault::keyring();
            let secret = ring
                .iter()
                .find(|s| vault::decrypt_with(&text, std::slice::from_ref(*s)).is_ok())
                .cloned()
                .ok_or_else(|| Error::Other("no secret opens the file".into()))?;
            let edited = edit_in_private_file(&file, &plain)?;
            if edited != plain {
                write_atomic(&file, vault::encrypt(&edited, &secret).as_bytes())?;
            }
        }
        VaultAction::Encrypt {
            files,
            output,
            opts,
        } => {
            let secret = encrypt_secret(&opts)?;
            for (src, dst) in in_out(&files, output.as_deref())? {
                let data = read_input(src.as_deref())?;
                if vault::is_vault_bytes(&data) {
                    return Err(Error::Usage(format!(
                        "input is already encrypted: {}",
                        name(src.as_deref())
                    )));
                }
                write_output(dst.as_deref(), vault::encrypt(&data, &secret).as_bytes())?;
            }
            if std::io::stderr().is_terminal() {
                eprintln!("Encryption successful");
            }
        }
        VaultAction::Decrypt {
            files,
            output,
            opts,
        } => {
            setup(&opts.vault, &crate::config::load())?;
            for (src, dst) in in_out(&files, output.as_deref())? {
                let data = read_input(src.as_deref())?;
                let text = String::from_utf8_lossy(&data).into_owned();
                if !vault::is_vault(&text) {
                    return Err(Error::Usage(format!(
                        "input is not vault encrypted data: {}",
                        name(src.as_deref())
                    )));
                }
                let plain = decrypt(Path::new(&name(src.as_deref())), &text)?;
                write_output(dst.as_deref(), &plain)?;
            }
            if std::io::stderr().is_terminal() {
                eprintln!("Decryption successful");
            }
        }
        VaultAction::View { files, opts } => {
            setup(&opts.vault, &crate::config::load())?;
            let files: Vec<Option<PathBuf>> = if files.is_empty() {
                vec![None]
            } else {
                files.into_iter().map(Some).collect()
            };
            for f in files {
                let data = read_input(f.as_deref())?;
                let text = String::from_utf8_lossy(&data).into_owned();
                let plain = decrypt(Path::new(&name(f.as_deref())), &text)?;
                let mut o = std::io::stdout();
                let _ = o.write_all(&plain);
                let _ = o.flush();
            }
        }
        VaultAction::EncryptString {
            strings,
            name: names,
            stdin_name,
            prompt,
            output,
            opts,
        } => {
            let secret = encrypt_secret(&opts)?;
            let args: Vec<&String> = strings.iter().filter(|s| s.as_str() != "-").collect();
            let read_stdin = strings.iter().any(|s| s == "-")
                || stdin_name.is_some()
                || (args.is_empty() && !prompt);
            if prompt && read_stdin {
                return Err(Error::Usage(
                    "The --prompt option is not supported if also reading input from stdin".into(),
                ));
            }
            let mut items: Vec<(Vec<u8>, Option<String>)> = Vec::new();
            if prompt {
                let n = vault::prompt("Variable name (enter for no name): ").ok();
                let v = vault::prompt("String to encrypt (hidden): ").map_err(Error::Usage)?;
                items.push((v, n.map(|b| String::from_utf8_lossy(&b).into_owned())));
            }
            if read_stdin {
                if std::io::stdin().is_terminal() {
                    eprintln!("Reading plaintext input from stdin. (ctrl-d to end input, twice if your content does not already have a newline)");
                }
                let mut buf = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::Usage(format!("cannot read stdin: {e}")))?;
                if buf.is_empty() {
                    return Err(Error::Usage("stdin was empty, not encrypting".into()));
                }
                items.push((buf, stdin_name.clone()));
            }
            for (i, s) in args.iter().enumerate() {
                if s.is_empty() {
                    return Err(Error::Usage("The plaintext provided from the command line args was empty, not encrypting".into()));
                }
                items.push((s.as_bytes().to_vec(), names.get(i).cloned()));
            }
            let blocks: Vec<String> = items
                .iter()
                .map(|(v, n)| vault::yaml_block(&vault::encrypt(v, &secret), n.as_deref()))
                .collect();
            let mut text = blocks.join("\n");
            text.push('\n');
            write_output(output.as_deref().or(Some(Path::new("-"))), text.as_bytes())?;
            if std::io::stderr().is_terminal() {
                eprintln!("Encryption successful");
            }
        }
        VaultAction::Rekey {
            files,
            new_vault_password_file,
            new_vault_id,
            opts,
        } => {
            setup(&opts.vault, &crate::config::load())?;
            let new = match (new_vault_password_file, new_vault_id) {
                (Some(f), _) => vault::secret_from_file("default", &f).map_err(Error::Usage)?,
                (None, Some(spec)) => vault::secret_from_spec(&spec).map_err(Error::Usage)?,
                (None, None) => new_password_prompt("default")?,
            };
            for f in &files {
                let text = String::from_utf8_lossy(&read_file(f)?).into_owned();
                let plain = decrypt(f, &text)?;
                write_atomic(f, vault::encrypt(&plain, &new).as_bytes())?;
            }
            eprintln!("Rekey successful");
        }
    }
    Ok(0)
}

fn decrypt(file: &Path, text: &str) -> Result<Vec<u8>> {
    vault::decrypt(text).map_err(|e| Error::Other(format!("{}: {e}", file.display())))
}

/// The secret to encrypt with: `--encrypt-vault-id`, else the only one given,
/// else a new password typed twice.
fn encrypt_secret(opts: &VaultOpts) -> Result<Secret> {
    let secrets = load_secrets(&with_config(&opts.vault, &crate::config::load()))?;
    vault::set_keyring(secrets.clone());
    if let Some(id) = &opts.encrypt_vault_id {
        return secrets.into_iter().find(|s| &s.id == id).ok_or_else(|| {
            Error::Usage(format!(
                "Did not find a match for --encrypt-vault-id={id} in the known vault-ids"
            ))
        });
    }
    match secrets.len() {
        0 => new_password_prompt("default"),
        1 => Ok(secrets.into_iter().next().expect("one")),
        _ => Err(Error::Usage(format!(
            "The vault-ids {} are available to encrypt. Specify the vault-id to encrypt with --encrypt-vault-id",
            secrets.iter().map(|s| s.id.as_str()).collect::<Vec<_>>().join(",")
        ))),
    }
}

fn new_password_prompt(id: &str) -> Result<Secret> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage("a vault password is needed: give --vault-password-file FILE, --vault-id [ID@]SOURCE or --ask-vault-pass".into()));
    }
    let a = vault::prompt("New Vault password: ").map_err(Error::Usage)?;
    let b = vault::prompt("Confirm New Vault password: ").map_err(Error::Usage)?;
    if a != b {
        return Err(Error::Usage("Passwords do not match".into()));
    }
    Ok(Secret::new(id, a))
}

type Io = (Option<PathBuf>, Option<PathBuf>);

/// Pairs inputs with outputs: in place, or all into `--output`, or stdin → stdout.
fn in_out(files: &[PathBuf], output: Option<&Path>) -> Result<Vec<Io>> {
    if output.is_some() && files.len() > 1 {
        return Err(Error::Usage(
            "At most one input file may be used with the --output option".into(),
        ));
    }
    let files: Vec<Option<PathBuf>> =
        if files.is_empty() || files.iter().all(|f| f.as_os_str() == "-") {
            vec![None]
        } else {
            files.iter().map(|f| Some(f.clone())).collect()
        };
    Ok(files
        .into_iter()
        .map(|f| {
            let dst = match output {
                Some(o) => Some(o.to_path_buf()),
                None => f.clone().or_else(|| Some(PathBuf::from("-"))),
            };
            (f, dst)
        })
        .collect())
}

fn name(p: Option<&Path>) -> String {
    p.map(|p| p.display().to_string())
        .unwrap_or_else(|| "<stdin>".into())
}

fn read_file(p: &Path) -> Result<Vec<u8>> {
    std::fs::read(p).map_err(|e| Error::Io {
        path: p.to_path_buf(),
        source: e,
    })
}

fn read_input(p: Option<&Path>) -> Result<Vec<u8>> {
    match p {
        Some(p) => read_file(p),
        None => {
            let mut b = Vec::new();
            std::io::stdin()
                .read_to_end(&mut b)
                .map_err(|e| Error::Usage(format!("cannot read stdin: {e}")))?;
            Ok(b)
        }
    }
}

fn write_output(p: Option<&Path>, data: &[u8]) -> Result<()> {
    match p {
        Some(p) if p.as_os_str() != "-" => write_atomic(p, data),
        _ => {
            let mut o = std::io::stdout();
            o.write_all(data)
                .and_then(|_| o.flush())
                .map_err(|e| Error::Other(format!("cannot write to stdout: {e}")))
        }
    }
}

/// Writes through a 0600 temp file in the same directory, then renames: a
/// crash leaves the old file or the new one, never half of one. An existing
/// file keeps its mode; a new one is 0600.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "vault".into());
    let tmp = dir.join(format!(
        ".{base}.ferry-tmp.{}.{}",
        std::process::id(),
        random_suffix()
    ));
    let mode = std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o600);
    let res = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))?;
        std::fs::rename(&tmp, path)
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res.map_err(io)
}

fn random_suffix() -> String {
    let mut b = [0u8; 6];
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

/// A 0700 directory with one 0600 file holding plaintext; overwritten with
/// zeros and removed when dropped (also on errors and panics).
struct PrivateFile {
    dir: PathBuf,
    file: PathBuf,
}

impl PrivateFile {
    fn new(like: &Path, data: &[u8]) -> Result<PrivateFile> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let dir = std::env::temp_dir().join(format!(
            "ferry-vault-{}-{}",
            std::process::id(),
            random_suffix()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| Error::Io {
                path: dir.clone(),
                source: e,
            })?;
        // Same extension as the real file, so editors pick the right syntax.
        let fname = like
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "vault".into());
        let file = dir.join(fname);
        let pf = PrivateFile { dir, file };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&pf.file)
            .map_err(|e| Error::Io {
                path: pf.file.clone(),
                source: e,
            })?;
        f.write_all(data).map_err(|e| Error::Io {
            path: pf.file.clone(),
            source: e,
        })?;
        Ok(pf)
    }
}

impl Drop for PrivateFile {
    fn drop(&mut self) {
        if let Ok(m) = std::fs::metadata(&self.file) {
            if let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&self.file) {
                let _ = f.write_all(&vec![0u8; m.len() as usize]);
                let _ = f.sync_all();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs $EDITOR (default `vi`) on a private copy of `data`; returns what was saved.
fn edit_in_private_file(like: &Path, data: &[u8]) -> Result<Vec<u8>> {
    let pf = PrivateFile::new(like, data)?;
    let editor = std::env::var("EDITOR").unwrap_or_else(|_| "vi".into());
    let mut argv = shlex::split(&editor)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| Error::Usage(format!("cannot parse $EDITOR {editor:?}")))?;
    let prog = argv.remove(0);
    let status = std::process::Command::new(&prog)
        .args(&argv)
        .arg(&pf.file)
        .status()
        .map_err(|e| Error::Usage(format!("cannot run the editor {prog}: {e}")))?;
    if !status.success() {
        return Err(Error::Other(format!(
            "the editor {prog} failed ({status}); nothing was saved"
        )));
    }
    std::fs::read(&pf.file).map_err(|e| Error::Io {
        path: pf.file.clone(),
        source: e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_keeps_mode_and_leaves_no_temp() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f.yml");
        write_atomic(&p, b"one").unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o640
        );
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn private_file_is_0600_in_0700_dir_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let pf = PrivateFile::new(Path::new("x/secrets.yml"), b"plain").unwrap();
        assert_eq!(
            std::fs::metadata(&pf.dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        assert_eq!(
            std::fs::metadata(&pf.file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(pf.file.ends_with("secrets.yml"));
        let dir = pf.dir.clone();
        drop(pf);
        assert!(!dir.exists());
    }

    #[test]
    fn in_out_pairs() {
        let v = in_out(&[], None).unwrap();
        assert_eq!(v, vec![(None, Some(PathBuf::from("-")))]);
        let v = in_out(&[PathBuf::from("a")], Some(Path::new("b"))).unwrap();
        assert_eq!(
            v,
            vec![(Some(PathBuf::from("a")), Some(PathBuf::from("b")))]
        );
        assert!(in_out(
            &[PathBuf::from("a"), PathBuf::from("b")],
            Some(Path::new("c"))
        )
        .is_err());
    }
}
