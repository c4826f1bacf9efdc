//! Tests of label and field selector parsing, printing and matching.

use super::*;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn label_selector_canonical_form() {
    let cases = [
        ("", ""),
        ("a=b", "a=b"),
        ("a==b", "a==b"),
        ("a!=b", "a!=b"),
        (" x = y , a in (c, b,b) ", "a in (b,c),x=y"),
        ("a notin (x)", "a notin (x)"),
        ("a", "a"),
        ("!a", "!a"),
        ("  !a  ,b", "!a,b"),
        ("a>1", "a>1"),
        ("a<1", "a<1"),
        ("x=", "x="),
        ("x=,z= ", "x=,z="),
        ("a in ()", "a in ()"),
        ("a in (,b)", "a in (,b)"),
        ("x in (in)", "x in (in)"),
        ("in=notin", "in=notin"),
        ("example.com/key=v", "example.com/key=v"),
        ("z,a=1", "a=1,z"),
    ];
    for (input, want) in cases {
        let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(sel.to_string(), want, "{input}");
    }
}

#[test]
fn label_selector_errors() {
    let cases = [
        ("a=b,", "found '', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("a b", "found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a in x", "unable to parse requirement: found 'x' expected: '('"),
        ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a=(b)", "unable to parse requirement: found '(', expected: identifier"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        (
            "a>b",
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer",
        ),
    ];
    for (input, want) in cases {
        match LabelSelector::parse(input) {
            Ok(sel) => panic!("{input}: parsed as {sel}"),
            Err(e) => assert!(e.to_string().ends_with(want), "{input}: got {e}, want …{want}"),
        }
    }
    let e = LabelSelector::parse("a/b/c=d").map(|_| ()).unwrap_err().to_string();
    assert!(
        e.starts_with("unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a valid label key"),
        "{e}"
    );
    let e = LabelSelector::parse("app=a/b").map(|_| ()).unwrap_err().to_string();
    assert!(
        e.starts_with("unable to parse requirement: values[0][app]: Invalid value: \"a/b\": a valid label must"),
        "{e}"
    );
}

#[test]
fn label_selector_matching() {
    let l = labels(&[("app", "web"), ("tier", "front"), ("n", "5")]);
    let cases = [
        ("", true),
        ("app=web", true),
        ("app==web", true),
        ("app=db", false),
        ("app!=db", true),
        ("missing!=x", true),
        ("app in (db,web)", true),
        ("app notin (db,web)", false),
        ("missing notin (x)", true),
        ("missing in (x)", false),
        ("app", true),
        ("!app", false),
        ("!missing", true),
        ("n>4", true),
        ("n>5", false),
        ("n<6", true),
        ("app>1", false),
        ("missing<1", false),
        ("app=web,tier=back", false),
        ("app=web,tier=front", true),
    ];
    for (input, want) in cases {
        let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(sel.matches(&l), want, "{input}");
    }
    assert!(LabelSelector::parse("").is_ok_and(|s| s.is_empty()));
    assert!(!LabelSelector::nothing().matches(&l));
    assert!(!LabelSelector::nothing().is_empty());
}

#[test]
fn label_selector_from_api() {
    let empty = metav1::LabelSelector::default();
    let sel = LabelSelector::from_label_selector(&empty).unwrap_or_default();
    assert!(sel.is_empty());
    assert!(sel.matches(&labels(&[("a", "b")])));

    let api = metav1::LabelSelector {
        match_labels: Some(labels(&[("app", "web")])),
        match_expressions: Some(vec![
            metav1::LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["b".into(), "a".into()]),
            },
            metav1::LabelSelectorRequirement {
                key: "canary".into(),
                operator: "DoesNotExist".into(),
                values: None,
            },
        ]),
    };
    let sel = LabelSelector::from_label_selector(&api).unwrap_or_default();
    assert_eq!(sel.to_string(), "app=web,!canary,tier in (a,b)");
    assert!(sel.matches(&labels(&[("app", "web"), ("tier", "a")])));
    assert!(!sel.matches(&labels(&[("app", "web"), ("tier", "a"), ("canary", "1")])));

    let bad_op = metav1::LabelSelector {
        match_expressions: Some(vec![metav1::LabelSelectorRequirement {
            key: "a".into(),
            operator: "Gt".into(),
            values: None,
        }]),
        ..Default::default()
    };
    assert_eq!(
        LabelSelector::from_label_selector(&bad_op),
        Err("\"Gt\" is not a valid label selector operator".to_string())
    );
    let empty_in = metav1::LabelSelector {
        match_expressions: Some(vec![metav1::LabelSelectorRequirement {
            key: "a".into(),
            operator: "In".into(),
            values: Some(vec![]),
        }]),
        ..Default::default()
    };
    assert_eq!(
        LabelSelector::from_label_selector(&empty_in),
        Err("values: Invalid value: []string{}: for 'in', 'notin' operators, values set can't be empty".to_string())
    );
    let bad_key = metav1::LabelSelector {
        match_labels: Some(labels(&[("a b", "c")])),
        ..Default::default()
    };
    let e = LabelSelector::from_label_selector(&bad_key).unwrap_err();
    assert!(e.starts_with("key: Invalid value: \"a b\": name part"), "{e}");
}

#[test]
fn field_selector_parse_and_print() {
    let cases = [
        ("", ""),
        ("metadata.name=web", "metadata.name=web"),
        ("metadata.name==web", "metadata.name=web"),
        (
            "status.phase!=Running,metadata.name=a",
            "metadata.name=a,status.phase!=Running",
        ),
        ("a=x\\,y\\=z\\\\", "a=x\\,y\\=z\\\\"),
        ("a=", "a="),
        (",a=b,", "a=b"),
    ];
    for (input, want) in cases {
        let sel = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(sel.to_string(), want, "{input}");
    }
    let sel = FieldSelector::parse("a=x\\,y").unwrap_or_default();
    assert_eq!(sel.requirements()[0].value, "x,y");
    assert_eq!(sel.requirements()[0].op, FieldOperator::Equals);
}

#[test]
fn field_selector_errors() {
    assert_eq!(
        FieldSelector::parse("abc").map(|_| ()).unwrap_err().to_string(),
        "invalid selector: 'abc'; can't understand 'abc'"
    );
    assert_eq!(
        FieldSelector::parse("a=b\\x").map(|_| ()).unwrap_err().to_string(),
        "invalid field selector: invalid escape sequence: \\x"
    );
    assert_eq!(
        FieldSelector::parse("a=b=c").map(|_| ()).unwrap_err().to_string(),
        "invalid field selector: unescaped character in value: 61"
    );
    assert_eq!(
        FieldSelector::parse("a=b\\").map(|_| ()).unwrap_err().to_string(),
        "invalid field selector: invalid escape sequence: \\"
    );
}

#[test]
fn field_selector_matching_and_exact() {
    let fields = |f: &str| match f {
        "metadata.name" => Some("web".to_string()),
        "status.phase" => Some("Running".to_string()),
        _ => None,
    };
    let cases = [
        ("", true),
        ("metadata.name=web", true),
        ("metadata.name=db", false),
        ("status.phase!=Running", false),
        ("status.phase!=Pending,metadata.name=web", true),
        ("spec.nodeName=", true),
        ("spec.nodeName!=", false),
    ];
    for (input, want) in cases {
        let sel = FieldSelector::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(sel.matches(fields), want, "{input}");
    }
    let sel = FieldSelector::parse("metadata.namespace!=x,metadata.name==web").unwrap_or_default();
    assert_eq!(sel.exact("metadata.name"), Some("web"));
    assert_eq!(sel.exact("metadata.namespace"), None);
}
