//! `user`: accounts through `getent`, `useradd`/`usermod`/`userdel`, with
//! Ansible's (Linux) rules. The password hash goes to `chpasswd -e` on stdin,
//! never into an argument, and never into the result. One script reads the
//! account, one applies every change and reports the account afterwards.

use async_trait::async_trait;
use serde_json::{Map, Value};

use super::sysadmin::{failed, Group, Passwd, Sections, Shadow};
use super::{Args, Ctx, Kind, ModError, ModResult, Module, ModuleSpec, Outcome, Param};
use crate::connection::quote;

pub static SPEC: ModuleSpec = ModuleSpec {
    example: "- ansible.builtin.user:\n    name: johnd\n    comment: John Doe\n    groups: [admin, developers]\n    append: true\n    shell: /bin/bash\n    password: \"{{ 'secret' | password_hash('sha512') }}\"\n",
    ..ModuleSpec::new(
        "user",
        "Manage user accounts (useradd/usermod/userdel; password hashes through chpasswd -e).",
        &[
            Param::new("name", Kind::Str, "Name of the user.").aliases(&["user"]).required(),
            Param::new("state", Kind::Str, "Whether the account should exist.").choices(&["absent", "present"]).default("present"),
            Param::new("uid", Kind::Int, "The user's UID."),
            Param::new("non_unique", Kind::Bool, "With uid: allow a non-unique UID (-o).").default("no"),
            Param::new("group", Kind::Str, "Primary group (name or gid); must exist."),
            Param::new("groups", Kind::List, "Supplementary groups (list or comma-separated); '' removes all but the primary group."),
            Param::new("append", Kind::Bool, "Add to groups instead of setting exactly these.").default("no"),
            Param::new("comment", Kind::Str, "GECOS field."),
            Param::new("home", Kind::Path, "Home directory."),
            Param::new("shell", Kind::Str, "Login shell."),
            Param::new("skeleton", Kind::Str, "Skeleton directory for a new home (-k)."),
            Param::new("password", Kind::Str, "Crypted password hash ('!' or '*' for a locked account); set through chpasswd -e on stdin."),
            Param::new("update_password", Kind::Str, "always: set the hash when it differs; on_create: only for new users.").choices(&["always", "on_create"]).default("always"),
            Param::new("password_lock", Kind::Bool, "Lock (true) or unlock (false) the password (usermod -L/-U)."),
            Param::new("create_home", Kind::Bool, "Create the home directory (new users, or a missing home).").aliases(&["createhome"]).default("yes"),
            Param::new("move_home", Kind::Bool, "With home: move the existing home directory (usermod -m).").default("no"),
            Param::new("system", Kind::Bool, "Create a system account (new users only).").default("no"),
            Param::new("force", Kind::Bool, "state=absent: userdel --force; generate_ssh_key: overwrite an existing key.").default("no"),
            Param::new("remove", Kind::Bool, "state=absent: remove the home directory and mail spool (userdel --remove).").default("no"),
            Param::new("expires", Kind::Float, "Account expiry in epoch seconds; negative removes the expiry."),
            Param::new("password_expire_max", Kind::Int, "Maximum days between password changes (chage -M)."),
            Param::new("password_expire_min", Kind::Int, "Minimum days between password changes (chage -m)."),
            Param::new("password_expire_warn", Kind::Int, "Days of warning before the password expires (chage -W)."),
            Param::new("password_expire_account_disable", Kind::Int, "Days after password expiry until the account is disabled (-f)."),
            Param::new("umask", Kind::Str, "Umask for the new home directory (useradd -K UMASK=)."),
            Param::new("uid_min", Kind::Int, "Lowest UID for a new user (useradd -K UID_MIN=)."),
            Param::new("uid_max", Kind::Int, "Highest UID for a new user (useradd -K UID_MAX=)."),
            Param::new("seuser", Kind::Str, "SELinux user (-Z)."),
            Param::new("generate_ssh_key", Kind::Bool, "Generate an SSH key pair for the user (kept unless force)."),
            Param::new("ssh_key_bits", Kind::Int, "Key size (0: ssh-keygen's default).").default("0"),
            Param::new("ssh_key_type", Kind::Str, "Key type.").default("rsa"),
            Param::new("ssh_key_file", Kind::Path, "Key file, relative to the home directory (default .ssh/id_<type>)."),
            Param::new("ssh_key_comment", Kind::Str, "Key comment (default: ansible-generated on <hostname>)."),
            Param::new("ssh_key_passphrase", Kind::Str, "Passphrase for the key (given to ssh-keygen through SSH_ASKPASS, not its arguments)."),
            Param::new("local", Kind::Bool, "Use luseradd and friends (not supported; false accepted)."),
            Param::new("hidden", Kind::Bool, "macOS only (ignored)."),
            Param::new("login_class", Kind::Str, "BSD only (ignored)."),
            Param::new("profile", Kind::Str, "Solaris only (ignored)."),
            Param::new("authorization", Kind::Str, "Solaris only (ignored)."),
            Param::new("role", Kind::Str, "Solaris only (ignored)."),
        ],
    )
};

pub struct User;

