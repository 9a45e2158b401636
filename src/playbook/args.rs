//! `k=v` argument strings (`copy: src=a dest=b`, `command: ls chdir=/tmp`),
//! split the way Ansible's `parse_kv` does: quotes and Jinja blocks are kept whole.

use serde_json::{Map, Value};

/// Options that free-form modules (command, shell, ...) take inline.
const RAW_PARAM_KEYS: &[&str] = &[
    "creates",
    "removes",
    "chdir",
    "executable",
    "warn",
    "stdin",
    "stdin_add_newline",
    "strip_empty_ends",
    "argv",
];

/// Splits on whitespace, keeping quoted strings and `{{ }}` / `{% %}` blocks whole.
/// Returns the raw tokens (quotes included).
fn split_args(s: &str) -> Result<Vec<(String, std::ops::Range<usize>)>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    // Byte offsets of the current token in `s`.
    let offsets: Vec<usize> = s
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()))
        .collect();
    let mut start = 0usize;
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '\\' && quote.is_some() {
            cur.push(c);
            if let Some(n) = next {
                cur.push(n);
                i += 1;
            }
        } else if let Some(q) = quote {
            if c == q && depth == 0 {
                quote = None;
            }
            cur.push(c);
        } else if (c == '{' && matches!(next, Some('{') | Some('%') | Some('#')))
            && i + 1 < chars.len()
        {
            depth += 1;
            cur.push(c);
            cur.push(chars[i + 1]);
            i += 1;
        } else if matches!(c, '}' | '%' | '#') && next == Some('}') && depth > 0 {
            depth -= 1;
            cur.push(c);
            cur.push('}');
            i += 1;
        } else if depth == 0 && (c == '"' || c == '\'') {
            quote = Some(c);
            cur.push(c);
        } else if depth == 0 && c.is_whitespace() {
            if !cur.is_empty() {
                out.push((std::mem::take(&mut cur), start..offsets[i]));
            }
        } else {
            cur.push(c);
        }
        i += 1;
        if cur.is_empty() {
            start = offsets[i.min(offsets.len() - 1)];
        }
    }
    if quote.is_some() {
        return Err(format!("unbalanced quotes in arguments: {s}"));
    }
    if depth > 0 {
        return Err(format!("unbalanced Jinja braces in arguments: {s}"));
    }
    if !cur.is_empty() {
        out.push((cur, start..s.len()));
    }
    Ok(out)
}

fn unquote(s: &str) -> String {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        let inner = &s[1..s.len() - 1];
        return inner.replace(&format!("\\{}", b[0] as char), &(b[0] as char).to_string());
    }
    s.to_string()
}

/// Parses `k=v` pairs. With `free_form`, everything that is not a known inline
/// option becomes `_raw_params` (the command line), exactly as written.
pub fn parse_kv(s: &str, free_form: bool) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let mut raw: Vec<String> = Vec::new();
    // Spans of the inline options taken out of a free-form command.
    let mut taken: Vec<std::ops::Range<usize>> = Vec::new();
    for (tok, span) in split_args(s)? {
        let kv = tok.find('=').and_then(|i| {
            let (k, v) = (&tok[..i], &tok[i + 1..]);
            let ident = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            (ident && (!free_form || RAW_PARAM_KEYS.contains(&k)))
                .then(|| (k.to_string(), unquote(v)))
        });
        match kv {
            Some((k, v)) if raw.is_empty() || free_form => {
                out.insert(k, Value::String(v));
                taken.push(span);
            }
            _ if free_form => raw.push(tok),
            _ => return Err(format!("expected key=value, found {tok:?}")),
        }
    }
    if free_form && !raw.is_empty() {
        // The command keeps its own text (newlines of `shell: |` blocks included);
        // only the inline options are cut out.
        let mut text = String::new();
        let mut pos = 0;
        for r in &taken {
            text.push_str(&s[pos..r.start]);
            pos = r.end;
        }
        text.push_str(&s[pos..]);
        out.insert("_raw_params".into(), Value::String(text.trim().to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_and_free_form() {
        let m = parse_kv("src=a.txt dest='/tmp/x y' mode=0644", false).unwrap();
        assert_eq!(m["dest"], "/tmp/x y");
        assert_eq!(m["mode"], "0644");
        let m = parse_kv("echo \"a b\" {{ x | default('q r') }} creates=/tmp/f", true).unwrap();
        assert_eq!(m["_raw_params"], "echo \"a b\" {{ x | default('q r') }}");
        assert_eq!(m["creates"], "/tmp/f");
        let m = parse_kv("echo one\necho two\n", true).unwrap();
        assert_eq!(m["_raw_params"], "echo one\necho two");
        let m = parse_kv("ls  -l chdir=/tmp  /etc", true).unwrap();
        assert_eq!(m["_raw_params"], "ls  -l   /etc");
        assert!(parse_kv("a='b", false).is_err());
        assert!(parse_kv("justaword", false).is_err());
    }
}
