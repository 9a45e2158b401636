//! Ansible's Jinja filters and tests for minijinja 3.x.
//!
//! [`register`] installs everything on an [`Environment`]: Ansible's filters
//! (`combine`, `regex_replace`, `to_nice_yaml`, `password_hash`, ...), its
//! tests (`version`, `match`, `succeeded`, `file`, ...), Python string/dict
//! methods (`.split()`, `.items()`, ...) and an output formatter that prints
//! `none` as an empty string like Ansible's template finalizer does.
//!
//! Builtin minijinja filters are kept where they already behave like
//! Jinja2/Ansible and replaced where they differ (`default`/`d`, `int`,
//! `float`, `bool`, `split`, `indent`, `urlencode`, `zip`, positional
//! arguments of `sort`/`unique`/`min`/`max`/`truncate`, the `sequence` test
//! and the `dict()` global).  Floats print like Python (`1e+16`).
//!
//! Expected outputs in the unit tests were produced with ansible-core 2.19
//! (which dumps YAML with libyaml, the emitter ported here).
//!
//! Sections: registration, shared helpers, strings & regex, data formats
//! (JSON/YAML), collections, hashing & encoding, paths, tests, Python
//! methods, unit tests.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use indexmap::IndexMap;
use minijinja::value::{Kwargs, Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Output, State, UndefinedBehavior};
use regex::{Captures, Regex, RegexBuilder};

// ===========================================================================
// Registration
// ===========================================================================

/// Registers all Ansible filters, tests, Python methods and the Ansible output
/// formatter on `env`.
pub fn register(env: &mut Environment<'_>) {
    // Errors name the undefined variable in release builds too (minijinja
    // keeps that only in debug builds unless asked).
    env.set_debug(true);
    minijinja_contrib::add_to_environment(env);
    env.set_unknown_method_callback(python_methods);
    // Python-style printing (True, None, ['a'], 1e+16), shared with the engine.
    env.set_formatter(super::pyrepr::formatter);

    // strings & regex
    env.add_filter("default", default_filter);
    env.add_filter("d", default_filter);
    env.add_filter("mandatory", mandatory_filter);
    env.add_filter("bool", bool_filter);
    env.add_filter("int", int_filter);
    env.add_filter("float", float_filter);
    env.add_filter("split", split_filter);
    env.add_filter("indent", indent_filter);
    env.add_filter("quote", quote_filter);
    env.add_filter("comment", comment_filter);
    env.add_filter("ternary", ternary_filter);
    env.add_filter("type_debug", type_debug_filter);
    env.add_filter("regex_replace", regex_replace_filter);
    env.add_filter("regex_search", regex_search_filter);
    env.add_filter("regex_findall", regex_findall_filter);
    env.add_filter("regex_escape", regex_escape_filter);
    env.add_filter("truncate", truncate_filter);
    env.add_filter("center", center_filter);
    env.add_filter("wordcount", wordcount_filter);

    // data formats
    env.add_filter("to_json", to_json_filter);
    env.add_filter("to_nice_json", to_nice_json_filter);
    env.add_filter("from_json", from_json_filter);
    env.add_filter("to_yaml", to_yaml_filter);
    env.add_filter("to_nice_yaml", to_nice_yaml_filter);
    env.add_filter("from_yaml", from_yaml_filter);
    env.add_filter("from_yaml_all", from_yaml_all_filter);

    // collections
    env.add_filter("combine", combine_filter);
    env.add_filter("dict2items", dict2items_filter);
    env.add_filter("items2dict", items2dict_filter);
    env.add_filter("flatten", flatten_filter);
    env.add_filter("unique", unique_filter);
    env.add_filter("union", union_filter);
    env.add_filter("intersect", intersect_filter);
    env.add_filter("difference", difference_filter);
    env.add_filter("symmetric_difference", symmetric_difference_filter);
    env.add_filter("sort", sort_filter);
    env.add_filter("min", min_filter);
    env.add_filter("max", max_filter);
    env.add_filter("zip", zip_filter);
    env.add_filter("zip_longest", zip_longest_filter);
    env.add_filter("product", product_filter);
    env.add_filter("permutations", permutations_filter);
    env.add_filter("combinations", combinations_filter);
    env.add_filter("subelements", subelements_filter);
    env.add_filter("extract", extract_filter);
    env.add_filter("random", random_filter);
    env.add_filter("shuffle", shuffle_filter);
    env.add_filter("log", log_filter);
    env.add_filter("pow", pow_filter);
    env.add_filter("root", root_filter);
    env.add_filter("human_readable", human_readable_filter);
    env.add_filter("human_to_bytes", human_to_bytes_filter);
    env.add_filter("urlsplit", urlsplit_filter);
    env.add_filter("urlencode", urlencode_filter);
    env.add_filter("urldecode", urldecode_filter);
    env.add_function("dict", dict_function);
    env.add_filter("dict", dict_filter);

    // hashing & encoding
    env.add_filter("b64encode", b64encode_filter);
    env.add_filter("b64decode", b64decode_filter);
    env.add_filter("hash", hash_filter);
    env.add_filter("checksum", sha1_filter);
    env.add_filter("sha1", sha1_filter);
    env.add_filter("md5", md5_filter);
    env.add_filter("password_hash", password_hash_filter);
    env.add_filter("to_uuid", to_uuid_filter);

    // paths
    env.add_filter("basename", basename_filter);
    env.add_filter("dirname", dirname_filter);
    env.add_filter("expanduser", expanduser_filter);
    env.add_filter("expandvars", expandvars_filter);
    env.add_filter("splitext", splitext_filter);
    env.add_filter("path_join", path_join_filter);
    env.add_filter("normpath", normpath_filter);

    // tests
    env.add_test("version", version_test);
    env.add_test("version_compare", version_test);
    // pre-2.9 playbooks used it as a filter: `ver | version_compare('2.0', '>=')`
    env.add_filter("version_compare", version_test);
    env.add_test("match", match_test);
    env.add_test("search", search_test);
    env.add_test("regex", regex_test);
    for name in ["succeeded", "success", "successful"] {
        env.add_test(name, succeeded_test);
    }
    env.add_test("failed", failed_test);
    env.add_test("failure", failed_test);
    env.add_test("changed", changed_test);
    env.add_test("change", changed_test);
    env.add_test("skipped", skipped_test);
    env.add_test("skip", skipped_test);
    env.add_test("reachable", reachable_test);
    env.add_test("unreachable", unreachable_test);
    env.add_test("timedout", timedout_test);
    env.add_test("finished", finished_test);
    env.add_test("started", started_test);
    env.add_test("file", |v: &Value| path_test(v, PathTest::File));
    env.add_test("is_file", |v: &Value| path_test(v, PathTest::File));
    env.add_test("directory", |v: &Value| path_test(v, PathTest::Dir));
    env.add_test("is_dir", |v: &Value| path_test(v, PathTest::Dir));
    env.add_test("link", |v: &Value| path_test(v, PathTest::Link));
    env.add_test("is_link", |v: &Value| path_test(v, PathTest::Link));
    env.add_test("exists", |v: &Value| path_test(v, PathTest::Exists));
    env.add_test("link_exists", |v: &Value| {
        path_test(v, PathTest::LinkExists)
    });
    env.add_test("abs", |v: &Value| path_test(v, PathTest::Abs));
    env.add_test("is_abs", |v: &Value| path_test(v, PathTest::Abs));
    env.add_test("mount", |v: &Value| path_test(v, PathTest::Mount));
    env.add_test("is_mount", |v: &Value| path_test(v, PathTest::Mount));
    env.add_test("same_file", same_file_test);
    env.add_test("is_same_file", same_file_test);
    env.add_test("truthy", truthy_test);
    env.add_test("falsy", falsy_test);
    env.add_test("subset", subset_test);
    env.add_test("issubset", subset_test);
    env.add_test("superset", superset_test);
    env.add_test("issuperset", superset_test);
    env.add_test("contains", contains_test);
    env.add_test("any", any_test);
    env.add_test("all", all_test);
    env.add_test("nan", nan_test);
    env.add_test("isnan", nan_test);
    env.add_test("sequence", sequence_test);
}

/// Output formatter: like the default one, except that `none` prints as an
/// empty string (Ansible's template finalizer does the same) and floats print
/// like Python's `repr` (`1e+16`, `nan`).
#[allow(dead_code)]
fn ansible_formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if value.is_none() {
        return Ok(());
    }
    if value.kind() == ValueKind::Number && !value.is_integer() {
        if let Ok(f) = f64::try_from(value.clone()) {
            return out.write_str(&py_float_repr(f)).map_err(Error::from);
        }
    }
    minijinja::escape_formatter(out, state, value)
}

// ===========================================================================
// Shared helpers
// ===========================================================================

/// Nesting limit for the recursive walkers (JSON/YAML output, combine, ...),
/// so hostile data cannot overflow the stack.
const MAX_DEPTH: usize = 500;

/// Upper bound on the number of items the combinatoric filters may create.
const MAX_ITEMS: usize = 1_000_000;

/// An `InvalidOperation` error whose message starts with the filter name.
fn fail(name: &str, msg: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::InvalidOperation, format!("{name}: {msg}"))
}

fn is_strict(state: &State) -> bool {
    matches!(
        state.undefined_behavior(),
        UndefinedBehavior::Strict | UndefinedBehavior::SemiStrict
    )
}

/// The error the engine itself raises for an undefined value.  It carries the
/// value's origin, so the final message names the variable (`x` is undefined).
fn undefined_error(v: &Value) -> Error {
    match v.get_attr("__undefined__") {
        Err(err) => err,
        Ok(_) => Error::from(ErrorKind::UndefinedError),
    }
}

/// Ansible fails on undefined input; lenient environments get Jinja2's
/// behaviour (undefined acts like an empty value) instead.
fn check_defined(state: &State, v: &Value) -> Result<(), Error> {
    if v.is_undefined() && is_strict(state) {
        Err(undefined_error(v))
    } else {
        Ok(())
    }
}

/// Python's `str(value)`: strings as they are, everything else through
/// minijinja's Python-like rendering (`True`, `None`, `[1, 'a']`).
fn py_str(v: &Value) -> String {
    match v.as_str() {
        Some(s) => s.to_string(),
        None => v.to_string(),
    }
}

/// Text input of a filter (Ansible's `to_text(value, nonstring='simplerepr')`).
fn text_input(state: &State, v: &Value) -> Result<String, Error> {
    check_defined(state, v)?;
    Ok(py_str(v))
}

/// Python's `repr()` for error messages.
fn py_repr(v: &Value) -> String {
    match v.as_str() {
        Some(s) => py_quote_str(s),
        None => v.to_string(),
    }
}

fn py_quote_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's name for the type of a value (as `type_debug` reports it).
fn py_type_name(v: &Value) -> &'static str {
    match v.kind() {
        ValueKind::Undefined => "UndefinedMarker",
        ValueKind::None => "NoneType",
        ValueKind::Bool => "bool",
        ValueKind::Number if v.is_integer() => "int",
        ValueKind::Number => "float",
        ValueKind::String => "str",
        ValueKind::Bytes => "bytes",
        ValueKind::Seq if v.is_tuple() => "tuple",
        ValueKind::Seq | ValueKind::Iterable => "list",
        ValueKind::Map => "dict",
        _ => "object",
    }
}

/// Python's `repr()` of a float (shortest round-trip digits, exponent form
/// outside 1e-4 <= |x| < 1e16).
pub(crate) fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if (-4..16).contains(&exp) {
        let mut out = String::from(sign);
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.push_str(&digits);
                out.push_str(&"0".repeat(int_len - digits.len()));
                out.push_str(".0");
            } else {
                out.push_str(&digits[..int_len]);
                out.push('.');
                out.push_str(&digits[int_len..]);
            }
        } else {
            out.push_str("0.");
            out.push_str(&"0".repeat((-exp - 1) as usize));
            out.push_str(&digits);
        }
        out
    } else {
        let mut out = format!("{sign}{}", &digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let _ = write!(
            out,
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
        out
    }
}

/// Positional and keyword arguments bound to parameter names, the way Python
/// binds `def f(value, a=..., b=...)`.
struct Params {
    name: &'static str,
    names: &'static [&'static str],
    values: Vec<Option<Value>>,
}

impl Params {
    fn bind(
        name: &'static str,
        names: &'static [&'static str],
        args: &[Value],
        kwargs: &Kwargs,
    ) -> Result<Params, Error> {
        if args.len() > names.len() {
            return Err(Error::new(
                ErrorKind::TooManyArguments,
                format!(
                    "{name}: takes at most {} argument(s) ({}), got {}",
                    names.len(),
                    names.join(", "),
                    args.len()
                ),
            ));
        }
        let mut values: Vec<Option<Value>> = vec![None; names.len()];
        for (slot, arg) in values.iter_mut().zip(args) {
            *slot = Some(arg.clone());
        }
        for key in kwargs.args() {
            let Some(idx) = names.iter().position(|n| *n == key) else {
                return Err(Error::new(
                    ErrorKind::TooManyArguments,
                    format!("{name}: unexpected keyword argument '{key}'"),
                ));
            };
            if values[idx].is_some() {
                return Err(Error::new(
                    ErrorKind::TooManyArguments,
                    format!("{name}: got multiple values for argument '{key}'"),
                ));
            }
            values[idx] = Some(kwargs.get::<Value>(key)?);
        }
        Ok(Params {
            name,
            names,
            values,
        })
    }

    /// The argument, or `None` when it was not passed or is none/undefined
    /// (Python's `param=None` default).
    fn opt(&self, idx: usize) -> Option<&Value> {
        self.values
            .get(idx)
            .and_then(|v| v.as_ref())
            .filter(|v| !v.is_none() && !v.is_undefined())
    }

    /// The argument exactly as passed (none included).
    fn raw(&self, idx: usize) -> Option<&Value> {
        self.values.get(idx).and_then(|v| v.as_ref())
    }

    fn arg_name(&self, idx: usize) -> &'static str {
        self.names.get(idx).copied().unwrap_or("?")
    }

    /// Python truthiness of a flag argument.
    fn flag(&self, idx: usize, default: bool) -> bool {
        self.opt(idx).map_or(default, Value::is_true)
    }

    fn string(&self, idx: usize) -> Result<Option<String>, Error> {
        match self.opt(idx) {
            None => Ok(None),
            Some(v) if v.kind() == ValueKind::String => Ok(Some(py_str(v))),
            Some(v) if matches!(v.kind(), ValueKind::Number | ValueKind::Bool) => {
                Ok(Some(py_str(v)))
            }
            Some(v) => Err(fail(
                self.name,
                format!(
                    "argument '{}' must be a string, got {}",
                    self.arg_name(idx),
                    py_type_name(v)
                ),
            )),
        }
    }

    fn string_or(&self, idx: usize, default: &str) -> Result<String, Error> {
        Ok(self.string(idx)?.unwrap_or_else(|| default.to_string()))
    }

    fn int(&self, idx: usize) -> Result<Option<i64>, Error> {
        match self.opt(idx) {
            None => Ok(None),
            Some(v) if v.kind() == ValueKind::Bool => Ok(Some(v.is_true() as i64)),
            Some(v) if v.is_integer() => i64::try_from(v.clone()).map(Some).map_err(|_| {
                fail(
                    self.name,
                    format!("argument '{}' is out of range", self.arg_name(idx)),
                )
            }),
            Some(v) => Err(fail(
                self.name,
                format!(
                    "argument '{}' must be an integer, got {}",
                    self.arg_name(idx),
                    py_type_name(v)
                ),
            )),
        }
    }
}

/// `kind()` of sequences that Python would treat as lists (not strings/maps).
fn is_list_like(v: &Value) -> bool {
    matches!(v.kind(), ValueKind::Seq | ValueKind::Iterable)
}

/// Collects the items of an iterable value (Python `list(value)`).
fn list_items(state: &State, name: &str, v: &Value) -> Result<Vec<Value>, Error> {
    check_defined(state, v)?;
    let iter = v.try_iter().map_err(|_| {
        fail(
            name,
            format!("expected a list, got {} {}", py_type_name(v), py_repr(v)),
        )
    })?;
    let items: Vec<Value> = iter.collect();
    state.consume_fuel(items.len() as u64 / 16)?;
    Ok(items)
}

/// The `(key, value)` pairs of a mapping, in order.
fn map_pairs(v: &Value) -> Result<Vec<(Value, Value)>, Error> {
    let mut pairs = Vec::with_capacity(v.len().unwrap_or(0));
    for key in v.try_iter()? {
        let value = v.get_item(&key)?;
        pairs.push((key, value));
    }
    Ok(pairs)
}

fn map_from_pairs(pairs: impl IntoIterator<Item = (Value, Value)>) -> Value {
    Value::from_pairs(pairs)
}

/// Removes duplicates keeping the first occurrence (Python `x not in seen`).
fn dedup(items: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for item in items {
        if seen.insert(item.clone()) {
            out.push(item);
        }
    }
    out
}

// ===========================================================================
// Strings & regex
// ===========================================================================

/// `default(default_value='', boolean=False)`: Ansible's version only accepts
/// a real boolean as second argument.
fn default_filter(value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let p = Params::bind("default", &["default_value", "boolean"], &args, &kwargs)?;
    let default = p.raw(0).cloned().unwrap_or_else(|| Value::from(""));
    let boolean = match p.raw(1) {
        None => false,
        Some(b) if b.kind() == ValueKind::Bool => b.is_true(),
        Some(b) => {
            return Err(fail(
                "default",
                format!(
                    "The 'boolean' argument must be of type 'bool', not '{}'.",
                    py_type_name(b)
                ),
            ))
        }
    };
    if value.is_undefined() || (boolean && !value.is_true()) {
        Ok(default)
    } else {
        Ok(value.clone())
    }
}

/// `mandatory(msg=None)`: fails on undefined values.
fn mandatory_filter(value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    let p = Params::bind("mandatory", &["msg"], &args, &kwargs)?;
    if !value.is_undefined() {
        return Ok(value.clone());
    }
    if let Some(msg) = p.opt(0) {
        return Err(Error::new(ErrorKind::UndefinedError, py_str(msg)));
    }
    // The engine's own undefined error names the variable once it is raised
    // from the template ("`x` is undefined").
    Err(undefined_error(value).with_source(Error::new(
        ErrorKind::UndefinedError,
        "mandatory: Mandatory variable not defined.",
    )))
}

/// Ansible's `bool`: 'yes'/'on'/'true'/'1' (any case) and 1 are true.  Every
/// other value is false (Ansible 2.19 deprecates those but still maps them
/// to `value == 1`).
fn bool_filter(state: &State, value: &Value) -> Result<bool, Error> {
    check_defined(state, value)?;
    Ok(match value.kind() {
        ValueKind::Bool => value.is_true(),
        ValueKind::String => {
            let s = py_str(value).to_lowercase();
            matches!(s.as_str(), "yes" | "on" | "true" | "1")
        }
        ValueKind::Number => {
            if value.is_integer() {
                i128::try_from(value.clone()).is_ok_and(|i| i == 1)
            } else {
                f64::try_from(value.clone()).is_ok_and(|f| f == 1.0)
            }
        }
        _ => false,
    })
}

/// Python's `int(s, base)`, including whitespace, signs, `0x`/`0o`/`0b`
/// prefixes and underscores between digits.
fn py_parse_int(s: &str, base: u32) -> Option<i128> {
    let s = s.trim_matches(py_is_space);
    let (neg, rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = rest.to_ascii_lowercase();
    let (base, digits) = match base {
        0 => {
            if let Some(d) = lower.strip_prefix("0x") {
                (16, d.to_string())
            } else if let Some(d) = lower.strip_prefix("0o") {
                (8, d.to_string())
            } else if let Some(d) = lower.strip_prefix("0b") {
                (2, d.to_string())
            } else {
                // base 0 forbids leading zeros on non-zero decimals
                if lower.len() > 1
                    && lower.starts_with('0')
                    && !lower.trim_matches(['0', '_']).is_empty()
                {
                    return None;
                }
                (10, lower)
            }
        }
        16 => (16, lower.strip_prefix("0x").unwrap_or(&lower).to_string()),
        8 => (8, lower.strip_prefix("0o").unwrap_or(&lower).to_string()),
        2 => (2, lower.strip_prefix("0b").unwrap_or(&lower).to_string()),
        b if (2..=36).contains(&b) => (b, lower),
        _ => return None,
    };
    // a single underscore may follow a prefix or separate two digits
    let digits = digits.strip_prefix('_').unwrap_or(&digits);
    if digits.is_empty() || digits.ends_with('_') || digits.contains("__") {
        return None;
    }
    let clean: String = digits.chars().filter(|c| *c != '_').collect();
    if clean.starts_with(['+', '-']) {
        return None;
    }
    let n = i128::from_str_radix(&clean, base).ok()?;
    Some(if neg { -n } else { n })
}

/// Python's `float(s)`.
fn py_parse_float(s: &str) -> Option<f64> {
    let s = s.trim_matches(py_is_space);
    if s.is_empty() || s.starts_with('_') || s.ends_with('_') || s.contains("__") {
        return None;
    }
    let lower = s.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if matches!(body, "inf" | "infinity" | "nan") {
        return lower.parse::<f64>().ok();
    }
    // underscores are only valid between two digits
    let chars: Vec<char> = s.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        if *c == '_'
            && !(i > 0
                && chars[i - 1].is_ascii_digit()
                && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit()))
        {
            return None;
        }
    }
    let clean: String = s.chars().filter(|c| *c != '_').collect();
    if !clean
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return None;
    }
    clean.parse::<f64>().ok()
}

/// Python's `str.isspace()` character class.
fn py_is_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

fn float_to_int(f: f64) -> Option<i128> {
    if f.is_finite() && f.abs() < 1.0e38 {
        Some(f.trunc() as i128)
    } else {
        None
    }
}

/// Jinja2's `int(default=0, base=10)`: never fails on bad input, it returns
/// the default instead ("42.7" gives 42 through the float fallback).
fn int_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    check_defined(state, value)?;
    let p = Params::bind("int", &["default", "base"], &args, &kwargs)?;
    let default = p.raw(0).cloned().unwrap_or_else(|| Value::from(0));
    let base = p.int(1)?.unwrap_or(10);
    if !(base == 0 || (2..=36).contains(&base)) {
        return Err(fail("int", "base must be >= 2 and <= 36, or 0"));
    }
    let rv = match value.kind() {
        ValueKind::Bool => Some(value.is_true() as i128),
        ValueKind::Number if value.is_integer() => i128::try_from(value.clone()).ok(),
        ValueKind::Number => f64::try_from(value.clone()).ok().and_then(float_to_int),
        ValueKind::String => {
            let s = py_str(value);
            py_parse_int(&s, base as u32).or_else(|| py_parse_float(&s).and_then(float_to_int))
        }
        _ => None,
    };
    Ok(rv.map_or(default, Value::from))
}

/// Jinja2's `float(default=0.0)`.
fn float_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    check_defined(state, value)?;
    let p = Params::bind("float", &["default"], &args, &kwargs)?;
    let default = p.raw(0).cloned().unwrap_or_else(|| Value::from(0.0));
    let rv = match value.kind() {
        ValueKind::Bool => Some(if value.is_true() { 1.0 } else { 0.0 }),
        ValueKind::Number => f64::try_from(value.clone()).ok(),
        ValueKind::String => py_parse_float(&py_str(value)),
        _ => None,
    };
    Ok(rv.map_or(default, Value::from))
}

/// Python's `str.split(sep=None, maxsplit=-1)`.
fn py_split(s: &str, sep: Option<&str>, maxsplit: i64) -> Vec<String> {
    let limit = if maxsplit < 0 {
        usize::MAX
    } else {
        maxsplit as usize
    };
    match sep {
        Some(sep) => {
            if limit == usize::MAX {
                s.split(sep).map(String::from).collect()
            } else {
                s.splitn(limit.saturating_add(1), sep)
                    .map(String::from)
                    .collect()
            }
        }
        None => {
            let mut out = Vec::new();
            let mut rest = s.trim_start_matches(py_is_space);
            while !rest.is_empty() {
                if out.len() == limit {
                    out.push(rest.to_string());
                    break;
                }
                match rest.find(py_is_space) {
                    Some(pos) => {
                        out.push(rest[..pos].to_string());
                        rest = rest[pos..].trim_start_matches(py_is_space);
                    }
                    None => {
                        out.push(rest.to_string());
                        break;
                    }
                }
            }
            out
        }
    }
}

/// Python's `str.rsplit(sep=None, maxsplit=-1)`.
fn py_rsplit(s: &str, sep: Option<&str>, maxsplit: i64) -> Vec<String> {
    if maxsplit < 0 {
        return py_split(s, sep, -1);
    }
    let limit = maxsplit as usize;
    let mut out = Vec::new();
    match sep {
        Some(sep) => {
            let mut parts: Vec<String> = s
                .rsplitn(limit.saturating_add(1), sep)
                .map(String::from)
                .collect();
            parts.reverse();
            out = parts;
        }
        None => {
            let mut rest = s.trim_end_matches(py_is_space);
            while !rest.is_empty() {
                if out.len() == limit {
                    out.push(rest.to_string());
                    break;
                }
                match rest.rfind(py_is_space) {
                    Some(pos) => {
                        let ch_len = rest[pos..].chars().next().map_or(1, char::len_utf8);
                        out.push(rest[pos + ch_len..].to_string());
                        rest = rest[..pos].trim_end_matches(py_is_space);
                    }
                    None => {
                        out.push(rest.to_string());
                        break;
                    }
                }
            }
            out.reverse();
        }
    }
    out
}

/// `split(sep=None, maxsplit=-1)` with Python semantics (whitespace runs by
/// default, empty separator is an error).
fn split_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let p = Params::bind("split", &["sep", "maxsplit"], &args, &kwargs)?;
    let s = text_input(state, value)?;
    let sep = p.string(0)?;
    if sep.as_deref() == Some("") {
        return Err(fail("split", "empty separator"));
    }
    let maxsplit = p.int(1)?.unwrap_or(-1);
    Ok(Value::from(py_split(&s, sep.as_deref(), maxsplit)))
}

/// Python's `str.splitlines()` line boundaries.
fn py_splitlines(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\x0b'
                | '\x0c'
                | '\x1c'
                | '\x1d'
                | '\x1e'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if is_break {
            out.push(&s[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = iter.peek() {
                    iter.next();
                    end = j + 1;
                }
            }
            start = end;
        }
    }
    if start < s.len() {
        out.push(&s[start..]);
    }
    out
}