/// The validated request.
#[derive(Debug, Clone, Default)]
pub struct Req {
    pub name: String,
    pub present: bool,
    pub uid: Option<i64>,
    pub non_unique: bool,
    pub group: Option<String>,
    /// `Some(vec![])` is Ansible's `groups: ''`.
    pub groups: Option<Vec<String>>,
    pub append: bool,
    pub comment: Option<String>,
    pub home: Option<String>,
    pub shell: Option<String>,
    pub skeleton: Option<String>,
    pub password: Option<String>,
    pub update_always: bool,
    pub password_lock: Option<bool>,
    pub create_home: bool,
    pub move_home: bool,
    pub system: bool,
    pub force: bool,
    pub remove: bool,
    pub expires: Option<f64>,
    pub expire_max: Option<i64>,
    pub expire_min: Option<i64>,
    pub expire_warn: Option<i64>,
    pub inactive: Option<i64>,
    pub umask: Option<String>,
    pub uid_min: Option<i64>,
    pub uid_max: Option<i64>,
    pub seuser: Option<String>,
    pub sshkey: bool,
    pub ssh_bits: i64,
    pub ssh_type: String,
    pub ssh_file: String,
    pub ssh_comment: Option<String>,
    pub ssh_passphrase: Option<String>,
}

impl Req {
    pub fn from_args(args: &Args) -> Result<Req, ModError> {
        if args.bool("local") {
            return Err(ModError::fail(
                "local=true (luseradd/lusermod) is not supported by ferry",
            ));
        }
        let ssh_type = args.str("ssh_key_type").unwrap_or("rsa").to_string();
        Ok(Req {
            name: args.req_str("name")?.to_string(),
            present: args.str("state") != Some("absent"),
            uid: args.int("uid"),
            non_unique: args.bool("non_unique"),
            group: args.str("group").map(str::to_string),
            groups: args.get("groups").map(|_| {
                args.list("groups")
                    .into_iter()
                    .map(|g| g.trim().to_string())
                    .filter(|g| !g.is_empty())
                    .collect()
            }),
            append: args.bool("append"),
            comment: args.str("comment").map(str::to_string),
            home: args.str("home").map(str::to_string),
            shell: args.str("shell").map(str::to_string),
            skeleton: args.str("skeleton").map(str::to_string),
            password: args.str("password").map(str::to_string),
            update_always: args.str("update_password") != Some("on_create"),
            password_lock: args
                .get("password_lock")
                .map(|_| args.bool("password_lock")),
            create_home: args.bool("create_home"),
            move_home: args.bool("move_home"),
            system: args.bool("system"),
            force: args.bool("force"),
            remove: args.bool("remove"),
            expires: args.float("expires"),
            expire_max: args.int("password_expire_max"),
            expire_min: args.int("password_expire_min"),
            expire_warn: args.int("password_expire_warn"),
            inactive: args.int("password_expire_account_disable"),
            umask: args.str("umask").map(str::to_string),
            uid_min: args.int("uid_min"),
            uid_max: args.int("uid_max"),
            seuser: args.str("seuser").map(str::to_string),
            sshkey: args.bool("generate_ssh_key"),
            ssh_bits: args.int("ssh_key_bits").unwrap_or(0),
            ssh_file: args
                .str("ssh_key_file")
                .map(str::to_string)
                .unwrap_or_else(|| format!(".ssh/id_{ssh_type}")),
            ssh_type,
            ssh_comment: args.str("ssh_key_comment").map(str::to_string),
            ssh_passphrase: args.str("ssh_key_passphrase").map(str::to_string),
        })
    }

    /// The read script: the account, its shadow entry, the groups asked for,
    /// group membership, the home directory and an existing SSH key.
    pub fn read_script(&self) -> String {
        let mut s = format!(
            "PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"\nferry_n={}\nferry_home={}\n\
             ferry_g() {{ if ferry_ge=$(getent group \"$2\"); then printf '@@%s=%s\\n' \"$1\" \"$ferry_ge\"; fi; }}\n\
             if ferry_pw=$(getent passwd \"$ferry_n\"); then\n\
             printf '@@PW=%s\\n' \"$ferry_pw\"\n\
             printf '@@SHADOW=%s\\n' \"$(getent shadow \"$ferry_n\" 2>/dev/null)\"\n\
             [ -n \"$ferry_home\" ] || ferry_home=$(printf '%s' \"$ferry_pw\" | cut -d: -f6)\n\
             echo @@MEMBEROF\n\
             getent group | while IFS=: read -r ferry_gn ferry_x ferry_gid ferry_mem; do case \",$ferry_mem,\" in *\",$ferry_n,\"*) printf '%s\\n' \"$ferry_gn\";; esac; done\n\
             fi\n",
            quote(&self.name),
            quote(self.home.as_deref().unwrap_or(""))
        );
        if let Some(g) = &self.group {
            s.push_str(&format!("ferry_g G {}\n", quote(g)));
        }
        for (i, g) in self.groups.iter().flatten().enumerate() {
            s.push_str(&format!("ferry_g S{i} {}\n", quote(g)));
        }
        s.push_str("ferry_g N \"$ferry_n\"\n");
        s.push_str(
            "if [ -n \"$ferry_home\" ]; then [ -d \"$ferry_home\" ] && echo @@HOMEEXISTS=1; [ -d \"$(dirname -- \"$ferry_home\")\" ] && echo @@PARENTEXISTS=1; fi\n",
        );
        if self.sshkey {
            s.push_str(&format!(
                "ferry_kf={}\ncase \"$ferry_kf\" in /*) ;; *) ferry_kf=\"$ferry_home/$ferry_kf\";; esac\n\
                 if [ -n \"$ferry_home\" ] && [ -e \"$ferry_kf\" ]; then echo @@KEYEXISTS=1; printf '@@KEYFILE=%s\\n' \"$ferry_kf\"; printf '@@FP=%s\\n' \"$(ssh-keygen -l -f \"$ferry_kf\" 2>&1 | head -n 1)\"; echo @@PUB; cat -- \"$ferry_kf.pub\" 2>/dev/null; echo; fi\n",
                quote(&self.ssh_file)
            ));
        }
        s
    }
}

/// What the read script saw.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub pw: Option<Passwd>,
    pub shadow: Option<Shadow>,
    pub member_of: Vec<String>,
    pub group: Option<Group>,
    pub groups: Vec<Option<Group>>,
    pub name_group: bool,
    pub home_exists: bool,
    pub parent_exists: bool,
    pub key_exists: bool,
    pub key_file: Option<String>,
    pub fingerprint: Option<String>,
    pub pubkey: Option<String>,
}

impl Observed {
    pub fn parse(out: &str, req: &Req) -> Observed {
        let s = Sections::parse(out);
        Observed {
            pw: s.val("PW").and_then(Passwd::parse),
            shadow: s.val("SHADOW").and_then(Shadow::parse),
            member_of: s
                .body("MEMBEROF")
                .unwrap_or("")
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect(),
            group: s.val("G").and_then(Group::parse),
            groups: (0..req.groups.as_ref().map_or(0, Vec::len))
                .map(|i| s.val(&format!("S{i}")).and_then(Group::parse))
                .collect(),
            name_group: s.has("N"),
            home_exists: s.has("HOMEEXISTS"),
            parent_exists: s.has("PARENTEXISTS"),
            key_exists: s.has("KEYEXISTS"),
            key_file: s.val("KEYFILE").map(str::to_string),
            fingerprint: s.val("FP").map(str::to_string),
            pubkey: s
                .body("PUB")
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty()),
        }
    }

    /// The current hash, as Ansible's user_info(): the passwd field unless it is a placeholder.
    fn hash(&self) -> String {
        match &self.pw {
            Some(p) if p.passwd.len() > 1 => p.passwd.clone(),
            _ => self
                .shadow
                .as_ref()
                .map(|s| s.hash.clone())
                .unwrap_or_default(),
        }
    }
}

/// What to run and what to report.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub changed: bool,
    /// The main account command (useradd/usermod/userdel) as argv.
    pub command: Option<Vec<String>>,
    /// Shell lines run after it (chpasswd, chage, home, key).
    pub after: Vec<String>,
    /// Secrets given on stdin: the chpasswd hash, the key passphrase.
    pub set_password: Option<String>,
    pub create_parent: Option<String>,
    pub result: Map<String, Value>,
    pub warnings: Vec<String>,
}

