//! `with_*` lookups turned into loop items.

use serde_json::{Map, Value};

/// Items of a `with_<name>` loop from its rendered terms.
pub fn with_items(name: &str, terms: Value) -> Result<Vec<Value>, String> {
    let as_list = |v: Value| match v {
        Value::Array(a) => a,
        Value::Null => Vec::new(),
        other => vec![other],
    };
    match name {
        "loop" | "list" => match terms {
            Value::Array(a) => Ok(a),
            Value::Null => Ok(Vec::new()),
            other => Err(format!("invalid data passed to 'loop', it requires a list, got this instead: {}. Hint: use `dict2items` for dictionaries", other.as_str().map_or_else(|| other.to_string(), str::to_string))),
        },
        "items" => {
            // with_items flattens one level.
            let mut out = Vec::new();
            for t in as_list(terms) {
                match t {
                    Value::Array(a) => out.extend(a),
                    other => out.push(other),
                }
            }
            Ok(out)
        }
        "indexed_items" => Ok(with_items("items", terms)?
            .into_iter()
            .enumerate()
            .map(|(i, v)| Value::Array(vec![Value::from(i), v]))
            .collect()),
        "flattened" => {
            fn flat(v: Value, out: &mut Vec<Value>) {
                match v {
                    Value::Array(a) => a.into_iter().for_each(|x| flat(x, out)),
                    other => out.push(other),
                }
            }
            let mut out = Vec::new();
            flat(terms, &mut out);
            Ok(out)
        }
        "dict" => match terms {
            Value::Object(m) => Ok(m
                .into_iter()
                .map(|(k, v)| {
                    let mut e = Map::new();
                    e.insert("key".into(), Value::String(k));
                    e.insert("value".into(), v);
                    Value::Object(e)
                })
                .collect()),
            other => Err(format!("with_dict expects a dict, got {other}")),
        },
        "together" => {
            let lists: Vec<Vec<Value>> = as_list(terms).into_iter().map(as_list).collect();
            let n = lists.iter().map(Vec::len).max().unwrap_or(0);
            Ok((0..n)
                .map(|i| Value::Array(lists.iter().map(|l| l.get(i).cloned().unwrap_or(Value::Null)).collect()))
                .collect())
        }
        "nested" | "cartesian" => {
            let lists: Vec<Vec<Value>> = as_list(terms).into_iter().map(as_list).collect();
            let mut acc: Vec<Vec<Value>> = vec![Vec::new()];
            for l in lists {
                acc = acc
                    .into_iter()
                    .flat_map(|prefix| {
                        l.iter().map(move |x| {
                            let mut p = prefix.clone();
                            p.push(x.clone());
                            p
                        })
                    })
                    .collect();
            }
            Ok(acc.into_iter().map(Value::Array).collect())
        }
        "subelements" => {
            let t = as_list(terms);
            let (list, key) = match (t.first(), t.get(1)) {
                (Some(l), Some(Value::String(k))) => (as_list(l.clone()), k.clone()),
                _ => return Err("with_subelements expects [list, 'key']".into()),
            };
            let skip_missing = t.get(2).and_then(|o| o.get("skip_missing")).and_then(Value::as_bool).unwrap_or(false);
            let mut out = Vec::new();
            for elem in list {
                match elem.get(&key) {
                    Some(Value::Array(subs)) => {
                        for s in subs {
                            out.push(Value::Array(vec![elem.clone(), s.clone()]));
                        }
                    }
                    None if skip_missing => {}
                    _ => return Err(format!("with_subelements: key {key:?} is missing or not a list in {elem}")),
                }
            }
            Ok(out)
        }
        "sequence" => {
            let mut out = Vec::new();
            for t in as_list(terms) {
                let spec = match t {
                    Value::String(s) => s,
                    Value::Object(m) => m.iter().map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))).collect::<Vec<_>>().join(" "),
                    other => other.to_string(),
                };
                out.extend(sequence(&spec)?.into_iter().map(Value::String));
            }
            Ok(out)
        }
        "fileglob" | "first_found" | "file" | "lines" | "env" | "template" | "pipe" | "vars" => {
            Err(format!("with_{name} is handled through lookup('{name}')"))
        }
        other => Err(format!("with_{other} is not supported by ferry")),
    }
}