/// Jinja2's `indent(width=4, first=False, blank=False)`; unlike minijinja's
/// builtin it keeps a trailing newline, as Jinja2 does.
fn indent_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let p = Params::bind("indent", &["width", "first", "blank"], &args, &kwargs)?;
    let s = text_input(state, value)?;
    let indention = match p.opt(0) {
        None => "    ".to_string(),
        Some(w) if w.kind() == ValueKind::String => py_str(w),
        Some(_) => " ".repeat(p.int(0)?.unwrap_or(4).clamp(0, 1000) as usize),
    };
    state.consume_fuel((s.len() / 64) as u64)?;
    let first = p.flag(1, false);
    let blank = p.flag(2, false);
    let s = format!("{s}\n");
    let lines = py_splitlines(&s);
    let mut rv = String::with_capacity(s.len() * 2);
    if blank {
        rv.push_str(&lines.join(&format!("\n{indention}")));
    } else if let Some((head, rest)) = lines.split_first() {
        rv.push_str(head);
        if !rest.is_empty() {
            rv.push('\n');
            let indented: Vec<String> = rest
                .iter()
                .map(|l| {
                    if l.is_empty() {
                        String::new()
                    } else {
                        format!("{indention}{l}")
                    }
                })
                .collect();
            rv.push_str(&indented.join("\n"));
        }
    }
    if first {
        rv.insert_str(0, &indention);
    }
    Ok(Value::from(rv))
}

/// Python's `shlex.quote`.
fn shell_quote(s: &str) -> String {
    if s.is_empty() {
        return "''".into();
    }
    let safe = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\"'\"'"))
    }
}

fn quote_filter(state: &State, value: &Value) -> Result<String, Error> {
    check_defined(state, value)?;
    if value.is_none() {
        return Ok(shell_quote(""));
    }
    Ok(shell_quote(&py_str(value)))
}

/// `comment(style='plain', **kw)`: decorates text as a comment block.
fn comment_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let p = Params::bind(
        "comment",
        &[
            "style",
            "newline",
            "beginning",
            "prefix",
            "prefix_count",
            "decoration",
            "postfix",
            "postfix_count",
            "end",
        ],
        &args,
        &kwargs,
    )?;
    let text = text_input(state, value)?;
    let style = p.string_or(0, "plain")?;
    let (beginning, decoration, end) = match style.as_str() {
        "plain" => ("", "# ", ""),
        "erlang" => ("", "% ", ""),
        "c" => ("", "// ", ""),
        "cblock" => ("/*", " * ", " */"),
        "xml" => ("<!--", " - ", "-->"),
        other => {
            return Err(fail(
                "comment",
                format!("Invalid style '{other}'. Available styles: plain, erlang, c, cblock, xml"),
            ))
        }
    };
    // The decoration seeds the default prefix/postfix (stripped), as in Ansible.
    let prepostfix = p.string_or(5, decoration)?;
    let newline = p.string_or(1, "\n")?;
    let beginning = p.string_or(2, beginning)?;
    let prefix = p.string_or(3, prepostfix.trim_end())?;
    let prefix_count = p.int(4)?.unwrap_or(1).clamp(0, 1000) as usize;
    let decoration = p.string_or(5, decoration)?;
    let postfix = p.string_or(6, prepostfix.trim_end())?;
    let postfix_count = p.int(7)?.unwrap_or(1).clamp(0, 1000) as usize;
    let end = p.string_or(8, end)?;

    let mut out = String::new();
    if !beginning.is_empty() {
        out.push_str(&beginning);
        out.push_str(&newline);
    }
    if !prefix.is_empty() {
        let unit = if prefix != newline {
            format!("{prefix}{newline}")
        } else {
            newline.clone()
        };
        out.push_str(&unit.repeat(prefix_count));
    }
    let body = format!(
        "{decoration}{}",
        if newline.is_empty() {
            text.clone()
        } else {
            text.replace(&newline, &format!("{newline}{decoration}"))
        }
    );
    let body = body.replace(
        &format!("{decoration}{newline}"),
        &format!("{}{newline}", decoration.trim_end()),
    );
    out.push_str(&body);
    for _ in 0..postfix_count {
        out.push_str(&newline);
        out.push_str(&postfix);
    }
    if !end.is_empty() {
        out.push_str(&newline);
        out.push_str(&end);
    }
    Ok(Value::from(out))
}

/// `ternary(true_val, false_val, none_val=None)`.
fn ternary_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    check_defined(state, value)?;
    let p = Params::bind(
        "ternary",
        &["true_val", "false_val", "none_val"],
        &args,
        &kwargs,
    )?;
    let (Some(t), Some(f)) = (p.raw(0), p.raw(1)) else {
        return Err(Error::new(
            ErrorKind::MissingArgument,
            "ternary: requires true_val and false_val",
        ));
    };
    if value.is_none() {
        if let Some(n) = p.opt(2) {
            return Ok(n.clone());
        }
    }
    Ok(if value.is_true() {
        t.clone()
    } else {
        f.clone()
    })
}

fn type_debug_filter(value: &Value) -> String {
    py_type_name(value).to_string()
}

/// Jinja2's `truncate(length=255, killwords=False, end='...', leeway=None)`
/// (minijinja-contrib's version only takes keyword arguments).
fn truncate_filter(
    state: &mut State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let kw = with_positional_kwargs(
        "truncate",
        &["length", "killwords", "end", "leeway"],
        &args,
        &kwargs,
    )?;
    minijinja_contrib::filters::truncate(state, value, kw)
}

/// Python's `str.center(width, fill)` padding split.
fn py_center(s: &str, width: usize, fill: char) -> String {
    let len = s.chars().count();
    if len >= width {
        return s.to_string();
    }
    let total = width - len;
    // Python puts the odd extra character on the left when the width is odd
    let left = total / 2 + (total & width & 1);
    let pad = |n: usize| std::iter::repeat_n(fill, n).collect::<String>();
    format!("{}{s}{}", pad(left), pad(total - left))
}

/// Jinja2's `center(width=80)`.
fn center_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let p = Params::bind("center", &["width"], &args, &kwargs)?;
    let s = text_input(state, value)?;
    let width = p.int(0)?.unwrap_or(80).clamp(0, 1 << 20) as usize;
    Ok(py_center(&s, width, ' '))
}

/// Jinja2's `wordcount`: the number of `\w+` runs.
fn wordcount_filter(state: &State, value: &Value) -> Result<usize, Error> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let s = text_input(state, value)?;
    Ok(RE
        .get_or_init(|| Regex::new(r"\w+").ok())
        .as_ref()
        .map_or(0, |re| re.find_iter(&s).count()))
}

// --- Python `re` emulation on top of the `regex` crate -----------------------

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Anchor {
    /// `re.search`
    None,
    /// `re.fullmatch`
    Full,
}

/// Translates Python regex syntax to the regex crate's: `\Z`, `{,n}`, literal
/// braces, `(?#...)`, octal escapes and class quirks.  Backreferences and
/// look-around have no equivalent and are rejected with a clear message.
fn translate_py_regex(p: &str) -> Result<String, String> {
    let chars: Vec<char> = p.chars().collect();
    let mut out = String::with_capacity(p.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    return Err("bad escape (end of pattern)".into());
                };
                i += 2;
                match n {
                    'Z' => out.push_str(r"\z"),
                    '0'..='7' if n == '0' || octal_run(&chars, i - 1) == 3 => {
                        let len = if n == '0' {
                            octal_run(&chars, i - 1).min(3)
                        } else {
                            3
                        };
                        let digits: String = chars[i - 1..i - 1 + len].iter().collect();
                        let code = u32::from_str_radix(&digits, 8).unwrap_or(0);
                        i = i - 1 + len;
                        push_regex_literal(&mut out, char::from_u32(code).unwrap_or('\0'));
                    }
                    '1'..='9' => {
                        return Err("backreferences like \\1 are not supported in patterns".into())
                    }
                    // literals in Python, word-boundary assertions in the regex crate
                    '<' | '>' => out.push(n),
                    n if n.is_ascii_alphanumeric() => {
                        out.push('\\');
                        out.push(n);
                    }
                    n => push_regex_literal(&mut out, n),
                }
            }
            '[' => i = translate_class(&chars, i, &mut out)?,
            '{' => match parse_quantifier(&chars[i..]) {
                Some((q, len)) => {
                    out.push_str(&q);
                    i += len;
                }
                None => {
                    out.push_str(r"\{");
                    i += 1;
                }
            },
            '}' => {
                out.push_str(r"\}");
                i += 1;
            }
            '(' if chars.get(i + 1) == Some(&'?') => {
                let rest: String = chars[i..chars.len().min(i + 4)].iter().collect();
                if rest.starts_with("(?#") {
                    // comment group: runs to the next ')'
                    match chars[i..].iter().position(|&c| c == ')') {
                        Some(end) => i += end + 1,
                        None => return Err("missing ), unterminated comment".into()),
                    }
                } else if rest.starts_with("(?P=") {
                    return Err("named backreferences (?P=name) are not supported".into());
                } else if rest.starts_with("(?=")
                    || rest.starts_with("(?!")
                    || rest.starts_with("(?<=")
                    || rest.starts_with("(?<!")
                {
                    return Err("look-around assertions are not supported".into());
                } else {
                    out.push('(');
                    i += 1;
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Number of consecutive octal digits starting at `start` (at most 3).
fn octal_run(chars: &[char], start: usize) -> usize {
    chars[start..]
        .iter()
        .take(3)
        .take_while(|c| ('0'..='7').contains(*c))
        .count()
}

fn push_regex_literal(out: &mut String, c: char) {
    if c.is_whitespace() {
        // verbose mode `(?x)` would drop a bare whitespace literal
        let _ = write!(out, "\\x{{{:x}}}", c as u32);
    } else {
        out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4])));
    }
}

/// Copies a character class, escaping what the regex crate would read as
/// nested classes or set operations (`[`, `&&`, `--`, `~~`).
fn translate_class(chars: &[char], start: usize, out: &mut String) -> Result<usize, String> {
    let mut i = start + 1;
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        out.push_str(r"\]");
        i += 1;
    }
    loop {
        let Some(&c) = chars.get(i) else {
            return Err("unterminated character set".into());
        };
        match c {
            ']' => {
                out.push(']');
                return Ok(i + 1);
            }
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    return Err("bad escape (end of pattern)".into());
                };
                i += 2;
                match n {
                    'b' => out.push_str(r"\x08"),
                    '0'..='7' => {
                        let len = octal_run(chars, i - 1);
                        let digits: String = chars[i - 1..i - 1 + len].iter().collect();
                        let code = u32::from_str_radix(&digits, 8).unwrap_or(0);
                        i = i - 1 + len;
                        push_regex_literal(out, char::from_u32(code).unwrap_or('\0'));
                    }
                    '<' | '>' => out.push(n),
                    n if n.is_ascii_alphanumeric() => {
                        out.push('\\');
                        out.push(n);
                    }
                    n => push_regex_literal(out, n),
                }
            }
            '[' | '&' | '~' => {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                out.push_str(r"\-");
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
}

/// Parses `{n}`, `{n,}`, `{n,m}` and Python's `{,m}` at the start of `chars`.
fn parse_quantifier(chars: &[char]) -> Option<(String, usize)> {
    let close = chars.iter().position(|&c| c == '}')?;
    let inner: String = chars[1..close].iter().collect();
    let valid_num = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
    let q = match inner.split_once(',') {
        None if valid_num(&inner) => format!("{{{inner}}}"),
        Some((lo, hi)) if (valid_num(lo) || lo.is_empty()) && (valid_num(hi) || hi.is_empty()) => {
            if lo.is_empty() && hi.is_empty() {
                return None;
            }
            let lo = if lo.is_empty() { "0" } else { lo };
            format!("{{{lo},{hi}}}")
        }
        _ => return None,
    };
    Some((q, close + 1))
}

type RegexKey = (String, bool, bool, Anchor);

thread_local! {
    static REGEX_CACHE: std::cell::RefCell<HashMap<RegexKey, Arc<Regex>>> =
        std::cell::RefCell::new(HashMap::new());
}

/// Compiles a Python pattern (cached; Ansible loops hit the same patterns).
fn py_regex(
    name: &str,
    pattern: &str,
    ignorecase: bool,
    multiline: bool,
    anchor: Anchor,
) -> Result<Arc<Regex>, Error> {
    let key = (pattern.to_string(), ignorecase, multiline, anchor);
    if let Some(re) = REGEX_CACHE.with(|c| c.borrow().get(&key).cloned()) {
        return Ok(re);
    }
    let translated = translate_py_regex(pattern)
        .map_err(|e| fail(name, format!("invalid regular expression {pattern:?}: {e}")))?;
    let source = match anchor {
        Anchor::None => translated,
        // a trailing verbose-mode comment must not swallow the anchor
        Anchor::Full => format!(
            r"\A(?:{translated}{})\z",
            if pattern.contains("(?") { "\n" } else { "" }
        ),
    };
    let re = RegexBuilder::new(&source)
        .case_insensitive(ignorecase)
        .multi_line(multiline)
        .size_limit(1 << 22)
        .build()
        .map_err(|e| fail(name, format!("invalid regular expression {pattern:?}: {e}")))?;
    let re = Arc::new(re);
    REGEX_CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(key, re.clone());
    });
    Ok(re)
}

/// All matches the way Python's `re.finditer`/`re.sub` produce them: an empty
/// match right after a non-empty one is kept, two empty matches at the same
/// position are not.
fn py_captures<'t>(re: &Regex, text: &'t str, limit: usize) -> Vec<Captures<'t>> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut must_advance = false;
    while pos <= text.len() && (limit == 0 || out.len() < limit) {
        let Some(caps) = re.captures_at(text, pos) else {
            break;
        };
        let Some(m) = caps.get(0) else {
            break;
        };
        if must_advance && m.start() == pos && m.end() == pos {
            match text[pos..].chars().next() {
                Some(c) => {
                    pos += c.len_utf8();
                    must_advance = false;
                    continue;
                }
                None => break,
            }
        }
        must_advance = m.start() == m.end();
        pos = m.end();
        out.push(caps);
    }
    out
}

enum ReplPart {
    Lit(String),
    Group(usize),
}

/// Parses a Python replacement template (`\1`, `\g<1>`, `\g<name>`, `\n`).
fn parse_py_template(name: &str, tmpl: &str, re: &Regex) -> Result<Vec<ReplPart>, Error> {
    let groups = re.captures_len();
    let bad_group = |g: &str| fail(name, format!("invalid group reference {g} in {tmpl:?}"));
    let chars: Vec<char> = tmpl.chars().collect();
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c != '\\' {
            lit.push(c);
            i += 1;
            continue;
        }
        let Some(&n) = chars.get(i + 1) else {
            return Err(fail(name, "bad escape (end of replacement)"));
        };
        i += 2;
        let mut group = None;
        match n {
            'g' => {
                if chars.get(i) != Some(&'<') {
                    return Err(fail(name, "missing < in \\g<name>"));
                }
                let Some(close) = chars[i..].iter().position(|&c| c == '>') else {
                    return Err(fail(name, "missing >, unterminated name"));
                };
                let gname: String = chars[i + 1..i + close].iter().collect();
                i += close + 1;
                let idx = if !gname.is_empty() && gname.chars().all(|c| c.is_ascii_digit()) {
                    gname.parse::<usize>().ok().filter(|g| *g < groups)
                } else {
                    re.capture_names().position(|n| n == Some(gname.as_str()))
                };
                group = Some(idx.ok_or_else(|| bad_group(&gname))?);
            }
            '0' => {
                let len = octal_run(&chars, i - 1).min(3);
                let digits: String = chars[i - 1..i - 1 + len].iter().collect();
                i = i - 1 + len;
                let code = u32::from_str_radix(&digits, 8).unwrap_or(0) & 0xff;
                lit.push(char::from_u32(code).unwrap_or('\0'));
            }
            '1'..='9' => {
                let mut digits = n.to_string();
                if chars.get(i).is_some_and(|d| d.is_ascii_digit()) {
                    digits.push(chars[i]);
                    i += 1;
                    if octal_run(&chars, i - 2) >= 2
                        && chars.get(i).is_some_and(|d| ('0'..='7').contains(d))
                    {
                        digits.push(chars[i]);
                        i += 1;
                        let code = u32::from_str_radix(&digits, 8).unwrap_or(0);
                        if code > 0o377 {
                            return Err(fail(
                                name,
                                format!("octal escape \\{digits} is out of range"),
                            ));
                        }
                        lit.push(char::from_u32(code).unwrap_or('\0'));
                        continue;
                    }
                }
                let idx: usize = digits.parse().unwrap_or(usize::MAX);
                if idx >= groups {
                    return Err(bad_group(&digits));
                }
                group = Some(idx);
            }
            'a' => lit.push('\x07'),
            'b' => lit.push('\x08'),
            'f' => lit.push('\x0c'),
            'n' => lit.push('\n'),
            'r' => lit.push('\r'),
            't' => lit.push('\t'),
            'v' => lit.push('\x0b'),
            '\\' => lit.push('\\'),
            n if n.is_ascii_alphabetic() => {
                return Err(fail(name, format!("bad escape \\{n} in replacement")))
            }
            n => {
                lit.push('\\');
                lit.push(n);
            }
        }
        if let Some(g) = group {
            if !lit.is_empty() {
                parts.push(ReplPart::Lit(std::mem::take(&mut lit)));
            }
            parts.push(ReplPart::Group(g));
        }
    }
    if !lit.is_empty() {
        parts.push(ReplPart::Lit(lit));
    }
    Ok(parts)
}

/// `regex_replace(pattern='', replacement='', ignorecase=False,
/// multiline=False, count=0, mandatory_count=0)` with Python `re.sub`
/// semantics.
fn regex_replace_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    const NAME: &str = "regex_replace";
    let p = Params::bind(
        NAME,
        &[
            "pattern",
            "replacement",
            "ignorecase",
            "multiline",
            "count",
            "mandatory_count",
        ],
        &args,
        &kwargs,
    )?;
    let text = text_input(state, value)?;
    let pattern = p.string_or(0, "")?;
    let replacement = p.string_or(1, "")?;
    let re = py_regex(
        NAME,
        &pattern,
        p.flag(2, false),
        p.flag(3, false),
        Anchor::None,
    )?;
    let count = p.int(4)?.unwrap_or(0).max(0) as usize;
    let mandatory = p.int(5)?.unwrap_or(0);
    let template = parse_py_template(NAME, &replacement, &re)?;
    let matches = py_captures(&re, &text, count);
    if mandatory != 0 && mandatory != matches.len() as i64 {
        return Err(fail(
            NAME,
            format!(
                "'{pattern}' should match {mandatory} times, but matches {} times in '{text}'",
                matches.len()
            ),
        ));
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for caps in &matches {
        let Some(m) = caps.get(0) else { continue };
        out.push_str(&text[last..m.start()]);
        for part in &template {
            match part {
                ReplPart::Lit(s) => out.push_str(s),
                ReplPart::Group(g) => out.push_str(caps.get(*g).map_or("", |m| m.as_str())),
            }
        }
        last = m.end();
        state.consume_fuel((out.len() / 256) as u64)?;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// `regex_search(regex, *groups, ignorecase=False, multiline=False)`: the
/// matched text, the list of requested groups (`'\\1'`, `'\\g<name>'`), or
/// none when nothing matches.
fn regex_search_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    const NAME: &str = "regex_search";
    let text = text_input(state, value)?;
    let mut pattern = None;
    let mut ignorecase = false;
    let mut multiline = false;
    for key in kwargs.args() {
        match key {
            "regex" => pattern = Some(kwargs.get::<Value>(key)?),
            "ignorecase" => ignorecase = kwargs.get::<Value>(key)?.is_true(),
            "multiline" => multiline = kwargs.get::<Value>(key)?.is_true(),
            other => {
                return Err(Error::new(
                    ErrorKind::TooManyArguments,
                    format!("{NAME}: unexpected keyword argument '{other}'"),
                ))
            }
        }
    }
    let (pattern, group_args) = match (pattern, args.split_first()) {
        (Some(p), _) => (p, &args[..]),
        (None, Some((p, rest))) => (p.clone(), rest),
        (None, None) => {
            return Err(Error::new(
                ErrorKind::MissingArgument,
                "regex_search: missing the regular expression",
            ))
        }
    };
    let pattern = py_str(&pattern);
    let re = py_regex(NAME, &pattern, ignorecase, multiline, Anchor::None)?;
    let mut groups = Vec::new();
    for arg in group_args {
        let a = py_str(arg);
        let idx = if let Some(rest) = a.strip_prefix("\\g") {
            let gname = rest
                .strip_prefix('<')
                .and_then(|r| r.split_once('>'))
                .map(|(n, _)| n)
                .unwrap_or_default();
            if !gname.is_empty() && gname.chars().all(|c| c.is_ascii_digit()) {
                gname
                    .parse::<usize>()
                    .ok()
                    .filter(|g| *g < re.captures_len())
            } else {
                re.capture_names().position(|n| n == Some(gname))
            }
        } else if let Some(rest) = a.strip_prefix('\\') {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits
                .parse::<usize>()
                .ok()
                .filter(|g| *g < re.captures_len())
        } else {
            return Err(fail(NAME, format!("Unknown argument {}", py_repr(arg))));
        };
        groups.push(idx.ok_or_else(|| fail(NAME, format!("no such group {}", py_repr(arg))))?);
    }
    let Some(caps) = re.captures(&text) else {
        return Ok(Value::from(()));
    };
    if groups.is_empty() {
        return Ok(Value::from(caps.get(0).map_or("", |m| m.as_str())));
    }
    Ok(Value::from(
        groups
            .iter()
            .map(|g| {
                caps.get(*g)
                    .map_or(Value::from(()), |m| Value::from(m.as_str()))
            })
            .collect::<Vec<_>>(),
    ))
}

/// `regex_findall(regex, multiline=False, ignorecase=False)`: Python's
/// `re.findall` (whole matches, the single group, or lists of groups).
fn regex_findall_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    const NAME: &str = "regex_findall";
    let p = Params::bind(NAME, &["regex", "multiline", "ignorecase"], &args, &kwargs)?;
    let text = text_input(state, value)?;
    let pattern = p.string_or(0, "")?;
    let re = py_regex(
        NAME,
        &pattern,
        p.flag(2, false),
        p.flag(1, false),
        Anchor::None,
    )?;
    let ngroups = re.captures_len() - 1;
    let out: Vec<Value> = py_captures(&re, &text, 0)
        .iter()
        .map(|caps| {
            let group = |g: usize| Value::from(caps.get(g).map_or("", |m| m.as_str()));
            match ngroups {
                0 => group(0),
                1 => group(1),
                n => Value::from((1..=n).map(group).collect::<Vec<_>>()),
            }
        })
        .collect();
    Ok(Value::from(out))
}

/// `regex_escape(re_type='python')`.
fn regex_escape_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let p = Params::bind("regex_escape", &["re_type"], &args, &kwargs)?;
    let text = text_input(state, value)?;
    let special = match p.string_or(0, "python")?.as_str() {
        // Python's re.escape escapes exactly these characters
        "python" => "()[]{}?*+-|^$\\.&~# \t\n\r\x0b\x0c",
        // the BRE special characters
        "posix_basic" => "].[^$*\\",
        "posix_extended" => {
            return Err(fail(
                "regex_escape",
                "Regex type (posix_extended) not yet implemented",
            ))
        }
        other => {
            return Err(fail(
                "regex_escape",
                format!("Invalid regex type ({other})"),
            ))
        }
    };
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if special.contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    Ok(out)
}

// ===========================================================================
// Data formats: JSON
// ===========================================================================

struct JsonOpts {
    indent: Option<String>,
    sort_keys: bool,
    ensure_ascii: bool,
    item_sep: String,
    key_sep: String,
}

/// Python's `json.dumps` (same separators, escaping and float formatting).
fn json_dumps(name: &str, v: &Value, opts: &JsonOpts) -> Result<String, Error> {
    let mut out = String::new();
    json_write(name, &mut out, v, opts, 0)?;
    Ok(out)
}

fn json_write(
    name: &str,
    out: &mut String,
    v: &Value,
    opts: &JsonOpts,
    level: usize,
) -> Result<(), Error> {
    if level > MAX_DEPTH {
        return Err(fail(name, "data is nested too deeply"));
    }
    match v.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if v.is_true() { "true" } else { "false" }),
        ValueKind::Number => out.push_str(&json_number(v)),
        ValueKind::String => json_escape(out, v.as_str().unwrap_or_default(), opts.ensure_ascii),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = v.try_iter()?.collect();
            if items.is_empty() {
                out.push_str("[]");
                return Ok(());
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(&opts.item_sep);
                }
                json_newline(out, opts, level + 1);
                json_write(name, out, item, opts, level + 1)?;
            }
            json_newline(out, opts, level);
            out.push(']');
        }
        ValueKind::Map => {
            let mut pairs = map_pairs(v)?;
            if pairs.is_empty() {
                out.push_str("{}");
                return Ok(());
            }
            if opts.sort_keys {
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
            }
            out.push('{');
            for (i, (key, value)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push_str(&opts.item_sep);
                }
                json_newline(out, opts, level + 1);
                let key = match key.kind() {
                    ValueKind::String => py_str(key),
                    ValueKind::None => "null".into(),
                    ValueKind::Bool => (if key.is_true() { "true" } else { "false" }).into(),
                    ValueKind::Number => json_number(key),
                    _ => {
                        return Err(fail(
                            name,
                            format!(
                                "keys must be str, int, float, bool or None, not {}",
                                py_type_name(key)
                            ),
                        ))
                    }
                };
                json_escape(out, &key, opts.ensure_ascii);
                out.push_str(&opts.key_sep);
                json_write(name, out, value, opts, level + 1)?;
            }
            json_newline(out, opts, level);
            out.push('}');
        }
        ValueKind::Undefined => return Err(undefined_error(v)),
        _ => {
            return Err(fail(
                name,
                format!(
                    "Object of type {} is not JSON serializable",
                    py_type_name(v)
                ),
            ))
        }
    }
    Ok(())
}

fn json_newline(out: &mut String, opts: &JsonOpts, level: usize) {
    if let Some(indent) = &opts.indent {
        out.push('\n');
        for _ in 0..level {
            out.push_str(indent);
        }
    }
}

fn json_number(v: &Value) -> String {
    if v.is_integer() {
        return py_str(v);
    }
    match f64::try_from(v.clone()) {
        Ok(f) if f.is_nan() => "NaN".into(),
        Ok(f) if f.is_infinite() => if f > 0.0 { "Infinity" } else { "-Infinity" }.into(),
        Ok(f) => py_float_repr(f),
        Err(_) => py_str(v),
    }
}

