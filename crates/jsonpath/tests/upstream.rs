//! client-go `util/jsonpath` example cases (inputs and expected output from upstream's tests,
//! data held as decoded JSON the way kubectl holds it, so maps print with sorted keys).

use jsonpath::{Error, JsonPath};
use serde_json::{Value, json};

fn run(template: &str, data: &Value, allow_missing: bool) -> Result<String, Error> {
    JsonPath::parse(template)?
        .allow_missing_keys(allow_missing)
        .execute(data)
}

fn ok(template: &str, data: &Value) -> String {
    run(template, data, false).unwrap_or_else(|e| panic!("{template}: {e}"))
}

fn exec_err(template: &str, data: &Value) -> String {
    match run(template, data, false) {
        Err(Error::Execute(msg)) => msg,
        other => panic!("{template}: expected an execution error, got {other:?}"),
    }
}

fn parse_err(template: &str) -> String {
    match JsonPath::parse(template) {
        Err(Error::Parse(msg)) => msg,
        other => panic!("{template}: expected a parse error, got {other:?}"),
    }
}

fn store() -> Value {
    json!({
        "Name": "jsonpath",
        "Book": [
            {"Category": "reference", "Author": "Nigel Rees", "Title": "Sayings of the Centurey", "Price": 8.95},
            {"Category": "fiction", "Author": "Evelyn Waugh", "Title": "Sword of Honour", "Price": 12.99},
            {"Category": "fiction", "Author": "Herman Melville", "Title": "Moby Dick", "Price": 8.99}
        ],
        "Bicycle": [
            {"Color": "red", "Price": 19.95, "IsNew": true},
            {"Color": "green", "Price": 20.01, "IsNew": false}
        ],
        "Labels": {"engieer": 10, "web/html": 15, "k8s-app": 20},
        "Employees": {"jason": "manager", "dan": "clerk"}
    })
}

