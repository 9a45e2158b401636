//! Python `re` compatibility for modules whose arguments are Python regular
//! expressions (lineinfile, blockinfile, replace, find, wait_for).
//!
//! Patterns are translated to the `regex` crate's syntax where the two differ
//! (`\Z`, `{,n}`, literal braces, `(?#...)`, octal escapes, class literals);
//! features the crate lacks (look-around, back-references in patterns) give a
//! clear error. Replacement templates (`\1`, `\g<1>`, `\g<name>`, `\n`...)
//! are translated to the crate's `${1}` syntax.

use regex::bytes::Regex;

/// Compiles a Python pattern (as bytes regex, so files need not be UTF-8).
pub fn compile(pattern: &str, multiline: bool, dotall: bool) -> Result<Regex, String> {
    let body = translate(pattern)?;
    let mut flags = String::new();
    if multiline {
        flags.push('m');
    }
    if dotall {
        flags.push('s');
    }
    let full = if flags.is_empty() {
        body
    } else {
        format!("(?{flags}){body}")
    };
    Regex::new(&full).map_err(|e| {
        format!(
            "invalid regular expression {pattern:?}: {}",
            first_line(&e.to_string())
        )
    })
}

fn first_line(s: &str) -> String {
    // The crate's messages are multi-line drawings; keep them readable but complete.
    s.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether a Python pattern turns on MULTILINE through an inline flag.
pub fn has_inline_multiline(pattern: &str) -> bool {
    let b = pattern.as_bytes();
    let mut i = 0;
    while i + 2 < b.len() {
        if b[i] == b'\\' {
            i += 2;
            continue;
        }
        if b[i] == b'(' && b[i + 1] == b'?' {
            let mut j = i + 2;
            while j < b.len() && b[j].is_ascii_alphabetic() {
                if b[j] == b'm' {
                    return true;
                }
                j += 1;
            }
        }
        i += 1;
    }
    false
}

/// Python pattern syntax to `regex` syntax.
pub fn translate(p: &str) -> Result<String, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    // Position right after '[' or '[^' (a ']' there is literal).
    let mut class_start = 0usize;
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' {
            let Some(&n) = chars.get(i + 1) else {
                return Err(format!(
                    "invalid regular expression {p:?}: bad escape (end of pattern)"
                ));
            };
            i += 2;
            match n {
                'Z' if !in_class => out.push_str(r"\z"),
                '<' | '>' => out.push_str(&regex::escape(&n.to_string())),
                '0' => {
                    // Octal escape: \0, \01, \012.
                    let mut v = 0u32;
                    let mut k = 0;
                    while k < 2 && i < chars.len() && ('0'..='7').contains(&chars[i]) {
                        v = v * 8 + chars[i].to_digit(8).unwrap_or(0);
                        i += 1;
                        k += 1;
                    }
                    out.push_str(&format!(r"\x{{{v:x}}}"));
                }
                '1'..='9' => {
                    // Three octal digits are a character; otherwise a back-reference.
                    if i + 1 < chars.len()
                        && n <= '7'
                        && ('0'..='7').contains(&chars[i])
                        && ('0'..='7').contains(&chars[i + 1])
                    {
                        let v = n.to_digit(8).unwrap_or(0) * 64
                            + chars[i].to_digit(8).unwrap_or(0) * 8
                            + chars[i + 1].to_digit(8).unwrap_or(0);
                        i += 2;
                        out.push_str(&format!(r"\x{{{v:x}}}"));
                    } else if in_class {
                        return Err(format!("invalid regular expression {p:?}: bad escape \\{n} in a character class"));
                    } else {
                        return Err(format!("unsupported regular expression {p:?}: back-references inside the pattern are not supported"));
                    }
                }
                'N' if chars.get(i) == Some(&'{') => {
                    return Err(format!("unsupported regular expression {p:?}: \\N{{...}} named characters are not supported"));
                }
                _ => {
                    out.push('\\');
                    out.push(n);
                }
            }
            continue;
        }
        if in_class {
            match c {
                ']' if i > class_start => {
                    in_class = false;
                    out.push(']');
                }
                // Literal in Python classes, special (nesting / set operations) in the crate's.
                '[' | '&' | '~' => {
                    out.push('\\');
                    out.push(c);
                }
                '-' if chars.get(i + 1) == Some(&'-') => out.push_str(r"\-"),
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        match c {
            '[' => {
                in_class = true;
                out.push('[');
                i += 1;
                if chars.get(i) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                class_start = i;
                continue;
            }
            '{' => {
                // A quantifier ({m}, {m,}, {,n}, {m,n}) or a literal brace.
                let rest: String = chars[i..].iter().take(32).collect();
                if let Some(q) = quantifier(&rest) {
                    if out.is_empty() {
                        out.push_str(r"\{");
                        i += 1;
                        continue;
                    }
                    out.push_str(&q.0);
                    i += q.1;
                } else {
                    out.push_str(r"\{");
                    i += 1;
                }
                continue;
            }
            '}' => {
                out.push_str(r"\}");
                i += 1;
                continue;
            }
            '(' if chars.get(i + 1) == Some(&'?') => {
                let next = chars.get(i + 2).copied();
                match next {
                    Some('#') => {
                        // Comment group: skip to the closing parenthesis.
                        while i < chars.len() && chars[i] != ')' {
                            i += 1;
                        }
                        i += 1;
                        continue;
                    }
                    Some('=') | Some('!') => {
                        return Err(format!(
                            "unsupported regular expression {p:?}: look-ahead is not supported"
                        ));
                    }
                    Some('<') if matches!(chars.get(i + 3), Some('=') | Some('!')) => {
                        return Err(format!(
                            "unsupported regular expression {p:?}: look-behind is not supported"
                        ));
                    }
                    Some('P') if chars.get(i + 3) == Some(&'=') => {
                        return Err(format!("unsupported regular expression {p:?}: named back-references are not supported"));
                    }
                    Some('P') if chars.get(i + 3) == Some(&'<') => {
                        out.push_str("(?P<");
                        i += 4;
                        continue;
                    }
                    Some('(') => {
                        return Err(format!("unsupported regular expression {p:?}: conditional groups are not supported"));
                    }
                    Some('>') => {
                        return Err(format!(
                            "unsupported regular expression {p:?}: atomic groups are not supported"
                        ));
                    }
                    Some(f) if f.is_ascii_alphabetic() || f == '-' => {
                        // Flag group: drop Python-only flags (a, L, u) that the crate lacks or defaults.
                        let mut j = i + 2;
                        let mut flags = String::new();
                        while j < chars.len() && (chars[j].is_ascii_alphabetic() || chars[j] == '-')
                        {
                            if !matches!(chars[j], 'a' | 'L' | 'u') {
                                flags.push(chars[j]);
                            }
                            j += 1;
                        }
                        let end = chars.get(j).copied();
                        let flags = flags.trim_end_matches('-').to_string();
                        match end {
                            Some(')') if flags.is_empty() => {}
                            Some(')') => out.push_str(&format!("(?{flags})")),
                            Some(':') if flags.is_empty() => out.push_str("(?:"),
                            Some(':') => out.push_str(&format!("(?{flags}:")),
                            _ => {
                                return Err(format!(
                                    "invalid regular expression {p:?}: unknown extension"
                                ))
                            }
                        }
                        i = j + 1;
                        continue;
                    }
                    _ => {}
                }
                out.push(c);
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    if in_class {
        return Err(format!(
            "invalid regular expression {p:?}: unterminated character set"
        ));
    }
    Ok(out)
}

/// Parses a brace quantifier at the start of `s`; returns its translation and length.
fn quantifier(s: &str) -> Option<(String, usize)> {
    let b = s.as_bytes();
    let mut i = 1;
    let start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let min = &s[start..i];
    if i < b.len() && b[i] == b'}' {
        return (!min.is_empty()).then(|| (format!("{{{min}}}"), i + 1));
    }
    if i >= b.len() || b[i] != b',' {
        return None;
    }
    i += 1;
    let s2 = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let max = &s[s2..i];
    if i >= b.len() || b[i] != b'}' {
        return None;
    }
    let min = if min.is_empty() { "0" } else { min };
    Some((format!("{{{min},{max}}}"), i + 1))
}

/// Python replacement template (`re.sub`, `match.expand`) to the crate's syntax.
/// `re` gives the groups, so unknown references are reported like Python does.
pub fn translate_template(tpl: &str, re: &Regex) -> Result<String, String> {
    let ngroups = re.captures_len() - 1;
    let names: Vec<&str> = re.capture_names().flatten().collect();
    let chars: Vec<char> = tpl.chars().collect();
    let mut out = String::with_capacity(tpl.len() + 8);
    let mut i = 0;
    let group = |n: usize| -> Result<String, String> {
        if n > ngroups {
            Err(format!(
                "invalid group reference {n} in replacement {tpl:?}"
            ))
        } else {
            Ok(format!("${{{n}}}"))
        }
    };
    while i < chars.len() {
        let c = chars[i];
        if c == '$' {
            out.push_str("$$");
            i += 1;
            continue;
        }
        if c != '\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let Some(&n) = chars.get(i + 1) else {
            return Err(format!("bad escape (end of replacement) in {tpl:?}"));
        };
        i += 2;
        match n {
            'g' => {
                if chars.get(i) != Some(&'<') {
                    return Err(format!(
                        "missing < in group reference in replacement {tpl:?}"
                    ));
                }
                let end = chars[i..].iter().position(|&c| c == '>').ok_or_else(|| {
                    format!("missing > in group reference in replacement {tpl:?}")
                })?;
                let name: String = chars[i + 1..i + end].iter().collect();
                i += end + 1;
                if let Ok(n) = name.parse::<usize>() {
                    out.push_str(&group(n)?);
                } else if names.contains(&name.as_str()) {
                    out.push_str(&format!("${{{name}}}"));
                } else {
                    return Err(format!(
                        "unknown group name '{name}' in replacement {tpl:?}"
                    ));
                }
            }
            '0' => {
                let mut v = 0u32;
                let mut k = 0;
                while k < 2 && i < chars.len() && ('0'..='7').contains(&chars[i]) {
                    v = v * 8 + chars[i].to_digit(8).unwrap_or(0);
                    i += 1;
                    k += 1;
                }
                push_literal(&mut out, char::from_u32(v).unwrap_or('\0'));
            }
            '1'..='9' => {
                let d2 = chars.get(i).copied().filter(|c| c.is_ascii_digit());
                let d3 = chars.get(i + 1).copied().filter(|c| c.is_ascii_digit());
                if let (Some(b), Some(c3)) = (d2, d3) {
                    if n <= '7' && b <= '7' && c3 <= '7' {
                        let v = n.to_digit(8).unwrap_or(0) * 64
                            + b.to_digit(8).unwrap_or(0) * 8
                            + c3.to_digit(8).unwrap_or(0);
                        i += 2;
                        push_literal(&mut out, char::from_u32(v).unwrap_or('\0'));
                        continue;
                    }
                }
                let mut num = n.to_digit(10).unwrap_or(0) as usize;
                if let Some(b) = d2 {
                    num = num * 10 + b.to_digit(10).unwrap_or(0) as usize;
                    i += 1;
                }
                out.push_str(&group(num)?);
            }
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            '\\' => out.push('\\'),
            c if c.is_ascii_alphabetic() => {
                return Err(format!("bad escape \\{c} in replacement {tpl:?}"))
            }
            other => {
                out.push('\\');
                if other == '$' {
                    out.push_str("$$");
                } else {
                    out.push(other);
                }
            }
        }
    }
    Ok(out)
}

fn push_literal(out: &mut String, c: char) {
    if c == '$' {
        out.push_str("$$");
    } else {
        out.push(c);
    }
}

/// `match.expand(template)` for one set of captures.
pub fn expand(
    re: &Regex,
    caps: &regex::bytes::Captures<'_>,
    template: &str,
) -> Result<Vec<u8>, String> {
    let t = translate_template(template, re)?;
    let mut dst = Vec::new();
    caps.expand(t.as_bytes(), &mut dst);
    Ok(dst)
}

/// Python's `fnmatch.fnmatch` (case-sensitive on POSIX).
pub fn fnmatch(name: &str, pattern: &str) -> bool {
    match glob::Pattern::new(pattern) {
        Ok(p) => p.matches_with(
            name,
            glob::MatchOptions {
                case_sensitive: true,
                require_literal_separator: false,
                require_literal_leading_dot: false,
            },
        ),
        Err(_) => name == pattern,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(pat: &str, tpl: &str, text: &str) -> String {
        let re = compile(pat, true, false).unwrap();
        let t = translate_template(tpl, &re).unwrap();
        String::from_utf8(re.replace_all(text.as_bytes(), t.as_bytes()).into_owned()).unwrap()
    }

    #[test]
    fn backrefs() {
        assert_eq!(sub(r"(\w+)=(\d+)", r"\2=\1", "a=1 b=2"), "1=a 2=b");
        assert_eq!(sub(r"(\w+)=(\d+)", r"\g<1>0", "a=1"), "a0");
        assert_eq!(sub(r"(?P<k>\w+)=(?P<v>\d+)", r"\g<v>:\g<k>", "a=1"), "1:a");
        assert_eq!(sub(r"x", r"$1 \n", "x"), "$1 \n");
        assert_eq!(sub(r"(x)", r"\\1", "x"), "\\1");
        assert_eq!(sub(r"(x)", r"\1\g<0>", "x"), "xx");
        assert!(translate_template(r"\3", &compile("(a)", false, false).unwrap()).is_err());
        assert!(translate_template(r"\g<nope>", &compile("(a)", false, false).unwrap()).is_err());
    }

    #[test]
    fn pattern_translation() {
        assert_eq!(translate(r"a{,3}").unwrap(), r"a{0,3}");
        assert_eq!(translate(r"a{2,}").unwrap(), r"a{2,}");
        assert_eq!(translate(r"{mark}").unwrap(), r"\{mark\}");
        assert_eq!(translate(r"end\Z").unwrap(), r"end\z");
        assert_eq!(translate(r"[[a&&b]").unwrap(), r"[\[a\&\&b]");
        assert_eq!(translate(r"[]x]").unwrap(), r"[]x]");
        assert_eq!(translate(r"a(?#comment)b").unwrap(), "ab");
        assert_eq!(translate(r"(?ai)x").unwrap(), "(?i)x");
        assert!(translate(r"a(?=b)").unwrap_err().contains("look-ahead"));
        assert!(translate(r"(a)\1").unwrap_err().contains("back-references"));
        assert!(compile(r"^(?P<host>\S+)\s+\{", false, false).is_ok());
        assert!(compile(r"\<word\>", false, false)
            .unwrap()
            .is_match(b"<word>"));
    }

    #[test]
    fn inline_multiline() {
        assert!(has_inline_multiline("(?m)^foo"));
        assert!(has_inline_multiline("(?im)^foo"));
        assert!(!has_inline_multiline("^foo(?i)"));
        assert!(!has_inline_multiline(r"\(?m)"));
    }

    #[test]
    fn globs() {
        assert!(fnmatch("a.log", "*.log"));
        assert!(fnmatch(".hidden", "*"));
        assert!(!fnmatch("A.LOG", "*.log"));
        assert!(fnmatch("x1", "x[!a]"));
    }
}