fn json_escape(out: &mut String, s: &str, ensure_ascii: bool) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (ensure_ascii && !(' '..='~').contains(&c)) => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_opts(
    name: &'static str,
    p: &Params,
    indent_idx: usize,
    default_indent: Option<i64>,
    default_sort: bool,
) -> Result<JsonOpts, Error> {
    let indent = match p.opt(indent_idx) {
        None => default_indent.map(|n| " ".repeat(n.clamp(0, 100) as usize)),
        Some(v) if v.kind() == ValueKind::String => Some(py_str(v)),
        Some(_) => p
            .int(indent_idx)?
            .map(|n| " ".repeat(n.clamp(0, 100) as usize)),
    };
    let sort_keys = p.flag(indent_idx + 1, default_sort);
    let ensure_ascii = p.flag(indent_idx + 2, true);
    let (item_sep, key_sep) = match p.opt(indent_idx + 3) {
        Some(seps) => {
            let parts: Vec<String> = seps.try_iter()?.map(|s| py_str(&s)).collect();
            match <[String; 2]>::try_from(parts) {
                Ok([a, b]) => (a, b),
                Err(_) => return Err(fail(name, "separators must be an (item, key) pair")),
            }
        }
        None if indent.is_some() => (",".into(), ": ".into()),
        None => (", ".into(), ": ".into()),
    };
    Ok(JsonOpts {
        indent,
        sort_keys,
        ensure_ascii,
        item_sep,
        key_sep,
    })
}

/// `to_json(indent=None, sort_keys=False, ensure_ascii=True, separators=None)`.
fn to_json_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    // profile/vault_to_text/preprocess_unsafe only matter for vaulted data
    let p = Params::bind(
        "to_json",
        &[
            "profile",
            "indent",
            "sort_keys",
            "ensure_ascii",
            "separators",
            "vault_to_text",
            "preprocess_unsafe",
        ],
        &args,
        &kwargs,
    )?;
    check_defined(state, value)?;
    let opts = json_opts("to_json", &p, 1, None, false)?;
    let rv = json_dumps("to_json", value, &opts)?;
    state.consume_fuel((rv.len() / 64) as u64)?;
    Ok(rv)
}

/// `to_nice_json(indent=4, sort_keys=True)`.
fn to_nice_json_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let p = Params::bind(
        "to_nice_json",
        &["indent", "sort_keys", "ensure_ascii"],
        &args,
        &kwargs,
    )?;
    check_defined(state, value)?;
    let mut opts = json_opts("to_nice_json", &p, 0, Some(4), true)?;
    opts.item_sep = ",".into();
    opts.key_sep = ": ".into();
    let rv = json_dumps("to_nice_json", value, &opts)?;
    state.consume_fuel((rv.len() / 64) as u64)?;
    Ok(rv)
}

/// `from_json`: parses a JSON string (duplicate keys: the last one wins).
fn from_json_filter(state: &State, value: &Value) -> Result<Value, Error> {
    check_defined(state, value)?;
    let Some(s) = value.as_str() else {
        return Err(fail(
            "from_json",
            format!(
                "the JSON object must be str, bytes or bytearray, not {}",
                py_type_name(value)
            ),
        ));
    };
    state.consume_fuel((s.len() / 64) as u64)?;
    let parsed: serde_json::Value =
        serde_json::from_str(s).map_err(|e| fail("from_json", format!("invalid JSON: {e}")))?;
    Ok(Value::from(minijinja::value::Serde(&parsed)))
}

// ===========================================================================
// Data formats: YAML 1.1 (PyYAML compatible)
// ===========================================================================

/// What a plain YAML 1.1 scalar resolves to (PyYAML's implicit resolvers).
#[derive(Debug, PartialEq, Clone, Copy)]
enum Resolved {
    Null,
    Bool,
    Int,
    Float,
    Merge,
    Timestamp,
    Value,
    Str,
}

fn yaml11_resolve(text: &str) -> Resolved {
    static RES: OnceLock<Vec<(Resolved, Regex)>> = OnceLock::new();
    let res = RES.get_or_init(|| {
        let table = [
            (
                Resolved::Bool,
                r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$",
            ),
            (
                Resolved::Float,
                r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
            ),
            (
                Resolved::Int,
                r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
            ),
            (Resolved::Merge, r"^(?:<<)$"),
            (Resolved::Null, r"^(?:~|null|Null|NULL|)$"),
            (
                Resolved::Timestamp,
                r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
            ),
            (Resolved::Value, r"^(?:=)$"),
        ];
        table
            .into_iter()
            .filter_map(|(kind, re)| Regex::new(re).ok().map(|re| (kind, re)))
            .collect()
    });
    for (kind, re) in res {
        if re.is_match(text) {
            return *kind;
        }
    }
    Resolved::Str
}

/// PyYAML's `construct_yaml_int`.
fn yaml_construct_int(text: &str) -> Option<Value> {
    let clean: String = text.chars().filter(|c| *c != '_').collect();
    let (sign, body) = match clean.strip_prefix('-') {
        Some(b) => (-1i128, b),
        None => (1, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let n = if body == "0" {
        0
    } else if let Some(b) = body.strip_prefix("0b") {
        i128::from_str_radix(b, 2).ok()?
    } else if let Some(h) = body.strip_prefix("0x") {
        i128::from_str_radix(h, 16).ok()?
    } else if body.starts_with('0') {
        i128::from_str_radix(body, 8).ok()?
    } else if body.contains(':') {
        let mut total: i128 = 0;
        for part in body.split(':') {
            total = total
                .checked_mul(60)?
                .checked_add(part.parse::<i128>().ok()?)?;
        }
        total
    } else {
        body.parse::<i128>().ok()?
    };
    Some(Value::from(sign * n))
}

/// PyYAML's `construct_yaml_float`.
fn yaml_construct_float(text: &str) -> Option<Value> {
    let clean: String = text
        .chars()
        .filter(|c| *c != '_')
        .collect::<String>()
        .to_lowercase();
    let (sign, body) = match clean.strip_prefix('-') {
        Some(b) => (-1.0, b),
        None => (1.0, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let f = if body == ".inf" {
        f64::INFINITY
    } else if body == ".nan" {
        f64::NAN
    } else if body.contains(':') {
        let mut total = 0.0;
        for part in body.split(':') {
            total = total * 60.0 + part.parse::<f64>().ok()?;
        }
        total
    } else {
        body.parse::<f64>().ok()?
    };
    Some(Value::from(sign * f))
}

/// Builds values from yaml-rust2 parser events, resolving plain scalars with
/// YAML 1.1 rules (yes/no/on/off booleans, octal `012`, sexagesimal) and
/// honouring anchors, aliases and `<<` merge keys like PyYAML.
#[derive(Default)]
struct YamlBuilder {
    stack: Vec<YamlFrame>,
    anchors: HashMap<usize, Value>,
    docs: Vec<Value>,
}

enum YamlFrame {
    Seq {
        anchor: usize,
        items: Vec<Value>,
    },
    Map {
        anchor: usize,
        pairs: Vec<(Value, Value)>,
        merged: Vec<(Value, Value)>,
        key: Option<YamlKey>,
    },
}

enum YamlKey {
    Normal(Value),
    Merge,
}

fn yaml_scalar(
    text: String,
    style: yaml_rust2::scanner::TScalarStyle,
    tag: Option<yaml_rust2::parser::Tag>,
) -> Result<(Value, bool), String> {
    use yaml_rust2::scanner::TScalarStyle;
    if let Some(tag) = tag {
        let full = format!("{}{}", tag.handle, tag.suffix);
        let typed = |what: &str, v: Option<Value>| {
            v.ok_or_else(|| format!("invalid {what} value {text:?}"))
        };
        return Ok((
            match full.as_str() {
                "tag:yaml.org,2002:str" | "!unsafe" => Value::from(text.clone()),
                "tag:yaml.org,2002:int" => typed("int", yaml_construct_int(&text))?,
                "tag:yaml.org,2002:float" => typed("float", yaml_construct_float(&text))?,
                "tag:yaml.org,2002:bool" => Value::from(matches!(
                    text.to_lowercase().as_str(),
                    "yes" | "true" | "on"
                )),
                "tag:yaml.org,2002:null" => Value::from(()),
                "!vault" | "!vault-encrypted" => {
                    return Err("vault-encrypted values are not supported".into())
                }
                other => {
                    return Err(format!(
                        "could not determine a constructor for the tag '{other}'"
                    ))
                }
            },
            false,
        ));
    }
    if style != TScalarStyle::Plain {
        return Ok((Value::from(text), false));
    }
    let v = match yaml11_resolve(&text) {
        Resolved::Null => Value::from(()),
        Resolved::Bool => Value::from(matches!(
            text.as_str(),
            "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON"
        )),
        Resolved::Int => yaml_construct_int(&text).unwrap_or_else(|| Value::from(text.clone())),
        Resolved::Float => yaml_construct_float(&text).unwrap_or_else(|| Value::from(text.clone())),
        Resolved::Merge => return Ok((Value::from(text), true)),
        // dates stay strings: there is no date type to turn them into
        Resolved::Timestamp | Resolved::Value | Resolved::Str => Value::from(text),
    };
    Ok((v, false))
}

impl YamlBuilder {
    fn add(&mut self, v: Value, is_merge_key: bool) -> Result<(), String> {
        match self.stack.last_mut() {
            None => self.docs.push(v),
            Some(YamlFrame::Seq { items, .. }) => items.push(v),
            Some(YamlFrame::Map {
                pairs, merged, key, ..
            }) => match key.take() {
                None => {
                    *key = Some(if is_merge_key {
                        YamlKey::Merge
                    } else {
                        YamlKey::Normal(v)
                    })
                }
                Some(YamlKey::Normal(k)) => pairs.push((k, v)),
                Some(YamlKey::Merge) => {
                    if v.kind() == ValueKind::Map {
                        merged.extend(map_pairs(&v).map_err(|e| e.to_string())?);
                    } else if v.kind() == ValueKind::Seq {
                        let mut subs = Vec::new();
                        for sub in v.try_iter().map_err(|e| e.to_string())? {
                            if sub.kind() != ValueKind::Map {
                                return Err("expected a mapping for merging".into());
                            }
                            subs.push(map_pairs(&sub).map_err(|e| e.to_string())?);
                        }
                        // earlier maps in the list take precedence
                        for sub in subs.into_iter().rev() {
                            merged.extend(sub);
                        }
                    } else {
                        return Err(
                            "expected a mapping or list of mappings for merging".to_string()
                        );
                    }
                }
            },
        }
        Ok(())
    }

    fn anchor(&mut self, id: usize, v: &Value) {
        if id > 0 {
            self.anchors.insert(id, v.clone());
        }
    }

    fn event(&mut self, ev: yaml_rust2::Event) -> Result<(), String> {
        use yaml_rust2::Event;
        if self.stack.len() > MAX_DEPTH {
            return Err("document is nested too deeply".into());
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                let (v, merge) = yaml_scalar(text, style, tag)?;
                self.anchor(anchor, &v);
                self.add(v, merge)?;
            }
            Event::Alias(id) => {
                let v = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or("found undefined or recursive alias")?;
                self.add(v, false)?;
            }
            Event::SequenceStart(anchor, _) => self.stack.push(YamlFrame::Seq {
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(YamlFrame::Map {
                anchor,
                pairs: Vec::new(),
                merged: Vec::new(),
                key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => {
                let (anchor, v) = match self.stack.pop() {
                    Some(YamlFrame::Seq { anchor, items }) => (anchor, Value::from(items)),
                    Some(YamlFrame::Map {
                        anchor,
                        pairs,
                        mut merged,
                        ..
                    }) => {
                        // merged keys come first so explicit keys override them
                        merged.extend(pairs);
                        (anchor, map_from_pairs(merged))
                    }
                    None => return Err("unbalanced collection end".into()),
                };
                self.anchor(anchor, &v);
                self.add(v, false)?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// Parses a YAML stream into its documents.
fn yaml_load_all(name: &str, src: &str) -> Result<Vec<Value>, Error> {
    // yaml-rust2 is not expected to panic, but a parser bug must not take the
    // whole run down with it.
    let result = std::panic::catch_unwind(|| -> Result<Vec<Value>, String> {
        let mut parser = yaml_rust2::parser::Parser::new_from_str(src);
        let mut builder = YamlBuilder::default();
        loop {
            let (ev, mark) = parser.next_token().map_err(|e| e.to_string())?;
            if ev == yaml_rust2::Event::StreamEnd {
                break;
            }
            builder
                .event(ev)
                .map_err(|e| format!("{e} (line {}, column {})", mark.line(), mark.col() + 1))?;
        }
        Ok(builder.docs)
    });
    match result {
        Ok(Ok(docs)) => Ok(docs),
        Ok(Err(e)) => Err(fail(name, format!("invalid YAML: {e}"))),
        Err(_) => Err(fail(name, "invalid YAML: parser failure")),
    }
}

/// `from_yaml`: one YAML document to a value (YAML 1.1 like Ansible).
fn from_yaml_filter(state: &State, value: &Value) -> Result<Value, Error> {
    check_defined(state, value)?;
    let Some(s) = value.as_str() else {
        // Ansible passes non-string input through unchanged
        return Ok(value.clone());
    };
    state.consume_fuel((s.len() / 64) as u64)?;
    let mut docs = yaml_load_all("from_yaml", s)?;
    match docs.len() {
        0 => Ok(Value::from(())),
        1 => Ok(docs.remove(0)),
        _ => Err(fail(
            "from_yaml",
            "expected a single document in the stream (use from_yaml_all)",
        )),
    }
}

/// `from_yaml_all`: every document of a YAML stream as a list.
fn from_yaml_all_filter(state: &State, value: &Value) -> Result<Value, Error> {
    check_defined(state, value)?;
    if value.is_none() {
        return Ok(Value::from(Vec::<Value>::new()));
    }
    let Some(s) = value.as_str() else {
        return Ok(value.clone());
    };
    state.consume_fuel((s.len() / 64) as u64)?;
    Ok(Value::from(yaml_load_all("from_yaml_all", s)?))
}

/// Intermediate tree for the emitter: scalars keep their text and whether a
/// plain rendering would read back as the same type ("implicit").
enum YNode {
    Scalar {
        text: String,
        implicit: bool,
    },
    Seq {
        items: Vec<YNode>,
        flow: bool,
    },
    Map {
        pairs: Vec<(YNode, YNode)>,
        flow: bool,
    },
}

impl YNode {
    fn is_empty_collection(&self) -> bool {
        match self {
            YNode::Seq { items, .. } => items.is_empty(),
            YNode::Map { pairs, .. } => pairs.is_empty(),
            YNode::Scalar { .. } => false,
        }
    }
}

/// PyYAML's SafeRepresenter (+ Ansible's: any collection becomes a list).
fn yaml_represent(
    name: &str,
    v: &Value,
    flow_default: Option<bool>,
    sort_keys: bool,
    depth: usize,
) -> Result<YNode, Error> {
    if depth > MAX_DEPTH {
        return Err(fail(name, "data is nested too deeply"));
    }
    let scalar = |text: String| YNode::Scalar {
        text,
        implicit: true,
    };
    Ok(match v.kind() {
        ValueKind::None => scalar("null".into()),
        ValueKind::Bool => scalar(if v.is_true() { "true" } else { "false" }.into()),
        ValueKind::Number if v.is_integer() => scalar(py_str(v)),
        ValueKind::Number => {
            let f = f64::try_from(v.clone()).unwrap_or(f64::NAN);
            let text = if f.is_nan() {
                ".nan".to_string()
            } else if f.is_infinite() {
                if f > 0.0 { ".inf" } else { "-.inf" }.to_string()
            } else {
                let r = py_float_repr(f).to_lowercase();
                if !r.contains('.') && r.contains('e') {
                    r.replacen('e', ".0e", 1)
                } else {
                    r
                }
            };
            scalar(text)
        }
        ValueKind::String => {
            let text = py_str(v);
            let implicit = yaml11_resolve(&text) == Resolved::Str;
            YNode::Scalar { text, implicit }
        }
        ValueKind::Seq | ValueKind::Iterable => {
            let items = v
                .try_iter()?
                .map(|item| yaml_represent(name, &item, flow_default, sort_keys, depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            let best = items.iter().all(|i| matches!(i, YNode::Scalar { .. }));
            YNode::Seq {
                items,
                flow: flow_default.unwrap_or(best),
            }
        }
        ValueKind::Map => {
            let mut pairs = map_pairs(v)?;
            // PyYAML sorts keys when they are mutually comparable
            let same_kind = pairs.windows(2).all(|w| {
                let (a, b) = (&w[0].0, &w[1].0);
                a.kind() == b.kind()
                    || (matches!(a.kind(), ValueKind::Number | ValueKind::Bool)
                        && matches!(b.kind(), ValueKind::Number | ValueKind::Bool))
            });
            if sort_keys && same_kind {
                pairs.sort_by(|a, b| a.0.cmp(&b.0));
            }
            let pairs = pairs
                .iter()
                .map(|(k, val)| {
                    Ok((
                        yaml_represent(name, k, flow_default, sort_keys, depth + 1)?,
                        yaml_represent(name, val, flow_default, sort_keys, depth + 1)?,
                    ))
                })
                .collect::<Result<Vec<_>, Error>>()?;
            let best = pairs.iter().all(|(k, val)| {
                matches!(k, YNode::Scalar { .. }) && matches!(val, YNode::Scalar { .. })
            });
            YNode::Map {
                pairs,
                flow: flow_default.unwrap_or(best),
            }
        }
        ValueKind::Undefined => return Err(undefined_error(v)),
        _ => {
            return Err(fail(
                name,
                format!("cannot represent an object of type {}", py_type_name(v)),
            ))
        }
    })
}

struct ScalarAnalysis {
    empty: bool,
    multiline: bool,
    allow_flow_plain: bool,
    allow_block_plain: bool,
    allow_single_quoted: bool,
}

// Ansible dumps with libyaml's emitter (CSafeDumper); its character classes
// differ slightly from PyYAML's pure-Python emitter and are used here.
fn is_yaml_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's IS_PRINTABLE: astral characters and NEL count as unprintable.
fn is_yaml_printable(c: char) -> bool {
    c == '\n'
        || (' '..='~').contains(&c)
        || ('\u{A0}'..='\u{D7FF}').contains(&c)
        || (('\u{E000}'..='\u{FFFD}').contains(&c) && c != '\u{FEFF}')
}

fn is_yaml_space_or_break(c: char) -> bool {
    matches!(
        c,
        '\0' | ' ' | '\t' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}'
    )
}

/// libyaml's `yaml_emitter_analyze_scalar` (with unicode allowed).
fn analyze_scalar(text: &str) -> ScalarAnalysis {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return ScalarAnalysis {
            empty: true,
            multiline: false,
            allow_flow_plain: false,
            allow_block_plain: true,
            allow_single_quoted: true,
        };
    }
    let mut block_indicators = false;
    let mut flow_indicators = false;
    let mut line_breaks = false;
    let mut special_characters = false;
    let (mut leading_space, mut leading_break) = (false, false);
    let (mut trailing_space, mut trailing_break) = (false, false);
    let (mut break_space, mut space_break) = (false, false);
    if text.starts_with("---") || text.starts_with("...") {
        block_indicators = true;
        flow_indicators = true;
    }
    let mut preceded_by_whitespace = true;
    let mut followed_by_whitespace = chars.len() == 1 || is_yaml_space_or_break(chars[1]);
    let (mut previous_space, mut previous_break) = (false, false);
    let last = chars.len() - 1;
    for (index, &ch) in chars.iter().enumerate() {
        if index == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) {
                flow_indicators = true;
                block_indicators = true;
            }
            if ch == '?' || ch == ':' {
                flow_indicators = true;
                if followed_by_whitespace {
                    block_indicators = true;
                }
            }
            if ch == '-' && followed_by_whitespace {
                flow_indicators = true;
                block_indicators = true;
            }
        } else {
            if ",?[]{}".contains(ch) {
                flow_indicators = true;
            }
            if ch == ':' {
                flow_indicators = true;
                if followed_by_whitespace {
                    block_indicators = true;
                }
            }
            if ch == '#' && preceded_by_whitespace {
                flow_indicators = true;
                block_indicators = true;
            }
        }
        if is_yaml_break(ch) {
            line_breaks = true;
        }
        if !is_yaml_printable(ch) {
            special_characters = true;
        }
        if ch == ' ' {
            if index == 0 {
                leading_space = true;
            }
            if index == last {
                trailing_space = true;
            }
            if previous_break {
                break_space = true;
            }
            previous_space = true;
            previous_break = false;
        } else if is_yaml_break(ch) {
            if index == 0 {
                leading_break = true;
            }
            if index == last {
                trailing_break = true;
            }
            if previous_space {
                space_break = true;
            }
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_yaml_space_or_break(ch);
        followed_by_whitespace =
            index + 2 >= chars.len() || is_yaml_space_or_break(chars[index + 2]);
    }
    let mut a = ScalarAnalysis {
        empty: false,
        multiline: line_breaks,
        allow_flow_plain: true,
        allow_block_plain: true,
        allow_single_quoted: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
    }
    if break_space {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
        a.allow_single_quoted = false;
    }
    if space_break || special_characters {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
        a.allow_single_quoted = false;
    }
    if line_breaks {
        a.allow_flow_plain = false;
        a.allow_block_plain = false;
    }
    if flow_indicators {
        a.allow_flow_plain = false;
    }
    if block_indicators {
        a.allow_block_plain = false;
    }
    a
}

/// A port of PyYAML's emitter (the parts a representer-produced tree uses:
/// block/flow collections and plain/single/double quoted scalars).
struct YamlEmitter {
    out: String,
    column: usize,
    whitespace: bool,
    indention: bool,
    indent: Option<usize>,
    indents: Vec<Option<usize>>,
    flow_level: usize,
    best_indent: usize,
    best_width: usize,
    simple_key_context: bool,
}

impl YamlEmitter {
    fn new(indent: usize, width: usize) -> YamlEmitter {
        let best_indent = if (2..10).contains(&indent) { indent } else { 2 };
        YamlEmitter {
            out: String::new(),
            column: 0,
            whitespace: true,
            indention: true,
            indent: None,
            indents: Vec::new(),
            flow_level: 0,
            best_indent,
            best_width: if width > best_indent * 2 { width } else { 80 },
            simple_key_context: false,
        }
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        match self.indent {
            None => self.indent = Some(if flow { self.best_indent } else { 0 }),
            Some(i) if !indentless => self.indent = Some(i + self.best_indent),
            Some(_) => {}
        }
    }

    fn pop_indent(&mut self) {
        self.indent = self.indents.pop().flatten();
    }

    fn write_raw(&mut self, data: &str) {
        self.column += data.chars().count();
        self.out.push_str(data);
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        whitespace: bool,
        indention: bool,
    ) {
        if !self.whitespace && need_whitespace {
            self.write_raw(" ");
        }
        self.write_raw(indicator);
        self.whitespace = whitespace;
        self.indention = self.indention && indention;
    }

    fn write_indent(&mut self) {
        let indent = self.indent.unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.write_line_break();
        }
        if self.column < indent {
            self.whitespace = true;
            let pad = " ".repeat(indent - self.column);
            self.write_raw(&pad);
        }
    }

    fn write_line_break(&mut self) {
        self.whitespace = true;
        self.indention = true;
        self.column = 0;
        self.out.push('\n');
    }

    fn write_break_char(&mut self, br: char) {
        if br == '\n' {
            self.write_line_break();
        } else {
            self.whitespace = true;
            self.indention = true;
            self.column = 0;
            self.out.push(br);
        }
    }

    fn check_simple_key(&self, node: &YNode) -> bool {
        match node {
            // libyaml: up to 128 bytes, empty strings allowed
            YNode::Scalar { text, .. } => text.len() <= 128 && !analyze_scalar(text).multiline,
            other => other.is_empty_collection(),
        }
    }

    fn expect_node(&mut self, node: &YNode, mapping: bool, simple_key: bool) {
        self.simple_key_context = simple_key;
        match node {
            YNode::Scalar { text, implicit } => {
                self.increase_indent(true, false);
                self.process_scalar(text, *implicit);
                self.pop_indent();
            }
            YNode::Seq { items, flow } => {
                if self.flow_level > 0 || *flow || items.is_empty() {
                    self.flow_sequence(items);
                } else {
                    self.block_sequence(items, mapping);
                }
            }
            YNode::Map { pairs, flow } => {
                if self.flow_level > 0 || *flow || pairs.is_empty() {
                    self.flow_mapping(pairs);
                } else {
                    self.block_mapping(pairs);
                }
            }
        }
    }

    fn flow_sequence(&mut self, items: &[YNode]) {
        self.write_indicator("[", true, true, false);
        self.flow_level += 1;
        self.increase_indent(true, false);
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.write_indicator(",", false, false, false);
            }
            if self.column > self.best_width {
                self.write_indent();
            }
            self.expect_node(item, false, false);
        }
        self.pop_indent();
        self.flow_level -= 1;
        self.write_indicator("]", false, false, false);
    }

    fn flow_mapping(&mut self, pairs: &[(YNode, YNode)]) {
        self.write_indicator("{", true, true, false);
        self.flow_level += 1;
        self.increase_indent(true, false);
        for (i, (k, v)) in pairs.iter().enumerate() {
            if i > 0 {
                self.write_indicator(",", false, false, false);
            }
            if self.column > self.best_width {
                self.write_indent();
            }
            if self.check_simple_key(k) {
                self.expect_node(k, true, true);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, false);
                self.expect_node(k, true, false);
                if self.column > self.best_width {
                    self.write_indent();
                }
                self.write_indicator(":", true, false, false);
            }
            self.expect_node(v, true, false);
        }
        self.pop_indent();
        self.flow_level -= 1;
        self.write_indicator("}", false, false, false);
    }

    fn block_sequence(&mut self, items: &[YNode], mapping_context: bool) {
        let indentless = mapping_context && !self.indention;
        self.increase_indent(false, indentless);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.expect_node(item, false, false);
        }
        self.pop_indent();
    }

    fn block_mapping(&mut self, pairs: &[(YNode, YNode)]) {
        self.increase_indent(false, false);
        for (k, v) in pairs {
            self.write_indent();
            if self.check_simple_key(k) {
                self.expect_node(k, true, true);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.expect_node(k, true, false);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.expect_node(v, true, false);
        }
        self.pop_indent();
    }

    fn process_scalar(&mut self, text: &str, implicit: bool) {
        let a = analyze_scalar(text);
        let split = !self.simple_key_context;
        let plain_ok = implicit
            && !(self.simple_key_context && (a.empty || a.multiline))
            && ((self.flow_level > 0 && a.allow_flow_plain)
                || (self.flow_level == 0 && a.allow_block_plain));
        if plain_ok {
            self.write_plain(text, split);
        } else if a.allow_single_quoted && !(self.simple_key_context && a.multiline) {
            self.write_single_quoted(text, split);
        } else {
            self.write_double_quoted(text, split);
        }
    }

    fn write_plain(&mut self, text: &str, split: bool) {
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.write_raw(" ");
        }
        self.whitespace = false;
        self.indention = false;
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0, 0);
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > self.best_width && split {
                        self.write_indent();
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        let data: String = chars[start..end].iter().collect();
                        self.write_raw(&data);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_yaml_break) {
                    if chars[start] == '\n' {
                        self.write_line_break();
                    }
                    for &br in &chars[start..end] {
                        self.write_break_char(br);
                    }
                    self.write_indent();
                    self.whitespace = false;
                    self.indention = false;
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || is_yaml_break(c)) {
                let data: String = chars[start..end].iter().collect();
                self.write_raw(&data);
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_yaml_break(c);
            }
            end += 1;
        }
    }

    fn write_single_quoted(&mut self, text: &str, split: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let (mut start, mut end) = (0, 0);
        while end <= chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end
                        && self.column > self.best_width
                        && split
                        && start != 0
                        && end != chars.len()
                    {
                        self.write_indent();
                    } else {
                        let data: String = chars[start..end].iter().collect();
                        self.write_raw(&data);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_yaml_break) {
                    if chars[start] == '\n' {
                        self.write_line_break();
                    }
                    for &br in &chars[start..end] {
                        self.write_break_char(br);
                    }
                    self.write_indent();
                    start = end;
                }
            } else if ch.is_none_or(|c| c == ' ' || c == '\'' || is_yaml_break(c)) && start < end {
                let data: String = chars[start..end].iter().collect();
                self.write_raw(&data);
                start = end;
            }
            if ch == Some('\'') {
                self.write_raw("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_yaml_break(c);
            }
            end += 1;
        }
        self.write_indicator("'", false, false, false);
    }

    /// libyaml's double-quoted writer: escapes, and folds at single spaces.
    fn write_double_quoted(&mut self, text: &str, split: bool) {
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_yaml_printable(c) || c == '\u{FEFF}' || is_yaml_break(c) || c == '"' || c == '\\'
            {
                let esc = match c {
                    '\0' => "\\0".to_string(),
                    '\x07' => "\\a".to_string(),
                    '\x08' => "\\b".to_string(),
                    '\x09' => "\\t".to_string(),
                    '\x0a' => "\\n".to_string(),
                    '\x0b' => "\\v".to_string(),
                    '\x0c' => "\\f".to_string(),
                    '\x0d' => "\\r".to_string(),
                    '\x1b' => "\\e".to_string(),
                    '"' => "\\\"".to_string(),
                    '\\' => "\\\\".to_string(),
                    '\u{85}' => "\\N".to_string(),
                    '\u{A0}' => "\\_".to_string(),
                    '\u{2028}' => "\\L".to_string(),
                    '\u{2029}' => "\\P".to_string(),
                    c if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
                    c if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
                    c => format!("\\U{:08X}", c as u32),
                };
                self.write_raw(&esc);
                spaces = false;
            } else if c == ' ' {
                if split
                    && !spaces
                    && self.column > self.best_width
                    && i != 0
                    && i + 1 != chars.len()
                {
                    self.write_indent();
                    if chars.get(i + 1) == Some(&' ') {
                        self.write_raw("\\");
                    }
                } else {
                    self.write_raw(" ");
                }
                spaces = true;
            } else {
                let mut buf = [0u8; 4];
                self.write_raw(c.encode_utf8(&mut buf));
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
    }
}

struct YamlDumpOpts {
    indent: usize,
    width: usize,
    flow: Option<bool>,
    sort_keys: bool,
    explicit_start: bool,
    explicit_end: bool,
}

/// `yaml.dump(value, Dumper=AnsibleDumper, allow_unicode=True, ...)`.
fn yaml_dump(name: &str, v: &Value, opts: &YamlDumpOpts) -> Result<String, Error> {
    let node = yaml_represent(name, v, opts.flow, opts.sort_keys, 0)?;
    let mut em = YamlEmitter::new(opts.indent, opts.width);
    if opts.explicit_start {
        em.write_indent();
        em.write_indicator("---", true, false, false);
    }
    em.expect_node(&node, false, false);
    em.write_indent();
    if opts.explicit_end {
        em.write_indicator("...", true, false, false);
        em.write_indent();
    }
    Ok(em.out)
}

fn yaml_opts(p: &Params, nice: bool) -> Result<YamlDumpOpts, Error> {
    // parameter order: indent, default_flow_style, width, sort_keys,
    // explicit_start, explicit_end
    let flow = match p.raw(1) {
        None if nice => Some(false),
        None => None,
        Some(v) if v.is_none() => None,
        Some(v) => Some(v.is_true()),
    };
    Ok(YamlDumpOpts {
        indent: p.int(0)?.unwrap_or(if nice { 4 } else { 2 }).clamp(0, 100) as usize,
        // libyaml treats a negative width as "never wrap"
        width: match p.int(2)?.unwrap_or(80) {
            w if w < 0 => usize::MAX / 2,
            w => w.min(1 << 40) as usize,
        },
        flow,
        sort_keys: p.flag(3, true),
        explicit_start: p.flag(4, false),
        explicit_end: p.flag(5, false),
    })
}

const YAML_PARAMS: &[&str] = &[
    "indent",
    "default_flow_style",
    "width",
    "sort_keys",
    "explicit_start",
    "explicit_end",
];

/// `to_yaml(default_flow_style=None, indent=2, width=80, sort_keys=True)`:
/// flow style for collections of scalars, block style otherwise.
fn to_yaml_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    check_defined(state, value)?;
    // Ansible's to_yaml ignores positional arguments (`*_args`)
    let _ = args;
    let p = Params::bind("to_yaml", YAML_PARAMS, &[], &kwargs)?;
    let rv = yaml_dump("to_yaml", value, &yaml_opts(&p, false)?)?;
    state.consume_fuel((rv.len() / 64) as u64)?;
    Ok(rv)
}

/// `to_nice_yaml(indent=4, default_flow_style=False, ...)`: block style.
fn to_nice_yaml_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    check_defined(state, value)?;
    // only `indent` is positional, further positional arguments are ignored
    let p = Params::bind(
        "to_nice_yaml",
        YAML_PARAMS,
        &args[..args.len().min(1)],
        &kwargs,
    )?;
    let rv = yaml_dump("to_nice_yaml", value, &yaml_opts(&p, true)?)?;
    state.consume_fuel((rv.len() / 64) as u64)?;
    Ok(rv)
}

// ===========================================================================
// Collections
// ===========================================================================

const LIST_MERGE: &[&str] = &[
    "replace",
    "keep",
    "append",
    "prepend",
    "append_rp",
    "prepend_rp",
];

/// Ansible's `merge_hash(x, y, recursive, list_merge)`: keys of `y` win.
fn merge_hash(
    x: &Value,
    y: &Value,
    recursive: bool,
    list_merge: &str,
    depth: usize,
) -> Result<Value, Error> {
    if depth > MAX_DEPTH {
        return Err(fail("combine", "data is nested too deeply"));
    }
    if x.kind() != ValueKind::Map || y.kind() != ValueKind::Map {
        return Err(fail(
            "combine",
            format!(
                "failed to combine variables, expected dicts but got a '{}' and a '{}'",
                py_type_name(x),
                py_type_name(y)
            ),
        ));
    }
    let mut out: IndexMap<Value, Value> = map_pairs(x)?.into_iter().collect();
    for (key, y_value) in map_pairs(y)? {
        let Some(x_value) = out.get(&key).cloned() else {
            out.insert(key, y_value);
            continue;
        };
        let merged = if x_value.kind() == ValueKind::Map && y_value.kind() == ValueKind::Map {
            if recursive {
                merge_hash(&x_value, &y_value, recursive, list_merge, depth + 1)?
            } else {
                y_value
            }
        } else if x_value.kind() == ValueKind::Seq && y_value.kind() == ValueKind::Seq {
            let xs: Vec<Value> = x_value.try_iter()?.collect();
            let ys: Vec<Value> = y_value.try_iter()?.collect();
            let not_in_y = || xs.iter().filter(|v| !ys.contains(v)).cloned();
            match list_merge {
                "append" => Value::from(xs.iter().chain(&ys).cloned().collect::<Vec<_>>()),
                "prepend" => Value::from(ys.iter().chain(&xs).cloned().collect::<Vec<_>>()),
                "append_rp" => {
                    Value::from(not_in_y().chain(ys.iter().cloned()).collect::<Vec<_>>())
                }
                "prepend_rp" => {
                    Value::from(ys.iter().cloned().chain(not_in_y()).collect::<Vec<_>>())
                }
                "keep" => x_value,
                _ => y_value,
            }
        } else {
            y_value
        };
        out.insert(key, merged);
    }
    Ok(map_from_pairs(out))
}

/// `combine(*dicts, recursive=False, list_merge='replace')`; also accepts a
/// list of dicts as input (`[a, b] | combine`).
fn combine_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    check_defined(state, value)?;
    let mut recursive = false;
    let mut list_merge = "replace".to_string();
    for key in kwargs.args() {
        match key {
            "recursive" => recursive = kwargs.get::<Value>(key)?.is_true(),
            "list_merge" => list_merge = py_str(&kwargs.get::<Value>(key)?),
            _ => {
                return Err(fail(
                    "combine",
                    "'recursive' and 'list_merge' are the only valid keyword arguments",
                ))
            }
        }
    }
    if !LIST_MERGE.contains(&list_merge.as_str()) {
        return Err(fail(
            "combine",
            format!("'list_merge' argument can only be equal to 'replace', 'keep', 'append', 'prepend', 'append_rp' or 'prepend_rp', got '{list_merge}'"),
        ));
    }
    let terms: Vec<Value> = std::iter::once(value.clone())
        .chain(args.iter().cloned())
        .collect();
    let mut dicts = Vec::new();
    flatten_into(&mut dicts, &terms, Some(1), true, 0)?;
    let Some(mut result) = dicts.pop() else {
        return Ok(map_from_pairs(Vec::<(Value, Value)>::new()));
    };
    // merged from the highest to the lowest priority, like Ansible
    while let Some(lower) = dicts.pop() {
        result = merge_hash(&lower, &result, recursive, &list_merge, 0)?;
    }
    Ok(result)
}

