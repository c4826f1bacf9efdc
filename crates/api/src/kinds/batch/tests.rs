//! batch/v1 defaulting and validation tests.

use serde_json::{Value, json};

use crate::kinds::testutil::{admit, assert_matches, check_invalid, create_ok, def, merge};
use crate::strategy::Operation;

fn job() -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "pi", "namespace": "default", "uid": "1234"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "pi", "image": "perl"}]}}}
    })
}

#[test]
fn job_defaults_and_generated_selector() {
    let j = create_ok(def("batch", "v1", "jobs"), job());
    let spec = &j["spec"];
    assert_eq!(spec["completions"], 1);
    assert_eq!(spec["parallelism"], 1);
    assert_eq!(spec["backoffLimit"], 6);
    assert_eq!(spec["completionMode"], "NonIndexed");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["podReplacementPolicy"], "TerminatingOrFailed");
    assert_eq!(
        spec["selector"],
        json!({"matchLabels": {"batch.kubernetes.io/controller-uid": "1234"}})
    );
    let labels = json!({
        "batch.kubernetes.io/controller-uid": "1234", "batch.kubernetes.io/job-name": "pi",
        "controller-uid": "1234", "job-name": "pi"
    });
    assert_eq!(spec["template"]["metadata"]["labels"], labels);
    assert_eq!(j["metadata"]["labels"], labels);
    assert_eq!(spec["template"]["spec"]["terminationGracePeriodSeconds"], 30);

    let parallel = create_ok(
        def("batch", "v1", "jobs"),
        merge(&job(), &json!({"spec": {"parallelism": 3}})),
    );
    assert!(parallel["spec"].get("completions").is_none());
}

#[test]
fn job_validation() {
    let d = def("batch", "v1", "jobs");
    check_invalid(
        d,
        &job(),
        &[
            (
                json!({"spec": {"template": {"spec": {"restartPolicy": null}}}}),
                &["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""],
            ),
            (
                json!({"spec": {"template": {"spec": {"restartPolicy": "Sometimes"}}}}),
                &[
                    "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                    "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"OnFailure\", \"Never\"",
                ],
            ),
            (
                json!({"spec": {"backoffLimit": -1}}),
                &["spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"],
            ),
            (
                json!({"spec": {"completionMode": "Indexed", "completions": null, "parallelism": 2}}),
                &["spec.completions: Required value: when completion mode is Indexed"],
            ),
            (
                json!({"spec": {"podReplacementPolicy": "Whenever"}}),
                &[
                    "spec.podReplacementPolicy: Unsupported value: \"Whenever\": supported values: \"Failed\", \"TerminatingOrFailed\"",
                ],
            ),
            (
                json!({"spec": {"template": {"metadata": {"labels": {"controller-uid": "other"}}}}}),
                &["spec.template.metadata.labels[controller-uid]: Invalid value: \"other\": must be '1234'"],
            ),
            (
                json!({"spec": {"manualSelector": true, "selector": {"matchLabels": {"a": "b"}}}}),
                &[
                    "spec.template.metadata.labels: Invalid value: map[string]string(nil): `selector` does not match template `labels`",
                ],
            ),
        ],
    );
    let old = create_ok(d, job());
    let mut changed = old.clone();
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5");
    let err = admit(d, changed, Some(&old), Operation::Update)
        .err()
        .unwrap_or_default();
    assert_matches(&err, &["spec.template: Invalid value: {"], &json!("template"));
    assert!(err[0].ends_with(": field is immutable"), "{}", err[0]);
    let err = admit(
        d,
        merge(&old, &json!({"spec": {"completions": 5}})),
        Some(&old),
        Operation::Update,
    )
    .err()
    .unwrap_or_default();
    assert_matches(
        &err,
        &["spec.completions: Invalid value: 5: field is immutable"],
        &json!("completions"),
    );
    assert!(
        admit(
            d,
            merge(&old, &json!({"spec": {"suspend": true, "activeDeadlineSeconds": 60}})),
            Some(&old),
            Operation::Update
        )
        .is_ok()
    );
}

fn cron_job() -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "hello", "namespace": "default"},
        "spec": {"schedule": "*/1 * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "hello", "image": "busybox"}]}}}}}
    })
}

#[test]
fn cron_jobs() {
    let d = def("batch", "v1", "cronjobs");
    let cj = create_ok(d, cron_job());
    let spec = &cj["spec"];
    assert_eq!(spec["concurrencyPolicy"], "Allow");
    assert_eq!(spec["suspend"], false);
    assert_eq!(spec["successfulJobsHistoryLimit"], 3);
    assert_eq!(spec["failedJobsHistoryLimit"], 1);
    assert_eq!(
        spec["jobTemplate"]["spec"]["template"]["spec"]["dnsPolicy"],
        "ClusterFirst"
    );
    assert!(spec["jobTemplate"]["spec"].get("backoffLimit").is_none());
    check_invalid(
        d,
        &cron_job(),
        &[
            (json!({"spec": {"schedule": ""}}), &["spec.schedule: Required value"]),
            (
                json!({"spec": {"schedule": "61 * * * *"}}),
                &["spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"],
            ),
            (
                json!({"spec": {"schedule": "TZ=UTC * * * * *"}}),
                &[
                    "spec.schedule: Invalid value: \"TZ=UTC * * * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
                ],
            ),
            (
                json!({"spec": {"concurrencyPolicy": "Sometimes"}}),
                &[
                    "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"",
                ],
            ),
            (
                json!({"spec": {"timeZone": "Local"}}),
                &["spec.timeZone: Invalid value: \"Local\": timeZone must be an explicit time zone"],
            ),
            (
                json!({"spec": {"timeZone": "../etc"}}),
                &["spec.timeZone: Invalid value: \"../etc\": unknown time zone ../etc"],
            ),
            (
                json!({"spec": {"jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Always"}}}}}}),
                &[
                    "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"",
                ],
            ),
            (
                json!({"spec": {"jobTemplate": {"spec": {"selector": {"matchLabels": {"a": "b"}}}}}}),
                &[
                    "spec.jobTemplate.spec.selector: Invalid value: {\"matchLabels\":{\"a\":\"b\"}}: `selector` will be auto-generated",
                ],
            ),
            (
                json!({"metadata": {"name": "a".repeat(53)}}),
                &["metadata.name: Invalid value: \"aaaa"],
            ),
        ],
    );
    assert!(
        create_ok(
            d,
            merge(
                &cron_job(),
                &json!({"spec": {"timeZone": "Etc/UTC", "schedule": "@daily"}})
            )
        )["spec"]["timeZone"]
            == "Etc/UTC"
    );
}