/// Ansible's `sequence` lookup: `start=1 end=5 stride=1 format=web%02d`, or `4`, or `2-10/2`.
pub fn sequence(spec: &str) -> Result<Vec<String>, String> {
    let (mut start, mut end, mut count, mut stride, mut format) =
        (1i64, None, None, 1i64, "%d".to_string());
    let spec = spec.trim();
    if spec.contains('=') {
        for part in spec.split_whitespace() {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("bad sequence term {part:?}"))?;
            let num = || parse_num(v).ok_or_else(|| format!("bad number {v:?} in sequence"));
            match k {
                "start" => start = num()?,
                "end" => end = Some(num()?),
                "count" => count = Some(num()?),
                "stride" => stride = num()?,
                "format" => format = v.to_string(),
                _ => return Err(format!("unknown sequence option {k:?}")),
            }
        }
    } else {
        let (range, fmt) = match spec.split_once(':') {
            Some((r, f)) => (r, Some(f)),
            None => (spec, None),
        };
        if let Some(f) = fmt {
            format = f.to_string();
        }
        let (range, st) = match range.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (range, None),
        };
        if let Some(s) = st {
            stride = parse_num(s).ok_or("bad stride")?;
        }
        match range.split_once('-') {
            Some((a, b)) => {
                start = parse_num(a).ok_or("bad start")?;
                end = Some(parse_num(b).ok_or("bad end")?);
            }
            None => end = Some(parse_num(range).ok_or("bad end")?),
        }
    }
    let end = match (end, count) {
        (Some(e), None) => e,
        (None, Some(c)) => start + (c - 1) * stride,
        _ => return Err("sequence needs exactly one of end or count".into()),
    };
    if stride == 0 {
        return Err("sequence stride must not be 0".into());
    }
    let mut out = Vec::new();
    let mut i = start;
    while (stride > 0 && i <= end) || (stride < 0 && i >= end) {
        out.push(printf_int(&format, i));
        i += stride;
        if out.len() > 100_000 {
            return Err("sequence is too long".into());
        }
    }
    Ok(out)
}

fn parse_num(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("0x") {
        return i64::from_str_radix(h, 16).ok();
    }
    if let Some(o) = s.strip_prefix("0o") {
        return i64::from_str_radix(o, 8).ok();
    }
    s.parse().ok()
}

/// Minimal printf for one integer: `%d`, `%02d`, `%x`, `%o` inside text.
fn printf_int(fmt: &str, n: i64) -> String {
    let re = regex::Regex::new(r"%(0?)(\d*)([dxXo])").expect("static regex");
    match re.captures(fmt) {
        Some(c) => {
            let width: usize = c[2].parse().unwrap_or(0);
            let body = match &c[3] {
                "x" => format!("{n:x}"),
                "X" => format!("{n:X}"),
                "o" => format!("{n:o}"),
                _ => n.to_string(),
            };
            let padded = if c[1].is_empty() {
                format!("{body:>width$}")
            } else {
                format!("{body:0>width$}")
            };
            let m = c.get(0).expect("group 0");
            format!("{}{}{}", &fmt[..m.start()], padded, &fmt[m.end()..])
        }
        None => fmt.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn with_lookups() {
        assert_eq!(
            with_items("items", json!([1, [2, 3]])).unwrap(),
            vec![json!(1), json!(2), json!(3)]
        );
        assert_eq!(
            with_items("dict", json!({"a": 1})).unwrap(),
            vec![json!({"key": "a", "value": 1})]
        );
        assert_eq!(
            with_items("together", json!([[1, 2], ["a"]])).unwrap(),
            vec![json!([1, "a"]), json!([2, null])]
        );
        assert_eq!(
            with_items("nested", json!([[1, 2], ["a", "b"]]))
                .unwrap()
                .len(),
            4
        );
        let subs = with_items("subelements", json!([[{"n": "u", "k": ["x", "y"]}], "k"])).unwrap();
        assert_eq!(subs[1], json!([{"n": "u", "k": ["x", "y"]}, "y"]));
        assert!(with_items("loop", json!({"a": 1})).is_err());
    }

    #[test]
    fn sequences() {
        assert_eq!(
            sequence("start=1 end=3 format=web%02d").unwrap(),
            vec!["web01", "web02", "web03"]
        );
        assert_eq!(sequence("4").unwrap(), vec!["1", "2", "3", "4"]);
        assert_eq!(sequence("2-10/4").unwrap(), vec!["2", "6", "10"]);
        assert_eq!(
            sequence("start=0 count=3 stride=2").unwrap(),
            vec!["0", "2", "4"]
        );
    }
}