/// `dict2items(key_name='key', value_name='value')`.
fn dict2items_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    check_defined(state, value)?;
    let p = Params::bind("dict2items", &["key_name", "value_name"], &args, &kwargs)?;
    if value.kind() != ValueKind::Map {
        return Err(fail(
            "dict2items",
            format!(
                "dict2items requires a dictionary, got {} instead.",
                py_type_name(value)
            ),
        ));
    }
    let key_name = Value::from(p.string_or(0, "key")?);
    let value_name = Value::from(p.string_or(1, "value")?);
    Ok(Value::from(
        map_pairs(value)?
            .into_iter()
            .map(|(k, v)| map_from_pairs([(key_name.clone(), k), (value_name.clone(), v)]))
            .collect::<Vec<_>>(),
    ))
}

/// `items2dict(key_name='key', value_name='value')`.
fn items2dict_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    check_defined(state, value)?;
    let p = Params::bind("items2dict", &["key_name", "value_name"], &args, &kwargs)?;
    if !is_list_like(value) {
        return Err(fail(
            "items2dict",
            format!(
                "items2dict requires a list, got {} instead.",
                py_type_name(value)
            ),
        ));
    }
    // the names may also be indexes when the items are lists (item[0])
    let key_name = p.raw(0).cloned().unwrap_or_else(|| Value::from("key"));
    let value_name = p.raw(1).cloned().unwrap_or_else(|| Value::from("value"));
    let mut pairs = Vec::new();
    for item in value.try_iter()? {
        let usable = match item.kind() {
            ValueKind::Map => true,
            ValueKind::Seq => key_name.is_integer() && value_name.is_integer(),
            _ => false,
        };
        if !usable {
            return Err(fail(
                "items2dict",
                format!(
                    "items2dict requires a list of dictionaries, got {} instead.",
                    py_repr(value)
                ),
            ));
        }
        let k = item.get_item(&key_name)?;
        let v = item.get_item(&value_name)?;
        if k.is_undefined() || v.is_undefined() {
            return Err(fail(
                "items2dict",
                format!(
                    "items2dict requires each dictionary in the list to contain the keys '{}' and '{}', got {} instead.",
                    py_str(&key_name),
                    py_str(&value_name),
                    py_repr(&item)
                ),
            ));
        }
        pairs.push((k, v));
    }
    Ok(map_from_pairs(pairs))
}

fn flatten_into(
    out: &mut Vec<Value>,
    items: &[Value],
    levels: Option<i64>,
    skip_nulls: bool,
    depth: usize,
) -> Result<(), Error> {
    if depth > MAX_DEPTH {
        return Err(fail("flatten", "data is nested too deeply"));
    }
    for element in items {
        if skip_nulls && (element.is_none() || matches!(element.as_str(), Some("None" | "null"))) {
            continue;
        }
        if is_list_like(element) && levels.is_none_or(|l| l >= 1) {
            let inner: Vec<Value> = element.try_iter()?.collect();
            flatten_into(out, &inner, levels.map(|l| l - 1), skip_nulls, depth + 1)?;
        } else {
            out.push(element.clone());
        }
    }
    Ok(())
}

/// `flatten(levels=None, skip_nulls=True)`; drops none, 'None' and 'null'.
fn flatten_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let p = Params::bind("flatten", &["levels", "skip_nulls"], &args, &kwargs)?;
    let items = list_items(state, "flatten", value)?;
    let mut out = Vec::new();
    flatten_into(&mut out, &items, p.int(0)?, p.flag(1, true), 0)?;
    Ok(Value::from(out))
}

/// Calls a builtin filter that only takes keyword arguments, mapping Jinja2's
/// positional parameters onto them.
fn with_positional_kwargs(
    name: &'static str,
    names: &'static [&'static str],
    args: &[Value],
    kwargs: &Kwargs,
) -> Result<Kwargs, Error> {
    let p = Params::bind(name, names, args, kwargs)?;
    Ok(Kwargs::from_iter(names.iter().enumerate().filter_map(
        |(i, n)| {
            p.raw(i)
                .filter(|v| !v.is_none() && !v.is_undefined())
                .map(|v| (*n, v.clone()))
        },
    )))
}

/// `unique(case_sensitive=False, attribute=None)`.
fn unique_filter(
    state: &State,
    value: Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    check_defined(state, &value)?;
    let kw = with_positional_kwargs("unique", &["case_sensitive", "attribute"], &args, &kwargs)?;
    minijinja::filters::unique(state, value, kw)
}

/// `sort(reverse=False, case_sensitive=False, attribute=None)`.
fn sort_filter(
    state: &State,
    value: Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    check_defined(state, &value)?;
    let kw = with_positional_kwargs(
        "sort",
        &["reverse", "case_sensitive", "attribute"],
        &args,
        &kwargs,
    )?;
    minijinja::filters::sort(state, value, kw)
}

/// `min(case_sensitive=False, attribute=None)`.
fn min_filter(
    state: &State,
    value: Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    check_defined(state, &value)?;
    let kw = with_positional_kwargs("min", &["case_sensitive", "attribute"], &args, &kwargs)?;
    minijinja::filters::min(state, value, kw)
}

/// `max(case_sensitive=False, attribute=None)`.
fn max_filter(
    state: &State,
    value: Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    check_defined(state, &value)?;
    let kw = with_positional_kwargs("max", &["case_sensitive", "attribute"], &args, &kwargs)?;
    minijinja::filters::max(state, value, kw)
}

fn two_lists(
    state: &State,
    name: &str,
    a: &Value,
    args: &[Value],
) -> Result<(Vec<Value>, Vec<Value>), Error> {
    let [b] = args else {
        return Err(Error::new(
            ErrorKind::MissingArgument,
            format!("{name}: expects exactly one list argument"),
        ));
    };
    Ok((list_items(state, name, a)?, list_items(state, name, b)?))
}

/// `union(other)`: items of both lists, first occurrence order.
fn union_filter(state: &State, a: &Value, b: Rest<Value>) -> Result<Value, Error> {
    let (a, b) = two_lists(state, "union", a, &b)?;
    Ok(Value::from(dedup(a.into_iter().chain(b))))
}

/// `intersect(other)`.
fn intersect_filter(state: &State, a: &Value, b: Rest<Value>) -> Result<Value, Error> {
    let (a, b) = two_lists(state, "intersect", a, &b)?;
    let b: BTreeSet<Value> = b.into_iter().collect();
    Ok(Value::from(dedup(a.into_iter().filter(|x| b.contains(x)))))
}

/// `difference(other)`.
fn difference_filter(state: &State, a: &Value, b: Rest<Value>) -> Result<Value, Error> {
    let (a, b) = two_lists(state, "difference", a, &b)?;
    let b: BTreeSet<Value> = b.into_iter().collect();
    Ok(Value::from(dedup(a.into_iter().filter(|x| !b.contains(x)))))
}

/// `symmetric_difference(other)`.
fn symmetric_difference_filter(state: &State, a: &Value, b: Rest<Value>) -> Result<Value, Error> {
    let (a, b) = two_lists(state, "symmetric_difference", a, &b)?;
    let sa: BTreeSet<Value> = a.iter().cloned().collect();
    let sb: BTreeSet<Value> = b.iter().cloned().collect();
    Ok(Value::from(dedup(
        a.into_iter()
            .filter(|x| !sb.contains(x))
            .chain(b.into_iter().filter(|x| !sa.contains(x))),
    )))
}

/// Input list plus list arguments, for the zip/product family.
fn iterables(
    state: &State,
    name: &str,
    value: &Value,
    args: &[Value],
) -> Result<Vec<Vec<Value>>, Error> {
    std::iter::once(value)
        .chain(args)
        .map(|v| list_items(state, name, v))
        .collect()
}

fn charge_items(state: &State, name: &str, count: usize) -> Result<(), Error> {
    if count > MAX_ITEMS {
        return Err(fail(
            name,
            format!("result would have {count} items, more than the limit of {MAX_ITEMS}"),
        ));
    }
    state.consume_fuel(count as u64)
}

/// `zip(*others)`: a list of lists (Ansible 2.19 renders tuples as lists).
fn zip_filter(state: &State, value: &Value, args: Rest<Value>) -> Result<Value, Error> {
    let lists = iterables(state, "zip", value, &args)?;
    let len = lists.iter().map(Vec::len).min().unwrap_or(0);
    Ok(Value::from(
        (0..len)
            .map(|i| Value::from(lists.iter().map(|l| l[i].clone()).collect::<Vec<_>>()))
            .collect::<Vec<_>>(),
    ))
}

/// `zip_longest(*others, fillvalue=None)`.
fn zip_longest_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let mut fill = Value::from(());
    for key in kwargs.args() {
        if key != "fillvalue" {
            return Err(Error::new(
                ErrorKind::TooManyArguments,
                format!("zip_longest: unexpected keyword argument '{key}'"),
            ));
        }
        fill = kwargs.get::<Value>(key)?;
    }
    let lists = iterables(state, "zip_longest", value, &args)?;
    let len = lists.iter().map(Vec::len).max().unwrap_or(0);
    Ok(Value::from(
        (0..len)
            .map(|i| {
                Value::from(
                    lists
                        .iter()
                        .map(|l| l.get(i).cloned().unwrap_or_else(|| fill.clone()))
                        .collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>(),
    ))
}

/// `product(*others, repeat=1)`: the cartesian product, as lists.
fn product_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let mut repeat = 1;
    for key in kwargs.args() {
        if key != "repeat" {
            return Err(Error::new(
                ErrorKind::TooManyArguments,
                format!("product: unexpected keyword argument '{key}'"),
            ));
        }
        repeat = kwargs.get::<i64>(key)?;
    }
    if repeat < 0 {
        return Err(fail("product", "repeat argument cannot be negative"));
    }
    let base = iterables(state, "product", value, &args)?;
    let lists: Vec<&Vec<Value>> = (0..repeat).flat_map(|_| base.iter()).collect();
    let total = lists
        .iter()
        .try_fold(1usize, |acc, l| acc.checked_mul(l.len()))
        .unwrap_or(usize::MAX);
    charge_items(state, "product", total)?;
    let mut out: Vec<Vec<Value>> = vec![Vec::new()];
    for list in lists {
        out = out
            .into_iter()
            .flat_map(|prefix| {
                list.iter().map(move |item| {
                    let mut next = prefix.clone();
                    next.push(item.clone());
                    next
                })
            })
            .collect();
    }
    Ok(Value::from(
        out.into_iter().map(Value::from).collect::<Vec<_>>(),
    ))
}

/// `permutations(r=None)` in itertools order.
fn permutations_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let p = Params::bind("permutations", &["r"], &args, &kwargs)?;
    let pool = list_items(state, "permutations", value)?;
    let n = pool.len();
    let r = match p.int(0)? {
        Some(r) if r < 0 => return Err(fail("permutations", "r must be non-negative")),
        Some(r) => r as usize,
        None => n,
    };
    if r > n {
        return Ok(Value::from(Vec::<Value>::new()));
    }
    let total = ((n - r + 1)..=n)
        .try_fold(1usize, |acc, k| acc.checked_mul(k))
        .unwrap_or(usize::MAX);
    charge_items(state, "permutations", total)?;
    // itertools.permutations' algorithm, which yields lexicographic index order
    let mut indices: Vec<usize> = (0..n).collect();
    let mut cycles: Vec<usize> = (0..r).map(|i| n - i).collect();
    let pick = |idx: &[usize]| {
        Value::from(
            idx[..r]
                .iter()
                .map(|&i| pool[i].clone())
                .collect::<Vec<_>>(),
        )
    };
    let mut out = vec![pick(&indices)];
    'outer: loop {
        for i in (0..r).rev() {
            cycles[i] -= 1;
            if cycles[i] == 0 {
                let moved = indices.remove(i);
                indices.push(moved);
                cycles[i] = n - i;
            } else {
                let j = n - cycles[i];
                indices.swap(i, j);
                out.push(pick(&indices));
                continue 'outer;
            }
        }
        break;
    }
    Ok(Value::from(out))
}

/// `combinations(r)` in itertools order.
fn combinations_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let p = Params::bind("combinations", &["r"], &args, &kwargs)?;
    let pool = list_items(state, "combinations", value)?;
    let n = pool.len();
    let r = match p.int(0)? {
        Some(r) if r >= 0 => r as usize,
        Some(_) => return Err(fail("combinations", "r must be non-negative")),
        None => {
            return Err(Error::new(
                ErrorKind::MissingArgument,
                "combinations: missing argument 'r'",
            ))
        }
    };
    if r > n {
        return Ok(Value::from(Vec::<Value>::new()));
    }
    let mut out = Vec::new();
    let mut indices: Vec<usize> = (0..r).collect();
    loop {
        out.push(Value::from(
            indices.iter().map(|&i| pool[i].clone()).collect::<Vec<_>>(),
        ));
        if out.len() > MAX_ITEMS {
            return Err(fail(
                "combinations",
                format!("result would have more than {MAX_ITEMS} items"),
            ));
        }
        state.consume_fuel(1)?;
        let Some(i) = (0..r).rev().find(|&i| indices[i] != i + n - r) else {
            break;
        };
        indices[i] += 1;
        for j in i + 1..r {
            indices[j] = indices[j - 1] + 1;
        }
    }
    Ok(Value::from(out))
}

/// `subelements(path, skip_missing=False)`: pairs each element with every
/// item of its (dotted) sub-list.
fn subelements_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    const NAME: &str = "subelements";
    check_defined(state, value)?;
    let p = Params::bind(NAME, &["subelements", "skip_missing"], &args, &kwargs)?;
    let elements: Vec<Value> = match value.kind() {
        ValueKind::Map => map_pairs(value)?.into_iter().map(|(_, v)| v).collect(),
        ValueKind::Seq | ValueKind::Iterable => value.try_iter()?.collect(),
        _ => return Err(fail(NAME, "obj must be a list of dicts or a nested dict")),
    };
    let path: Vec<Value> = match p.opt(0) {
        Some(v) if v.kind() == ValueKind::String => py_str(v).split('.').map(Value::from).collect(),
        Some(v) if is_list_like(v) => v.try_iter()?.collect(),
        _ => return Err(fail(NAME, "subelements must be a list or a string")),
    };
    let skip_missing = p.flag(1, false);
    let mut out = Vec::new();
    'elements: for element in elements {
        let mut values = element.clone();
        for key in &path {
            if values.kind() != ValueKind::Map {
                return Err(fail(
                    NAME,
                    format!(
                        "the key {} should point to a dictionary, got '{}'",
                        py_str(key),
                        py_str(&values)
                    ),
                ));
            }
            let next = values.get_item(key)?;
            if next.is_undefined() {
                if skip_missing {
                    continue 'elements;
                }
                return Err(fail(
                    NAME,
                    format!(
                        "could not find {} key in iterated item {}",
                        py_repr(key),
                        py_repr(&values)
                    ),
                ));
            }
            values = next;
        }
        if values.kind() != ValueKind::Seq {
            return Err(fail(
                NAME,
                format!(
                    "the key {} should point to a list, got {}",
                    path.last().map_or_else(String::new, py_repr),
                    py_repr(&values)
                ),
            ));
        }
        for item in values.try_iter()? {
            out.push(Value::from(vec![element.clone(), item]));
        }
    }
    charge_items(state, NAME, out.len())?;
    Ok(Value::from(out))
}

/// `extract(container, morekeys=None)`: `container[item][morekey]...`;
/// missing keys give undefined.
fn extract_filter(
    state: &State,
    item: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    check_defined(state, item)?;
    let p = Params::bind("extract", &["container", "morekeys"], &args, &kwargs)?;
    let Some(container) = p.raw(0) else {
        return Err(Error::new(
            ErrorKind::MissingArgument,
            "extract: missing the container",
        ));
    };
    let mut keys = vec![item.clone()];
    match p.opt(1) {
        Some(more) if more.kind() == ValueKind::Seq => keys.extend(more.try_iter()?),
        Some(more) => keys.push(more.clone()),
        None => {}
    }
    let mut value = container.clone();
    for key in keys {
        if value.is_undefined() {
            break;
        }
        value = value.get_item(&key).unwrap_or(Value::UNDEFINED);
    }
    Ok(value)
}

