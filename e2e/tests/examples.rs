//! The example applications in `manifests/examples/` are accepted by kaji's apiserver as they
//! are: the real upstream kubectl applies the whole directory (server-side dry run, so every
//! object goes through validation and admission) and every object is reported.

use std::process::Command;

use testkit::apiserver::ApiServer;

#[test]
fn every_example_manifest_is_accepted() {
    let apiserver = ApiServer::start_embedded(&testkit::workspace_binary("kube-apiserver").expect("binary"), &[])
        .expect("apiserver");
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples");
    let output = Command::new(testkit::upstream_kubectl().expect("kubectl"))
        .arg("--kubeconfig")
        .arg(apiserver.kubeconfig())
        .args(["apply", "--dry-run=server", "-f"])
        .arg(&examples)
        .output()
        .expect("running kubectl");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for object in [
        "deployment.apps/web",
        "service/web",
        "job.batch/squares",
        "cronjob.batch/tick",
        "daemonset.apps/node-reporter",
        "service/db",
        "statefulset.apps/db",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l == format!("{object} created (server dry run)")),
            "{object} not applied:\n{stdout}"
        );
    }
}
