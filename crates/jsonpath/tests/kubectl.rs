//! kubectl-level behaviour on a Pod list: `-o jsonpath=...` through [`JsonPathPrinter`] and
//! `-o custom-columns=...` / `-o custom-columns-file=...` through [`CustomColumns`].

use jsonpath::{CustomColumns, Error, JsonPathPrinter, relaxed_expression};
use serde_json::{Value, json};

fn pod(name: &str, images: &[&str], node: Option<&str>, labels: Value) -> Value {
    let containers: Vec<Value> = images
        .iter()
        .enumerate()
        .map(|(i, image)| json!({"name": format!("c{i}"), "image": image}))
        .collect();
    let mut spec = json!({"containers": containers});
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": spec,
        "status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": if name == "db-0" { "False" } else { "True" }}
        ]}
    })
}

fn pods() -> Vec<Value> {
    vec![
        pod(
            "web-1",
            &["nginx:1.27", "envoy:v1.31"],
            Some("node-a"),
            json!({"app": "web", "tier": "front"}),
        ),
        pod("web-2", &["nginx:1.27"], Some("node-b"), json!({"app": "web"})),
        pod("db-0", &["postgres:17"], None, json!({})),
    ]
}

/// What `kubectl get pods` hands a non-table printer: the objects wrapped in a List.
fn pod_list() -> Value {
    json!({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": pods()})
}

fn print(template: &str, obj: &Value) -> String {
    JsonPathPrinter::new(template)
        .and_then(|p| p.print(obj))
        .unwrap_or_else(|e| panic!("{template}: {e}"))
}

#[test]
fn jsonpath_names_of_a_list() {
    assert_eq!(print("{.items[*].metadata.name}", &pod_list()), "web-1 web-2 db-0");
    assert_eq!(print("{.metadata.name}", &pods()[0]), "web-1");
}

#[test]
fn jsonpath_images_with_range_and_newlines() {
    let t = r#"{range .items[*]}{.metadata.name}{"\t"}{range .spec.containers[*]}{.image}{" "}{end}{"\n"}{end}"#;
    assert_eq!(
        print(t, &pod_list()),
        "web-1\tnginx:1.27 envoy:v1.31 \nweb-2\tnginx:1.27 \ndb-0\tpostgres:17 \n"
    );
    assert_eq!(
        print("{.items[*].spec.containers[*].image}", &pod_list()),
        "nginx:1.27 envoy:v1.31 nginx:1.27 postgres:17"
    );
}

#[test]
fn jsonpath_filters_on_conditions() {
    let t = r#"{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}"#;
    assert_eq!(print(t, &pod_list()), "web-1=True\nweb-2=True\ndb-0=False\n");
    assert_eq!(
        print(r#"{.items[?(@.spec.nodeName)].metadata.name}"#, &pod_list()),
        "web-1 web-2"
    );
    assert_eq!(
        print(
            r#"{.items[?(@.metadata.labels.app!="web")].metadata.name}"#,
            &pod_list()
        ),
        ""
    );
}

#[test]
fn jsonpath_missing_keys_print_nothing_by_default() {
    assert_eq!(print("{.items[*].spec.nodeName}", &pod_list()), "node-a node-b");
    assert_eq!(print("[{.items[2].spec.nodeName}]", &pod_list()), "[]");
}

#[test]
fn jsonpath_errors_worded_like_kubectl() {
    assert_eq!(
        JsonPathPrinter::new("{.x").unwrap_err().to_string(),
        "error parsing jsonpath {.x, unclosed action"
    );
    assert_eq!(
        JsonPathPrinter::new("").unwrap_err().to_string(),
        "template format specified but no template given"
    );
    let obj = json!({"kind": "Pod", "n": null, "a": [1]});
    let err = JsonPathPrinter::new("{.spec}")
        .unwrap()
        .allow_missing_keys(false)
        .print(&obj)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "error executing jsonpath \"{.spec}\": Error executing template: spec is not found. \
         Printing more information for debugging the template:\n\
         \ttemplate was:\n\t\t{.spec}\n\
         \tobject given to jsonpath engine was:\n\
         \t\tmap[string]interface {}{\"a\":[]interface {}{1}, \"kind\":\"Pod\", \"n\":interface {}(nil)}\n\n\n"
    );
    let err = JsonPathPrinter::new("{.items[5]}")
        .unwrap()
        .print(&pod_list())
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Error executing template: array index out of bounds: index 5, length 3."),
        "{err}"
    );
}

#[test]
fn brace_less_templates_are_literal_but_relaxed_paths_wrap() {
    // Upstream's jsonpath printer does not wrap: the text is printed as is.
    assert_eq!(print(".metadata.name", &pods()[0]), ".metadata.name");
    assert_eq!(relaxed_expression(".metadata.name").unwrap(), "{.metadata.name}");
    assert_eq!(relaxed_expression("metadata.name").unwrap(), "{.metadata.name}");
    assert_eq!(relaxed_expression("{metadata.name}").unwrap(), "{.metadata.name}");
    assert_eq!(relaxed_expression("{.metadata.name}").unwrap(), "{.metadata.name}");
    assert_eq!(relaxed_expression("").unwrap(), "");
    let wrapped = relaxed_expression(".metadata.name").unwrap();
    assert_eq!(print(&wrapped, &pods()[0]), "web-1");
    assert_eq!(
        relaxed_expression("{.a}{.b}").unwrap_err().to_string(),
        "unexpected path string, expected a 'name1.name2' or '.name1.name2' or '{name1.name2}' or '{.name1.name2}'"
    );
}

#[test]
fn custom_columns_with_multi_values_and_missing_fields() {
    let cc = CustomColumns::parse(
        "NAME:.metadata.name,IMAGES:.spec.containers[*].image,NODE:.spec.nodeName,LABELS:.metadata.labels",
    )
    .unwrap();
    assert_eq!(cc.columns()[1].field_spec, "{.spec.containers[*].image}");
    let want = "\
NAME    IMAGES                   NODE     LABELS
web-1   nginx:1.27,envoy:v1.31   node-a   map[app:web tier:front]
web-2   nginx:1.27               node-b   map[app:web]
db-0    postgres:17              <none>   map[]
";
    assert_eq!(cc.render(&pods(), false).unwrap(), want);
    // A List object expands to its items, exactly as the separate objects do.
    assert_eq!(cc.render(&[pod_list()], false).unwrap(), want);
    let no_headers = cc.render(&pods(), true).unwrap();
    assert_eq!(
        no_headers.lines().next(),
        Some("web-1   nginx:1.27,envoy:v1.31   node-a   map[app:web tier:front]")
    );
    assert_eq!(cc.render(&[], false).unwrap(), "");
}

#[test]
fn custom_columns_single_column_and_short_headers() {
    let cc = CustomColumns::parse("N:metadata.name").unwrap();
    assert_eq!(cc.render(&pods(), false).unwrap(), "N\nweb-1\nweb-2\ndb-0\n");
    let cc = CustomColumns::parse("A:{.kind},B:.status.phase").unwrap();
    assert_eq!(cc.render(&pods()[..1], false).unwrap(), "A     B\nPod   Running\n");
}

#[test]
fn custom_columns_file_form() {
    let template = "NAME          IMAGE\r\n.metadata.name   {.spec.containers[0].image}\n";
    let cc = CustomColumns::from_template(template).unwrap();
    assert_eq!(
        cc.render(&pods(), false).unwrap(),
        "NAME    IMAGE\nweb-1   nginx:1.27\nweb-2   nginx:1.27\ndb-0    postgres:17\n"
    );
    assert_eq!(
        CustomColumns::from_template("A B\n.a\n").unwrap_err().to_string(),
        "number of headers (2) and field specifications (1) don't match"
    );
    assert_eq!(
        CustomColumns::from_template("A B\n").unwrap_err().to_string(),
        "invalid template, missing spec line. Expected format is one line of space separated headers, one line of space separated column specs."
    );
    assert!(
        CustomColumns::from_template("")
            .unwrap_err()
            .to_string()
            .contains("missing header line")
    );
}

#[test]
fn custom_columns_spec_errors() {
    assert_eq!(
        CustomColumns::parse("").unwrap_err(),
        Error::Usage("custom-columns format specified but no custom columns given".into())
    );
    assert_eq!(
        CustomColumns::parse("NAME:.metadata.name,IMAGE")
            .unwrap_err()
            .to_string(),
        "unexpected custom-columns spec: IMAGE, expected <header>:<json-path-expr>"
    );
    assert_eq!(
        CustomColumns::parse("X:.a[").unwrap_err(),
        Error::Parse("unterminated array".into())
    );
}

#[test]
fn custom_columns_escape_terminal_sequences() {
    let obj = json!({"metadata": {"name": "evil\u{1b}[31m\r"}});
    let cc = CustomColumns::parse("NAME:.metadata.name").unwrap();
    assert_eq!(cc.render(&[obj], true).unwrap(), "evil^[[31m\\r\n");
}