/// SplitMix64: small, good enough for `random`/`shuffle`/salts.
struct Rng(u64);

impl Rng {
    fn from_entropy() -> Rng {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        let mut seed = h.finish();
        if let Ok(bytes) = std::fs::read("/proc/sys/kernel/random/uuid") {
            for b in bytes {
                seed = seed.rotate_left(5) ^ u64::from(b);
            }
        }
        Rng(seed)
    }

    fn from_seed(seed: &str) -> Rng {
        // FNV-1a: the same seed always gives the same sequence
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in seed.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        Rng(h)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u128) -> u128 {
        if n == 0 {
            return 0;
        }
        let wide = (u128::from(self.next()) << 64) | u128::from(self.next());
        wide % n
    }
}

fn rng_for(seed: Option<&Value>) -> Rng {
    match seed {
        Some(s) => Rng::from_seed(&py_str(s)),
        None => Rng::from_entropy(),
    }
}

/// `random(start=None, step=None, seed=None)`: a number from `range(start,
/// end, step)` for integers, a random item for lists.  Seeded results are
/// repeatable but differ from Python's Mersenne Twister.
fn random_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    check_defined(state, value)?;
    let p = Params::bind("random", &["start", "step", "seed"], &args, &kwargs)?;
    let mut rng = rng_for(p.opt(2));
    if value.is_integer() || value.kind() == ValueKind::Bool {
        let end = i128::try_from(value.clone()).unwrap_or(0);
        let start = i128::from(p.int(0)?.unwrap_or(0));
        let step = i128::from(p.int(1)?.filter(|s| *s != 0).unwrap_or(1));
        let overflow = || fail("random", "range is too large");
        let width = end.checked_sub(start).ok_or_else(overflow)?;
        let n = if step > 0 {
            width
                .checked_add(step - 1)
                .ok_or_else(overflow)?
                .div_euclid(step)
        } else {
            width
                .checked_add(step + 1)
                .ok_or_else(overflow)?
                .div_euclid(step)
        };
        if n <= 0 {
            return Err(fail(
                "random",
                format!("empty range for randrange() ({start}, {end}, {step})"),
            ));
        }
        let pick = rng.below(n as u128) as i128;
        let offset = step.checked_mul(pick).ok_or_else(overflow)?;
        return Ok(Value::from(start.checked_add(offset).ok_or_else(overflow)?));
    }
    if p.opt(0).is_some_and(Value::is_true) || p.opt(1).is_some_and(Value::is_true) {
        return Err(fail(
            "random",
            "start and step can only be used with integer values",
        ));
    }
    match value.kind() {
        ValueKind::String | ValueKind::Seq | ValueKind::Iterable | ValueKind::Map => {
            let items: Vec<Value> = value.try_iter()?.collect();
            if items.is_empty() {
                return Err(fail("random", "Cannot choose from an empty sequence"));
            }
            let idx = rng.below(items.len() as u128) as usize;
            Ok(items[idx].clone())
        }
        _ => Err(fail(
            "random",
            "random can only be used on sequences and integers",
        )),
    }
}

/// `shuffle(seed=None)`: a shuffled copy of the list.
fn shuffle_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let p = Params::bind("shuffle", &["seed"], &args, &kwargs)?;
    let mut items = list_items(state, "shuffle", value)?;
    let mut rng = rng_for(p.opt(0));
    for i in (1..items.len()).rev() {
        let j = rng.below(i as u128 + 1) as usize;
        items.swap(i, j);
    }
    Ok(Value::from(items))
}

fn number_arg(name: &str, v: &Value) -> Result<f64, Error> {
    match v.kind() {
        ValueKind::Number | ValueKind::Bool => f64::try_from(v.clone())
            .map_err(|_| fail(name, format!("{name}() can only be used on numbers"))),
        _ => Err(fail(
            name,
            format!("{name}() can only be used on numbers, got {}", py_repr(v)),
        )),
    }
}

fn math_result(name: &str, f: f64) -> Result<Value, Error> {
    if f.is_nan() {
        Err(fail(name, "math domain error"))
    } else {
        Ok(Value::from(f))
    }
}

/// `log(base=e)`.
fn log_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    check_defined(state, value)?;
    let p = Params::bind("log", &["base"], &args, &kwargs)?;
    let x = number_arg("log", value)?;
    if x <= 0.0 {
        return Err(fail("log", "math domain error"));
    }
    let rv = match p.opt(0) {
        None => x.ln(),
        Some(b) => {
            let base = number_arg("log", b)?;
            if base == 10.0 {
                x.log10()
            } else if base <= 0.0 || base == 1.0 {
                return Err(fail("log", "math domain error"));
            } else {
                x.ln() / base.ln()
            }
        }
    };
    math_result("log", rv)
}

/// `pow(y)`.
fn pow_filter(state: &State, value: &Value, y: &Value) -> Result<Value, Error> {
    check_defined(state, value)?;
    math_result("pow", number_arg("pow", value)?.powf(number_arg("pow", y)?))
}

/// `root(base=2)`.
fn root_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    check_defined(state, value)?;
    let p = Params::bind("root", &["base"], &args, &kwargs)?;
    let x = number_arg("root", value)?;
    let base = p
        .opt(0)
        .map(|b| number_arg("root", b))
        .transpose()?
        .unwrap_or(2.0);
    if base == 2.0 {
        if x < 0.0 {
            return Err(fail("root", "math domain error"));
        }
        return Ok(Value::from(x.sqrt()));
    }
    math_result("root", x.powf(1.0 / base))
}

const SIZE_RANGES: [(char, f64); 9] = [
    ('Y', 1208925819614629174706176.0),
    ('Z', 1180591620717411303424.0),
    ('E', 1152921504606846976.0),
    ('P', 1125899906842624.0),
    ('T', 1099511627776.0),
    ('G', 1073741824.0),
    ('M', 1048576.0),
    ('K', 1024.0),
    ('B', 1.0),
];

/// `human_readable(isbits=False, unit=None)`: `'1.00 KB'` style sizes.
fn human_readable_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    const NAME: &str = "human_readable";
    check_defined(state, value)?;
    let p = Params::bind(NAME, &["isbits", "unit"], &args, &kwargs)?;
    let size =
        number_arg(NAME, value).map_err(|_| fail(NAME, "human_readable() failed on bad input"))?;
    let isbits = p.flag(0, false);
    let unit = p.string(1)?.map(|u| u.to_uppercase());
    let (mut suffix, mut limit) = ('B', 1.0);
    for (s, l) in SIZE_RANGES {
        (suffix, limit) = (s, l);
        let wanted = match &unit {
            None => size >= l,
            Some(u) => u.starts_with(s),
        };
        if wanted {
            break;
        }
    }
    let base = if isbits { "bits" } else { "Bytes" };
    let suffix = if limit != 1.0 {
        format!("{suffix}{}", &base[..1])
    } else {
        base.to_string()
    };
    Ok(format!("{:.2} {suffix}", size / limit))
}

/// `human_to_bytes(default_unit=None, isbits=False)`: `'10M'` to 10485760.
fn human_to_bytes_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    const NAME: &str = "human_to_bytes";
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let p = Params::bind(NAME, &["default_unit", "isbits"], &args, &kwargs)?;
    let text = text_input(state, value)?;
    let re = RE
        .get_or_init(|| Regex::new(r"^([0-9]*\.?[0-9]+)(?:\s*([A-Za-z]+))?\s*$").ok())
        .as_ref()
        .ok_or_else(|| fail(NAME, "regex unavailable"))?;
    let caps = re.captures(&text).ok_or_else(|| {
        fail(
            NAME,
            format!("human_to_bytes() can't interpret following string: {text}"),
        )
    })?;
    let num: f64 = caps
        .get(1)
        .and_then(|m| m.as_str().parse().ok())
        .ok_or_else(|| fail(NAME, format!("can't interpret the number in {text}")))?;
    let unit = match caps.get(2) {
        Some(m) => Some(m.as_str().to_string()),
        None => p.string(0)?,
    };
    let Some(unit) = unit else {
        return Ok(Value::from(num.round_ties_even() as i128));
    };
    let isbits = p.flag(1, false);
    let range_key = unit.chars().next().map_or('?', |c| c.to_ascii_uppercase());
    let Some(&(_, limit)) = SIZE_RANGES.iter().find(|(k, _)| *k == range_key) else {
        return Err(fail(
            NAME,
            format!("human_to_bytes() failed to convert {text} (unit = {unit}). The suffix must be one of Y, Z, E, P, T, G, M, K, B"),
        ));
    };
    if unit.chars().count() > 1 {
        let names = [
            ('B', "byte", "bit"),
            ('K', "kilobyte", "kilobit"),
            ('M', "megabyte", "megabit"),
            ('G', "gigabyte", "gigabit"),
            ('T', "terabyte", "terabit"),
            ('P', "petabyte", "petabit"),
            ('E', "exabyte", "exabit"),
            ('Z', "zetabyte", "zetabit"),
            ('Y', "yottabyte", "yottabit"),
        ];
        let (_, byte_name, bit_name) = names
            .iter()
            .find(|(k, _, _)| *k == range_key)
            .copied()
            .unwrap_or(('B', "byte", "bit"));
        let class = if isbits { 'b' } else { 'B' };
        let long = if isbits { bit_name } else { byte_name };
        let short = if range_key == 'B' {
            class.to_string()
        } else {
            format!("{range_key}{class}")
        };
        if unit.to_lowercase() != long && unit != short {
            return Err(fail(
                NAME,
                format!("human_to_bytes() failed to convert {text}. Value is not a valid string (expect {short} or {range_key})"),
            ));
        }
    }
    Ok(Value::from((num * limit).round_ties_even() as i128))
}

/// `urlsplit(query='')`: Python's `urllib.parse.urlsplit` as a dict, or one
/// of its fields.
fn urlsplit_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<Value, Error> {
    let p = Params::bind("urlsplit", &["query"], &args, &kwargs)?;
    let url = text_input(state, value)?;
    let url = url.trim_start_matches(|c: char| c <= ' ');
    let url: String = url
        .chars()
        .filter(|c| !matches!(c, '\t' | '\r' | '\n'))
        .collect();
    let mut rest = url.as_str();
    let mut scheme = String::new();
    if let Some(i) = rest.find(':') {
        let candidate = &rest[..i];
        if candidate
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
            && candidate
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            scheme = candidate.to_ascii_lowercase();
            rest = &rest[i + 1..];
        }
    }
    let mut netloc = "";
    if let Some(after) = rest.strip_prefix("//") {
        let end = after.find(['/', '?', '#']).unwrap_or(after.len());
        netloc = &after[..end];
        rest = &after[end..];
    }
    let (rest, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));

    let (userinfo, hostinfo) = match netloc.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, netloc),
    };
    let (username, password) = match userinfo {
        Some(u) => match u.split_once(':') {
            Some((user, pw)) => (Value::from(user), Value::from(pw)),
            None => (Value::from(u), Value::from(())),
        },
        None => (Value::from(()), Value::from(())),
    };
    let (host, port) = if let Some(bracketed) = hostinfo.strip_prefix('[') {
        match bracketed.split_once(']') {
            Some((h, after)) => (h, after.strip_prefix(':').unwrap_or("")),
            None => (bracketed, ""),
        }
    } else {
        match hostinfo.split_once(':') {
            Some((h, port)) => (h, port),
            None => (hostinfo, ""),
        }
    };
    let hostname = if host.is_empty() {
        Value::from(())
    } else {
        Value::from(host.to_lowercase())
    };
    let port = if port.is_empty() {
        Value::from(())
    } else {
        match port.parse::<u32>() {
            Ok(n) if n <= 65535 && port.chars().all(|c| c.is_ascii_digit()) => Value::from(n),
            _ => {
                return Err(fail(
                    "urlsplit",
                    format!("Port could not be cast to integer value as {port:?}"),
                ))
            }
        }
    };
    let fields = [
        ("fragment", Value::from(fragment)),
        ("hostname", hostname),
        ("netloc", Value::from(netloc)),
        ("password", password),
        ("path", Value::from(path)),
        ("port", port),
        ("query", Value::from(query)),
        ("scheme", Value::from(scheme)),
        ("username", username),
    ];
    match p.string(0)? {
        None => Ok(map_from_pairs(
            fields.into_iter().map(|(k, v)| (Value::from(k), v)),
        )),
        Some(q) if q.is_empty() => Ok(map_from_pairs(
            fields.into_iter().map(|(k, v)| (Value::from(k), v)),
        )),
        Some(q) => fields
            .into_iter()
            .find(|(k, _)| *k == q)
            .map(|(_, v)| v)
            .ok_or_else(|| fail("urlsplit", format!("unknown URL component: {q}"))),
    }
}

/// Python's `urllib.parse.quote` (unreserved characters plus `safe` kept).
fn url_quote(s: &str, for_qs: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) || (!for_qs && b == b'/') {
            out.push(b as char);
        } else if for_qs && b == b' ' {
            out.push('+');
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Jinja2's `urlencode`: strings are quoted keeping `/`, dicts and lists of
/// pairs become a query string.
fn urlencode_filter(state: &State, value: &Value) -> Result<String, Error> {
    check_defined(state, value)?;
    let pairs: Vec<(Value, Value)> = match value.kind() {
        ValueKind::Map => map_pairs(value)?,
        ValueKind::Seq | ValueKind::Iterable => {
            let mut pairs = Vec::new();
            for item in value.try_iter()? {
                let kv: Vec<Value> = item
                    .try_iter()
                    .map_err(|_| fail("urlencode", "expected a list of (key, value) pairs"))?
                    .collect();
                match <[Value; 2]>::try_from(kv) {
                    Ok([k, v]) => pairs.push((k, v)),
                    Err(_) => {
                        return Err(fail("urlencode", "expected a list of (key, value) pairs"))
                    }
                }
            }
            pairs
        }
        _ => return Ok(url_quote(&py_str(value), false)),
    };
    Ok(pairs
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                url_quote(&py_str(k), true),
                url_quote(&py_str(v), true)
            )
        })
        .collect::<Vec<_>>()
        .join("&"))
}

/// `urldecode`: Python's `unquote_plus`.
fn urldecode_filter(state: &State, value: &Value) -> Result<String, Error> {
    let s = text_input(state, value)?;
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The `dict()` global with Python semantics: a mapping, or an iterable of
/// pairs (`dict(keys | zip(values))`), plus keyword arguments.
fn dict_function(args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    if args.len() > 1 {
        return Err(Error::new(
            ErrorKind::TooManyArguments,
            format!("dict expected at most 1 argument, got {}", args.len()),
        ));
    }
    let mut out: IndexMap<Value, Value> = IndexMap::new();
    if let Some(src) = args.first() {
        match src.kind() {
            ValueKind::Map => out.extend(map_pairs(src)?),
            ValueKind::None | ValueKind::Undefined => {}
            _ => {
                let iter = src.try_iter().map_err(|_| {
                    fail(
                        "dict",
                        format!("'{}' object is not iterable", py_type_name(src)),
                    )
                })?;
                for (i, item) in iter.enumerate() {
                    let kv: Vec<Value> = match item.kind() {
                        ValueKind::Seq | ValueKind::Iterable | ValueKind::String => {
                            item.try_iter()?.collect()
                        }
                        _ => Vec::new(),
                    };
                    match <[Value; 2]>::try_from(kv) {
                        Ok([k, v]) => {
                            out.insert(k, v);
                        }
                        Err(kv) => {
                            return Err(fail(
                                "dict",
                                format!(
                                    "dictionary update sequence element #{i} has length {}; 2 is required",
                                    kv.len()
                                ),
                            ))
                        }
                    }
                }
            }
        }
    }
    for key in kwargs.args() {
        out.insert(Value::from(key), kwargs.get::<Value>(key)?);
    }
    Ok(map_from_pairs(out))
}

/// `pairs | dict`: the `dict()` global as a filter (community.general's `dict`).
fn dict_filter(value: &Value, kwargs: Kwargs) -> Result<Value, Error> {
    dict_function(Rest(vec![value.clone()]), kwargs)
}

// ===========================================================================
// Hashing & encoding
// ===========================================================================

/// Encodes text with a Python codec name (the common ones).
fn encode_text(name: &str, s: &str, encoding: &str) -> Result<Vec<u8>, Error> {
    let enc = encoding.to_ascii_lowercase().replace('_', "-");
    Ok(match enc.as_str() {
        "utf-8" | "utf8" => s.as_bytes().to_vec(),
        "ascii" | "us-ascii" => {
            if !s.is_ascii() {
                return Err(fail(
                    name,
                    "'ascii' codec can't encode non-ASCII characters",
                ));
            }
            s.as_bytes().to_vec()
        }
        "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" => s
            .chars()
            .map(|c| {
                u8::try_from(u32::from(c))
                    .map_err(|_| fail(name, "'latin-1' codec can't encode character"))
            })
            .collect::<Result<_, _>>()?,
        "utf-16-le" | "utf-16le" => s.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        "utf-16-be" | "utf-16be" => s.encode_utf16().flat_map(u16::to_be_bytes).collect(),
        // Python's utf-16 writes a BOM followed by little-endian units
        "utf-16" | "utf16" => [0xff, 0xfe]
            .into_iter()
            .chain(s.encode_utf16().flat_map(u16::to_le_bytes))
            .collect(),
        other => return Err(fail(name, format!("unsupported encoding: {other}"))),
    })
}

fn decode_text(name: &str, bytes: &[u8], encoding: &str) -> Result<String, Error> {
    let enc = encoding.to_ascii_lowercase().replace('_', "-");
    let utf16 = |bytes: &[u8], le: bool| -> Result<String, Error> {
        if !bytes.len().is_multiple_of(2) {
            return Err(fail(name, "truncated UTF-16 data"));
        }
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units).map_err(|_| fail(name, "invalid UTF-16 data"))
    };
    match enc.as_str() {
        "utf-8" | "utf8" => String::from_utf8(bytes.to_vec()).map_err(|_| {
            fail(
                name,
                "decoded data is not valid UTF-8 text (binary content cannot be templated)",
            )
        }),
        "ascii" | "us-ascii" => {
            if bytes.is_ascii() {
                Ok(bytes.iter().map(|&b| b as char).collect())
            } else {
                Err(fail(name, "'ascii' codec can't decode non-ASCII bytes"))
            }
        }
        "latin-1" | "latin1" | "iso-8859-1" | "iso8859-1" => {
            Ok(bytes.iter().map(|&b| b as char).collect())
        }
        "utf-16-le" | "utf-16le" => utf16(bytes, true),
        "utf-16-be" | "utf-16be" => utf16(bytes, false),
        "utf-16" | "utf16" => match bytes {
            [0xfe, 0xff, rest @ ..] => utf16(rest, false),
            [0xff, 0xfe, rest @ ..] => utf16(rest, true),
            _ => utf16(bytes, true),
        },
        other => Err(fail(name, format!("unsupported encoding: {other}"))),
    }
}

/// `b64encode(encoding='utf-8', urlsafe=False)`.
fn b64encode_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    use base64::Engine as _;
    let p = Params::bind("b64encode", &["encoding", "urlsafe"], &args, &kwargs)?;
    let text = text_input(state, value)?;
    let bytes = encode_text("b64encode", &text, &p.string_or(0, "utf-8")?)?;
    Ok(if p.flag(1, false) {
        base64::engine::general_purpose::URL_SAFE.encode(bytes)
    } else {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    })
}

/// `b64decode(encoding='utf-8', urlsafe=False)`.  Like Python, characters
/// outside the alphabet are skipped; the padding must be right.
fn b64decode_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    use base64::Engine as _;
    let p = Params::bind("b64decode", &["encoding", "urlsafe"], &args, &kwargs)?;
    let text = text_input(state, value)?;
    let urlsafe = p.flag(1, false);
    let cleaned: String = text
        .chars()
        .map(|c| match (urlsafe, c) {
            (true, '-') => '+',
            (true, '_') => '/',
            (_, c) => c,
        })
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
        .collect();
    // Python stops at the first complete padded quantum
    let cleaned = match cleaned.find('=') {
        Some(pos) => {
            let end = cleaned[pos..]
                .char_indices()
                .take_while(|(_, c)| *c == '=')
                .last()
                .map_or(pos, |(i, _)| pos + i + 1);
            cleaned[..end].to_string()
        }
        None => cleaned,
    };
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
    );
    let bytes = engine
        .decode(cleaned.as_bytes())
        .map_err(|e| fail("b64decode", format!("invalid base64 input: {e}")))?;
    decode_text("b64decode", &bytes, &p.string_or(0, "utf-8")?)
}

fn hex_digest(name: &str, hashtype: &str, data: &[u8]) -> Result<String, Error> {
    use sha2::Digest as _;
    Ok(match hashtype.to_ascii_lowercase().as_str() {
        "md5" => hex::encode(md5::Md5::digest(data)),
        "sha1" => hex::encode(sha1::Sha1::digest(data)),
        "sha224" => hex::encode(sha2::Sha224::digest(data)),
        "sha256" => hex::encode(sha2::Sha256::digest(data)),
        "sha384" => hex::encode(sha2::Sha384::digest(data)),
        "sha512" => hex::encode(sha2::Sha512::digest(data)),
        other => return Err(fail(name, format!("unsupported hash type {other}"))),
    })
}

/// `hash(hashtype='sha1')`: hex digest of the UTF-8 text.
fn hash_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    let p = Params::bind("hash", &["hashtype"], &args, &kwargs)?;
    let text = text_input(state, value)?;
    hex_digest("hash", &p.string_or(0, "sha1")?, text.as_bytes())
}

/// `sha1` / `checksum`.
fn sha1_filter(state: &State, value: &Value) -> Result<String, Error> {
    hex_digest("sha1", "sha1", text_input(state, value)?.as_bytes())
}

/// `md5`.
fn md5_filter(state: &State, value: &Value) -> Result<String, Error> {
    hex_digest("md5", "md5", text_input(state, value)?.as_bytes())
}

/// The crypt(3) base-64 alphabet.
const CRYPT_ALPHABET: &[u8; 64] =
    b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// crypt(3)'s `b64_from_24bit`.
fn crypt_b64(out: &mut String, b2: u8, b1: u8, b0: u8, n: usize) {
    let mut w = (u32::from(b2) << 16) | (u32::from(b1) << 8) | u32::from(b0);
    for _ in 0..n {
        out.push(char::from(CRYPT_ALPHABET[(w & 0x3f) as usize]));
        w >>= 6;
    }
}

/// SHA-crypt (Drepper's `$5$`/`$6$` algorithm, as glibc implements it).
fn sha_crypt_digest<D: sha2::Digest + Clone>(pw: &[u8], salt: &[u8], rounds: u32) -> Vec<u8> {
    let db = D::new()
        .chain_update(pw)
        .chain_update(salt)
        .chain_update(pw)
        .finalize();
    let hl = db.len();
    let mut a = D::new().chain_update(pw).chain_update(salt);
    let mut n = pw.len();
    while n > hl {
        a.update(&db);
        n -= hl;
    }
    a.update(&db[..n]);
    let mut n = pw.len();
    while n > 0 {
        if n & 1 != 0 {
            a.update(&db);
        } else {
            a.update(pw);
        }
        n >>= 1;
    }
    let da = a.finalize();
    let mut dp = D::new();
    for _ in 0..pw.len() {
        dp.update(pw);
    }
    let dp = dp.finalize();
    let p: Vec<u8> = dp.iter().cycle().take(pw.len()).copied().collect();
    let mut ds = D::new();
    for _ in 0..16 + usize::from(da[0]) {
        ds.update(salt);
    }
    let ds = ds.finalize();
    let s: Vec<u8> = ds.iter().cycle().take(salt.len()).copied().collect();
    let mut c = da;
    for i in 0..rounds {
        let mut h = D::new();
        if i % 2 == 1 {
            h.update(&p);
        } else {
            h.update(&c);
        }
        if i % 3 != 0 {
            h.update(&s);
        }
        if i % 7 != 0 {
            h.update(&p);
        }
        if i % 2 == 1 {
            h.update(&c);
        } else {
            h.update(&p);
        }
        c = h.finalize();
    }
    c.to_vec()
}

fn sha512_crypt(pw: &[u8], salt: &str, rounds: u32) -> String {
    let c = sha_crypt_digest::<sha2::Sha512>(pw, salt.as_bytes(), rounds);
    let mut out = String::new();
    let order: [(usize, usize, usize); 21] = [
        (0, 21, 42),
        (22, 43, 1),
        (44, 2, 23),
        (3, 24, 45),
        (25, 46, 4),
        (47, 5, 26),
        (6, 27, 48),
        (28, 49, 7),
        (50, 8, 29),
        (9, 30, 51),
        (31, 52, 10),
        (53, 11, 32),
        (12, 33, 54),
        (34, 55, 13),
        (56, 14, 35),
        (15, 36, 57),
        (37, 58, 16),
        (59, 17, 38),
        (18, 39, 60),
        (40, 61, 19),
        (62, 20, 41),
    ];
    for (a, b, d) in order {
        crypt_b64(&mut out, c[a], c[b], c[d], 4);
    }
    crypt_b64(&mut out, 0, 0, c[63], 2);
    out
}

fn sha256_crypt(pw: &[u8], salt: &str, rounds: u32) -> String {
    let c = sha_crypt_digest::<sha2::Sha256>(pw, salt.as_bytes(), rounds);
    let mut out = String::new();
    let order: [(usize, usize, usize); 10] = [
        (0, 10, 20),
        (21, 1, 11),
        (12, 22, 2),
        (3, 13, 23),
        (24, 4, 14),
        (15, 25, 5),
        (6, 16, 26),
        (27, 7, 17),
        (18, 28, 8),
        (9, 19, 29),
    ];
    for (a, b, d) in order {
        crypt_b64(&mut out, c[a], c[b], c[d], 4);
    }
    crypt_b64(&mut out, 0, c[31], c[30], 3);
    out
}

