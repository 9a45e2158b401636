use super::*;
use serde_json::json;

fn scope(v: serde_json::Value) -> Scope {
    let mut s = Scope::new();
    s.push_map(v.as_object().unwrap().clone());
    s
}

#[test]
fn native_types_and_strings() {
    let t = Templar::new();
    let s = scope(json!({"l": [1, 2], "n": 5, "name": "x"}));
    assert_eq!(t.render(&json!("{{ l }}"), &s).unwrap(), json!([1, 2]));
    // Ansible (jinja2_native off): a lone number comes back as text, None as ''.
    assert_eq!(t.render(&json!("{{ n + 1 }}"), &s).unwrap(), json!("6"));
    assert_eq!(t.render(&json!("{{ 0.5 * 3 }}"), &s).unwrap(), json!("1.5"));
    assert_eq!(t.render(&json!("{{ none }}"), &s).unwrap(), json!(""));
    assert_eq!(t.render(&json!("{{ n > 1 }}"), &s).unwrap(), json!(true));
    assert_eq!(
        t.render(&json!("{{ {'a': n} }}"), &s).unwrap(),
        json!({"a": 5})
    );
    assert_eq!(t.render(&json!("{{ name }}\n"), &s).unwrap(), json!("x\n"));
    assert_eq!(t.render(&json!("a-{{ name }}"), &s).unwrap(), json!("a-x"));
    assert_eq!(
        t.render(&json!({"k": ["{{ n }}"]}), &s).unwrap(),
        json!({"k": ["5"]})
    );
}

#[test]
fn lazy_variables_and_recursion_guard() {
    let t = Templar::new();
    let s = scope(json!({"a": "{{ b }}-x", "b": "{{ c }}", "c": 3, "self": "{{ self }}"}));
    assert_eq!(t.render(&json!("{{ a }}"), &s).unwrap(), json!("3-x"));
    let err = t.render(&json!("{{ self }}"), &s).unwrap_err();
    assert!(err.contains("recursive") || err.contains("self"), "{err}");
}

#[test]
fn undefined_names_the_variable() {
    let t = Templar::new();
    let s = scope(json!({}));
    let err = t.render(&json!("{{ nope }}"), &s).unwrap_err();
    assert!(err.contains("'nope' is undefined"), "{err}");
    assert_eq!(
        t.render(&json!("{{ nope | default('d') }}"), &s).unwrap(),
        json!("d")
    );
    assert!(!t.eval_bool(&json!("nope is defined"), &s).unwrap());
}

#[test]
fn python_style_printing() {
    let t = Templar::new();
    let s = scope(json!({"b": true, "l": ["a", "b"], "d": {"k": null}}));
    assert_eq!(
        t.render(&json!("{{ b }} {{ l }} {{ d }}"), &s).unwrap(),
        json!("True ['a', 'b'] {'k': None}")
    );
}

#[test]
fn conditionals() {
    let t = Templar::new();
    let s = scope(json!({"x": 1, "flag": "no"}));
    assert!(t.eval_bool(&json!("x == 1"), &s).unwrap());
    assert!(!t.eval_bool(&json!("x > 1"), &s).unwrap());
    assert!(t.eval_bool(&json!("{{ x == 1 }}"), &s).unwrap());
    assert!(!t.eval_bool(&json!(false), &s).unwrap());
}

#[test]
fn template_file_trims_blocks_and_keeps_newline() {
    let t = Templar::new();
    let s = scope(json!({"xs": [1, 2]}));
    let out = t
        .render_file(
            "t.j2",
            "{% for x in xs %}\nx={{ x }}\n{% endfor %}\nend\n",
            &s,
        )
        .unwrap();
    assert_eq!(out, "x=1\nx=2\nend\n");
}

/// What ansible-core 2.17 does with backslashes in playbook values (checked
/// against it): inside `{{ }}` a string literal's backslashes are doubled before
/// Jinja unescapes them, so `'\1'` is a group reference and `'\\1'` is not.
#[test]
fn backslashes_in_playbook_expressions_follow_ansible() {
    let t = Templar::new();
    let s = scope(json!({"s": "openjdk version \"17.0.13\" 2024-10-15"}));
    let one = r#"{{ s | regex_search('version "([^"]+)"', '\1') }}"#;
    assert_eq!(t.render(&json!(one), &s).unwrap(), json!(["17.0.13"]));
    let two = r#"{{ s | regex_search('version "([^"]+)"', '\\1') }}"#;
    assert!(t.render(&json!(two), &s).is_err());
    // \d reaches the regex as \d; outside the braces nothing changes.
    let digits = r"a\d {{ s | regex_search('\d+\.\d+') }}";
    assert_eq!(t.render(&json!(digits), &s).unwrap(), json!(r"a\d 17.0"));
    assert_eq!(escape_backslashes(r"{{ '\\' }}"), r"{{ '\\\\' }}");
    // Not in `{% %}` (conditionals are rendered that way), comments or raw blocks.
    assert_eq!(
        escape_backslashes(r"{% if x == '\n' %}{% endif %}"),
        r"{% if x == '\n' %}{% endif %}"
    );
    assert_eq!(
        escape_backslashes(r"{# '\n' #}{{ '\n' }}"),
        r"{# '\n' #}{{ '\\n' }}"
    );
    assert_eq!(
        escape_backslashes(r"{% raw %}{{ '\n' }}{% endraw %}"),
        r"{% raw %}{{ '\n' }}{% endraw %}"
    );
    // A `}}` inside a literal does not end the expression.
    assert_eq!(escape_backslashes(r#"{{ "}}\n" }}"#), r#"{{ "}}\\n" }}"#);
}