#[test]
fn store_examples() {
    let s = store();
    assert_eq!(ok("hello jsonpath", &Value::Null), "hello jsonpath");
    assert_eq!(ok("{..}", &json!([1, 2, 3])), "[1,2,3]");
    assert_eq!(ok("{[?(@<5)]}", &json!([2, 6, 3, 7])), "2 3");
    assert_eq!(ok(r#"{"{"}"#, &Value::Null), "{");
    assert_eq!(ok("{[1,3,4]}", &json!([0, 1, 2, 3, 4])), "1 3 4");
    assert_eq!(ok("{[0:2]}", &json!(["Monday", "Tudesday"])), "Monday Tudesday");
    assert_eq!(ok("hello {.Name}", &s), "hello jsonpath");
    assert_eq!(ok("{$.Labels.web/html}", &s), "15");
    assert_eq!(ok("{$.Employees.jason}", &s), "manager");
    assert_eq!(ok("{$.Employees.dan}", &s), "clerk");
    assert_eq!(ok("{.Labels.k8s-app}", &s), "20");
    assert_eq!(ok("{.Bicycle[*].Color}", &s), "red green");
    assert_eq!(ok("{.Book[*].Author}", &s), "Nigel Rees Evelyn Waugh Herman Melville");
    // Upstream walks struct fields in declaration order; decoded JSON maps go by sorted key.
    assert_eq!(
        ok(r#"{range .Bicycle[*]}{ "{" }{ @.* }{ "} " }{end}"#, &s),
        "{red true 19.95} {green false 20.01} "
    );
    assert_eq!(ok("{..Price}", &s), "19.95 20.01 8.95 12.99 8.99");
    assert_eq!(ok("{...Price}", &s), "19.95 20.01 8.95 12.99 8.99");
    assert_eq!(
        ok("{.Bicycle}", &s),
        r#"[{"Color":"red","IsNew":true,"Price":19.95},{"Color":"green","IsNew":false,"Price":20.01}]"#
    );
    assert_eq!(
        ok(r#"{range .Bicycle[*]}{ @ }{ " " }{end}"#, &s),
        r#"{"Color":"red","IsNew":true,"Price":19.95} {"Color":"green","IsNew":false,"Price":20.01} "#
    );
    let moby = r#"{"Author":"Herman Melville","Category":"fiction","Price":8.99,"Title":"Moby Dick"}"#;
    assert_eq!(ok("{.Book[-1:]}", &s), moby);
    assert_eq!(ok("{..Book[2]}", &s), moby);
    assert_eq!(
        ok("{.Bicycle[?(@.IsNew==true)]}", &s),
        r#"{"Color":"red","IsNew":true,"Price":19.95}"#
    );
}

#[test]
fn store_missing_keys_are_empty_when_allowed() {
    let s = store();
    assert_eq!(run("{.hello}", &s, true).unwrap(), "");
    assert_eq!(run("before-{.hello}after", &s, true).unwrap(), "before-after");
}

#[test]
fn store_execution_errors() {
    let s = store();
    assert_eq!(exec_err("{hello}", &s), "unrecognized identifier hello");
    assert_eq!(exec_err("{.hello}", &s), "hello is not found");
    assert_eq!(
        exec_err("{.Labels[0]}", &s),
        "map[string]interface {} is not array or slice"
    );
    assert_eq!(
        exec_err("{.Book[?(@.Price<>10)]}", &s),
        "unrecognized filter operator <>"
    );
    assert_eq!(
        exec_err("{range .Labels.*}{@}{end}{end}", &s),
        "not in range, nothing to end"
    );
    assert_eq!(
        parse_err("{............................................................Price}"),
        "invalid multiple recursive descent"
    );
}

#[test]
fn parser_errors() {
    assert_eq!(parse_err("{.hello"), "unclosed action");
    assert_eq!(parse_err("{*}"), "unrecognized character in action: U+002A '*'");
    assert_eq!(parse_err("{+12.3.0}"), "cannot parse number +12.3.0");
    assert_eq!(parse_err("{[1}"), "unterminated array");
    assert_eq!(parse_err("{[?(.price]}"), "unterminated filter");
    assert_eq!(parse_err("{........}"), "invalid multiple recursive descent");
    assert_eq!(parse_err("{.a\n}"), "unclosed action");
    assert_eq!(parse_err(r#"{"abc}"#), "unterminated quoted string");
    assert_eq!(parse_err("{[a]}"), "invalid array index a");
}

#[test]
fn filter_quoting_like_the_parser_tests() {
    let data = json!([
        {"test": "())(", "os": "\\'"},
        {"test": "x", "os": "{[()]}"}
    ]);
    assert_eq!(ok(r#"{[?(@.test == "())(")].os}"#, &data), "\\'");
    assert_eq!(ok(r#"{[?(@.os == '\\\'')].test}"#, &data), "())(");
    assert_eq!(ok(r#"{[?(@.os == "{[()]}")].test}"#, &data), "x");
    assert_eq!(ok("{[-1:].test}", &data), "x");
}

#[test]
fn types_input_slices() {
    let types = json!({
        "bools": [true, false, true, false],
        "integers": [1, 2, 3, 4],
        "floats": [1.0, 2.2, 3.3, 4.0],
        "strings": ["one", "two", "three", "four"],
        "interfaces": [true, "one", 1, 1.1],
        "maps": [
            {"name": "one", "value": 1},
            {"name": "two", "value": 2.02},
            {"name": "three", "value": 3.03},
            {"name": "four", "value": 4.04}
        ]
    });
    let cases = [
        ("{ .bools }", "[true,false,true,false]"),
        ("{ .bools[0] }", "true"),
        ("{ .bools[-1] }", "false"),
        ("{ .bools[0:2] }", "true false"),
        ("{ .bools[:2] }", "true false"),
        ("{ .bools[:4:2] }", "true true"),
        ("{ .integers }", "[1,2,3,4]"),
        ("{ .integers[-2] }", "3"),
        ("{ .integers[:4:2] }", "1 3"),
        ("{ .floats }", "[1,2.2,3.3,4]"),
        ("{ .floats[0] }", "1"),
        ("{ .floats[-2] }", "3.3"),
        ("{ .floats[:4:2] }", "1 3.3"),
        ("{ .strings }", r#"["one","two","three","four"]"#),
        ("{ .strings[-2] }", "three"),
        ("{ .strings[:4:2] }", "one three"),
        ("{ .interfaces }", r#"[true,"one",1,1.1]"#),
        ("{ .interfaces[0:2] }", "true one"),
        ("{ .interfaces[:4:2] }", "true 1"),
        ("{ .maps[0] }", r#"{"name":"one","value":1}"#),
        ("{ .maps[-2] }", r#"{"name":"three","value":3.03}"#),
        (
            "{ .maps[::2] }",
            r#"{"name":"one","value":1} {"name":"three","value":3.03}"#,
        ),
        (
            "{ .maps[1::2] }",
            r#"{"name":"two","value":2.02} {"name":"four","value":4.04}"#,
        ),
    ];
    for (template, want) in cases {
        assert_eq!(ok(template, &types), want, "{template}");
    }
}

#[test]
fn json_input_points() {
    let points = json!([
        {"id": "i1", "x": 4, "y": -5},
        {"id": "i2", "x": -2, "y": -5, "z": 1},
        {"id": "i3", "x": 8, "y": 3},
        {"id": "i4", "x": -6, "y": -1},
        {"id": "i5", "x": 0, "y": 2, "z": 1},
        {"id": "i6", "x": 1, "y": 4}
    ]);
    assert_eq!(ok("{[?(@.z)].id}", &points), "i2 i5");
    assert_eq!(ok("{[0]['id']}", &points), "i1");
    assert_eq!(ok("{[?(@.x>=1)].id}", &points), "i1 i3 i6");
    assert_eq!(ok("{[?(@.x<@.y)].id}", &points), "i4 i5 i6");
    assert_eq!(ok("{[?(@.y!=-5)].id}", &points), "i3 i4 i5 i6");
    assert_eq!(ok("{[?(@.x<=-2)].id}", &points), "i2 i4");
    assert_eq!(
        exec_err("{[?(@.x<1.5)].id}", &points),
        "incompatible types for comparison"
    );
}

fn nodes() -> Value {
    json!({
        "kind": "List",
        "items": [
            {
                "kind": "None",
                "metadata": {"name": "127.0.0.1", "labels": {"kubernetes.io/hostname": "127.0.0.1"}},
                "status": {
                    "capacity": {"cpu": "4"},
                    "ready": true,
                    "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.1"}]
                }
            },
            {
                "kind": "None",
                "metadata": {"name": "127.0.0.2", "labels": {"kubernetes.io/hostname": "127.0.0.2"}},
                "status": {
                    "capacity": {"cpu": "8"},
                    "ready": false,
                    "addresses": [
                        {"type": "LegacyHostIP", "address": "127.0.0.2"},
                        {"type": "another", "address": "127.0.0.3"}
                    ]
                }
            }
        ],
        "users": [
            {"name": "myself", "user": {}},
            {"name": "e2e", "user": {"username": "admin", "password": "secret"}}
        ]
    })
}

#[test]
fn kubernetes_nodes() {
    let n = nodes();
    let cases = [
        (
            "{range .items[*]}{.metadata.name}, {end}{.kind}",
            "127.0.0.1, 127.0.0.2, List",
        ),
        (
            r#"{range .items[*]}{.metadata.name}{"\t"}{end}"#,
            "127.0.0.1\t127.0.0.2\t",
        ),
        (
            "{.items[*].status.addresses[*].address}",
            "127.0.0.1 127.0.0.2 127.0.0.3",
        ),
        (
            "{range .items[*]}{range .status.addresses[*]}{.address}, {end}{end}",
            "127.0.0.1, 127.0.0.2, 127.0.0.3, ",
        ),
        ("{.items[*].metadata.name}", "127.0.0.1 127.0.0.2"),
        (
            "{.items[*]['metadata.name', 'status.capacity']}",
            r#"127.0.0.1 127.0.0.2 {"cpu":"4"} {"cpu":"8"}"#,
        ),
        (
            "{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}",
            r#"[127.0.0.1, {"cpu":"4"}] [127.0.0.2, {"cpu":"8"}] "#,
        ),
        (r#"{.users[?(@.name=="e2e")].user.password}"#, "secret"),
        (r"{.items[0].metadata.labels.kubernetes\.io/hostname}", "127.0.0.1"),
        (
            r#"{.items[?(@.metadata.labels.kubernetes\.io/hostname=="127.0.0.1")].kind}"#,
            "None",
        ),
        ("{.items[?(@..ready==true)].metadata.name}", "127.0.0.1"),
    ];
    for (template, want) in cases {
        assert_eq!(ok(template, &n), want, "{template}");
    }
    let mut names: Vec<String> = ok("{..name}", &n).split(' ').map(str::to_string).collect();
    names.sort();
    assert_eq!(names, ["127.0.0.1", "127.0.0.2", "e2e", "myself"]);
}

#[test]
fn empty_ranges() {
    let empty = json!({"items": []});
    assert_eq!(run("{range .items[*]}{.metadata.name}{end}", &empty, true).unwrap(), "");
    assert_eq!(
        run(
            r#"{range .items[*]}{.metadata.name}{":"}{range @.spec.containers[*]}{.name}{","}{end}{"+"}{end}"#,
            &empty,
            true
        )
        .unwrap(),
        ""
    );
}

fn nested() -> Value {
    let another = json!([{"name": "value1"}, {"name": "value2"}]);
    json!({"items": [
        {"metadata": {"name": "pod1"}, "spec": {"containers": [
            {"name": "foo", "another": another},
            {"name": "bar", "another": another}
        ]}},
        {"metadata": {"name": "pod2"}, "spec": {"containers": [
            {"name": "baz", "another": another}
        ]}}
    ]})
}

#[test]
fn nested_ranges() {
    let d = nested();
    assert_eq!(
        ok(
            r#"{range .items[*]}{.metadata.name}{":"}{range @.spec.containers[*]}{.name}{","}{end}{"+"}{end}"#,
            &d
        ),
        "pod1:foo,bar,+pod2:baz,+"
    );
    assert_eq!(
        ok(
            r##"{range .items[*]}{.metadata.name}{"~"}{range @.spec.containers[*]}{.name}{":"}{range @.another[*]}{.name}{","}{end}{"+"}{end}{"#"}{end}"##,
            &d
        ),
        "pod1~foo:value1,value2,+bar:value1,value2,+#pod2~baz:value1,value2,+#"
    );
    assert_eq!(
        ok(
            r#"{range .items[*]}{.metadata.name}{"\t"}{range @.spec.containers[*]}{.name}{" "}{end}{"\t"}{range @.spec.containers[*]}{.name}{" "}{end}{"\n"}{end}"#,
            &d
        ),
        "pod1\tfoo bar \tfoo bar \npod2\tbaz \tbaz \n"
    );
}

fn annotated_pods() -> Value {
    json!({"kind": "List", "items": [
        {"kind": "Pod", "metadata": {"name": "pod1", "annotations": {"color": "blue"}}},
        {"kind": "Pod", "metadata": {"name": "pod2"}},
        {"kind": "Pod", "metadata": {"name": "pod3", "annotations": {"color": "green"}}},
        {"kind": "Pod", "metadata": {"name": "pod4", "annotations": {"color": "blue"}}}
    ]})
}

#[test]
fn filter_partial_matches_with_missing_annotations() {
    let d = annotated_pods();
    let t = r#"{.items[?(@.metadata.annotations.color=="blue")].metadata.name}"#;
    assert_eq!(run(t, &d, true).unwrap(), "pod1 pod4");
    assert_eq!(
        run(t, &d, false),
        Err(Error::Execute("annotations is not found".into()))
    );
}

#[test]
fn negative_indexes() {
    let d = json!({"kind": "Pod", "spec": {"containers": [
        {"name": "fake0"}, {"name": "fake1"}, {"name": "fake2"}, {"name": "fake3"}
    ]}});
    let cases = [
        ("{.spec.containers[0].name}", "fake0"),
        ("{.spec.containers[0:0].name}", ""),
        ("{.spec.containers[0:-1].name}", "fake0 fake1 fake2"),
        ("{.spec.containers[-1].name}", "fake3"),
        ("{.spec.containers[-1:].name}", "fake3"),
        ("{.spec.containers[-2].name}", "fake2"),
        ("{.spec.containers[-2:].name}", "fake2 fake3"),
        ("{.spec.containers[-3].name}", "fake1"),
        ("{.spec.containers[-4].name}", "fake0"),
        ("{.spec.containers[-4:].name}", "fake0 fake1 fake2 fake3"),
        ("{.spec.containers[5:5].name}", ""),
        ("{.spec.containers[-5:-5].name}", ""),
    ];
    for (template, want) in cases {
        assert_eq!(ok(template, &d), want, "{template}");
    }
    assert_eq!(
        exec_err("{.spec.containers[-1:0].name}", &d),
        "starting index 3 is greater than ending index 0"
    );
    assert_eq!(
        exec_err("{.spec.containers[-5].name}", &d),
        "array index out of bounds: index -1, length 4"
    );
    assert_eq!(
        exec_err("{.spec.containers[4].name}", &d),
        "array index out of bounds: index 4, length 4"
    );
    assert_eq!(
        exec_err("{.spec.containers[0:9].name}", &d),
        "array index out of bounds: index 8, length 4"
    );
    assert_eq!(
        exec_err("{.spec.containers[3:1].name}", &d),
        "starting index 3 is greater than ending index 1"
    );
    assert_eq!(
        exec_err("{.spec.containers[-1:-2].name}", &d),
        "starting index 3 is greater than ending index 2"
    );
}

#[test]
fn running_pods_range_over_filter() {
    let d = json!({"kind": "List", "items": [
        {"kind": "Pod", "metadata": {"name": "pod1"}, "status": {"phase": "Running"}},
        {"kind": "Pod", "metadata": {"name": "pod2"}, "status": {"phase": "Running"}},
        {"kind": "Pod", "metadata": {"name": "pod3"}, "status": {"phase": "Running"}},
        {"resourceVersion": ""}
    ]});
    assert_eq!(
        run(
            r#"{range .items[?(.status.phase=="Running")]}{.metadata.name}{" is Running\n"}{end}"#,
            &d,
            true
        )
        .unwrap(),
        "pod1 is Running\npod2 is Running\npod3 is Running\n"
    );
}

#[test]
fn slice_steps() {
    let containers: Vec<Value> = (0..6).map(|i| json!({"name": format!("fake{i}")})).collect();
    let d = json!({"spec": {"containers": containers}});
    let cases = [
        ("{.spec.containers[0:].name}", "fake0 fake1 fake2 fake3 fake4 fake5"),
        ("{.spec.containers[0:6:].name}", "fake0 fake1 fake2 fake3 fake4 fake5"),
        ("{.spec.containers[0:6:1].name}", "fake0 fake1 fake2 fake3 fake4 fake5"),
        ("{.spec.containers[1:4:2].name}", "fake1 fake3"),
        ("{.spec.containers[1:4:3].name}", "fake1"),
        ("{.spec.containers[1:4:4].name}", "fake1"),
        ("{.spec.containers[0:6:2].name}", "fake0 fake2 fake4"),
        ("{.spec.containers[0:6:3].name}", "fake0 fake3"),
        ("{.spec.containers[0:6:5].name}", "fake0 fake5"),
        ("{.spec.containers[0:6:6].name}", "fake0"),
    ];
    for (template, want) in cases {
        assert_eq!(ok(template, &d), want, "{template}");
    }
    assert_eq!(exec_err("{.spec.containers[0:6:0].name}", &d), "step must be > 0");
    assert_eq!(exec_err("{.spec.containers[0:6:-1].name}", &d), "step must be > 0");
}

#[test]
fn escapes_in_string_literals() {
    let d = json!({"a": "x"});
    assert_eq!(ok(r#"{.a}{"\n"}{'\t'}{"\u00e9\"q\""}{'it\'s'}"#, &d), "x\n\té\"q\"it's");
    assert_eq!(parse_err(r#"{"\q"}"#), r#"unquote string "\q" error invalid syntax"#);
}

#[test]
fn scalars_print_like_go() {
    let d = json!({"i": 3, "f": 0.5, "big": 1234567.0, "b": false, "n": null, "s": "<x>",
                   "m": {"z": "<", "a": [1.0, 2.5]}});
    assert_eq!(
        ok("{.i} {.f} {.big} {.b} {.n} {.s}", &d),
        "3 0.5 1.234567e+06 false <nil> <x>"
    );
    assert_eq!(ok("{.m}", &d), r#"{"a":[1,2.5],"z":"\u003c"}"#);
    assert_eq!(ok("{}", &json!({"b": 1, "a": 2})), r#"{"a":2,"b":1}"#);
}

#[test]
fn json_output_mode() {
    let d = json!({"items": [{"name": "a"}, {"name": "b"}]});
    let out = JsonPath::parse("{.items[*].name}")
        .unwrap()
        .json_output(true)
        .execute(&d)
        .unwrap();
    assert_eq!(out, "[\n    \"a\",\n    \"b\"\n]\n");
}