/// MD5-crypt (`$1$`, as glibc/passlib implement it).
fn md5_crypt(pw: &[u8], salt: &str) -> String {
    use md5::Digest as _;
    let salt = salt.as_bytes();
    let alt = md5::Md5::new()
        .chain_update(pw)
        .chain_update(salt)
        .chain_update(pw)
        .finalize();
    let mut ctx = md5::Md5::new()
        .chain_update(pw)
        .chain_update(b"$1$")
        .chain_update(salt);
    let mut n = pw.len();
    while n > 0 {
        ctx.update(&alt[..n.min(16)]);
        n = n.saturating_sub(16);
    }
    let mut n = pw.len();
    while n > 0 {
        if n & 1 != 0 {
            ctx.update([0u8]);
        } else {
            ctx.update(&pw[..1]);
        }
        n >>= 1;
    }
    let mut fin = ctx.finalize().to_vec();
    for i in 0..1000 {
        let mut c = md5::Md5::new();
        if i & 1 != 0 {
            c.update(pw);
        } else {
            c.update(&fin);
        }
        if i % 3 != 0 {
            c.update(salt);
        }
        if i % 7 != 0 {
            c.update(pw);
        }
        if i & 1 != 0 {
            c.update(&fin);
        } else {
            c.update(pw);
        }
        fin = c.finalize().to_vec();
    }
    let mut out = String::new();
    for (a, b, d) in [(0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)] {
        crypt_b64(&mut out, fin[a], fin[b], fin[d], 4);
    }
    crypt_b64(&mut out, 0, 0, fin[11], 2);
    out
}

/// A random salt from the crypt alphabet.
fn random_salt(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    let from_os = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_ok();
    if !from_os {
        let mut rng = Rng::from_entropy();
        for b in &mut bytes {
            *b = rng.next() as u8;
        }
    }
    bytes
        .iter()
        .map(|b| char::from(CRYPT_ALPHABET[usize::from(b & 0x3f)]))
        .collect()
}

/// `password_hash(hashtype='sha512', salt=None, salt_size=None, rounds=None,
/// ident=None)`: crypt(3) strings as Ansible/passlib produce them.  Without
/// `rounds`, Ansible's defaults apply (656000 for sha512, 535000 for sha256),
/// and like passlib, 5000 rounds are left implicit.
fn password_hash_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    const NAME: &str = "password_hash";
    let p = Params::bind(
        NAME,
        &["hashtype", "salt", "salt_size", "rounds", "ident"],
        &args,
        &kwargs,
    )?;
    let secret = text_input(state, value)?;
    let hashtype = p.string_or(0, "sha512")?;
    let (algo, ident, max_salt, default_rounds) = match hashtype.as_str() {
        "sha512" | "sha512_crypt" => ("sha512_crypt", "6", 16, Some(656_000u32)),
        "sha256" | "sha256_crypt" => ("sha256_crypt", "5", 16, Some(535_000)),
        "md5" | "md5_crypt" => ("md5_crypt", "1", 8, None),
        "blowfish" | "bcrypt" => {
            return Err(fail(NAME, "the blowfish/bcrypt algorithm is not supported"))
        }
        other => {
            return Err(fail(
                NAME,
                format!("{other} is not in the list of supported passlib algorithms: md5, blowfish, sha256, sha512"),
            ))
        }
    };
    let salt = match p.string(1)?.filter(|s| !s.is_empty()) {
        Some(salt) => {
            if !salt.bytes().all(|b| CRYPT_ALPHABET.contains(&b)) {
                return Err(fail(
                    NAME,
                    format!("Could not hash the secret: invalid characters in {algo} salt"),
                ));
            }
            if salt.len() > max_salt {
                return Err(fail(
                    NAME,
                    format!("Could not hash the secret: salt too large ({algo} requires <= {max_salt} chars)"),
                ));
            }
            salt
        }
        None => {
            let size = p.int(2)?.unwrap_or(max_salt as i64);
            if !(1..=max_salt as i64).contains(&size) {
                return Err(fail(
                    NAME,
                    format!("salt_size must be between 1 and {max_salt}"),
                ));
            }
            random_salt(size as usize)
        }
    };
    let pw = secret.as_bytes();
    if algo == "md5_crypt" {
        if p.opt(3).is_some() {
            return Err(fail(NAME, "md5_crypt does not support the rounds setting"));
        }
        return Ok(format!("$1${salt}${}", md5_crypt(pw, &salt)));
    }
    let rounds = match p.int(3)? {
        Some(r) if r != 0 => r,
        _ => i64::from(default_rounds.unwrap_or(5000)),
    };
    if !(1000..=999_999_999).contains(&rounds) {
        return Err(fail(
            NAME,
            format!("Could not hash the secret: {algo}: rounds ({rounds}) must be between 1000 and 999999999"),
        ));
    }
    let rounds = rounds as u32;
    state.consume_fuel(u64::from(rounds) / 1000)?;
    let hash = if algo == "sha512_crypt" {
        sha512_crypt(pw, &salt, rounds)
    } else {
        sha256_crypt(pw, &salt, rounds)
    };
    let rounds_part = if rounds == 5000 {
        String::new()
    } else {
        format!("rounds={rounds}$")
    };
    Ok(format!("${ident}${rounds_part}{salt}${hash}"))
}

/// `to_uuid(namespace=Ansible's)`: a name-based (version 5) UUID.
fn to_uuid_filter(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<String, Error> {
    use sha1::Digest as _;
    let p = Params::bind("to_uuid", &["namespace"], &args, &kwargs)?;
    let name = text_input(state, value)?;
    let ns = p.string_or(0, "361E6D51-FAEC-444A-9079-341386DA8E2E")?;
    let hexdigits: String = ns
        .trim_start_matches("urn:")
        .trim_start_matches("uuid:")
        .chars()
        .filter(|c| !matches!(c, '{' | '}' | '-'))
        .collect();
    let ns_bytes = hex::decode(&hexdigits)
        .ok()
        .filter(|b| b.len() == 16)
        .ok_or_else(|| fail("to_uuid", format!("Invalid value '{ns}' for 'namespace'")))?;
    let digest = sha1::Sha1::new()
        .chain_update(&ns_bytes)
        .chain_update(name.as_bytes())
        .finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

// ===========================================================================
// Paths (POSIX semantics of Python's os.path)
// ===========================================================================

fn basename_filter(state: &State, value: &Value) -> Result<String, Error> {
    let p = text_input(state, value)?;
    Ok(p.rsplit('/').next().unwrap_or_default().to_string())
}

/// `os.path.dirname`: trailing slashes of the head are removed unless the head
/// is made of slashes only.
fn dirname_filter(state: &State, value: &Value) -> Result<String, Error> {
    let p = text_input(state, value)?;
    let head = match p.rfind('/') {
        Some(i) => &p[..=i],
        None => "",
    };
    if !head.is_empty() && !head.chars().all(|c| c == '/') {
        Ok(head.trim_end_matches('/').to_string())
    } else {
        Ok(head.to_string())
    }
}

/// Home directory of `user` (or of the current user) from /etc/passwd.
fn home_dir(user: Option<&str>) -> Option<String> {
    if user.is_none() {
        if let Ok(home) = std::env::var("HOME") {
            return Some(home);
        }
    }
    let uid = match user {
        Some(_) => None,
        None => std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("Uid:"))
                    .and_then(|l| l.split_whitespace().next().map(String::from))
            }),
    };
    let entry = local_passwd(|f| match (user, &uid) {
        (Some(u), _) => f[0] == u,
        (None, Some(uid)) => f[2] == uid,
        (None, None) => false,
    })?;
    entry.get(5).cloned()
}

/// The first entry of the controller's /etc/passwd (its fields) that `hit` accepts.
pub fn local_passwd(hit: impl Fn(&[&str]) -> bool) -> Option<Vec<String>> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() >= 7 && hit(&fields)).then(|| fields.iter().map(|f| f.to_string()).collect())
    })
}

/// `expanduser`: `~` and `~user` on the controller.
fn expanduser_filter(state: &State, value: &Value) -> Result<String, Error> {
    let p = text_input(state, value)?;
    let Some(rest) = p.strip_prefix('~') else {
        return Ok(p);
    };
    let i = rest.find('/').unwrap_or(rest.len());
    let (user, tail) = rest.split_at(i);
    let home = match home_dir(if user.is_empty() { None } else { Some(user) }) {
        Some(h) => h,
        None => return Ok(p),
    };
    let joined = format!("{}{tail}", home.trim_end_matches('/'));
    Ok(if joined.is_empty() {
        "/".into()
    } else {
        joined
    })
}

/// `expandvars`: `$VAR` and `${VAR}` from the controller's environment;
/// unknown variables are left as they are.
fn expandvars_filter(state: &State, value: &Value) -> Result<String, Error> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let p = text_input(state, value)?;
    let Some(re) = RE.get_or_init(|| Regex::new(r"\$(\w+|\{[^}]*\})").ok()) else {
        return Ok(p);
    };
    Ok(re
        .replace_all(&p, |caps: &Captures| {
            let whole = caps.get(0).map_or("", |m| m.as_str());
            let name = caps.get(1).map_or("", |m| m.as_str());
            let name = name
                .strip_prefix('{')
                .and_then(|n| n.strip_suffix('}'))
                .unwrap_or(name);
            std::env::var(name).unwrap_or_else(|_| whole.to_string())
        })
        .into_owned())
}

/// `splitext`: `[root, ext]`; leading dots of the file name do not start an
/// extension.
fn splitext_filter(state: &State, value: &Value) -> Result<Value, Error> {
    let p = text_input(state, value)?;
    let name_start = p.rfind('/').map_or(0, |i| i + 1);
    let (root, ext) = match p[name_start..].rfind('.') {
        Some(dot) if p[name_start..name_start + dot].chars().any(|c| c != '.') => {
            p.split_at(name_start + dot)
        }
        _ => (p.as_str(), ""),
    };
    Ok(Value::from(vec![Value::from(root), Value::from(ext)]))
}

/// `path_join`: `os.path.join(*paths)`.
fn path_join_filter(state: &State, value: &Value) -> Result<String, Error> {
    check_defined(state, value)?;
    if let Some(s) = value.as_str() {
        return Ok(s.to_string());
    }
    if !is_list_like(value) {
        return Err(fail(
            "path_join",
            format!(
                "|path_join expects string or sequence, got {} instead.",
                py_type_name(value)
            ),
        ));
    }
    let mut path = String::new();
    for (i, part) in value.try_iter()?.enumerate() {
        let part = py_str(&part);
        if i == 0 || part.starts_with('/') {
            path = part;
        } else if path.is_empty() || path.ends_with('/') {
            path.push_str(&part);
        } else {
            path.push('/');
            path.push_str(&part);
        }
    }
    Ok(path)
}

/// `normpath`: `os.path.normpath`.
fn normpath_filter(state: &State, value: &Value) -> Result<String, Error> {
    let p = text_input(state, value)?;
    if p.is_empty() {
        return Ok(".".into());
    }
    let initial = if p.starts_with("//") && !p.starts_with("///") {
        2
    } else if p.starts_with('/') {
        1
    } else {
        0
    };
    let mut comps: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        if comp.is_empty() || comp == "." {
            continue;
        }
        if comp != ".." || (initial == 0 && comps.is_empty()) || comps.last() == Some(&"..") {
            comps.push(comp);
        } else {
            comps.pop();
        }
    }
    let joined = format!("{}{}", "/".repeat(initial), comps.join("/"));
    Ok(if joined.is_empty() {
        ".".into()
    } else {
        joined
    })
}

// ===========================================================================
// Tests
// ===========================================================================

/// One component of a distutils `LooseVersion`.
#[derive(Debug)]
enum LoosePart {
    Num(String),
    Str(String),
}

fn parse_loose(s: &str) -> Vec<LoosePart> {
    let chars: Vec<char> = s.chars().collect();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let class = |c: char| {
            if c.is_ascii_digit() {
                0
            } else if c.is_ascii_lowercase() {
                1
            } else if c == '.' {
                2
            } else {
                3
            }
        };
        let k = class(c);
        while i < chars.len() && class(chars[i]) == k && !(k == 2 && i > start) {
            i += 1;
        }
        let piece: String = chars[start..i].iter().collect();
        match k {
            0 => parts.push(LoosePart::Num(normalize_digits(&piece))),
            2 => {}
            _ => parts.push(LoosePart::Str(piece)),
        }
    }
    parts
}

fn normalize_digits(s: &str) -> String {
    let t = s.trim_start_matches('0');
    if t.is_empty() {
        "0".into()
    } else {
        t.into()
    }
}

fn cmp_digits(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (normalize_digits(a), normalize_digits(b));
    a.len().cmp(&b.len()).then_with(|| a.cmp(&b))
}

fn cmp_loose(a: &str, b: &str) -> Result<std::cmp::Ordering, String> {
    let (pa, pb) = (parse_loose(a), parse_loose(b));
    for (x, y) in pa.iter().zip(&pb) {
        let ord = match (x, y) {
            (LoosePart::Num(x), LoosePart::Num(y)) => cmp_digits(x, y),
            (LoosePart::Str(x), LoosePart::Str(y)) => x.cmp(y),
            _ => {
                return Err(format!(
                    "'<' not supported between instances of {} and {} ({a:?} vs {b:?})",
                    if matches!(x, LoosePart::Num(_)) {
                        "'int'"
                    } else {
                        "'str'"
                    },
                    if matches!(y, LoosePart::Num(_)) {
                        "'int'"
                    } else {
                        "'str'"
                    },
                ))
            }
        };
        if ord.is_ne() {
            return Ok(ord);
        }
    }
    Ok(pa.len().cmp(&pb.len()))
}

/// distutils `StrictVersion`: `X.Y[.Z][{a|b}N]`.
fn cmp_strict(a: &str, b: &str) -> Result<std::cmp::Ordering, String> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let re = RE
        .get_or_init(|| Regex::new(r"^([0-9]+)\.([0-9]+)(\.([0-9]+))?([ab]([0-9]+))?$").ok())
        .as_ref()
        .ok_or("version regex unavailable")?;
    type Parsed = (Vec<String>, Option<(String, String)>);
    let parse = |s: &str| -> Result<Parsed, String> {
        let c = re
            .captures(s)
            .ok_or_else(|| format!("invalid version number '{s}'"))?;
        let g = |i: usize| c.get(i).map_or("0", |m| m.as_str()).to_string();
        let pre = c.get(5).map(|m| (m.as_str()[..1].to_string(), g(6)));
        Ok((vec![g(1), g(2), g(4)], pre))
    };
    let (va, pa) = parse(a)?;
    let (vb, pb) = parse(b)?;
    for (x, y) in va.iter().zip(&vb) {
        let ord = cmp_digits(x, y);
        if ord.is_ne() {
            return Ok(ord);
        }
    }
    use std::cmp::Ordering::*;
    Ok(match (pa, pb) {
        (None, None) => Equal,
        (Some(_), None) => Less,
        (None, Some(_)) => Greater,
        (Some((la, na)), Some((lb, nb))) => la.cmp(&lb).then_with(|| cmp_digits(&na, &nb)),
    })
}

