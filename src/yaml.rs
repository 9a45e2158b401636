//! YAML loading as Ansible reads it (PyYAML, YAML 1.1 scalars), keeping the
//! position of every node so that errors can name file, line and column.
//!
//! We build our own tree from `yaml-rust2`'s event stream because no serde YAML
//! crate keeps positions and YAML 1.1 resolution (`yes` → true, `0644` → 420)
//! at the same time.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::error::{Error, Location};

/// Upper bound on nodes materialised through aliases: refuses "billion laughs".
const MAX_ALIAS_NODES: usize = 200_000;
/// Upper bound on nesting, so a deep document cannot overflow the stack.
const MAX_DEPTH: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

/// A YAML node with its position (1-based line and column).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: Kind,
    pub line: usize,
    pub col: usize,
    /// Explicit tag such as `!vault` or `!unsafe`, without the leading `!`.
    pub tag: Option<String>,
}

/// A parsed file: its documents and its path, so nodes can be turned into locations.
#[derive(Debug, Clone)]
pub struct Doc {
    pub file: Arc<PathBuf>,
    pub root: Node,
}

impl Node {
    fn new(kind: Kind, mark: Marker) -> Node {
        Node {
            kind,
            line: mark.line(),
            col: mark.col() + 1,
            tag: None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            Kind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.kind, Kind::Null)
    }

    /// Value of key `k` in a mapping.
    pub fn get(&self, k: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(key, _)| key.key_str() == k)
            .map(|(_, v)| v)
    }

    /// A mapping key as text (YAML allows non-string keys; Ansible stringifies them).
    pub fn key_str(&self) -> String {
        match &self.kind {
            Kind::Str(s) => s.clone(),
            Kind::Null => "null".into(),
            Kind::Bool(b) => if *b { "True" } else { "False" }.into(),
            Kind::Int(i) => i.to_string(),
            Kind::Float(f) => f.to_string(),
            _ => to_json(self).to_string(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "boolean",
            Kind::Int(_) => "integer",
            Kind::Float(_) => "float",
            Kind::Str(_) => "string",
            Kind::Seq(_) => "list",
            Kind::Map(_) => "mapping",
        }
    }
}

/// Converts a node into the runtime value model (JSON-like, insertion ordered).
pub fn to_json(node: &Node) -> Value {
    match &node.kind {
        Kind::Null => Value::Null,
        Kind::Bool(b) => Value::Bool(*b),
        Kind::Int(i) => Value::from(*i),
        Kind::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(f.to_string())),
        // `!vault` values were decrypted while parsing (see `Builder::on_event`).
        Kind::Str(s) => Value::String(s.clone()),
        Kind::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        Kind::Map(pairs) => {
            let mut m = Map::new();
            for (k, v) in pairs {
                m.insert(k.key_str(), to_json(v));
            }
            Value::Object(m)
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Str(s) => write!(f, "{s}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// Reads and parses a YAML file (all documents). A vault-encrypted file
/// (`$ANSIBLE_VAULT;...`) is decrypted first with the process keyring.
pub fn load_file(path: &Path) -> Result<Vec<Doc>, Error> {
    let raw = std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    if crate::vault::is_vault_bytes(&raw) {
        let text = crate::vault::read_text(path)?;
        // Never quote decrypted lines in error messages.
        let docs = parse_str(&text, path).map_err(|e| match e {
            Error::Parse { loc, msg, .. } => Error::Parse {
                loc,
                msg: format!("{msg} (in a vault-encrypted file)"),
                snippet: String::new(),
            },
            other => other,
        })?;
        for d in &docs {
            crate::vault::note_revealed_json(&to_json(&d.root));
        }
        return Ok(docs);
    }
    let text = String::from_utf8(raw).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
    })?;
    parse_str(&text, path)
}

/// Parses YAML text; `path` is used for positions in errors.
pub fn parse_str(text: &str, path: &Path) -> Result<Vec<Doc>, Error> {
    let file = Arc::new(path.to_path_buf());
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    if let Err(e) = parser.load(&mut builder, true) {
        let m = e.marker();
        return Err(Error::Parse {
            loc: Location::new(&file, m.line(), m.col() + 1),
            msg: format!("YAML syntax error: {}", e.info()),
            snippet: snippet(text, m.line(), m.col() + 1),
        });
    }
    if let Some((msg, line, col)) = builder.error {
        return Err(Error::Parse {
            loc: Location::new(&file, line, col),
            msg,
            snippet: snippet(text, line, col),
        });
    }
    Ok(builder
        .docs
        .into_iter()
        .map(|root| Doc {
            file: file.clone(),
            root,
        })
        .collect())
}

/// The offending line with a caret under the column, as Ansible prints it
/// (nothing for a vault-encrypted file: its lines mean nothing to a reader).
pub fn snippet(text: &str, line: usize, col: usize) -> String {
    if crate::vault::is_vault(text) {
        return String::new();
    }
    match text.lines().nth(line.saturating_sub(1)) {
        Some(l) => format!("{l}\n{}^ here", " ".repeat(col.saturating_sub(1))),
        None => String::new(),
    }
}

enum Frame {
    Seq(Node, usize),
    Map(Node, usize, Option<Node>),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: std::collections::HashMap<usize, Node>,
    alias_nodes: usize,
    error: Option<(String, usize, usize)>,
}

impl Builder {
    fn fail(&mut self, msg: String, mark: Marker) {
        if self.error.is_none() {
            self.error = Some((msg, mark.line(), mark.col() + 1));
        }
    }

    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(seq, _)) => {
                if let Kind::Seq(items) = &mut seq.kind {
                    items.push(node);
                }
            }
            Some(Frame::Map(map, _, pending)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => {
                    if let Kind::Map(pairs) = &mut map.kind {
                        insert_pair(pairs, key, node);
                    }
                }
            },
        }
    }
}

