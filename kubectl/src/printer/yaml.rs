//! `-o yaml`: JSON values written exactly as upstream kubectl writes them (sigs.k8s.io/yaml,
//! i.e. go-yaml v2's encoder): keys in go-yaml's natural order, block style with lists at
//! their parent's indentation, strings quoted only when a plain scalar would read back as
//! something else, multi-line strings as literal blocks.
//!
//! Written by hand because byte-compatibility with kubectl's output is the point (users diff
//! the two and scripts grep them), and no Rust YAML emitter follows go-yaml's quoting rules.

use std::cmp::Ordering;

use serde_json::{Map, Value};

/// The YAML document for `value`.
pub fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => write_map(&mut out, map, 0),
        Value::Array(items) if !items.is_empty() => write_list(&mut out, items, 0),
        scalar => {
            out.push_str(&scalar_text(scalar, 0));
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, map: &Map<String, Value>, indent: usize) {
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| natural_order(a, b));
    for (i, key) in keys.into_iter().enumerate() {
        // The first key of a list item continues the `- ` line.
        if i > 0 || !out.ends_with("- ") {
            push_indent(out, indent);
        }
        out.push_str(&key_text(key));
        out.push(':');
        write_value(out, &map[key.as_str()], indent, true);
    }
}

fn write_list(out: &mut String, items: &[Value], indent: usize) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !out.ends_with("- ") {
            push_indent(out, indent);
        }
        out.push_str("- ");
        match item {
            Value::Object(map) if !map.is_empty() => write_map(out, map, indent + 2),
            Value::Array(inner) if !inner.is_empty() => write_list(out, inner, indent + 2),
            scalar => {
                out.push_str(&scalar_text(scalar, indent + 2));
                out.push('\n');
            }
        }
    }
}

/// The value after `key:`: nested blocks on the next lines, scalars after a space.
fn write_value(out: &mut String, value: &Value, indent: usize, _in_map: bool) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            out.push('\n');
            write_map(out, map, indent + 2);
        }
        // go-yaml puts a list at its key's indentation.
        Value::Array(items) if !items.is_empty() => {
            out.push('\n');
            write_list(out, items, indent);
        }
        scalar => {
            out.push(' ');
            out.push_str(&scalar_text(scalar, indent + 2));
            out.push('\n');
        }
    }
}

fn push_indent(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// A scalar (or an empty collection); block scalars' lines are indented by `indent`.
fn scalar_text(value: &Value, indent: usize) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string_text(s, indent, false),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
    }
}

fn key_text(key: &str) -> String {
    string_text(key, 0, true)
}

/// go-yaml's choice of style for a string: literal block for multi-line text, double quotes
/// when a plain scalar would resolve to another type, otherwise plain unless the emitter's
/// analysis forbids it (then single quotes, or double quotes when those are not allowed).
fn string_text(s: &str, indent: usize, simple_key: bool) -> String {
    let analysis = Analysis::of(s);
    if s.contains('\n') {
        if analysis.block_allowed && !simple_key {
            return literal_block(s, indent);
        }
        return double_quoted(s);
    }
    if !resolves_to_string(s) {
        return double_quoted(s);
    }
    if analysis.block_plain_allowed && !(s.is_empty() && simple_key) {
        return s.to_string();
    }
    if analysis.single_quoted_allowed {
        return format!("'{}'", s.replace('\'', "''"));
    }
    double_quoted(s)
}

fn literal_block(s: &str, indent: usize) -> String {
    let chomp = if !s.ends_with('\n') {
        "-"
    } else if s.ends_with("\n\n") {
        "+"
    } else {
        ""
    };
    let indicator = if s.starts_with(' ') || s.starts_with('\n') {
        "2"
    } else {
        ""
    };
    let mut out = format!("|{indicator}{chomp}");
    let body = s.strip_suffix('\n').unwrap_or(s);
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            push_indent(&mut out, indent);
            out.push_str(line);
        }
    }
    out
}

fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\u{1b}' => out.push_str("\\e"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if !is_printable(c) => {
                let code = c as u32;
                if code <= 0xff {
                    out.push_str(&format!("\\x{code:02X}"));
                } else if code <= 0xffff {
                    out.push_str(&format!("\\u{code:04X}"));
                } else {
                    out.push_str(&format!("\\U{code:08X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// go-yaml's `is_printable`: tabs and carriage returns are not (they force double quotes).
fn is_printable(c: char) -> bool {
    c == '\n'
        || ('\u{20}'..='\u{7e}').contains(&c)
        || ('\u{a0}'..='\u{d7ff}').contains(&c)
        || (('\u{e000}'..='\u{fffd}').contains(&c) && c != '\u{feff}')
        || ('\u{10000}'..='\u{10ffff}').contains(&c)
}

/// Whether go-yaml v2's resolver reads the plain scalar `s` back as a string (not null, bool,
/// int, float, timestamp or the merge key), which decides whether it must be quoted.
fn resolves_to_string(s: &str) -> bool {
    const SPECIAL: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True",
        "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", ".inf", ".Inf", ".INF", "+.inf",
        "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", "<<",
    ];
    if SPECIAL.contains(&s) {
        return false;
    }
    let first = s.chars().next().unwrap_or(' ');
    if !(first.is_ascii_digit() || matches!(first, '+' | '-' | '.')) {
        return true;
    }
    !(is_yaml_int(s) || is_yaml_float(s) || is_timestamp(s) || is_base60_float(s))
}

fn is_yaml_int(s: &str) -> bool {
    let plain = s.replace('_', "");
    let digits = plain.strip_prefix(['+', '-']).unwrap_or(&plain);
    if digits.is_empty() {
        return false;
    }
    if let Some(bin) = digits.strip_prefix("0b") {
        return !bin.is_empty() && bin.chars().all(|c| c == '0' || c == '1');
    }
    if let Some(hex) = digits.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    digits.chars().all(|c| c.is_ascii_digit())
}

fn is_yaml_float(s: &str) -> bool {
    let plain = s.replace('_', "");
    let body = plain.strip_prefix(['+', '-']).unwrap_or(&plain);
    if body.is_empty() || !body.chars().any(|c| c.is_ascii_digit()) {
        return false;
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let mantissa_ok = mantissa.chars().all(|c| c.is_ascii_digit() || c == '.')
        && mantissa.matches('.').count() <= 1
        && mantissa.chars().any(|c| c.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    mantissa_ok && exponent_ok
}

/// `2001-12-14`, `2001-12-14t21:59:43.10-05:00`, `2001-12-14 21:59:43.10 -5` and the like.
fn is_timestamp(s: &str) -> bool {
    let bytes = s.as_bytes();
    if bytes.len() < 8 {
        return false;
    }
    // Year-month-day with one- or two-digit month and day, then optional time.
    let mut parts = s.splitn(3, '-');
    let (Some(year), Some(month), Some(rest)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let day: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let digits = |t: &str, lens: &[usize]| lens.contains(&t.len()) && t.chars().all(|c| c.is_ascii_digit());
    if !(digits(year, &[4]) && digits(month, &[1, 2]) && digits(&day, &[1, 2])) {
        return false;
    }
    let time = &rest[day.len()..];
    time.is_empty() || time.starts_with(['t', 'T', ' ', '\t'])
}

/// YAML 1.1's sexagesimal floats (`1:20`, `190:20:30.15`), which go-yaml quotes.
fn is_base60_float(s: &str) -> bool {
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    let mut parts = body.split(':');
    let Some(first) = parts.next() else { return false };
    if first.is_empty()
        || !first.chars().all(|c| c.is_ascii_digit() || c == '_')
        || !first.starts_with(|c: char| c.is_ascii_digit() && c != '0')
    {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    if rest.is_empty() {
        return false;
    }
    rest.iter().enumerate().all(|(i, part)| {
        let (whole, fraction) = match part.split_once('.') {
            Some((w, f)) if i + 1 == rest.len() => (w, Some(f)),
            Some(_) => return false,
            None => (*part, None),
        };
        let two_digits = !whole.is_empty()
            && whole.len() <= 2
            && whole.chars().all(|c| c.is_ascii_digit())
            && whole.parse::<u8>().is_ok_and(|n| n < 60);
        two_digits && fraction.is_none_or(|f| f.chars().all(|c| c.is_ascii_digit() || c == '_'))
    })
}

/// libyaml's `yaml_emitter_analyze_scalar`, reduced to what block-context output needs.
struct Analysis {
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

impl Analysis {
    fn of(s: &str) -> Self {
        if s.is_empty() {
            return Self {
                block_plain_allowed: false,
                single_quoted_allowed: true,
                block_allowed: false,
            };
        }
        let chars: Vec<char> = s.chars().collect();
        let mut block_indicators = s.starts_with("---") || s.starts_with("...");
        let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
            (false, false, false, false);
        let (mut break_space, mut space_break, mut previous_space, mut previous_break) = (false, false, false, false);
        let (mut line_breaks, mut special) = (false, false);
        let mut preceded_by_whitespace = true;
        for (i, &c) in chars.iter().enumerate() {
            let next = chars.get(i + 1).copied();
            let followed_by_whitespace = next.is_none_or(|n| n == ' ' || n == '\t' || is_break(n));
            if i == 0 {
                match c {
                    '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`' => {
                        block_indicators = true
                    }
                    '?' | ':' if followed_by_whitespace => block_indicators = true,
                    '-' if followed_by_whitespace => block_indicators = true,
                    _ => {}
                }
            } else {
                match c {
                    ':' if followed_by_whitespace => block_indicators = true,
                    '#' if preceded_by_whitespace => block_indicators = true,
                    _ => {}
                }
            }
            if !is_printable(c) {
                special = true;
            }
            if is_break(c) {
                line_breaks = true;
            }
            let last = i + 1 == chars.len();
            if c == ' ' {
                if i == 0 {
                    leading_space = true;
                }
                if last {
                    trailing_space = true;
                }
                if previous_break {
                    break_space = true;
                }
                previous_space = true;
                previous_break = false;
            } else if is_break(c) {
                if i == 0 {
                    leading_break = true;
                }
                if last {
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
            preceded_by_whitespace = c == ' ' || c == '\t' || is_break(c);
        }
        let mut block_plain_allowed = true;
        let mut single_quoted_allowed = true;
        let mut block_allowed = true;
        if leading_space || leading_break || trailing_space || trailing_break {
            block_plain_allowed = false;
        }
        if trailing_space {
            block_allowed = false;
        }
        if break_space {
            block_plain_allowed = false;
            single_quoted_allowed = false;
        }
        if space_break || special {
            block_plain_allowed = false;
            single_quoted_allowed = false;
            block_allowed = false;
        }
        if line_breaks || block_indicators {
            block_plain_allowed = false;
        }
        Self {
            block_plain_allowed,
            single_quoted_allowed,
            block_allowed,
        }
    }
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// go-yaml v2's map key order: runs of digits compare as numbers, a non-letter sorts before
/// a letter, otherwise by code point.
pub fn natural_order(a: &str, b: &str) -> Ordering {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl { Ordering::Less } else { Ordering::Greater };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.saturating_mul(10).saturating_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.saturating_mul(10).saturating_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_lists_and_nesting_follow_go_yaml_layout() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"},
            "creationTimestamp": "2026-11-23T10:00:00Z", "annotations": {}},
            "spec": {"containers": [{"name": "c", "image": "busybox", "args": ["sleep", "3600"],
                "ports": [{"containerPort": 80}], "env": []}], "nodeSelector": null}});
        assert_eq!(
            to_yaml(&pod),
            "apiVersion: v1\nkind: Pod\nmetadata:\n  annotations: {}\n  creationTimestamp: \"2026-11-23T10:00:00Z\"\n  labels:\n    app: web\n  name: web\nspec:\n  containers:\n  - args:\n    - sleep\n    - \"3600\"\n    env: []\n    image: busybox\n    name: c\n    ports:\n    - containerPort: 80\n  nodeSelector: null\n"
        );
    }

    #[test]
    fn strings_are_quoted_only_when_they_must_be() {
        let cases = [
            ("plain", "plain"),
            ("", "\"\""),
            ("true", "\"true\""),
            ("yes", "\"yes\""),
            ("123", "\"123\""),
            ("1.5", "\"1.5\""),
            ("0x1F", "\"0x1F\""),
            ("1e3", "\"1e3\""),
            ("2026-11-23", "\"2026-11-23\""),
            ("1:20", "\"1:20\""),
            ("*", "'*'"),
            ("- x", "'- x'"),
            ("a: b", "'a: b'"),
            ("it's", "it's"),
            (" lead", "' lead'"),
            ("trail ", "'trail '"),
            ("a #b", "'a #b'"),
            ("a#b", "a#b"),
            ("10.0.0.1", "10.0.0.1"),
            ("1.2.3", "1.2.3"),
            ("100m", "100m"),
            ("tab\there", "\"tab\\there\""),
        ];
        for (input, want) in cases {
            assert_eq!(string_text(input, 0, false), want, "{input:?}");
        }
    }

    #[test]
    fn multi_line_strings_are_literal_blocks() {
        let value = json!({"metadata": {"annotations": {"last": "{\"a\":1}\n", "two": "a\nb"}}});
        assert_eq!(
            to_yaml(&value),
            "metadata:\n  annotations:\n    last: |\n      {\"a\":1}\n    two: |-\n      a\n      b\n"
        );
    }

    #[test]
    fn keys_sort_naturally_like_go_yaml() {
        let mut keys = vec!["b10", "b9", "a_b", "aB", "a-b", "ab"];
        keys.sort_by(|a, b| natural_order(a, b));
        assert_eq!(keys, ["a-b", "a_b", "aB", "ab", "b9", "b10"]);
    }
}