/// Semantic versioning 2.0.0 precedence.
fn cmp_semver(a: &str, b: &str) -> Result<std::cmp::Ordering, String> {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    let re = RE
        .get_or_init(|| {
            Regex::new(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-((?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][a-zA-Z0-9-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[a-zA-Z-][a-zA-Z0-9-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$").ok()
        })
        .as_ref()
        .ok_or("version regex unavailable")?;
    let parse = |s: &str| -> Result<(Vec<String>, Vec<String>), String> {
        let c = re
            .captures(s)
            .ok_or_else(|| format!("invalid semantic version '{s}'"))?;
        let core = (1..=3)
            .map(|i| c.get(i).map_or("0", |m| m.as_str()).to_string())
            .collect();
        let pre = c
            .get(4)
            .map(|m| m.as_str().split('.').map(String::from).collect())
            .unwrap_or_default();
        Ok((core, pre))
    };
    let (ca, pa) = parse(a)?;
    let (cb, pb) = parse(b)?;
    use std::cmp::Ordering::*;
    for (x, y) in ca.iter().zip(&cb) {
        let ord = cmp_digits(x, y);
        if ord.is_ne() {
            return Ok(ord);
        }
    }
    match (pa.is_empty(), pb.is_empty()) {
        (true, true) => return Ok(Equal),
        (true, false) => return Ok(Greater),
        (false, true) => return Ok(Less),
        _ => {}
    }
    for (x, y) in pa.iter().zip(&pb) {
        let num = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_digit());
        let ord = match (num(x), num(y)) {
            (true, true) => cmp_digits(x, y),
            (true, false) => Less,
            (false, true) => Greater,
            (false, false) => x.cmp(y),
        };
        if ord.is_ne() {
            return Ok(ord);
        }
    }
    Ok(pa.len().cmp(&pb.len()))
}

/// `version(other, operator='eq', strict=None, version_type=None)`.
fn version_test(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    const NAME: &str = "version";
    let p = Params::bind(
        NAME,
        &["version", "operator", "strict", "version_type"],
        &args,
        &kwargs,
    )?;
    check_defined(state, value)?;
    if p.opt(2).is_some() && p.opt(3).is_some() {
        return Err(fail(
            NAME,
            "Cannot specify both 'strict' and 'version_type'",
        ));
    }
    if !value.is_true() {
        return Err(fail(NAME, "Input version value cannot be empty"));
    }
    let Some(other) = p.opt(0).filter(|v| v.is_true()) else {
        return Err(fail(
            NAME,
            "Version parameter to compare against cannot be empty",
        ));
    };
    let op = p.string_or(1, "eq")?;
    let wanted: &[std::cmp::Ordering] = {
        use std::cmp::Ordering::*;
        match op.as_str() {
            "==" | "=" | "eq" => &[Equal],
            "<" | "lt" => &[Less],
            "<=" | "le" => &[Less, Equal],
            ">" | "gt" => &[Greater],
            ">=" | "ge" => &[Greater, Equal],
            "!=" | "<>" | "ne" => &[Less, Greater],
            _ => {
                return Err(fail(
                    NAME,
                    format!("Invalid operator type ({op}). Must be one of '==', '=', 'eq', '<', 'lt', '<=', 'le', '>', 'gt', '>=', 'ge', '!=', '<>', 'ne'"),
                ))
            }
        }
    };
    let version_type = if p.flag(2, false) {
        "strict".to_string()
    } else {
        p.string_or(3, "loose")?
    };
    let (a, b) = (py_str(value), py_str(other));
    let ord = match version_type.as_str() {
        "loose" => cmp_loose(&a, &b),
        "strict" => cmp_strict(&a, &b),
        "semver" | "semantic" => cmp_semver(&a, &b),
        other => {
            return Err(fail(
                NAME,
                format!("Invalid version type ({other}). Must be one of 'loose', 'strict', 'semver', 'semantic'"),
            ))
        }
    }
    .map_err(|e| fail(NAME, format!("Version comparison failed: {e}")))?;
    Ok(wanted.contains(&ord))
}

fn regex_test_impl(
    name: &'static str,
    state: &State,
    value: &Value,
    p: &Params,
    match_type: &str,
) -> Result<bool, Error> {
    let text = text_input(state, value)?;
    let pattern = p.string_or(0, "")?;
    let (ic, ml) = (p.flag(1, false), p.flag(2, false));
    match match_type {
        "search" => Ok(py_regex(name, &pattern, ic, ml, Anchor::None)?.is_match(&text)),
        // the leftmost match starts at 0 exactly when a match at 0 exists
        "match" => Ok(py_regex(name, &pattern, ic, ml, Anchor::None)?
            .find(&text)
            .is_some_and(|m| m.start() == 0)),
        "fullmatch" => Ok(py_regex(name, &pattern, ic, ml, Anchor::Full)?.is_match(&text)),
        other => Err(fail(
            name,
            format!("unknown match_type '{other}' (use search, match or fullmatch)"),
        )),
    }
}

/// `match(pattern, ignorecase=False, multiline=False)`: `re.match`, anchored
/// at the start only.
fn match_test(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    let p = Params::bind(
        "match",
        &["pattern", "ignorecase", "multiline"],
        &args,
        &kwargs,
    )?;
    regex_test_impl("match", state, value, &p, "match")
}

/// `search(pattern, ignorecase=False, multiline=False)`.
fn search_test(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    let p = Params::bind(
        "search",
        &["pattern", "ignorecase", "multiline"],
        &args,
        &kwargs,
    )?;
    regex_test_impl("search", state, value, &p, "search")
}

/// `regex(pattern, ignorecase=False, multiline=False, match_type='search')`.
fn regex_test(
    state: &State,
    value: &Value,
    args: Rest<Value>,
    kwargs: Kwargs,
) -> Result<bool, Error> {
    let p = Params::bind(
        "regex",
        &["pattern", "ignorecase", "multiline", "match_type"],
        &args,
        &kwargs,
    )?;
    let match_type = p.string_or(3, "search")?;
    regex_test_impl("regex", state, value, &p, &match_type)
}

/// A registered task result; the result tests only accept dicts.
fn result_dict<'a>(name: &str, state: &State, v: &'a Value) -> Result<&'a Value, Error> {
    check_defined(state, v)?;
    if v.kind() == ValueKind::Map {
        Ok(v)
    } else {
        Err(fail(
            name,
            format!("The '{name}' test expects a dictionary"),
        ))
    }
}

fn result_flag(v: &Value, key: &str) -> bool {
    v.get_attr(key).is_ok_and(|f| f.is_true())
}

fn failed_test(state: &State, v: &Value) -> Result<bool, Error> {
    Ok(result_flag(result_dict("failed", state, v)?, "failed"))
}

fn succeeded_test(state: &State, v: &Value) -> Result<bool, Error> {
    Ok(!result_flag(result_dict("succeeded", state, v)?, "failed"))
}

/// `changed`: the `changed` key, or any changed item of a loop's `results`.
fn changed_test(state: &State, v: &Value) -> Result<bool, Error> {
    let r = result_dict("changed", state, v)?;
    let changed = r.get_attr("changed")?;
    if !changed.is_undefined() {
        return Ok(changed.is_true());
    }
    let results = r.get_attr("results")?;
    if results.kind() == ValueKind::Seq {
        for item in results.try_iter()? {
            if item.kind() == ValueKind::Map && result_flag(&item, "changed") {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

fn skipped_test(state: &State, v: &Value) -> Result<bool, Error> {
    Ok(result_flag(result_dict("skipped", state, v)?, "skipped"))
}

fn unreachable_test(state: &State, v: &Value) -> Result<bool, Error> {
    Ok(result_flag(
        result_dict("unreachable", state, v)?,
        "unreachable",
    ))
}

fn reachable_test(state: &State, v: &Value) -> Result<bool, Error> {
    Ok(!result_flag(
        result_dict("reachable", state, v)?,
        "unreachable",
    ))
}

fn timedout_test(state: &State, v: &Value) -> Result<bool, Error> {
    let r = result_dict("timedout", state, v)?;
    let t = r.get_attr("timedout")?;
    Ok(t.is_true() && t.get_attr("period").is_ok_and(|p| p.is_true()))
}

/// `finished`/`started` for async results; non-async results count as true.
fn async_flag(name: &str, state: &State, v: &Value) -> Result<bool, Error> {
    let r = result_dict(name, state, v)?;
    let flag = r.get_attr(name)?;
    Ok(flag.is_undefined() || flag.is_true())
}

fn finished_test(state: &State, v: &Value) -> Result<bool, Error> {
    async_flag("finished", state, v)
}

fn started_test(state: &State, v: &Value) -> Result<bool, Error> {
    async_flag("started", state, v)
}

#[derive(Clone, Copy)]
enum PathTest {
    File,
    Dir,
    Link,
    Exists,
    LinkExists,
    Abs,
    Mount,
}

/// The file tests run on the controller's filesystem, like in Ansible.
fn path_test(v: &Value, kind: PathTest) -> Result<bool, Error> {
    let Some(p) = v.as_str() else {
        return Err(fail(
            "path test",
            format!("expected a path string, got {}", py_type_name(v)),
        ));
    };
    let path = std::path::Path::new(p);
    Ok(match kind {
        PathTest::File => path.is_file(),
        PathTest::Dir => path.is_dir(),
        PathTest::Link => path.is_symlink(),
        PathTest::Exists => path.exists(),
        PathTest::LinkExists => std::fs::symlink_metadata(path).is_ok(),
        PathTest::Abs => p.starts_with('/'),
        PathTest::Mount => is_mount(path),
    })
}

#[cfg(unix)]
fn is_mount(path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if meta.file_type().is_symlink() {
        return false;
    }
    let Ok(parent) = std::fs::symlink_metadata(path.join("..")) else {
        return false;
    };
    meta.dev() != parent.dev() || meta.ino() == parent.ino()
}

#[cfg(not(unix))]
fn is_mount(_path: &std::path::Path) -> bool {
    false
}

/// `same_file(other)`: both paths name the same file.
fn same_file_test(v: &Value, other: &Value) -> Result<bool, Error> {
    let (Some(a), Some(b)) = (v.as_str(), other.as_str()) else {
        return Err(fail("same_file", "expected two path strings"));
    };
    let (ma, mb) = (std::fs::metadata(a), std::fs::metadata(b));
    let (Ok(ma), Ok(mb)) = (ma, mb) else {
        return Err(fail("same_file", format!("cannot stat {a:?} or {b:?}")));
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(ma.dev() == mb.dev() && ma.ino() == mb.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = (ma, mb);
        Ok(std::fs::canonicalize(a).ok() == std::fs::canonicalize(b).ok())
    }
}

/// Ansible's `boolean()` (module_utils): `Some` for recognised values.
fn ansible_boolean(v: &Value) -> Option<bool> {
    match v.kind() {
        ValueKind::Bool => Some(v.is_true()),
        ValueKind::String => match py_str(v).trim().to_lowercase().as_str() {
            "y" | "yes" | "on" | "1" | "true" | "t" => Some(true),
            "n" | "no" | "off" | "0" | "false" | "f" => Some(false),
            _ => None,
        },
        ValueKind::Number => match f64::try_from(v.clone()) {
            Ok(1.0) => Some(true),
            Ok(0.0) => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// `truthy(convert_bool=False)`.
fn truthy_test(state: &State, v: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<bool, Error> {
    check_defined(state, v)?;
    let p = Params::bind("truthy", &["convert_bool"], &args, &kwargs)?;
    if p.flag(0, false) {
        if let Some(b) = ansible_boolean(v) {
            return Ok(b);
        }
    }
    Ok(v.is_true())
}

/// `falsy(convert_bool=False)`.
fn falsy_test(state: &State, v: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<bool, Error> {
    truthy_test(state, v, args, kwargs).map(|t| !t)
}

fn value_set(state: &State, name: &str, v: &Value) -> Result<BTreeSet<Value>, Error> {
    Ok(list_items(state, name, v)?.into_iter().collect())
}

/// `subset(other)`: every item is in `other`.
fn subset_test(state: &State, a: &Value, b: &Value) -> Result<bool, Error> {
    Ok(value_set(state, "subset", a)?.is_subset(&value_set(state, "subset", b)?))
}

/// `superset(other)`.
fn superset_test(state: &State, a: &Value, b: &Value) -> Result<bool, Error> {
    Ok(value_set(state, "superset", a)?.is_superset(&value_set(state, "superset", b)?))
}

/// `contains(item)`: `item in value`, usable with `select`/`selectattr`.
fn contains_test(state: &State, seq: &Value, item: &Value) -> Result<bool, Error> {
    check_defined(state, seq)?;
    minijinja::tests::is_in(state, item, seq)
}

fn any_test(state: &State, v: &Value) -> Result<bool, Error> {
    Ok(list_items(state, "any", v)?.iter().any(Value::is_true))
}

fn all_test(state: &State, v: &Value) -> Result<bool, Error> {
    Ok(list_items(state, "all", v)?.iter().all(Value::is_true))
}

fn nan_test(v: &Value) -> bool {
    v.kind() == ValueKind::Number
        && !v.is_integer()
        && f64::try_from(v.clone()).is_ok_and(f64::is_nan)
}

/// Jinja2's `sequence`: anything with a length and item access, strings and
/// dicts included (minijinja's builtin only accepts lists).
fn sequence_test(v: &Value) -> bool {
    v.is_undefined()
        || matches!(
            v.kind(),
            ValueKind::Seq | ValueKind::Map | ValueKind::String | ValueKind::Bytes
        )
}

// ===========================================================================
// Python methods
// ===========================================================================

/// minijinja-contrib's Python methods, plus the string/list/dict methods
/// Ansible playbooks commonly use that it lacks.
fn python_methods(
    state: &mut State,
    value: &Value,
    method: &str,
    args: &[Value],
) -> Result<Value, Error> {
    match minijinja_contrib::pycompat::unknown_method_callback(state, value, method, args) {
        Err(err) if err.kind() == ErrorKind::UnknownMethod => extra_methods(value, method, args),
        other => other,
    }
}

fn unknown_method() -> Error {
    Error::from(ErrorKind::UnknownMethod)
}

fn method_args<'a, const N: usize>(
    method: &str,
    args: &'a [Value],
    required: usize,
) -> Result<[Option<&'a Value>; N], Error> {
    let args: Vec<&Value> = args.iter().filter(|a| !a.is_kwargs()).collect();
    if args.len() < required || args.len() > N {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "{method}() takes {required} to {N} arguments ({} given)",
                args.len()
            ),
        ));
    }
    let mut out = [None; N];
    for (slot, a) in out.iter_mut().zip(args) {
        *slot = Some(a);
    }
    Ok(out)
}

fn opt_str(v: Option<&Value>) -> Option<String> {
    v.filter(|v| !v.is_none()).map(py_str)
}

fn opt_int(v: Option<&Value>, default: i64) -> i64 {
    v.and_then(|v| i64::try_from(v.clone()).ok())
        .unwrap_or(default)
}

fn pad_char(method: &str, v: Option<&Value>) -> Result<char, Error> {
    match opt_str(v) {
        None => Ok(' '),
        Some(s) => {
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Ok(c),
                _ => Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("{method}(): the fill character must be exactly one character long"),
                )),
            }
        }
    }
}

fn extra_methods(value: &Value, method: &str, args: &[Value]) -> Result<Value, Error> {
    let immutable = || {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("{method}(): template values are immutable; build a new value instead (e.g. with combine or +)"),
        )
    };
    match value.kind() {
        ValueKind::String => {
            let s = py_str(value);
            let width = |n: i64| n.clamp(0, 1 << 20) as usize;
            let len = s.chars().count();
            match method {
                "rsplit" => {
                    let [sep, max] = method_args::<2>(method, args, 0)?;
                    let sep = opt_str(sep);
                    if sep.as_deref() == Some("") {
                        return Err(fail("rsplit", "empty separator"));
                    }
                    Ok(Value::from(py_rsplit(&s, sep.as_deref(), opt_int(max, -1))))
                }
                "partition" | "rpartition" => {
                    let [sep] = method_args::<1>(method, args, 1)?;
                    let sep = opt_str(sep).unwrap_or_default();
                    if sep.is_empty() {
                        return Err(fail(method, "empty separator"));
                    }
                    let found = if method == "partition" {
                        s.split_once(&sep)
                    } else {
                        s.rsplit_once(&sep)
                    };
                    let parts = match found {
                        Some((a, b)) => [a.to_string(), sep, b.to_string()],
                        None if method == "partition" => [s.clone(), String::new(), String::new()],
                        None => [String::new(), String::new(), s.clone()],
                    };
                    Ok(Value::from(parts.to_vec()))
                }
                "removeprefix" => {
                    let [p] = method_args::<1>(method, args, 1)?;
                    let p = opt_str(p).unwrap_or_default();
                    Ok(Value::from(s.strip_prefix(p.as_str()).unwrap_or(&s)))
                }
                "removesuffix" => {
                    let [p] = method_args::<1>(method, args, 1)?;
                    let p = opt_str(p).unwrap_or_default();
                    Ok(Value::from(s.strip_suffix(p.as_str()).unwrap_or(&s)))
                }
                "zfill" => {
                    let [w] = method_args::<1>(method, args, 1)?;
                    let w = width(opt_int(w, 0));
                    if len >= w {
                        return Ok(Value::from(s));
                    }
                    let (sign, digits) = match s.chars().next() {
                        Some(c @ ('+' | '-')) => (c.to_string(), &s[1..]),
                        _ => (String::new(), s.as_str()),
                    };
                    Ok(Value::from(format!(
                        "{sign}{}{digits}",
                        "0".repeat(w - len)
                    )))
                }
                "ljust" | "rjust" | "center" => {
                    let [w, fill] = method_args::<2>(method, args, 1)?;
                    let w = width(opt_int(w, 0));
                    let fill = pad_char(method, fill)?;
                    let total = w.saturating_sub(len);
                    let pad = |n: usize| std::iter::repeat_n(fill, n).collect::<String>();
                    Ok(Value::from(match method {
                        "ljust" => format!("{s}{}", pad(total)),
                        "rjust" => format!("{}{s}", pad(total)),
                        _ => py_center(&s, w, fill),
                    }))
                }
                "swapcase" => Ok(Value::from(
                    s.chars()
                        .flat_map(|c| -> Vec<char> {
                            if c.is_uppercase() {
                                c.to_lowercase().collect()
                            } else if c.is_lowercase() {
                                c.to_uppercase().collect()
                            } else {
                                vec![c]
                            }
                        })
                        .collect::<String>(),
                )),
                "casefold" => Ok(Value::from(s.to_lowercase())),
                "index" | "rindex" => {
                    let [sub] = method_args::<1>(method, args, 1)?;
                    let sub = opt_str(sub).unwrap_or_default();
                    let pos = if method == "index" {
                        s.find(&sub)
                    } else {
                        s.rfind(&sub)
                    };
                    pos.map(|p| Value::from(s[..p].chars().count()))
                        .ok_or_else(|| fail(method, "substring not found"))
                }
                _ => Err(unknown_method()),
            }
        }
        ValueKind::Seq => match method {
            "index" => {
                let [item] = method_args::<1>(method, args, 1)?;
                let item = item.cloned().unwrap_or_default();
                value
                    .try_iter()?
                    .position(|v| v == item)
                    .map(Value::from)
                    .ok_or_else(|| fail("index", format!("{} is not in list", py_repr(&item))))
            }
            "copy" => Ok(value.clone()),
            "append" | "extend" | "insert" | "pop" | "remove" | "sort" | "reverse" | "clear" => {
                Err(immutable())
            }
            _ => Err(unknown_method()),
        },
        ValueKind::Map => match method {
            "copy" => Ok(value.clone()),
            "update" | "pop" | "popitem" | "setdefault" | "clear" => Err(immutable()),
            _ => Err(unknown_method()),
        },
        _ => Err(unknown_method()),
    }
}

// ===========================================================================
// Unit tests (expected outputs were produced by ansible-core 2.19)
// ===========================================================================

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    fn env() -> Environment<'static> {
        let mut env = Environment::new();
        register(&mut env);
        env
    }

    fn render_ctx(tpl: &str, ctx: Value) -> String {
        env()
            .render_str(tpl, ctx)
            .unwrap_or_else(|e| panic!("{tpl}: {e:#}"))
    }

    fn render(tpl: &str) -> String {
        render_ctx(tpl, context! {})
    }

    fn render_err(tpl: &str) -> String {
        match env().render_str(tpl, context! {}) {
            Ok(out) => panic!("{tpl}: expected an error, got {out:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn json_ctx(json: &str) -> Value {
        let v: serde_json::Value = serde_json::from_str(json).expect("test context");
        Value::from(minijinja::value::Serde(v))
    }

    // --- strings & regex ----------------------------------------------------

    #[test]
    fn default_and_mandatory() {
        assert_eq!(
            render("{{ x | default('d') }} {{ x | d('d') }} {{ '' | default('d') }} {{ '' | default('d', true) }}|{{ none | default('d') }}|{{ none | d('d', true) }} {{ 0 | d('d', boolean=true) }}"),
            "d d  d||d d"
        );
        assert_eq!(
            render("{{ x | default }}|{{ x | default(default_value='kw') }}"),
            "|kw"
        );
        assert!(render_err("{{ '' | default('d', 1) }}")
            .contains("The 'boolean' argument must be of type 'bool', not 'int'."));
        assert_eq!(render("{{ 1 | mandatory }}"), "1");
        assert!(render_err("{{ x | mandatory('custom msg') }}").contains("custom msg"));
        let err = render_err("{{ some_var | mandatory }}");
        assert!(err.contains("`some_var` is undefined"), "{err}");
    }

    #[test]
    fn bool_int_float() {
        assert_eq!(
            render("{{ 'yes'|bool }} {{ 'On'|bool }} {{ '1'|bool }} {{ 'TRUE'|bool }} {{ 'y'|bool }} {{ 'no'|bool }} {{ 1|bool }} {{ 0|bool }} {{ 2|bool }} {{ none|bool }} {{ true|bool }} {{ 'foo'|bool }} {{ 1.0|bool }}"),
            "True True True True False False True False False False True False True"
        );
        assert_eq!(
            render("{{ '42' | int }} {{ '0x1A' | int(base=16) }} {{ '0x1A' | int }} {{ '42.9' | int }} {{ ' 7 ' | int }} {{ 'abc' | int }} {{ none | int }} {{ '1e3' | int }} {{ -4.9 | int }} {{ '0b101' | int(base=2) }} {{ '1_000' | int }}"),
            "42 26 0 42 7 0 0 1000 -4 5 1000"
        );
        assert_eq!(
            render("{{ 'abc' | int(7) }} {{ '12' | int(base=8) }} {{ '0x1A' | int(base=0) }} {{ true | int }} {{ '3' | int + 1 }}"),
            "7 10 26 1 4"
        );
        assert_eq!(
            render("{{ '1.5' | float }} {{ 'x' | float }} {{ 3 | float }} {{ ' 2 ' | float }} {{ 'inf' | float }} {{ 'nan' | float }} {{ '1_0.5' | float }} {{ '_1' | float }}"),
            "1.5 0.0 3.0 2.0 inf nan 10.5 0.0"
        );
    }

    #[test]
    fn split_and_indent() {
        assert_eq!(
            render("{{ 'a b  c' | split }} {{ 'a,b,,c' | split(',') }} {{ 'a,b,c' | split(',', 1) }} {{ ' a b c ' | split(maxsplit=1) }} {{ 'a--b--c' | split('--') }}"),
            "['a', 'b', 'c'] ['a', 'b', '', 'c'] ['a', 'b,c'] ['a', 'b c '] ['a', 'b', 'c']"
        );
        assert!(render_err("{{ 'a,b' | split('') }}").contains("split: empty separator"));
        assert_eq!(render(r"{{ 'a\nb\n\nc' | indent(2) }}"), "a\n  b\n\n  c");
        assert_eq!(
            render(r"{{ 'a\nb\n\nc\n' | indent(2, true) }}"),
            "  a\n  b\n\n  c\n"
        );
        assert_eq!(
            render(r"{{ 'a\nb\n\nc' | indent(2, blank=true) }}"),
            "a\n  b\n  \n  c"
        );
        assert_eq!(
            render(r"{{ 'a\nb' | indent(first=true) }}|{{ 'a\nb' | indent('>>') }}"),
            "    a\n    b|a\n>>b"
        );
    }

    #[test]
    fn quote_comment_ternary_type_debug() {
        assert_eq!(
            render(
                r#"{{ "it's" | quote }} {{ '' | quote }} {{ 'a-b_c/d.e:f,g@h%i+j=k' | quote }} {{ 'a b' | quote }} {{ none | quote }} {{ 42 | quote }}"#
            ),
            r#"'it'"'"'s' '' a-b_c/d.e:f,g@h%i+j=k 'a b' '' 42"#
        );
        assert_eq!(
            render(r"{{ 'hello\nworld' | comment }}"),
            "#\n# hello\n# world\n#"
        );
        assert_eq!(
            render(r"{{ 'hello\nworld' | comment('c') }}"),
            "//\n// hello\n// world\n//"
        );
        assert_eq!(
            render(r"{{ 'hello\nworld' | comment('cblock') }}"),
            "/*\n *\n * hello\n * world\n *\n */"
        );
        assert_eq!(
            render(r"{{ 'hello\nworld' | comment('xml') }}"),
            "<!--\n -\n - hello\n - world\n -\n-->"
        );
        assert_eq!(
            render("{{ 'hello' | comment(decoration='; ', prefix_count=2) }}"),
            ";\n;\n; hello\n;"
        );
        assert_eq!(
            render("{{ true | ternary('y', 'n') }} {{ 0 | ternary('y', 'n') }} {{ none | ternary('y', 'n', 'z') }} {{ none | ternary('y', 'n') }}"),
            "y n z n"
        );
        assert_eq!(
            render("{{ 42 | type_debug }} {{ 'a' | type_debug }} {{ none | type_debug }} {{ [1] | type_debug }} {{ {} | type_debug }} {{ 1.5 | type_debug }} {{ true | type_debug }}"),
            "int str NoneType list dict float bool"
        );
    }

    #[test]
    fn regex_replace() {
        assert_eq!(
            render(r"{{ 'abxd' | regex_replace('x*', '-') }}"),
            "-a-b--d-"
        );
        assert_eq!(
            render(r"{{ 'foo bar' | regex_replace('(\\w+) (\\w+)', '\\2 \\g<1> \\\\ \\n') }}"),
            "bar foo \\ \n"
        );
        assert_eq!(
            render(
                r"{{ 'path/to/file' | regex_replace('(?P<dir>.*)/(?P<f>[^/]*)$', '\\g<f> in \\g<dir>') }}"
            ),
            "file in path/to"
        );
        assert_eq!(
            render(
                r"{{ 'abc' | regex_replace('B', 'x', ignorecase=true) }} {{ 'aaa' | regex_replace('a', 'b', count=2) }} {{ 'x{y}' | regex_replace('{y}', 'z') }} {{ 'a1b22' | regex_replace('\\d{,1}', '#') }} {{ 'end' | regex_replace('d\\Z', 'D') }}"
            ),
            "axc bba xz #a##b### enD"
        );
        assert_eq!(
            render(r"{{ 'a\nb' | regex_replace('^', '> ', multiline=true) }}"),
            "> a\n> b"
        );
        assert_eq!(
            render(
                r"{{ 'abc' | regex_replace('(x)?b', '[\\1]') }} {{ 'a]b' | regex_replace('[]]', '!') }} {{ 'a[b' | regex_replace('[[]', '!') }}"
            ),
            "a[]c a!b a!b"
        );
        assert!(render_err(r"{{ 'a' | regex_replace('(a)\\1', '') }}").contains("backreferences"));
        assert!(render_err(r"{{ 'a' | regex_replace('(a)', '\\2') }}")
            .contains("invalid group reference"));
        assert!(
            render_err(r"{{ 'aa' | regex_replace('a', 'b', mandatory_count=1) }}")
                .contains("should match 1 times, but matches 2 times")
        );
    }

    #[test]
    fn regex_search_findall_escape() {
        assert_eq!(
            render("{{ 'abc' | regex_search('x') }}|{{ 'abc' | regex_search('x') is none }}"),
            "|True"
        );
        assert_eq!(
            render(r"{{ 'ab12cd34' | regex_search('(\\d)(\\d)', '\\2', '\\1') }}"),
            "['2', '1']"
        );
        assert_eq!(
            render(r"{{ 'ab12' | regex_search('(?P<n>\\d+)', '\\g<n>') }}"),
            "['12']"
        );
        assert_eq!(
            render("{{ 'hello world' | regex_search('o w') }} {{ 'hello' | regex_search('L+', ignorecase=true) }} {{ 'ab' | regex_search('(a)(x)?', '\\\\1', '\\\\2') }}"),
            "o w ll ['a', None]"
        );
        assert_eq!(
            render(r"{{ 'ab12cd34' | regex_findall('\\d') }}"),
            "['1', '2', '3', '4']"
        );
        assert_eq!(
            render(r"{{ 'ab12cd34' | regex_findall('(\\d)(\\d)') }}"),
            "[['1', '2'], ['3', '4']]"
        );
        assert_eq!(
            render(r"{{ 'ab12cd34' | regex_findall('[a-z](\\d)?') }}"),
            "['', '1', '', '3']"
        );
        assert_eq!(
            render(
                "{{ 'AbA' | regex_findall('a', ignorecase=true) }} {{ 'ab' | regex_findall('') }}"
            ),
            "['A', 'A'] ['', '', '']"
        );
        assert_eq!(render(r"{{ 'a.b*c' | regex_escape }}"), r"a\.b\*c");
        assert_eq!(
            render(r"{{ 'a.b*c[d]^$\\' | regex_escape('posix_basic') }}"),
            r"a\.b\*c\[d\]\^\$\\"
        );
    }

    // --- data formats ---------------------------------------------------------

    #[test]
    fn json() {
        assert_eq!(
            render("{{ {'b': 1, 'a': [1, 2, {'c': none}], 'é': 'ü'} | to_json }}"),
            r#"{"b": 1, "a": [1, 2, {"c": null}], "\u00e9": "\u00fc"}"#
        );
        assert_eq!(
            render("{{ {'b': 1, 'a': [1, 2, {'c': none}], 'e': []} | to_nice_json }}"),
            "{\n    \"a\": [\n        1,\n        2,\n        {\n            \"c\": null\n        }\n    ],\n    \"b\": 1,\n    \"e\": []\n}"
        );
        assert_eq!(
            render("{{ {'b': 1, 'a': [1.0, 1e16, 0.1]} | to_nice_json(indent=2) }}"),
            "{\n  \"a\": [\n    1.0,\n    1e+16,\n    0.1\n  ],\n  \"b\": 1\n}"
        );
        assert_eq!(
            render("{{ {'a': 'é'} | to_json(ensure_ascii=false) }} {{ {'b': 1, 'a': 2} | to_json(sort_keys=true) }} {{ {1: 'x', none: 'y', true: 'z'} | to_json }}"),
            // like Python, True and 1 are the same key
            r#"{"a": "é"} {"a": 2, "b": 1} {"1": "z", "null": "y"}"#
        );
        assert_eq!(
            render(r#"{{ '{"a": 1, "b": [true, null, 1.5], "a": 2}' | from_json }}"#),
            "{'a': 2, 'b': [True, None, 1.5]}"
        );
        assert!(render_err("{{ '[1, 2' | from_json }}").contains("from_json: invalid JSON"));
    }

    #[test]
    fn to_yaml_and_to_nice_yaml() {
        assert_eq!(
            render("{{ {'b': 'x', 'a': [1, 2], 'c': {'d': 'yes', 'e': ''}} | to_yaml }}"),
            "a: [1, 2]\nb: x\nc: {d: 'yes', e: ''}\n"
        );
        assert_eq!(
            render("{{ {'b': 'x', 'a': [1, 2], 'c': {'d': 'yes', 'e': '', 'f': [{'g': 1, 'h': [3]}]}} | to_nice_yaml }}"),
            "a:\n- 1\n- 2\nb: x\nc:\n    d: 'yes'\n    e: ''\n    f:\n    -   g: 1\n        h:\n        - 3\n"
        );
        assert_eq!(
            render("{{ 'abc' | to_yaml }}|{{ '' | to_yaml }}"),
            "abc\n|''\n"
        );
        assert_eq!(
            render("{{ {'z': [[1, 2], [3, [4]]], 'a': {'b': {'c': []}, 'd': {}}, 'n': none, 't': true, 'f': 1.5, 'i': -3} | to_yaml }}"),
            "a:\n  b:\n    c: []\n  d: {}\nf: 1.5\ni: -3\nn: null\nt: true\nz:\n- [1, 2]\n- - 3\n  - [4]\n"
        );
        assert_eq!(
            render(r"{{ ['a b', 'multi\nline', 'tab\there', '#x', 'a: b', 'null', '1.5', '0777', 'é', 'a# c', '1e3'] | to_nice_yaml }}"),
            "- a b\n- 'multi\n\n    line'\n- \"tab\\there\"\n- '#x'\n- 'a: b'\n- 'null'\n- '1.5'\n- '0777'\n- é\n- a# c\n- 1e3\n"
        );
        assert_eq!(
            render("{{ {'k': 'word ' * 40} | to_nice_yaml }}"),
            "k: 'word word word word word word word word word word word word word word word word\n    word word word word word word word word word word word word word word word word\n    word word word word word word word word '\n"
        );
        assert_eq!(
            render("{{ [1e16, 0.1, -0.0, 1e-5, 100.0] | to_nice_yaml }}"),
            "- 1.0e+16\n- 0.1\n- -0.0\n- 1.0e-05\n- 100.0\n"
        );
        assert_eq!(
            render("{{ {'a': {'b': ['x', {'c': 'd', 'e': [1, {'f': 'g'}]}]}} | to_nice_yaml(indent=2) }}"),
            "a:\n  b:\n  - x\n  - c: d\n    e:\n    - 1\n    - f: g\n"
        );
        assert_eq!(
            render("{{ {'b': 1, 'a': 2} | to_nice_yaml(sort_keys=false) }}{{ {'a': 1} | to_nice_yaml(explicit_start=true, explicit_end=true) }}"),
            "b: 1\na: 2\n---\na: 1\n...\n"
        );
        assert_eq!(
            render("{{ {'k': 'word ' * 40} | to_nice_yaml(width=-1) }}"),
            format!("k: '{}'\n", "word ".repeat(40))
        );
        assert_eq!(
            render("{{ {'k': 'é ü 😀'} | to_nice_yaml }}"),
            "k: \"é ü \\U0001F600\"\n"
        );
    }

    #[test]
    fn from_yaml() {
        assert_eq!(
            render(r#"{{ 'a: yes\nb: on\nc: 0x1F\nd: 012\ne: 1e3\nf: 1.5e3\ng: ~\ni: "yes"\nj: .inf\nk: 1_000\nl: 0b101\nm: y\nn: 1:30\no: off' | from_yaml }}"#),
            "{'a': True, 'b': True, 'c': 31, 'd': 10, 'e': '1e3', 'f': '1.5e3', 'g': None, 'i': 'yes', 'j': inf, 'k': 1000, 'l': 5, 'm': 'y', 'n': 90, 'o': False}"
        );
        assert_eq!(
            render(r"{{ 'base: &b {x: 1, y: 2}\nd:\n  <<: *b\n  y: 3\n  z: 4' | from_yaml }}"),
            "{'base': {'x': 1, 'y': 2}, 'd': {'x': 1, 'y': 3, 'z': 4}}"
        );
        assert_eq!(
            render(
                r"{{ 'a: &x [1, 2]\nb: *x\nc: &y {k: v}\nd:\n  <<: [*y, {k: w, m: n}]\n  o: p' | from_yaml }}"
            ),
            "{'a': [1, 2], 'b': [1, 2], 'c': {'k': 'v'}, 'd': {'k': 'v', 'm': 'n', 'o': 'p'}}"
        );
        assert_eq!(
            render(r#"{{ 'x: !!str 123\ny: !!int "42"\nz: |\n  l1\n  l2\n' | from_yaml }}"#),
            "{'x': '123', 'y': 42, 'z': 'l1\\nl2\\n'}"
        );
        assert_eq!(
            render(r"{{ '1: a\ntrue: b\n~: c\n1.5: d' | from_yaml }}|{{ '' | from_yaml }}|"),
            "{1: 'b', None: 'c', 1.5: 'd'}||"
        );
        assert_eq!(
            render(
                r"{{ '---\na: 1\n---\nb: 2\n' | from_yaml_all | list }} {{ '' | from_yaml_all | list }}"
            ),
            "[{'a': 1}, {'b': 2}] []"
        );
        assert!(render_err(r"{{ 'a: 1\n---\nb: 2' | from_yaml }}").contains("single document"));
        assert!(render_err(r"{{ 'a: [1, 2' | from_yaml }}").contains("from_yaml: invalid YAML"));
    }

    // --- collections ----------------------------------------------------------

    #[test]
    fn combine() {
        assert_eq!(
            render("{{ {'a': 1, 'b': {'x': 1}} | combine({'b': {'y': 2}, 'c': 3}) }}"),
            "{'a': 1, 'b': {'y': 2}, 'c': 3}"
        );
        assert_eq!(
            render(
                "{{ {'a': 1, 'b': {'x': 1}} | combine({'b': {'y': 2}, 'c': 3}, recursive=true) }}"
            ),
            "{'a': 1, 'b': {'x': 1, 'y': 2}, 'c': 3}"
        );
        assert_eq!(
            render("{{ {'a': [1, 2]} | combine({'a': [2, 3]}, list_merge='append') }} {{ {'a': [1, 2]} | combine({'a': [2, 3]}, list_merge='prepend') }} {{ {'a': [1, 2]} | combine({'a': [2, 3]}, list_merge='append_rp') }} {{ {'a': [1, 2]} | combine({'a': [2, 3]}, list_merge='prepend_rp') }} {{ {'a': [1, 2]} | combine({'a': [2, 3]}, list_merge='keep') }}"),
            "{'a': [1, 2, 2, 3]} {'a': [2, 3, 1, 2]} {'a': [1, 2, 3]} {'a': [2, 3, 1]} {'a': [1, 2]}"
        );
        assert_eq!(
            render("{{ [{'a': 1}, {'b': 2}] | combine }} {{ {'a': 1} | combine({'b': 2}, {'a': 3}) }} {{ {'a': 1} | combine([{'b': 2}, {'c': 3}]) }} {{ [] | combine }}"),
            "{'a': 1, 'b': 2} {'a': 3, 'b': 2} {'a': 1, 'b': 2, 'c': 3} {}"
        );
        assert!(render_err("{{ {'a': 1} | combine([1]) }}").contains("expected dicts"));
        assert!(
            render_err("{{ {'a': 1} | combine(foo=1) }}").contains("only valid keyword arguments")
        );
    }

    #[test]
    fn dict_items_and_flatten() {
        assert_eq!(
            render("{{ {'a': 1, 'b': 2} | dict2items }} {{ {'a': 1} | dict2items(key_name='k', value_name='v') }}"),
            "[{'key': 'a', 'value': 1}, {'key': 'b', 'value': 2}] [{'k': 'a', 'v': 1}]"
        );
        assert_eq!(
            render("{{ [{'key': 'a', 'value': 1}] | items2dict }} {{ [{'k': 'a', 'v': 1}] | items2dict(key_name='k', value_name='v') }}"),
            "{'a': 1} {'a': 1}"
        );
        assert!(render_err("{{ [1] | dict2items }}").contains("dict2items requires a dictionary"));
        assert_eq!(
            render("{{ [1, [2, [3, [4]]], none, 'None', 'null'] | flatten }} {{ [1, [2, [3, [4]]]] | flatten(levels=1) }} {{ [1, none, 'null'] | flatten(skip_nulls=false) }}"),
            "[1, 2, 3, 4] [1, 2, [3, [4]]] [1, None, 'null']"
        );
        assert_eq!(render("{{ dict(a=1) }} {{ dict([['a', 1], ['b', 2]]) }} {{ dict(['a', 'b'] | zip([1, 2])) }}"), "{'a': 1} {'a': 1, 'b': 2} {'a': 1, 'b': 2}");
    }

    #[test]
    fn set_operations() {
        assert_eq!(
            render("{{ [3, 1, 'a', 'A', 1] | unique }} {{ [1, 2, 3] | union([3, 4, 1]) }} {{ [1, 2, 3] | difference([2]) }} {{ [1, 2, 3] | intersect([3, 2, 5]) }} {{ [1, 2, 3] | symmetric_difference([3, 4]) }}"),
            "[3, 1, 'a'] [1, 2, 3, 4] [1, 3] [2, 3] [1, 2, 4]"
        );
        assert_eq!(
            render("{{ ['a', 'A'] | unique(case_sensitive=true) }} {{ ['a', 'A'] | unique(true) }} {{ [{'n': 1}, {'n': 1}] | unique }}"),
            "['a', 'A'] ['a', 'A'] [{'n': 1}]"
        );
    }

    #[test]
    fn sorting_and_builtins() {
        assert_eq!(
            render("{{ [3, 1, 2] | sort }} {{ [3, 1, 2] | sort(true) }} {{ [{'n': 2}, {'n': 1}] | sort(attribute='n') }} {{ ['b', 'A', 'a'] | sort }} {{ ['b', 'A', 'a'] | sort(case_sensitive=true) }}"),
            "[1, 2, 3] [3, 2, 1] [{'n': 1}, {'n': 2}] ['A', 'a', 'b'] ['A', 'a', 'b']"
        );
        assert_eq!(
            render("{{ [1, 2, 3] | min }} {{ [1, 2, 3] | max }} {{ [1, 2, 3] | sum }} {{ [[1], [2]] | sum(start=[]) }} {{ [1, 2, 3] | first }} {{ [1, 2, 3] | last }} {{ [1, 2, 3] | length }} {{ 'abc' | count }} {{ 'ab' | list }} {{ [{'a': 2}, {'a': 1}] | min(attribute='a') }}"),
            "1 3 6 [1, 2] 1 3 3 3 ['a', 'b'] {'a': 1}"
        );
        assert_eq!(
            render("{{ 'Hello' | lower }} {{ 'Hello' | upper }} {{ ['a', 'b'] | join('-') }} {{ [1, true, none] | join(',') }} {{ 'a b c' | replace(' ', '-') }} {{ 'aaa' | replace('a', 'b', 2) }} {{ '  x  ' | trim }} {{ 1 | string }} {{ none | string }} {{ [1, 'a'] | string }}"),
            "hello HELLO a-b 1,True,None a-b-c bba x 1 None [1, 'a']"
        );
    }

    #[test]
    fn map_select_family() {
        let users = json_ctx(r#"{"users": [{"name": "a", "x": 1}, {"name": "b"}]}"#);
        assert_eq!(
            render_ctx("{{ users | map(attribute='name') | list }} {{ ['a','b'] | map('upper') | list }} {{ users | selectattr('x', 'defined') | list }} {{ users | selectattr('name', 'equalto', 'b') | list }} {{ users | selectattr('name', 'match', 'a') | list }} {{ users | rejectattr('name', 'search', 'b') | map(attribute='name') | list }}", users),
            "['a', 'b'] ['A', 'B'] [{'name': 'a', 'x': 1}] [{'name': 'b'}] [{'name': 'a', 'x': 1}] ['a']"
        );
        let pkgs = json_ctx(
            r#"{"pkgs": [{"n": "a", "v": "1.9"}, {"n": "b", "v": "1.10.1"}, {"n": "c", "v": "1.10"}]}"#,
        );
        assert_eq!(
            render_ctx(
                "{{ pkgs | selectattr('v', 'version', '1.10', '>=') | map(attribute='n') | list }}",
                pkgs
            ),
            "['b', 'c']"
        );
        assert_eq!(
            render("{{ [0, 2] | map('extract', ['a', 'b', 'c']) | list }} {{ 'k' | extract({'k': {'x': 1}}, 'x') }} {{ 'a' | extract({'a': {'b': {'c': 5}}}, ['b', 'c']) }}"),
            "['a', 'c'] 1 5"
        );
        assert_eq!(
            render("{{ ['ab', 'cd'] | select('match', 'c') | list }} {{ [[1], [2]] | select('contains', 2) | list }} {{ ['1', '2'] | map('int') | sum }}"),
            "['cd'] [[2]] 3"
        );
    }

    #[test]
    fn zip_product_subelements() {
        assert_eq!(
            render("{{ [1, 2] | product(['a', 'b']) | list }} {{ [1, 2] | zip(['a', 'b']) | list }} {{ [1, 2, 3] | zip_longest(['a'], fillvalue='-') | list }} {{ [1,2] | zip_longest(['a']) | list }}"),
            "[[1, 'a'], [1, 'b'], [2, 'a'], [2, 'b']] [[1, 'a'], [2, 'b']] [[1, 'a'], [2, '-'], [3, '-']] [[1, 'a'], [2, None]]"
        );
        assert_eq!(
            render("{{ [1, 2, 3] | permutations(2) | list }} {{ [1, 2, 3] | combinations(2) | list }} {{ [1, 2] | product(repeat=2) | list }}"),
            "[[1, 2], [1, 3], [2, 1], [2, 3], [3, 1], [3, 2]] [[1, 2], [1, 3], [2, 3]] [[1, 1], [1, 2], [2, 1], [2, 2]]"
        );
        let users = json_ctx(
            r#"{"users": [{"name": "a", "groups": ["x", "y"]}, {"name": "b", "groups": []}]}"#,
        );
        assert_eq!(
            render_ctx("{{ users | subelements('groups') }}", users),
            "[[{'name': 'a', 'groups': ['x', 'y']}, 'x'], [{'name': 'a', 'groups': ['x', 'y']}, 'y']]"
        );
        let missing = json_ctx(r#"{"users": [{"name": "a", "groups": ["x"]}, {"name": "b"}]}"#);
        assert_eq!(
            render_ctx(
                "{{ users | subelements('groups', skip_missing=true) }}",
                missing.clone()
            ),
            "[[{'name': 'a', 'groups': ['x']}, 'x']]"
        );
        let err = env()
            .render_str("{{ users | subelements('groups') }}", missing)
            .unwrap_err();
        assert!(err
            .to_string()
            .contains("could not find 'groups' key in iterated item {'name': 'b'}"));
    }

    #[test]
    fn random_and_shuffle() {
        assert_eq!(
            render("{{ [1,2,3] | random in [1,2,3] }} {{ 5 | random < 5 }} {{ 10 | random(start=5) >= 5 }} {{ 10 | random(step=5) in [0, 5] }} {{ [1, 2, 3] | shuffle | sort }}"),
            "True True True True [1, 2, 3]"
        );
        // seeded results are repeatable
        assert_eq!(
            render("{{ 100 | random(seed='x') == 100 | random(seed='x') }}"),
            "True"
        );
        assert!(render_err("{{ 0 | random }}").contains("empty range"));
    }

    #[test]
    fn math_and_urls() {
        assert_eq!(
            render("{{ 100 | log(10) }} {{ 8 | log(2) }} {{ 2 | pow(10) }} {{ 9 | root }} {{ 27 | root(3) }} {{ 0.5 | pow(2) }}"),
            "2.0 3.0 1024.0 3.0 3.0 0.25"
        );
        assert_eq!(
            render("{{ 'http://user:pw@www.acme.com:9000/dir/index.html?query=term#fragment' | urlsplit }}"),
            "{'fragment': 'fragment', 'hostname': 'www.acme.com', 'netloc': 'user:pw@www.acme.com:9000', 'password': 'pw', 'path': '/dir/index.html', 'port': 9000, 'query': 'query=term', 'scheme': 'http', 'username': 'user'}"
        );
        assert_eq!(
            render("{{ 'http://www.acme.com:9000/x' | urlsplit('hostname') }} {{ 'http://www.acme.com/x' | urlsplit('port') }}|{{ 'https://[::1]:8080/p' | urlsplit('hostname') }}"),
            "www.acme.com |::1"
        );
        assert_eq!(
            render("{{ 'a b/c~d&é' | urlencode }} {{ {'a b': 'c/d', 'e': none} | urlencode }} {{ [['a', 1], ['b', 2]] | urlencode }} {{ 42 | urlencode }} {{ 'a%20b+c%2Fd' | urldecode }}"),
            "a%20b/c~d%26%C3%A9 a+b=c%2Fd&e=None a=1&b=2 42 a b c/d"
        );
    }

    #[test]
    fn text_and_size_helpers() {
        assert_eq!(
            render("{{ 'a long sentence here' | truncate(10) }} {{ '<b>x</b>' | striptags }} {{ 1000000 | filesizeformat }} {{ 'x' | center(5) }}| {{ 'one two  three' | wordcount }}"),
            "a long... x 1.0 MB   x  | 3"
        );
        assert_eq!(
            render("{{ 1024 | human_readable }} {{ '1K' | human_to_bytes }} {{ 1048576 | human_readable(unit='K') }} {{ 10 | human_readable(isbits=true) }} {{ '10 MB' | human_to_bytes }} {{ '1.5' | human_to_bytes('K') }} {{ '8Mb' | human_to_bytes(isbits=true) }}"),
            "1.00 KB 1024 1024.00 KB 10.00 bits 10485760 1536 8388608"
        );
        assert!(render_err("{{ '10Mb' | human_to_bytes }}").contains("human_to_bytes"));
        assert_eq!(
            render("{{ [['a', 1], ['b', 2]] | dict }} {{ '1.2' | version_compare('1.10', '<') }}"),
            "{'a': 1, 'b': 2} True"
        );
        if let Ok(path) = std::env::var("PATH") {
            assert_eq!(
                render("{{ '$PATH:${PATH}' | expandvars }}"),
                format!("{path}:{path}")
            );
        }
    }

    // --- hashing & encoding -----------------------------------------------------

    #[test]
    fn base64_and_hashes() {
        assert_eq!(
            render("{{ 'hello' | b64encode }} {{ 'aGVsbG8=' | b64decode }} {{ 'hé' | b64encode(encoding='utf-16-le') }} {{ '???' | b64encode(urlsafe=true) }} {{ 'Pz8/' | b64decode }} {{ 'Pz8_' | b64decode(urlsafe=true) }}"),
            "aGVsbG8= hello aADpAA== Pz8_ ??? ???"
        );
        assert_eq!(
            render(
                r"{{ 'aGk=\n' | b64decode }} {{ 'a G k =' | b64decode }} {{ '/w==' | b64decode(encoding='latin-1') }}"
            ),
            "hi hi ÿ"
        );
        assert!(render_err("{{ 'aGk' | b64decode }}").contains("b64decode"));
        assert_eq!(
            render("{{ 'a' | hash('sha1') }} {{ 'a' | hash('md5') }} {{ 'a' | checksum }} {{ 'a' | md5 }} {{ 'a' | sha1 }} {{ 42 | hash('md5') }}"),
            "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8 0cc175b9c0f1b6a831c399e269772661 86f7e437faa5a7fce15d1ddcb9eaeaea377667b8 0cc175b9c0f1b6a831c399e269772661 86f7e437faa5a7fce15d1ddcb9eaeaea377667b8 a1d0c6e83f027327d8461063f4ac58a6"
        );
        assert_eq!(
            render("{{ 'a' | hash('sha256') }}"),
            "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
        );
        assert!(render_err("{{ 'a' | hash('foo') }}").contains("unsupported hash type foo"));
        assert_eq!(
            render("{{ 'x' | to_uuid }} {{ 'example.com' | to_uuid(namespace='6ba7b810-9dad-11d1-80b4-00c04fd430c8') }}"),
            "66b2f013-1baa-5313-9c8c-e6f1182e0e90 cfbff0d1-9375-5685-968c-48ce8b15ae17"
        );
    }

    #[test]
    fn password_hash() {
        // rounds given: cheap; values checked against passlib and glibc crypt(3)
        assert_eq!(
            render("{{ 'secret' | password_hash('sha512', 'mysalt', rounds=10000) }}"),
            "$6$rounds=10000$mysalt$9XTP7570fxVN/uTspSrH6kRPdR4KKGzGz7.TmJjDYGrKSwZuavW/3YaLur8JX6WP75Czcxa.megIO0lKreY0R."
        );
        assert_eq!(
            render("{{ 'secret' | password_hash('md5', 'mysalt') }}"),
            "$1$mysalt$n/EfEiV74OYgBdqhKQzSW/"
        );
        assert_eq!(
            render("{{ 'secret' | password_hash('sha256', 'abcdefghijklmnop', rounds=1000) }}"),
            "$5$rounds=1000$abcdefghijklmnop$FzYoqjtuN.mjYqssIob4upmoKbZEpkdQMtytZuqNN/6"
        );
        assert_eq!(
            render("{{ 'secret' | password_hash('sha512', 'mysalt', rounds=5000) }}"),
            "$6$mysalt$UX6P1VKOf6dr0s2pg4pLNvIUB6hLXvP6M5f/Yj9hJgMPdAJ4oArvk5YUD9/XWtk1JOpVwt/JTsczMJr8sFVML1"
        );
        let random = render("{{ 'secret' | password_hash('sha512', rounds=1000) }}");
        assert!(
            random.starts_with("$6$rounds=1000$") && random.len() == 15 + 16 + 1 + 86,
            "{random}"
        );
        assert!(
            render_err("{{ 'secret' | password_hash('sha512', 'bad$salt') }}")
                .contains("invalid characters")
        );
        assert!(
            render_err("{{ 'secret' | password_hash('sha512', 'x' * 17) }}")
                .contains("salt too large")
        );
        assert!(
            render_err("{{ 'secret' | password_hash('sha512', 'mysalt', rounds=10) }}")
                .contains("rounds (10)")
        );
    }

    #[test]
    fn password_hash_default_rounds() {
        // Ansible's default for sha512 is 656000 rounds
        assert_eq!(
            render("{{ 'secret' | password_hash('sha512', 'mysalt') }}"),
            "$6$rounds=656000$mysalt$cDA0t8lm/qt.LT6DzpoHxJ.NwTpx.WTkOPwhseSva8pRixDSH2./ffedCjAMbTX1Uo1QNT7jJPJ6FIzU2i59K/"
        );
    }

    // --- paths ------------------------------------------------------------------

    #[test]
    fn paths() {
        assert_eq!(
            render("{{ '/etc/foo.txt' | basename }}|{{ '/etc/foo/' | basename }}|{{ '/etc/foo.txt' | dirname }}|{{ 'foo' | dirname }}|{{ '/' | dirname }}|{{ '//a' | dirname }}|{{ 'a/b/' | dirname }}"),
            "foo.txt||/etc||/|//|a/b"
        );
        assert_eq!(
            render("{{ '/a/b.tar.gz' | splitext }} {{ '.bashrc' | splitext }} {{ 'x.' | splitext }} {{ '/a.b/c' | splitext }}"),
            "['/a/b.tar', '.gz'] ['.bashrc', ''] ['x', '.'] ['/a.b/c', '']"
        );
        let home = std::env::var("HOME").unwrap_or_default();
        if !home.is_empty() {
            assert_eq!(
                render("{{ '~/x' | expanduser }}"),
                format!("{}/x", home.trim_end_matches('/'))
            );
        }
        assert_eq!(
            render("{{ 'a~/x' | expanduser }} {{ '~nosuchuser_zz/x' | expanduser }}"),
            "a~/x ~nosuchuser_zz/x"
        );
        assert_eq!(
            render("{{ ['a', 'b', '/c', 'd'] | path_join }} {{ 'a//b/./c/..' | normpath }} {{ '$NO_SUCH_VAR_ZZ/x' | expandvars }}"),
            "/c/d a/b $NO_SUCH_VAR_ZZ/x"
        );
    }

    // --- tests ------------------------------------------------------------------

    #[test]
    fn version_tests() {
        assert_eq!(
            render("{{ '1.10' is version('1.9', '>') }} {{ '2.0.0' is version('2.0', '==') }} {{ '2.0.0' is version('2.0', 'eq') }} {{ '1.2.3' is version_compare('1.2.4', 'lt') }} {{ '1.0a' is version('1.0', '>') }} {{ '1.0' is version('1.0.0', '<') }} {{ '1.2' is version('1.2', 'ne') }} {{ '1.2' is version('1.3', '<>') }} {{ '2' is version('10', '<') }} {{ '1.2' is version('1.2', '=') }}"),
            "True False False True True True False True True True"
        );
        assert_eq!(
            render("{{ '1.2.3' is version('1.2.3', '==', strict=true) }} {{ '1.2.3a1' is version('1.2.3', '<', strict=true) }} {{ '1.0.0-alpha.1' is version('1.0.0-alpha.beta', '<', version_type='semver') }} {{ '1.0.0+b1' is version('1.0.0', '==', version_type='semantic') }}"),
            "True True True True"
        );
        assert!(
            render_err("{{ 'x' is version('1', 'foo') }}").contains("Invalid operator type (foo)")
        );
        assert!(
            render_err("{{ '1.a' is version('1.1', '<') }}").contains("Version comparison failed")
        );
        assert!(render_err("{{ '1.0' is version('1.x', strict=true) }}")
            .contains("invalid version number '1.x'"));
    }

    #[test]
    fn regex_tests() {
        assert_eq!(
            render(
                r"{{ 'foobar' is match('foo') }} {{ 'foobar' is match('bar') }} {{ 'foobar' is search('bar') }} {{ 'FOO' is match('foo', ignorecase=true) }} {{ 'a\nfoo' is match('^foo', multiline=true) }} {{ 'foobar' is regex('bar') }} {{ 'foobar' is regex('bar', match_type='match') }} {{ 'foobar' is regex('foo', match_type='fullmatch') }} {{ 'foo' is regex('foo', match_type='fullmatch') }}"
            ),
            "True False True True False True False False True"
        );
        assert_eq!(
            render(
                r"{{ 'a\nb' is search('^b', multiline=true) }} {{ 42 is match('4') }} {{ 'xyz' is search('(?i)Y') }} {{ 'ab' is regex('a|ab', match_type='fullmatch') }}"
            ),
            "True True True True"
        );
    }

    #[test]
    fn result_tests() {
        let r = json_ctx(r#"{"r": {"changed": true, "failed": false}}"#);
        assert_eq!(
            render_ctx("{{ r is succeeded }} {{ r is success }} {{ r is failed }} {{ r is changed }} {{ r is skipped }} {{ r is failure }} {{ r is change }} {{ r is skip }} {{ r is successful }}", r),
            "True True False True False False True False True"
        );
        let looped = json_ctx(r#"{"r": {"results": [{"changed": false}, {"changed": true}]}}"#);
        assert_eq!(render_ctx("{{ r is changed }}", looped), "True");
        assert_eq!(
            render("{{ {'unreachable': true} is unreachable }} {{ {} is reachable }} {{ {'timedout': {'period': 5}} is timedout }} {{ {} is finished }} {{ {'started': 0} is started }}"),
            "True True True True False"
        );
        assert!(
            render_err("{{ 'x' is failed }}").contains("The 'failed' test expects a dictionary")
        );
    }

    #[test]
    fn file_tests() {
        let dir = std::env::temp_dir();
        let ctx = context! { d => dir.to_string_lossy().to_string() };
        assert_eq!(
            render_ctx("{{ d is directory }} {{ d is file }} {{ d is exists }} {{ d is abs }} {{ 'etc' is abs }} {{ '/nonexistent/zz' is exists }} {{ d is link }} {{ '/' is mount }} {{ d is same_file(d) }}", ctx),
            "True False True True False False False True True"
        );
    }

    #[test]
    fn other_tests() {
        assert_eq!(
            render("{{ 'yes' is truthy }} {{ '' is truthy }} {{ 'no' is truthy(convert_bool=true) }} {{ 'no' is falsy(convert_bool=true) }} {{ 0 is falsy }} {{ 'y' is truthy(convert_bool=true) }} {{ 'n' is truthy(convert_bool=true) }} {{ 'foo' is truthy(convert_bool=true) }}"),
            "True False False True True True False True"
        );
        assert_eq!(
            render("{{ [1, 2] is subset([1, 2, 3]) }} {{ [1, 4] is subset([1, 2, 3]) }} {{ [1, 2, 3] is superset([1]) }} {{ [1, 2] is contains(1) }} {{ [true, false] is any }} {{ [true, false] is all }} {{ [] is all }} {{ [] is any }}"),
            "True False True True True False True False"
        );
        assert_eq!(
            render("{{ 'abc' is sequence }} {{ {} is sequence }} {{ 5 is number }} {{ true is number }} {{ 'a' is string }} {{ {} is mapping }} {{ 'a' is iterable }} {{ 1 is iterable }}"),
            "True True True True True True True False"
        );
        assert_eq!(
            render("{{ x is defined }} {{ x is undefined }} {{ none is none }} {{ 1 is equalto 1 }} {{ 2 is gt 1 }} {{ (0.0 / 0.0 if false else 'nan' | float) is nan }}"),
            "False True True True True True"
        );
    }

    // --- engine integration ---------------------------------------------------

    #[test]
    fn python_methods_and_formatter() {
        assert_eq!(
            render("{{ 'a'.upper() }} {{ 'a b'.split() }} {{ 'a,b'.split(',') }} {{ 'abc'.startswith('a') }} {{ {'a': 1}.keys() | list }} {{ {'a': 1}.get('b', 2) }} {{ {'a': 1}.get('b') }}| {{ ' x '.strip() }} {{ 'a.b.c'.rsplit('.', 1) }} {{ 'ab'.replace('a', 'c') }} {{ '5'.zfill(3) }} {{ 'ab'.endswith(('b', 'c')) }} {{ 'x-y'.partition('-') }}"),
            "A ['a', 'b'] ['a', 'b'] True ['a'] 2 | x ['a.b', 'c'] cb 005 True ['x', '-', 'y']"
        );
        assert_eq!(
            render("{{ {'a': 1}.values() | list }} {{ 'abc'.find('c') }} {{ '{} {}'.format(1, 'a') }} {{ 'a'.center(5, '*') }} {{ 'a'.ljust(3, '.') }} {{ 'a'.rjust(3) }} {{ 'foo.txt'.removesuffix('.txt') }} {{ 'foo'.removeprefix('f') }} {{ 'AbC'.swapcase() }} {{ [1,2,1].index(2) }} {{ [1,2,1].count(1) }}"),
            "[1] 2 1 a **a** a..   a foo oo aBc 1 2"
        );
        assert!(render_err("{{ [1].append(2) }}").contains("immutable"));
        // none prints as an empty string, floats like Python
        assert_eq!(
            render("x{{ none }}y {{ 1e16 }} {{ 0.1 + 0.2 }}"),
            "xy 1e+16 0.30000000000000004"
        );
    }

    #[test]
    fn strict_undefined() {
        let mut env = env();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        let ok = |tpl: &str| {
            env.render_str(tpl, context! {})
                .unwrap_or_else(|e| panic!("{tpl}: {e}"))
        };
        assert_eq!(
            ok("{{ x | default('d') }} {{ x is defined }} {{ x | d([]) | length }}"),
            "d False 0"
        );
        for tpl in [
            "{{ x | to_json }}",
            "{{ x | bool }}",
            "{{ x | regex_replace('a', 'b') }}",
            "{{ x | combine({}) }}",
        ] {
            let err = env.render_str(tpl, context! {}).unwrap_err();
            assert!(err.to_string().contains("`x` is undefined"), "{tpl}: {err}");
        }
    }

    #[test]
    fn fuel_limits_big_results() {
        let mut env = env();
        env.set_fuel(Some(5_000));
        assert_eq!(
            env.render_str("{{ range(10) | product(range(10)) | length }}", context! {})
                .unwrap_or_default(),
            "100"
        );
        let err = env
            .render_str(
                "{{ range(100) | product(range(100), range(100)) | length }}",
                context! {},
            )
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OutOfFuel);
    }

    #[test]
    fn no_panics_on_odd_input() {
        let env = env();
        for tpl in [
            "{{ '[' | regex_search('[') }}",
            "{{ 'x' | regex_replace('(?<=a)b', '') }}",
            "{{ 'x' | regex_replace('a', '\\\\') }}",
            "{{ ':' | from_yaml }}",
            "{{ '*a' | from_yaml }}",
            "{{ '- &a [*a]' | from_yaml }}",
            "{{ '!!binary x' | from_yaml }}",
            "{{ none | to_nice_json }}",
            "{{ 5 | flatten }}",
            "{{ [1] | product(repeat=-1) }}",
            "{{ 'x' | b64decode(encoding='nope') }}",
            "{{ 'x' | password_hash('foo') }}",
            "{{ '%' | urldecode }}",
            "{{ 'http://h:99999' | urlsplit }}",
            "{{ [] | random }}",
            "{{ 'x' | int(base=99) }}",
            "{{ 'a' | comment('nope') }}",
            "{{ 'a'.center(-5) }}",
            "{{ [1] | zip_longest(x=1) }}",
            "{{ {} | subelements(1) }}",
        ] {
            // errors are fine, panics are not
            let _ = env.render_str(tpl, context! {});
        }
    }
}
