//! Printing values the way the Go side of kubectl does: `json.Marshal` (compact, sorted keys,
//! HTML-safe escapes), `json.MarshalIndent`, `fmt.Sprint` (`%v`), `%#v` and `%q`, with Go's
//! number formatting (integers plain, `float64` in its shortest form).

use serde_json::{Map, Number, Value};

/// Shortest round-trip decimal digits of a finite, non-zero `f`, and the decimal point position
/// (`value = 0.DIGITS * 10^point`).
fn shortest_digits(f: f64) -> (String, i32) {
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    (digits, exp + 1)
}

/// `%e` with Go's shortest precision: `d.ddde±XX`, at least two exponent digits.
fn fmt_e(neg: bool, digits: &str, point: i32) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    let exp = point - 1;
    out.push('e');
    out.push(if exp < 0 { '-' } else { '+' });
    let abs = exp.unsigned_abs();
    if abs < 10 {
        out.push('0');
    }
    out.push_str(&abs.to_string());
    out
}

/// `%f` with Go's shortest precision.
fn fmt_f(neg: bool, digits: &str, point: i32) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if point <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat(point.unsigned_abs() as usize));
        out.push_str(digits);
    } else {
        let point = point as usize;
        if digits.len() <= point {
            out.push_str(digits);
            out.push_str(&"0".repeat(point - digits.len()));
        } else {
            out.push_str(&digits[..point]);
            out.push('.');
            out.push_str(&digits[point..]);
        }
    }
    out
}

/// A `float64` as `fmt.Sprint` prints it (`%v`, i.e. shortest `%g`): `1`, `2.5`, `1e+06`.
pub(crate) fn go_float_v(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let (digits, point) = shortest_digits(f);
    let exp = point - 1;
    if !(-4..6).contains(&exp) {
        fmt_e(f < 0.0, &digits, point)
    } else {
        fmt_f(f < 0.0, &digits, point)
    }
}

/// A `float64` as `encoding/json` writes it: plain unless below 1e-6 or from 1e21 up.
pub(crate) fn go_float_json(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let (digits, point) = shortest_digits(f);
    let abs = f.abs();
    if !(1e-6..1e21).contains(&abs) {
        let s = fmt_e(f < 0.0, &digits, point);
        // encoding/json trims e-07 to e-7 (positive exponents keep their two digits).
        match s.rfind("e-0") {
            Some(i) if i + 4 == s.len() => format!("{}e-{}", &s[..i], &s[i + 3..]),
            _ => s,
        }
    } else {
        fmt_f(f < 0.0, &digits, point)
    }
}

fn number_text(n: &Number, float: fn(f64) -> String) -> String {
    if let Some(i) = n.as_i64() {
        i.to_string()
    } else if let Some(u) = n.as_u64() {
        u.to_string()
    } else {
        float(n.as_f64().unwrap_or(0.0))
    }
}

fn sorted(map: &Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    entries
}

/// A JSON string literal as `encoding/json` writes it (`<`, `>`, `&`, U+2028 and U+2029 escaped).
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_json(v: &Value, indent: Option<&str>, depth: usize, out: &mut String) {
    let newline = |out: &mut String, depth: usize| {
        if let Some(unit) = indent {
            out.push('\n');
            out.push_str(&unit.repeat(depth));
        }
    };
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_text(n, go_float_json)),
        Value::String(s) => json_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                write_json(item, indent, depth + 1, out);
            }
            if !items.is_empty() {
                newline(out, depth);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, depth + 1);
                json_string(k, out);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_json(item, indent, depth + 1, out);
            }
            if !map.is_empty() {
                newline(out, depth);
            }
            out.push('}');
        }
    }
}

/// `json.Marshal` of a value: compact, keys sorted, Go's escapes and number forms.
pub fn marshal_go_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, None, 0, &mut out);
    out
}

/// `json.MarshalIndent(v, "", "    ")`.
pub(crate) fn marshal_go_json_indent(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, Some("    "), 0, &mut out);
    out
}