/// Inserts a key, applying merge keys (`<<`) and "last one wins" for duplicates.
fn insert_pair(pairs: &mut Vec<(Node, Node)>, key: Node, value: Node) {
    if key.as_str() == Some("<<") && key.tag.is_none() {
        let sources: Vec<Node> = match value.kind {
            Kind::Map(_) => vec![value],
            Kind::Seq(items) => items,
            _ => return,
        };
        for src in sources {
            if let Kind::Map(src_pairs) = src.kind {
                for (k, v) in src_pairs {
                    if !pairs.iter().any(|(ek, _)| ek.kind == k.kind) {
                        pairs.push((k, v));
                    }
                }
            }
        }
        return;
    }
    if let Some(slot) = pairs.iter_mut().find(|(ek, _)| ek.kind == key.kind) {
        slot.1 = value;
    } else {
        pairs.push((key, value));
    }
}

fn count_nodes(n: &Node) -> usize {
    match &n.kind {
        Kind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        Kind::Map(pairs) => {
            1 + pairs
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

fn tag_name(tag: &Option<Tag>) -> Option<String> {
    tag.as_ref().map(|t| {
        if t.handle == "!" {
            t.suffix.clone()
        } else {
            format!("{}{}", t.handle, t.suffix)
        }
    })
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let tag = tag_name(&tag);
                let kind = resolve_scalar(text, style, tag.as_deref());
                let mut node = Node::new(kind, mark);
                node.tag = tag.filter(|t| !t.starts_with("tag:yaml.org"));
                if node.tag.as_deref() == Some("vault") {
                    if let Kind::Str(ciphertext) = &node.kind {
                        match crate::vault::decrypt_str(ciphertext) {
                            Ok(plain) => {
                                crate::vault::note_revealed(&plain);
                                node.kind = Kind::Str(plain)
                            }
                            Err(e) => {
                                // Point at the key (`pw: !vault |`), not at the ciphertext.
                                if let Some(Frame::Map(_, _, Some(key))) = self.stack.last() {
                                    let msg = format!(
                                        "cannot decrypt the !vault value of '{}': {e}",
                                        key.key_str()
                                    );
                                    self.error = Some((msg, key.line, key.col));
                                    return;
                                }
                                return self
                                    .fail(format!("cannot decrypt this !vault value: {e}"), mark);
                            }
                        }
                    }
                }
                self.push_value(node, anchor);
            }
            Event::SequenceStart(anchor, tag) => {
                if self.stack.len() >= MAX_DEPTH {
                    return self.fail("YAML nesting too deep".into(), mark);
                }
                let mut node = Node::new(Kind::Seq(Vec::new()), mark);
                node.tag = tag_name(&tag);
                self.stack.push(Frame::Seq(node, anchor));
            }
            Event::MappingStart(anchor, tag) => {
                if self.stack.len() >= MAX_DEPTH {
                    return self.fail("YAML nesting too deep".into(), mark);
                }
                let mut node = Node::new(Kind::Map(Vec::new()), mark);
                node.tag = tag_name(&tag);
                self.stack.push(Frame::Map(node, anchor, None));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some(frame) = self.stack.pop() {
                    let (node, anchor) = match frame {
                        Frame::Seq(n, a) => (n, a),
                        Frame::Map(mut n, a, _) => {
                            // A block mapping starts at its first key (the
                            // parser marks it at that key's `:`).
                            if let Kind::Map(entries) = &n.kind {
                                if let Some((k, _)) = entries.first() {
                                    if (k.line, k.col) < (n.line, n.col) {
                                        (n.line, n.col) = (k.line, k.col);
                                    }
                                }
                            }
                            (n, a)
                        }
                    };
                    self.push_value(node, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id).cloned() {
                Some(node) => {
                    self.alias_nodes += count_nodes(&node);
                    if self.alias_nodes > MAX_ALIAS_NODES {
                        return self.fail(
                            format!(
                                "YAML aliases expand to more than {MAX_ALIAS_NODES} nodes (alias bomb?)"
                            ),
                            mark,
                        );
                    }
                    self.push_value(node, 0);
                }
                None => self.fail("YAML alias to an unknown anchor".into(), mark),
            },
            Event::DocumentEnd => {
                // An empty document yields nothing; Ansible treats it as null.
            }
            _ => {}
        }
    }
}

/// YAML 1.1 scalar resolution as PyYAML does it (what Ansible users rely on).
fn resolve_scalar(text: String, style: TScalarStyle, tag: Option<&str>) -> Kind {
    match tag {
        Some("tag:yaml.org,2002:str") | Some("str") | Some("vault") | Some("unsafe") => {
            return Kind::Str(text)
        }
        Some("tag:yaml.org,2002:int") => {
            return parse_int(&text).map(Kind::Int).unwrap_or(Kind::Str(text))
        }
        Some("tag:yaml.org,2002:float") => {
            return text.parse().map(Kind::Float).unwrap_or(Kind::Str(text))
        }
        Some("tag:yaml.org,2002:bool") => {
            return parse_bool(&text).map(Kind::Bool).unwrap_or(Kind::Str(text))
        }
        _ => {}
    }
    if style != TScalarStyle::Plain {
        return Kind::Str(text);
    }
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Kind::Null,
        _ => {}
    }
    if let Some(b) = parse_bool(&text) {
        return Kind::Bool(b);
    }
    if let Some(i) = parse_int(&text) {
        return Kind::Int(i);
    }
    if let Some(f) = parse_float(&text) {
        return Kind::Float(f);
    }
    Kind::Str(text)
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => Some(true),
        "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

fn parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() || body.starts_with('_') {
        return None;
    }
    let clean: String = body.chars().filter(|c| *c != '_').collect();
    let v = if let Some(h) = clean.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()?
    } else if let Some(b) = clean.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()?
    } else if clean.len() > 1 && clean.starts_with('0') {
        // YAML 1.1 octal: `mode: 0644` is 420.
        i64::from_str_radix(&clean[1..], 8).ok()?
    } else if clean.contains(':') {
        // Sexagesimal (base 60), e.g. 190:20:30; PyYAML resolves it, so do we.
        let mut acc: i64 = 0;
        for (i, part) in clean.split(':').enumerate() {
            let d: i64 = part.parse().ok()?;
            if part.is_empty() || (i > 0 && d >= 60) || (i == 0 && part.starts_with('0')) {
                return None;
            }
            acc = acc.checked_mul(60)?.checked_add(d)?;
        }
        acc
    } else if clean.bytes().all(|b| b.is_ascii_digit()) {
        clean.parse().ok()?
    } else {
        return None;
    };
    Some(if neg { -v } else { v })
}

