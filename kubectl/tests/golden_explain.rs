//! Golden tests of `kubectl explain`: ours and upstream 1.37 render the apiserver's OpenAPI v3
//! schemas identically (resources, field paths, `--recursive`, `--api-version`, errors), and
//! its Swagger 2.0 document with `--output=plaintext-openapiv2` (which upstream reads as
//! protobuf, ours as JSON).

mod common;

use anyhow::Result;
use common::Clients;

#[test]
fn explain_matches_upstream() -> Result<()> {
    let clients = Clients::new("golden-explain")?;
    let deployment = clients.same(&["explain", "deployments"])?;
    assert!(
        deployment
            .stdout
            .starts_with("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\nDESCRIPTION:\n")
    );
    for args in [
        &["explain", "deploy.spec.strategy"][..],
        &["explain", "pods.spec.containers.ports"],
        &["explain", "pods.spec.containers.ports.protocol"],
        &["explain", "pod.metadata.labels"],
        &["explain", "svc.spec"],
        &["explain", "nodes.status.conditions"],
        &["explain", "cm"],
        &["explain", "pods", "--recursive"],
        &["explain", "deploy.spec.template", "--recursive"],
        &["explain", "crd.spec.versions.schema"],
        &["explain", "cronjobs.spec.jobTemplate.spec"],
        &["explain", "hpa.spec.metrics", "--api-version=autoscaling/v2"],
        &["explain", "deploy", "--api-version=apps/v9"],
        &["explain", "deploy.spec.nope"],
        &["explain", "pods.spec.nope.deeper"],
        &["explain", "frobs"],
        &["explain", "pods", "svc"],
        &["explain"],
        &["explain", "pods", "--output=plaintext-openapiv2"],
        &["explain", "deploy.spec.strategy", "--output=plaintext-openapiv2"],
        &["explain", "pods.spec.containers", "--output=plaintext-openapiv2"],
        &[
            "explain",
            "pods.spec.containers.ports.containerPort",
            "--output=plaintext-openapiv2",
        ],
        &["explain", "svc.spec.ports.targetPort", "--output=plaintext-openapiv2"],
        &["explain", "pod.metadata.labels", "--output=plaintext-openapiv2"],
        &["explain", "cm.data.anykey", "--output=plaintext-openapiv2"],
        &[
            "explain",
            "deploy.spec.template",
            "--recursive",
            "--output=plaintext-openapiv2",
        ],
        &["explain", "crd.spec.versions.schema", "--output=plaintext-openapiv2"],
        &["explain", "nodes.status", "--output=plaintext-openapiv2"],
        &["explain", "deploy.spec.nope", "--output=plaintext-openapiv2"],
        &[
            "explain",
            "deploy",
            "--api-version=apps/v9",
            "--output=plaintext-openapiv2",
        ],
    ] {
        clients.same(args)?;
    }
    Ok(())
}