/// `fmt.Sprint` of a value decoded into `interface{}`: strings raw, `<nil>`, `map[k:v]` with
/// sorted keys, `[a b]`; this is what custom-columns cells hold.
pub fn go_sprint(v: &Value) -> String {
    let mut out = String::new();
    write_sprint(v, &mut out);
    out
}

fn write_sprint(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_text(n, go_float_v)),
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_sprint(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push_str("map[");
            for (i, (k, item)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_sprint(item, out);
            }
            out.push(']');
        }
    }
}

/// A scalar result as the jsonpath printer writes it (`fmt.Fprint`); maps and lists go
/// through [`marshal_go_json`] instead.
pub(crate) fn result_text(v: &Value) -> String {
    match v {
        Value::Array(_) | Value::Object(_) => marshal_go_json(v),
        _ => go_sprint(v),
    }
}

/// Go's `%q` (`strconv.Quote`).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Go's `%#v` of a value decoded into `map[string]interface{}` (kubectl's debug output).
pub(crate) fn go_sharp_v(v: &Value) -> String {
    let mut out = String::new();
    write_sharp_v(v, true, &mut out);
    out
}

fn write_sharp_v(v: &Value, top: bool, out: &mut String) {
    match v {
        Value::Null if top => out.push_str("<nil>"),
        Value::Null => out.push_str("interface {}(nil)"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_text(n, go_float_v)),
        Value::String(s) => out.push_str(&go_quote(s)),
        Value::Array(items) => {
            out.push_str("[]interface {}{");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_sharp_v(item, false, out);
            }
            out.push('}');
        }
        Value::Object(map) => {
            out.push_str("map[string]interface {}{");
            for (i, (k, item)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&go_quote(k));
                out.push(':');
                write_sharp_v(item, false, out);
            }
            out.push('}');
        }
    }
}

/// The Go type name kubectl's errors use for a decoded value.
pub(crate) fn go_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "interface {}",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_like_go_v() {
        assert_eq!(go_float_v(4.0), "4");
        assert_eq!(go_float_v(2.2), "2.2");
        assert_eq!(go_float_v(-0.5), "-0.5");
        assert_eq!(go_float_v(123456.0), "123456");
        assert_eq!(go_float_v(1234567.0), "1.234567e+06");
        assert_eq!(go_float_v(0.0001), "0.0001");
        assert_eq!(go_float_v(0.00001), "1e-05");
    }

    #[test]
    fn floats_marshal_like_encoding_json() {
        assert_eq!(go_float_json(1234567.0), "1234567");
        assert_eq!(go_float_json(1e21), "1e+21");
        assert_eq!(go_float_json(1e-7), "1e-7");
        assert_eq!(go_float_json(0.000001), "0.000001");
        assert_eq!(go_float_json(3.03), "3.03");
    }

    #[test]
    fn marshals_sorted_and_html_safe() {
        let v = json!({"b": [1, 2.5, "<a&b>"], "a": {"x": null, "y": true}});
        assert_eq!(
            marshal_go_json(&v),
            r#"{"a":{"x":null,"y":true},"b":[1,2.5,"\u003ca\u0026b\u003e"]}"#
        );
        assert_eq!(
            marshal_go_json_indent(&json!({"a": [1], "b": {}})),
            "{\n    \"a\": [\n        1\n    ],\n    \"b\": {}\n}"
        );
    }

    #[test]
    fn sprints_like_go() {
        let v = json!({"b": [1, "x"], "a": null});
        assert_eq!(go_sprint(&v), "map[a:<nil> b:[1 x]]");
        assert_eq!(
            go_sharp_v(&v),
            r#"map[string]interface {}{"a":interface {}(nil), "b":[]interface {}{1, "x"}}"#
        );
        assert_eq!(go_quote("{.a\n\"}"), r#""{.a\n\"}""#);
    }
}
