//! Helpers shared by the system modules (services, users, groups, keys,
//! sudoers, cron, hostname): one read script per task prints tagged sections,
//! parsed here; passwd/group entries; failures that keep rc/stdout/stderr.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::ModError;

/// Output of a read script, split on marker lines:
/// `@@KEY=VALUE` is one value, `@@NAME` starts a body that runs to the next
/// marker, `@@@NAME` starts a body that runs to the end (raw file content).
#[derive(Debug, Default, Clone)]
pub struct Sections {
    pub vals: HashMap<String, String>,
    pub bodies: HashMap<String, String>,
    /// Flags: bodies and values seen, in order (for repeated markers).
    pub order: Vec<(String, String)>,
}

impl Sections {
    pub fn parse(out: &str) -> Sections {
        let mut s = Sections::default();
        let mut cur: Option<String> = None;
        let mut body = String::new();
        let mut rest = out;
        while !rest.is_empty() {
            let (line, next) = match rest.find('\n') {
                Some(i) => (&rest[..=i], &rest[i + 1..]),
                None => (rest, ""),
            };
            let bare = line.trim_end_matches('\n');
            if let Some(name) = bare.strip_prefix("@@@") {
                if let Some(c) = cur.take() {
                    s.push_body(c, std::mem::take(&mut body));
                }
                s.push_body(name.to_string(), next.to_string());
                return s;
            }
            if let Some(m) = bare.strip_prefix("@@") {
                if let Some(c) = cur.take() {
                    s.push_body(c, std::mem::take(&mut body));
                }
                match m.split_once('=') {
                    Some((k, v)) => {
                        s.vals.insert(k.to_string(), v.to_string());
                        s.order.push((k.to_string(), v.to_string()));
                    }
                    None => cur = Some(m.to_string()),
                }
            } else if cur.is_some() {
                body.push_str(line);
            }
            rest = next;
        }
        if let Some(c) = cur.take() {
            s.push_body(c, body);
        }
        s
    }

    fn push_body(&mut self, name: String, body: String) {
        self.order.push((name.clone(), body.clone()));
        self.bodies.insert(name, body);
    }

    pub fn val(&self, k: &str) -> Option<&str> {
        self.vals.get(k).map(String::as_str)
    }

    /// A value as an integer (e.g. an exit code).
    pub fn int(&self, k: &str) -> Option<i64> {
        self.val(k).and_then(|v| v.trim().parse().ok())
    }

    pub fn body(&self, k: &str) -> Option<&str> {
        self.bodies.get(k).map(String::as_str)
    }

    /// Whether a marker (value or body) was printed.
    pub fn has(&self, k: &str) -> bool {
        self.vals.contains_key(k) || self.bodies.contains_key(k)
    }
}

/// A failure carrying rc/stdout/stderr for `register`.
pub fn failed(msg: impl Into<String>, rc: i32, stdout: &str, stderr: &str) -> ModError {
    let mut data = Map::new();
    data.insert("rc".into(), rc.into());
    data.insert("stdout".into(), stdout.into());
    data.insert("stderr".into(), stderr.into());
    ModError::Failed {
        msg: msg.into(),
        data,
    }
}

/// Fails with the command's stderr as the message (rc, stdout and stderr in the
/// result) when it did not exit 0.
pub fn check_rc(out: &crate::connection::ExecOut) -> Result<(), ModError> {
    if out.rc == 0 {
        return Ok(());
    }
    let err = out.stderr_str();
    Err(failed(
        err.trim().to_string(),
        out.rc,
        &out.stdout_str(),
        &err,
    ))
}

/// A failure with extra result fields.
pub fn failed_with(msg: impl Into<String>, fields: &[(&str, Value)]) -> ModError {
    let mut data = Map::new();
    for (k, v) in fields {
        data.insert((*k).to_string(), v.clone());
    }
    ModError::Failed {
        msg: msg.into(),
        data,
    }
}

/// A `passwd` entry (`getent passwd NAME`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Passwd {
    pub name: String,
    pub passwd: String,
    pub uid: i64,
    pub gid: i64,
    pub gecos: String,
    pub home: String,
    pub shell: String,
}

impl Passwd {
    pub fn parse(line: &str) -> Option<Passwd> {
        let f: Vec<&str> = line.trim_end_matches(['\n', '\r']).splitn(7, ':').collect();
        if f.len() < 7 || f[0].is_empty() {
            return None;
        }
        Some(Passwd {
            name: f[0].into(),
            passwd: f[1].into(),
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            gecos: f[4].into(),
            home: f[5].into(),
            shell: f[6].into(),
        })
    }
}

/// A `group` entry (`getent group NAME`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Group {
    pub name: String,
    pub gid: i64,
    pub members: Vec<String>,
}

impl Group {
    pub fn parse(line: &str) -> Option<Group> {
        let f: Vec<&str> = line.trim_end_matches(['\n', '\r']).splitn(4, ':').collect();
        if f.len() < 3 || f[0].is_empty() {
            return None;
        }
        Some(Group {
            name: f[0].into(),
            gid: f[2].parse().ok()?,
            members: f
                .get(3)
                .map(|m| {
                    m.split(',')
                        .filter(|x| !x.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// A `shadow` entry's fields (`getent shadow NAME`, root only); absent numbers are -1 like getspnam.
#[derive(Debug, Clone, PartialEq)]
pub struct Shadow {
    pub hash: String,
    pub min: i64,
    pub max: i64,
    pub warn: i64,
    pub inactive: i64,
    pub expire: i64,
}

impl Shadow {
    pub fn parse(line: &str) -> Option<Shadow> {
        let f: Vec<&str> = line.trim_end_matches(['\n', '\r']).split(':').collect();
        if f.len() < 8 {
            return None;
        }
        let n = |i: usize| {
            f.get(i)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(-1)
        };
        Some(Shadow {
            hash: f[1].into(),
            min: n(3),
            max: n(4),
            warn: n(5),
            inactive: n(6),
            expire: n(7),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_values_bodies_and_raw_rest() {
        let s = Sections::parse(
            "junk\n@@RC=3\n@@SHOW\na=1\nb=2\n@@EMPTY\n@@X=y=z\n@@@FILE\n@@not a marker\nlast",
        );
        assert_eq!(s.int("RC"), Some(3));
        assert_eq!(s.body("SHOW"), Some("a=1\nb=2\n"));
        assert_eq!(s.body("EMPTY"), Some(""));
        assert_eq!(s.val("X"), Some("y=z"));
        assert_eq!(s.body("FILE"), Some("@@not a marker\nlast"));
        assert!(s.has("EMPTY") && !s.has("NOPE"));
    }

    #[test]
    fn account_entries() {
        let p = Passwd::parse("deploy:x:1000:1000:De Ploy,,,:/home/deploy:/bin/bash\n").unwrap();
        assert_eq!(
            (p.uid, p.gid, p.gecos.as_str(), p.shell.as_str()),
            (1000, 1000, "De Ploy,,,", "/bin/bash")
        );
        assert!(Passwd::parse("").is_none());
        let g = Group::parse("sudo:x:27:alice,bob").unwrap();
        assert_eq!(g.members, vec!["alice", "bob"]);
        assert!(Group::parse("adm:x:4:").unwrap().members.is_empty());
        let s = Shadow::parse("a:$6$x$y:19000:0:99999:7:::").unwrap();
        assert_eq!(
            (s.hash.as_str(), s.min, s.max, s.warn, s.inactive, s.expire),
            ("$6$x$y", 0, 99999, 7, -1, -1)
        );
    }
}