/// `YYYY-MM-DD` (UTC) of an epoch time.
fn ymd(secs: f64) -> String {
    chrono::DateTime::from_timestamp(secs.floor() as i64, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// Ansible's "appears not to have been hashed" check.
pub fn looks_unhashed(p: &str) -> bool {
    if ["*", "!", "*************"].contains(&p) {
        return false;
    }
    if p.contains([':', '*', '!']) || !p.contains('$') {
        return true;
    }
    let f: Vec<&str> = p.split('$').collect();
    if f.len() < 3 {
        return true;
    }
    let last = f[f.len() - 1];
    let bad = |n: usize| last.chars().count() != n;
    last.chars()
        .any(|c| !(c.is_ascii_alphanumeric() || "./=".contains(c)))
        || (f[1] == "1" && bad(22))
        || (f[1] == "5" && bad(43))
        || (f[1] == "6" && bad(86))
        || (f[1] == "y" && bad(43))
}

impl Req {
    fn group_set(&self, obs: &Observed) -> Result<Vec<String>, ModError> {
        let mut names = Vec::new();
        for (g, found) in self.groups.iter().flatten().zip(&obs.groups) {
            let Some(found) = found else {
                return Err(ModError::fail(format!("Group {g} does not exist")));
            };
            if !names.contains(&found.name) {
                names.push(found.name.clone());
            }
        }
        Ok(names)
    }

    /// Ansible's decisions for this account, from what was observed.
    pub fn plan(&self, obs: &Observed) -> Result<Plan, ModError> {
        let mut p = Plan::default();
        p.result.insert("name".into(), self.name.clone().into());
        p.result.insert(
            "state".into(),
            if self.present { "present" } else { "absent" }.into(),
        );
        if let Some(pw) = &self.password {
            if looks_unhashed(pw) {
                p.warnings.push("The input password appears not to have been hashed. The 'password' argument must be encrypted for this module to work properly.".into());
            }
        }
        if self.groups.is_none() && self.append {
            p.warnings.push("'append' is set, but no 'groups' are specified. Use 'groups' for appending new groups.This will change to an error in Ansible 2.14.".into());
        }
        if !self.present {
            if obs.pw.is_some() {
                let mut c = vec!["userdel".to_string()];
                if self.force {
                    c.push("-f".into());
                }
                if self.remove {
                    c.push("-r".into());
                }
                c.push(self.name.clone());
                p.command = Some(c);
                p.changed = true;
                p.result.insert("force".into(), self.force.into());
                p.result.insert("remove".into(), self.remove.into());
            }
            return Ok(p);
        }
        let lock_prefix = |h: &str| {
            if self.password_lock == Some(true) {
                format!("!{h}")
            } else {
                h.to_string()
            }
        };
        match &obs.pw {
            None => {
                let mut c = vec!["useradd".to_string()];
                if let Some(u) = self.uid {
                    c.extend(["-u".into(), u.to_string()]);
                    if self.non_unique {
                        c.push("-o".into());
                    }
                }
                if let Some(se) = &self.seuser {
                    c.extend(["-Z".into(), se.clone()]);
                }
                if let Some(g) = &self.group {
                    if obs.group.is_none() {
                        return Err(ModError::fail(format!("Group {g} does not exist")));
                    }
                    c.extend(["-g".into(), g.clone()]);
                } else if obs.name_group {
                    c.push("-N".into());
                }
                if let Some(gs) = &self.groups {
                    if !gs.is_empty() {
                        self.group_set(obs)?;
                        let mut uniq: Vec<&String> = Vec::new();
                        for g in gs {
                            if !uniq.contains(&g) {
                                uniq.push(g);
                            }
                        }
                        c.extend([
                            "-G".into(),
                            uniq.iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(","),
                        ]);
                    }
                }
                if let Some(cm) = &self.comment {
                    c.extend(["-c".into(), cm.clone()]);
                }
                if let Some(h) = &self.home {
                    if self.create_home && !obs.parent_exists {
                        p.create_parent = Some(h.clone());
                    }
                    c.extend(["-d".into(), h.clone()]);
                }
                if let Some(sh) = &self.shell {
                    c.extend(["-s".into(), sh.clone()]);
                }
                if let Some(e) = self.expires {
                    c.extend(["-e".into(), if e < 0.0 { String::new() } else { ymd(e) }]);
                }
                if let Some(i) = self.inactive {
                    c.extend(["-f".into(), i.to_string()]);
                }
                if self.create_home {
                    c.push("-m".into());
                    if let Some(k) = &self.skeleton {
                        c.extend(["-k".into(), k.clone()]);
                    }
                    if let Some(um) = &self.umask {
                        c.extend(["-K".into(), format!("UMASK={um}")]);
                    }
                } else {
                    c.push("-M".into());
                }
                if self.system {
                    c.push("-r".into());
                }
                if let Some(m) = self.uid_min {
                    c.extend(["-K".into(), format!("UID_MIN={m}")]);
                }
                if let Some(m) = self.uid_max {
                    c.extend(["-K".into(), format!("UID_MAX={m}")]);
                }
                c.push(self.name.clone());
                p.command = Some(c);
                p.changed = true;
                if let Some(pw) = &self.password {
                    p.set_password = Some(lock_prefix(pw));
                }
                let mut chage = Vec::new();
                for (flag, v) in [
                    ("-m", self.expire_min),
                    ("-M", self.expire_max),
                    ("-W", self.expire_warn),
                ] {
                    if let Some(v) = v {
                        chage.push(format!("{flag} {v}"));
                    }
                }
                if !chage.is_empty() {
                    p.after
                        .push(format!("ferry_run chage {} \"$ferry_n\"", chage.join(" ")));
                }
                p.result.insert("system".into(), self.system.into());
                p.result
                    .insert("create_home".into(), self.create_home.into());
            }
            Some(info) => {
                let mut c: Vec<String> = Vec::new();
                if let Some(u) = self.uid {
                    if info.uid != u {
                        c.extend(["-u".into(), u.to_string()]);
                        if self.non_unique {
                            c.push("-o".into());
                        }
                    }
                }
                if let Some(g) = &self.group {
                    let Some(gi) = &obs.group else {
                        return Err(ModError::fail(format!("Group {g} does not exist")));
                    };
                    if info.gid != gi.gid {
                        c.extend(["-g".into(), gi.gid.to_string()]);
                    }
                }
                if let Some(gs) = &self.groups {
                    let current = &obs.member_of;
                    let mut need = false;
                    let mut wanted: Vec<String> = Vec::new();
                    if gs.is_empty() {
                        need = !current.is_empty() && !self.append;
                    } else {
                        wanted = self.group_set(obs)?;
                        let diff: Vec<&String> = current
                            .iter()
                            .filter(|g| !wanted.contains(g))
                            .chain(wanted.iter().filter(|g| !current.contains(g)))
                            .collect();
                        if !diff.is_empty() {
                            if self.append {
                                if wanted.iter().any(|g| diff.contains(&g)) {
                                    c.push("-a".into());
                                    need = true;
                                }
                            } else {
                                need = true;
                            }
                        }
                    }
                    if need {
                        c.extend(["-G".into(), wanted.join(",")]);
                    }
                }
                if let Some(cm) = &self.comment {
                    if &info.gecos != cm {
                        c.extend(["-c".into(), cm.clone()]);
                    }
                }
                if let Some(h) = &self.home {
                    if &info.home != h {
                        c.extend(["-d".into(), h.clone()]);
                        if self.move_home {
                            c.push("-m".into());
                        }
                    }
                }
                if let Some(sh) = &self.shell {
                    if &info.shell != sh {
                        c.extend(["-s".into(), sh.clone()]);
                    }
                }
                if let Some(e) = self.expires {
                    let current = obs.shadow.as_ref().map_or(0, |s| s.expire);
                    if e < 0.0 {
                        if current >= 0 {
                            c.extend(["-e".into(), String::new()]);
                        }
                    } else if current < 0 || ymd(current as f64 * 86400.0) != ymd(e) {
                        c.extend(["-e".into(), ymd(e)]);
                    }
                }
                if let Some(i) = self.inactive {
                    if obs.shadow.as_ref().is_none_or(|s| s.inactive != i) {
                        c.extend(["-f".into(), i.to_string()]);
                    }
                }
                let hash = obs.hash();
                let new_password = self.update_always
                    && self.password.as_ref().is_some_and(|pw| {
                        hash.trim_start_matches('!') != pw.trim_start_matches('!')
                    });
                if new_password {
                    p.set_password = self.password.as_deref().map(lock_prefix);
                } else if self.password_lock == Some(true) && !hash.starts_with('!') {
                    c.push("-L".into());
                } else if self.password_lock == Some(false) && hash.starts_with('!') {
                    c.push("-U".into());
                }
                if !c.is_empty() {
                    let mut full = vec!["usermod".to_string()];
                    full.extend(c);
                    full.push(self.name.clone());
                    p.command = Some(full);
                }
                p.changed = p.command.is_some() || p.set_password.is_some();
                if let Some(sh) = &obs.shadow {
                    let mut chage = Vec::new();
                    for (flag, want, cur) in [
                        ("-m", self.expire_min, sh.min),
                        ("-M", self.expire_max, sh.max),
                        ("-W", self.expire_warn, sh.warn),
                    ] {
                        if let Some(v) = want.filter(|v| *v != cur) {
                            chage.push(format!("{flag} {v}"));
                        }
                    }
                    if !chage.is_empty() {
                        p.after
                            .push(format!("ferry_run chage {} \"$ferry_n\"", chage.join(" ")));
                        p.changed = true;
                    }
                }
                p.result.insert("append".into(), self.append.into());
                p.result.insert("move_home".into(), self.move_home.into());
            }
        }
        if self.password.is_some() {
            p.result
                .insert("password".into(), "NOT_LOGGING_PASSWORD".into());
        }
        if let Some(gs) = &self.groups {
            p.result.insert("groups".into(), gs.join(",").into());
        }
        // A missing home directory is made (and counts as a change).
        let home_known = self.home.is_some() || obs.pw.is_some();
        if self.create_home && home_known && !obs.home_exists {
            p.changed = true;
        }
        if self.sshkey && (obs.pw.is_none() || !obs.key_exists || self.force) {
            p.changed = true;
        }
        Ok(p)
    }

    /// The change script (stdin: the hash line, then the passphrase line, as needed).
    pub fn change_script(&self, plan: &Plan) -> String {
        let mut s = format!(
            "PATH=\"$PATH:/usr/local/sbin:/usr/sbin:/sbin\"\nferry_n={}\n\
             ferry_run() {{ ferry_e=$(mktemp); \"$@\" </dev/null >/dev/null 2>\"$ferry_e\"; ferry_rc=$?; if [ -s \"$ferry_e\" ]; then echo @@STDERR; cat \"$ferry_e\"; echo; fi; if [ \"$ferry_rc\" != 0 ]; then cat \"$ferry_e\" >&2; rm -f \"$ferry_e\"; exit \"$ferry_rc\"; fi; rm -f \"$ferry_e\"; }}\n\
             ferry_die() {{ printf '%s' \"$1\" >&2; exit 1; }}\n",
            quote(&self.name)
        );
        if plan.set_password.is_some() {
            s.push_str("IFS= read -r ferry_hash || true\n");
        }
        if self.sshkey && self.ssh_passphrase.is_some() {
            s.push_str("IFS= read -r ferry_pp || true\n");
        }
        if let Some(h) = &plan.create_parent {
            s.push_str(&format!("mkdir -p -- \"$(dirname -- {})\"\n", quote(h)));
        }
        if let Some(c) = &plan.command {
            s.push_str(&format!("ferry_run {}\n", crate::connection::join_argv(c)));
        }
        if plan.set_password.is_some() {
            s.push_str("printf '%s:%s\\n' \"$ferry_n\" \"$ferry_hash\" | chpasswd -e || ferry_die \"chpasswd failed for $ferry_n\"\n");
        }
        for a in &plan.after {
            s.push_str(a);
            s.push('\n');
        }
        if !self.present {
            return s;
        }
        s.push_str(
            "ferry_pw=$(getent passwd \"$ferry_n\") || ferry_die \"failed to look up user name: $ferry_n\"\n\
             ferry_uid=$(printf '%s' \"$ferry_pw\" | cut -d: -f3); ferry_gid=$(printf '%s' \"$ferry_pw\" | cut -d: -f4); ferry_h=$(printf '%s' \"$ferry_pw\" | cut -d: -f6)\n",
        );
        if self.create_home {
            s.push_str(&format!(
                "if [ -n \"$ferry_h\" ] && [ ! -d \"$ferry_h\" ]; then\n\
                 ferry_skel={}\n\
                 mkdir -p -- \"$(dirname -- \"$ferry_h\")\"\n\
                 if [ -d \"$ferry_skel\" ] && [ \"$ferry_skel\" != /dev/null ]; then cp -R -P -- \"$ferry_skel\" \"$ferry_h\" || ferry_die \"cannot copy $ferry_skel to $ferry_h\"; else mkdir -p -- \"$ferry_h\" || exit 1; fi\n\
                 ferry_um=$(sed -n 's/^UMASK[[:space:]][[:space:]]*\\([0-7][0-7]*\\)[[:space:]]*$/\\1/p' /etc/login.defs 2>/dev/null | tail -n 1)\n\
                 [ -n \"$ferry_um\" ] && chmod \"$(printf '%o' $(( 0777 & ~0$ferry_um )))\" \"$ferry_h\"\n\
                 chown -R \"$ferry_uid:$ferry_gid\" \"$ferry_h\"\n\
                 fi\n",
                quote(self.skeleton.as_deref().unwrap_or("/etc/skel"))
            ));
        }
        if self.sshkey {
            let mut kg = format!("ssh-keygen -q -t {}", quote(&self.ssh_type));
            if self.ssh_bits > 0 {
                kg.push_str(&format!(" -b {}", self.ssh_bits));
            }
            kg.push_str(" -C \"$ferry_kc\" -f \"$ferry_kf\"");
            let gen = if self.ssh_passphrase.is_some() {
                format!(
                    "ferry_pf=$(mktemp); ferry_ap=$(mktemp); chmod 600 \"$ferry_pf\"; printf '%s\\n' \"$ferry_pp\" > \"$ferry_pf\"; printf '#!/bin/sh\\ncat %s\\n' \"$ferry_pf\" > \"$ferry_ap\"; chmod 700 \"$ferry_ap\"\n\
                     SSH_ASKPASS=\"$ferry_ap\" SSH_ASKPASS_REQUIRE=force DISPLAY=\"${{DISPLAY:-:0}}\" {kg} </dev/null >/dev/null 2>\"$ferry_pf.err\"; ferry_rc=$?; rm -f \"$ferry_pf\" \"$ferry_ap\"\n\
                     if [ \"$ferry_rc\" != 0 ]; then cat \"$ferry_pf.err\" >&2; rm -f \"$ferry_pf.err\"; exit 1; fi; rm -f \"$ferry_pf.err\"\n"
                )
            } else {
                format!("ferry_run {kg} -N ''\n")
            };
            s.push_str(&format!(
                "ferry_kf={kf}\nferry_kc={kc}\n\
                 case \"$ferry_kf\" in /*) ;; *) [ -d \"$ferry_h\" ] || ferry_die \"User $ferry_n home directory does not exist\"; ferry_kf=\"$ferry_h/$ferry_kf\";; esac\n\
                 ferry_kd=$(dirname -- \"$ferry_kf\")\n\
                 if [ ! -d \"$ferry_kd\" ]; then mkdir -m 700 -- \"$ferry_kd\" && chown \"$ferry_uid:$ferry_gid\" \"$ferry_kd\" || ferry_die \"Failed to create $ferry_kd\"; fi\n\
                 if [ -e \"$ferry_kf\" ] && [ {force} = 0 ]; then :; else\n\
                 rm -f -- \"$ferry_kf\" \"$ferry_kf.pub\"\n{gen}\
                 chown \"$ferry_uid:$ferry_gid\" \"$ferry_kf\" \"$ferry_kf.pub\"\n\
                 fi\n\
                 printf '@@KEYFILE=%s\\n' \"$ferry_kf\"\n\
                 printf '@@FP=%s\\n' \"$(ssh-keygen -l -f \"$ferry_kf\" 2>&1 | head -n 1)\"\n",
                kf = quote(&self.ssh_file),
                kc = match &self.ssh_comment {
                    Some(c) => quote(c),
                    None => "\"ansible-generated on $(uname -n)\"".into(),
                },
                force = u8::from(self.force),
            ));
        }
        s.push_str("printf '@@PWAFTER=%s\\n' \"$ferry_pw\"\n");
        if self.sshkey {
            s.push_str("echo @@PUB; cat -- \"$ferry_kf.pub\" 2>/dev/null; echo\n");
        }
        s
    }

    /// For a new account: its plan, and the shell test that holds when what the
    /// plan assumed is true (no such account, the named groups exist, no group of
    /// the account's name when none is given, the home's parent exists). None
    /// when secrets would go on stdin or a key is asked for.
    fn speculation(&self) -> Option<(Plan, String)> {
        if !self.present || self.sshkey {
            return None;
        }
        let exists = |g: &String| Group::parse(&format!("{g}:x:0:"));
        let assumed = Observed {
            group: self.group.as_ref().and_then(exists),
            groups: self.groups.iter().flatten().map(exists).collect(),
            parent_exists: true,
            ..Observed::default()
        };
        let plan = self.plan(&assumed).ok()?;
        if self.stdin(&plan).is_some() {
            return None;
        }
        let mut test = vec!["! getent passwd \"$ferry_n\" >/dev/null".to_string()];
        for g in self.group.iter().chain(self.groups.iter().flatten()) {
            test.push(format!("getent group {} >/dev/null", quote(g)));
        }
        if self.group.is_none() {
            test.push("! getent group \"$ferry_n\" >/dev/null".into());
        }
        if let (Some(h), true) = (&self.home, self.create_home) {
            test.push(format!("[ -d \"$(dirname -- {})\" ]", quote(h)));
        }
        Some((plan, test.join(" && ")))
    }

    fn stdin(&self, plan: &Plan) -> Option<Vec<u8>> {
        let mut input = Vec::new();
        if let Some(h) = &plan.set_password {
            input.extend_from_slice(h.as_bytes());
            input.push(b'\n');
        }
        if self.sshkey {
            if let Some(pp) = &self.ssh_passphrase {
                input.extend_from_slice(pp.as_bytes());
                input.push(b'\n');
            }
        }
        (!input.is_empty()).then_some(input)
    }
}

/// Account fields of the result (uid, group, comment, home, shell).
fn account_fields(o: &mut Map<String, Value>, pw: &Passwd) {
    o.insert("uid".into(), pw.uid.into());
    o.insert("group".into(), pw.gid.into());
    o.insert("comment".into(), pw.gecos.clone().into());
    o.insert("home".into(), pw.home.clone().into());
    o.insert("shell".into(), pw.shell.clone().into());
}

/// Marks where the change script's output starts when the read script found no
/// account and ran the change planned for a new one.
const SPECULATED: &str = "@@FERRY-SPECULATED@@";

#[async_trait]
impl Module for User {
    fn spec(&self) -> &'static ModuleSpec {
        &SPEC
    }

    async fn run(&self, args: &Args, ctx: &Ctx<'_>) -> ModResult {
        let req = Req::from_args(args)?;
        // One round trip for a new account: the read script, and when its
        // assumptions hold, the change planned for them.
        let spec = if ctx.check_mode {
            None
        } else {
            req.speculation()
        };
        let read = req.read_script();
        let first = match &spec {
            Some((plan, test)) => format!(
                "{read}if {test}; then\necho {SPECULATED}\n{}\nfi\n",
                req.change_script(plan)
            ),
            None => read,
        };
        let out = ctx.sh(&first).await?;
        let text = out.stdout_str();
        let (seen, speculated) = match text.split_once(&format!("{SPECULATED}\n")) {
            Some((before, after)) => (before.to_string(), Some(after.to_string())),
            None => (text, None),
        };
        if speculated.is_none() && out.rc != 0 {
            let err = out.stderr_str();
            return Err(failed(
                format!("could not read the account {}: {}", req.name, err.trim()),
                out.rc,
                &seen,
                &err,
            ));
        }
        let obs = Observed::parse(&seen, &req);
        let plan = match (&speculated, spec) {
            (Some(_), Some((plan, _))) => plan,
            _ => req.plan(&obs)?,
        };
        let mut result = plan.result.clone();
        if !plan.warnings.is_empty() {
            result.insert("warnings".into(), plan.warnings.clone().into());
        }
        if ctx.check_mode || !plan.changed {
            if req.present {
                if let Some(pw) = &obs.pw {
                    account_fields(&mut result, pw);
                }
                if req.sshkey && obs.pw.is_some() {
                    result.insert(
                        "ssh_fingerprint".into(),
                        obs.fingerprint.clone().unwrap_or_default().into(),
                    );
                    result.insert(
                        "ssh_key_file".into(),
                        obs.key_file.clone().map(Value::from).unwrap_or(Value::Null),
                    );
                    result.insert(
                        "ssh_public_key".into(),
                        obs.pubkey.clone().map(Value::from).unwrap_or(Value::Null),
                    );
                }
            }
            return Ok(Outcome {
                changed: plan.changed,
                data: result,
                ..Outcome::ok()
            });
        }
        let (done, so) = match speculated {
            Some(after) => (out, after),
            None => {
                let script = req.change_script(&plan);
                let done = ctx.sh_in(&script, req.stdin(&plan).as_deref()).await?;
                let so = done.stdout_str();
                (done, so)
            }
        };
        let s = Sections::parse(&so);
        if done.rc != 0 {
            let err = done.stderr_str();
            let mut e = failed(err.trim().to_string(), done.rc, "", &err);
            if let ModError::Failed { data, .. } = &mut e {
                data.insert("name".into(), req.name.clone().into());
            }
            return Err(e);
        }
        if let Some(err) = s.body("STDERR").map(str::trim).filter(|e| !e.is_empty()) {
            result.insert("stderr".into(), err.into());
        }
        if req.present {
            if let Some(pw) = s.val("PWAFTER").and_then(Passwd::parse) {
                account_fields(&mut result, &pw);
            }
            if req.sshkey {
                result.insert("ssh_fingerprint".into(), s.val("FP").unwrap_or("").into());
                result.insert(
                    "ssh_key_file".into(),
                    s.val("KEYFILE").map(Value::from).unwrap_or(Value::Null),
                );
                result.insert(
                    "ssh_public_key".into(),
                    s.body("PUB")
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .map(Value::from)
                        .unwrap_or(Value::Null),
                );
            }
        }
        Ok(Outcome {
            changed: true,
            data: result,
            ..Outcome::ok()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(v: Value) -> Req {
        Req::from_args(&SPEC.validate(v.as_object().unwrap().clone()).unwrap()).unwrap()
    }

    fn existing(groups: &[&str]) -> Observed {
        Observed {
            pw: Passwd::parse("alice:x:1001:1001:Alice:/home/alice:/bin/bash"),
            shadow: Shadow::parse("alice:$6$salt$hash:19000:0:99999:7:::"),
            member_of: groups.iter().map(|g| g.to_string()).collect(),
            home_exists: true,
            ..Observed::default()
        }
    }

    fn grp(line: &str) -> Option<Group> {
        Group::parse(line)
    }

    #[test]
    fn create_command_like_ansible() {
        let r = req(
            json!({"name": "alice", "uid": 1500, "group": "staff", "groups": "adm, sudo", "comment": "Alice A", "shell": "/bin/zsh",
                           "home": "/srv/alice", "system": true, "password": "$6$x$y", "expires": 1893456000}),
        );
        let obs = Observed {
            group: grp("staff:x:50:"),
            groups: vec![grp("adm:x:4:"), grp("sudo:x:27:")],
            parent_exists: true,
            ..Observed::default()
        };
        let p = r.plan(&obs).unwrap();
        assert_eq!(
            p.command.unwrap(),
            [
                "useradd",
                "-u",
                "1500",
                "-g",
                "staff",
                "-G",
                "adm,sudo",
                "-c",
                "Alice A",
                "-d",
                "/srv/alice",
                "-s",
                "/bin/zsh",
                "-e",
                "2030-01-01",
                "-m",
                "-r",
                "alice"
            ]
        );
        assert_eq!(p.set_password.as_deref(), Some("$6$x$y"));
        assert_eq!(p.result["password"], "NOT_LOGGING_PASSWORD");
        assert!(p
            .warnings
            .iter()
            .any(|w| w.contains("not to have been hashed")));
        // A group named like the user already exists: -N, like Ansible.
        let p = req(json!({"name": "bob", "create_home": false}))
            .plan(&Observed {
                name_group: true,
                ..Observed::default()
            })
            .unwrap();
        assert_eq!(p.command.unwrap(), ["useradd", "-N", "-M", "bob"]);
        // Unknown groups fail.
        let e = req(json!({"name": "bob", "groups": ["nope"]}))
            .plan(&Observed {
                groups: vec![None],
                ..Observed::default()
            })
            .unwrap_err();
        assert_eq!(e.to_string(), "Group nope does not exist");
    }

    #[test]
    fn modify_only_what_differs() {
        let obs = Observed {
            groups: vec![grp("adm:x:4:alice"), grp("sudo:x:27:")],
            ..existing(&["adm"])
        };
        let r = req(
            json!({"name": "alice", "groups": ["adm", "sudo"], "shell": "/bin/bash", "comment": "Alice"}),
        );
        assert_eq!(
            r.plan(&obs).unwrap().command.unwrap(),
            ["usermod", "-G", "adm,sudo", "alice"]
        );
        let r = req(json!({"name": "alice", "groups": ["sudo"], "append": true}));
        let obs1 = Observed {
            groups: vec![grp("sudo:x:27:")],
            ..existing(&["adm"])
        };
        assert_eq!(
            r.plan(&obs1).unwrap().command.unwrap(),
            ["usermod", "-a", "-G", "sudo", "alice"]
        );
        // Appending groups the user already has: nothing.
        let obs2 = Observed {
            groups: vec![grp("sudo:x:27:alice")],
            ..existing(&["adm", "sudo"])
        };
        let p = r.plan(&obs2).unwrap();
        assert!(p.command.is_none() && !p.changed);
        // groups: '' removes supplementary groups.
        let r = req(json!({"name": "alice", "groups": ""}));
        assert_eq!(
            r.plan(&existing(&["adm"])).unwrap().command.unwrap(),
            ["usermod", "-G", "", "alice"]
        );
        assert!(!r.plan(&existing(&[])).unwrap().changed);
        // uid/home/move_home/primary group by gid.
        let r = req(
            json!({"name": "alice", "uid": 2000, "home": "/srv/a", "move_home": true, "group": "staff"}),
        );
        let obs3 = Observed {
            group: grp("staff:x:50:"),
            ..existing(&[])
        };
        assert_eq!(
            r.plan(&obs3).unwrap().command.unwrap(),
            ["usermod", "-u", "2000", "-g", "50", "-d", "/srv/a", "-m", "alice"]
        );
    }

    #[test]
    fn passwords_locks_and_expiry() {
        let same = req(json!({"name": "alice", "password": "$6$salt$hash"}));
        assert!(!same.plan(&existing(&[])).unwrap().changed);
        let other = req(json!({"name": "alice", "password": "$6$salt$other"}));
        let p = other.plan(&existing(&[])).unwrap();
        assert!(p.changed && p.command.is_none());
        assert_eq!(p.set_password.as_deref(), Some("$6$salt$other"));
        let once = req(
            json!({"name": "alice", "password": "$6$salt$other", "update_password": "on_create"}),
        );
        assert!(!once.plan(&existing(&[])).unwrap().changed);
        let lock = req(json!({"name": "alice", "password_lock": true}));
        assert_eq!(
            lock.plan(&existing(&[])).unwrap().command.unwrap(),
            ["usermod", "-L", "alice"]
        );
        let mut locked = existing(&[]);
        locked.shadow = Shadow::parse("alice:!$6$salt$hash:19000:0:99999:7:::");
        assert!(!lock.plan(&locked).unwrap().changed);
        assert_eq!(
            req(json!({"name": "alice", "password_lock": false}))
                .plan(&locked)
                .unwrap()
                .command
                .unwrap(),
            ["usermod", "-U", "alice"]
        );
        // Expiry: set, same day is ok, negative removes.
        let exp = req(json!({"name": "alice", "expires": 1893456000}));
        assert_eq!(
            exp.plan(&existing(&[])).unwrap().command.unwrap(),
            ["usermod", "-e", "2030-01-01", "alice"]
        );
        let mut dated = existing(&[]);
        dated.shadow = Shadow::parse("alice:x:19000:0:99999:7::21915:");
        assert!(!exp.plan(&dated).unwrap().changed);
        assert_eq!(
            req(json!({"name": "alice", "expires": -1}))
                .plan(&dated)
                .unwrap()
                .command
                .unwrap(),
            ["usermod", "-e", "", "alice"]
        );
        // chage for password ages.
        let p = req(json!({"name": "alice", "password_expire_max": 30, "password_expire_warn": 7}))
            .plan(&existing(&[]))
            .unwrap();
        assert_eq!(p.after, vec!["ferry_run chage -M 30 \"$ferry_n\""]);
    }

    #[test]
    fn remove_and_script_keeps_secrets_out_of_argv() {
        let p = req(json!({"name": "alice", "state": "absent", "remove": true, "force": true}))
            .plan(&existing(&[]))
            .unwrap();
        assert_eq!(p.command.unwrap(), ["userdel", "-f", "-r", "alice"]);
        assert!(
            !req(json!({"name": "ghost", "state": "absent"}))
                .plan(&Observed::default())
                .unwrap()
                .changed
        );

        let r = req(
            json!({"name": "alice", "password": "$6$salt$S3CRET", "generate_ssh_key": true, "ssh_key_passphrase": "PASSPHRASE"}),
        );
        let plan = r.plan(&existing(&[])).unwrap();
        let script = r.change_script(&plan);
        assert!(!script.contains("S3CRET") && !script.contains("PASSPHRASE"));
        assert_eq!(
            String::from_utf8(r.stdin(&plan).unwrap()).unwrap(),
            "$6$salt$S3CRET\nPASSPHRASE\n"
        );
        assert!(script.contains("chpasswd -e") && script.contains("SSH_ASKPASS_REQUIRE=force"));
    }

    #[test]
    fn hash_check() {
        assert!(!looks_unhashed("!"));
        assert!(looks_unhashed("plaintext"));
        assert!(!looks_unhashed(&format!("$6$salt${}", "a".repeat(86))));
        assert!(looks_unhashed("$6$salt$short"));
    }
}