fn parse_float(s: &str) -> Option<f64> {
    match s {
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
        _ => {}
    }
    // PyYAML needs a dot: `1e3` stays a string, `1.5`, `.5`, `1.` are floats.
    if !s.contains('.') {
        return None;
    }
    let body = s.trim_start_matches(['-', '+']);
    let ok = body
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '_' | 'e' | 'E' | '-' | '+'));
    if !ok || !body.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    s.replace('_', "").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> Value {
        to_json(&parse_str(text, Path::new("t.yml")).unwrap()[0].root)
    }

    #[test]
    fn yaml11_scalars() {
        let v = one("a: yes\nb: 'yes'\nc: 0644\nd: off\ne: 1.5\nf: 1e3\ng: ~\nh: 0x1f\ni: '0644'\nj: 22:22\n");
        assert_eq!(v["a"], Value::Bool(true));
        assert_eq!(v["b"], Value::String("yes".into()));
        assert_eq!(v["c"], Value::from(420));
        assert_eq!(v["d"], Value::Bool(false));
        assert_eq!(v["e"], serde_json::json!(1.5));
        assert_eq!(v["f"], Value::String("1e3".into()));
        assert_eq!(v["g"], Value::Null);
        assert_eq!(v["h"], Value::from(31));
        assert_eq!(v["i"], Value::String("0644".into()));
        assert_eq!(v["j"], Value::from(1342));
    }

    #[test]
    fn anchors_and_merge_keys() {
        let v = one("base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\nl: [*b]\n");
        assert_eq!(v["d"], serde_json::json!({"y": 3, "x": 1}));
        assert_eq!(v["l"][0]["x"], Value::from(1));
    }

    #[test]
    fn positions_and_errors() {
        let docs = parse_str("- name: a\n  debug: {msg: hi}\n", Path::new("p.yml")).unwrap();
        let task = &docs[0].root.as_seq().unwrap()[0];
        let debug = task.get("debug").unwrap();
        assert_eq!((debug.line, debug.col), (2, 10));
        let err = parse_str("a: [1, 2\nb: c\n", Path::new("bad.yml")).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("bad.yml:"), "{msg}");
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let err = parse_str(&text, Path::new("bomb.yml")).unwrap_err();
        assert!(err.to_string().contains("alias"), "{err}");
    }

    #[test]
    fn vault_values_are_decrypted_or_refused_with_a_position() {
        let secret = crate::vault::Secret::new("yamltest", "yaml-test-pw");
        crate::vault::add_secret(secret.clone());
        let ct = crate::vault::encrypt(b"opensesame", &secret);
        let text = format!("a: 1\n{}\n", crate::vault::yaml_block(&ct, Some("pw")));
        let docs = parse_str(&text, Path::new("v.yml")).unwrap();
        assert_eq!(
            to_json(&docs[0].root)["pw"],
            Value::String("opensesame".into())
        );
        assert_eq!(
            docs[0].root.get("pw").unwrap().tag.as_deref(),
            Some("vault")
        );
        // Not decryptable with any secret in the keyring: file:line:col and why.
        let other = crate::vault::encrypt(b"x", &crate::vault::Secret::new("nobody", "unknown-pw"));
        let text = format!("a: 1\n{}\n", crate::vault::yaml_block(&other, Some("pw")));
        let err = parse_str(&text, Path::new("v.yml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "v.yml:2:1: cannot decrypt the !vault value of 'pw': Decryption failed"
            ),
            "{err}"
        );
        assert!(err.contains("pw: !vault |\n^ here"), "{err}");
        let err = parse_str(
            "- !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  6162\n",
            Path::new("v.yml"),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("v.yml:2:3: cannot decrypt this !vault value: invalid vault data"),
            "{err}"
        );
    }

    #[test]
    fn nested_alias_bomb_in_a_playbook_is_refused() {
        // "Billion laughs" shaped like a playbook: each level multiplies by 9.
        let mut text = String::from(
            "- hosts: all\n  vars:\n    l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
        );
        for i in 1..9 {
            let p = format!("*l{}", i - 1);
            text.push_str(&format!(
                "    l{i}: &l{i} [{}]\n",
                [p.as_str(); 9].join(", ")
            ));
        }
        text.push_str("  tasks: [{debug: {var: l8}}]\n");
        let start = std::time::Instant::now();
        let err = parse_str(&text, Path::new("bomb.yml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("bomb.yml:") && err.contains("alias bomb"),
            "{err}"
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
    }
}
