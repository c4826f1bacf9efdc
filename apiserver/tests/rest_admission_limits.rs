//! LimitRange and ResourceQuota admission against a real etcd + `kube-apiserver`: defaults
//! filled into created pods, refusals worded as upstream's (checked through upstream kubectl's
//! stderr), quotas seeing the LimitRange's defaults, and quota charged on Service updates.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};
use common::{Http, env, namespace};
use serde_json::{Value, json};

/// Runs upstream kubectl against the shared apiserver; returns (exit code, stdout, stderr).
fn kubectl(args: &[&str], stdin: Option<&Value>) -> Result<(i32, String, String)> {
    let mut child = Command::new(testkit::upstream_kubectl()?)
        .arg("--kubeconfig")
        .arg(env().kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting kubectl")?;
    let mut pipe = child.stdin.take().context("kubectl stdin")?;
    if let Some(object) = stdin {
        pipe.write_all(object.to_string().as_bytes())?;
    }
    drop(pipe);
    let out = child.wait_with_output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

fn pod(name: &str, resources: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.36", "resources": resources}]}})
}

/// Creates a LimitRange and waits until admission sees it (a read brings the cache up to date).
async fn limit_range(http: &Http, ns: &str, limits: Value) -> Result<()> {
    let path = format!("/api/v1/namespaces/{ns}/limitranges");
    http.create(
        &path,
        &json!({"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "limits"}, "spec": {"limits": limits}}),
    )
    .await?;
    http.fetch(&format!("{path}/limits")).await?;
    Ok(())
}

/// Creates a ResourceQuota with its status filled in as the resourcequota controller would.
async fn quota(http: &Http, ns: &str, hard: Value, used: Value) -> Result<()> {
    let path = format!("/api/v1/namespaces/{ns}/resourcequotas");
    let mut q = http
        .create(
            &path,
            &json!({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"}, "spec": {"hard": hard}}),
        )
        .await?;
    q["status"] = json!({"hard": hard, "used": used});
    http.put(&format!("{path}/q/status"), &q).await?.expect(200)?;
    Ok(())
}

#[tokio::test]
async fn limit_range_defaults_and_refuses_pods_as_upstream() -> Result<()> {
    let http = env().admin().await?;
    let ns = namespace(&http, "limits").await?;
    limit_range(
        &http,
        &ns,
        json!([
            {"type": "Container", "max": {"memory": "1Gi"}, "min": {"cpu": "100m"},
             "default": {"cpu": "500m", "memory": "256Mi"}, "defaultRequest": {"cpu": "200m", "memory": "128Mi"}},
            {"type": "Pod", "max": {"cpu": "2"}}
        ]),
    )
    .await?;

    let created = http
        .create(&format!("/api/v1/namespaces/{ns}/pods"), &pod("bare", json!({})))
        .await?;
    let read = http.fetch(&format!("/api/v1/namespaces/{ns}/pods/bare")).await?;
    for object in [&created, &read] {
        ensure!(
            object["spec"]["containers"][0]["resources"]
                == json!({"requests": {"cpu": "200m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}}),
            "defaults not applied: {object}"
        );
        ensure!(
            object["metadata"]["annotations"]["kubernetes.io/limit-ranger"]
                == "LimitRanger plugin set: cpu, memory request for container app; cpu, memory limit for container app",
            "annotation: {object}"
        );
    }

    // Requests default to the limits given before the LimitRange's defaults apply.
    let limited = http
        .create(
            &format!("/api/v1/namespaces/{ns}/pods"),
            &pod("limited", json!({"limits": {"cpu": "800m"}})),
        )
        .await?;
    ensure!(
        limited["spec"]["containers"][0]["resources"]["requests"] == json!({"cpu": "800m", "memory": "128Mi"}),
        "{limited}"
    );
    // Defaults are validated with the rest of the pod: a request above the default limit.
    http.post(
        &format!("/api/v1/namespaces/{ns}/pods"),
        &pod("over", json!({"requests": {"cpu": "700m"}})),
    )
    .await?
    .expect_status(422, "Invalid")?;

    // Above the container max and below its min: both reasons, bracketed as upstream joins them.
    let big = pod(
        "big",
        json!({"requests": {"cpu": "50m", "memory": "2Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}),
    );
    let (code, _, stderr) = kubectl(&["create", "-n", &ns, "-f", "-"], Some(&big))?;
    ensure!(code != 0, "an oversized pod was admitted");
    let want = "Error from server (Forbidden): error when creating \"STDIN\": pods \"big\" is forbidden: \
        [minimum cpu usage per Container is 100m, but request is 50m, maximum memory usage per Container is 1Gi, but limit is 2Gi]\n";
    ensure!(stderr == want, "stderr:\n{stderr}\nwant:\n{want}");

    // A server-side dry run is refused the same way; nothing is stored either time.
    let (code, _, stderr) = kubectl(&["create", "--dry-run=server", "-n", &ns, "-f", "-"], Some(&big))?;
    ensure!(code != 0 && stderr == want, "dry run: {stderr}");

    // The Pod item sums the containers.
    let mut two = pod("two", json!({"limits": {"cpu": "1500m"}}));
    two["spec"]["containers"]
        .as_array_mut()
        .context("containers")?
        .push(json!({"name": "side", "image": "busybox:1.36", "resources": {"limits": {"cpu": "1"}}}));
    let refused = http
        .post(&format!("/api/v1/namespaces/{ns}/pods"), &two)
        .await?
        .expect_status(403, "Forbidden")?;
    ensure!(
        refused["message"] == "pods \"two\" is forbidden: maximum cpu usage per Pod is 2, but limit is 2500m",
        "{refused}"
    );
    let pods = http.fetch(&format!("/api/v1/namespaces/{ns}/pods")).await?;
    ensure!(pods["items"].as_array().map(Vec::len) == Some(2), "{pods}");
    Ok(())
}

#[tokio::test]
async fn quota_sees_the_requests_a_limit_range_gave() -> Result<()> {
    let http = env().admin().await?;
    let bare = pod("bare", json!({}));

    // Without a LimitRange, a quota on requests.cpu refuses a pod that requests nothing.
    let plain = namespace(&http, "quota-plain").await?;
    quota(
        &http,
        &plain,
        json!({"requests.cpu": "1"}),
        json!({"requests.cpu": "0"}),
    )
    .await?;
    let (code, _, stderr) = kubectl(&["create", "-n", &plain, "-f", "-"], Some(&bare))?;
    ensure!(code != 0, "admitted without a cpu request");
    ensure!(
        stderr
            == "Error from server (Forbidden): error when creating \"STDIN\": pods \"bare\" is forbidden: \
                failed quota: q: must specify requests.cpu for: app\n",
        "{stderr}"
    );

    // With one, the defaulted request satisfies the quota and is charged.
    let ns = namespace(&http, "quota-limits").await?;
    limit_range(
        &http,
        &ns,
        json!([{"type": "Container", "defaultRequest": {"cpu": "300m"}}]),
    )
    .await?;
    quota(&http, &ns, json!({"requests.cpu": "1"}), json!({"requests.cpu": "0"})).await?;
    let (code, stdout, stderr) = kubectl(&["create", "-n", &ns, "-f", "-"], Some(&bare))?;
    ensure!(code == 0, "refused: {stderr}");
    ensure!(stdout == "pod/bare created\n", "{stdout}");
    let q = http.fetch(&format!("/api/v1/namespaces/{ns}/resourcequotas/q")).await?;
    ensure!(q["status"]["used"]["requests.cpu"] == "300m", "{q}");
    Ok(())
}

#[tokio::test]
async fn service_updates_are_charged_to_quota() -> Result<()> {
    let http = env().admin().await?;
    let ns = namespace(&http, "quota-svc").await?;
    quota(
        &http,
        &ns,
        json!({"services.nodeports": "1"}),
        json!({"services.nodeports": "0"}),
    )
    .await?;
    let svc = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}, {"name": "https", "port": 443}]}});
    http.create(&format!("/api/v1/namespaces/{ns}/services"), &svc).await?;

    let (code, _, stderr) = kubectl(
        &[
            "patch",
            "service",
            "web",
            "-n",
            &ns,
            "-p",
            r#"{"spec":{"type":"NodePort"}}"#,
        ],
        None,
    )?;
    ensure!(code != 0, "the NodePort change was admitted");
    ensure!(
        stderr
            == "Error from server (Forbidden): services \"web\" is forbidden: exceeded quota: q, \
                requested: services.nodeports=2, used: services.nodeports=0, limited: services.nodeports=1\n",
        "{stderr}"
    );
    let stored = http.fetch(&format!("/api/v1/namespaces/{ns}/services/web")).await?;
    ensure!(stored["spec"]["type"] == "ClusterIP", "{stored}");

    // Within the quota: the growth is charged, once.
    let mut one = stored.clone();
    one["spec"]["type"] = json!("NodePort");
    one["spec"]["ports"] = json!([{"name": "http", "port": 80}]);
    http.put(&format!("/api/v1/namespaces/{ns}/services/web"), &one)
        .await?
        .expect(200)?;
    let q = http.fetch(&format!("/api/v1/namespaces/{ns}/resourcequotas/q")).await?;
    ensure!(q["status"]["used"]["services.nodeports"] == "1", "{q}");
    // An update that does not grow the usage is admitted at the limit.
    let (code, _, stderr) = kubectl(&["label", "service", "web", "-n", &ns, "tier=front"], None)?;
    ensure!(code == 0, "label refused: {stderr}");
    Ok(())
}

#[tokio::test]
async fn claim_growth_is_limited_and_charged() -> Result<()> {
    let http = env().admin().await?;
    let ns = namespace(&http, "claims").await?;
    limit_range(
        &http,
        &ns,
        json!([{"type": "PersistentVolumeClaim", "max": {"storage": "10Gi"}}]),
    )
    .await?;
    quota(
        &http,
        &ns,
        json!({"requests.storage": "8Gi"}),
        json!({"requests.storage": "0"}),
    )
    .await?;
    let claims = format!("/api/v1/namespaces/{ns}/persistentvolumeclaims");
    let mut claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "20Gi"}}}});
    let refused = http.post(&claims, &claim).await?.expect_status(403, "Forbidden")?;
    ensure!(
        refused["message"]
            == "persistentvolumeclaims \"data\" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi",
        "{refused}"
    );
    claim["spec"]["resources"]["requests"]["storage"] = json!("1Gi");
    let mut stored = http.create(&claims, &claim).await?;
    // Only a bound claim may grow.
    stored["status"] = json!({"phase": "Bound"});
    let mut stored = http.put(&format!("{claims}/data/status"), &stored).await?.expect(200)?;

    let grow = |stored: &mut Value, size: &str| {
        stored["spec"]["resources"]["requests"]["storage"] = json!(size);
        stored.clone()
    };
    let refused = http
        .put(&format!("{claims}/data"), &grow(&mut stored, "20Gi"))
        .await?
        .expect_status(403, "Forbidden")?;
    ensure!(
        refused["message"]
            == "persistentvolumeclaims \"data\" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi",
        "{refused}"
    );
    let refused = http
        .put(&format!("{claims}/data"), &grow(&mut stored, "9Gi"))
        .await?
        .expect_status(403, "Forbidden")?;
    ensure!(
        refused["message"]
            == "persistentvolumeclaims \"data\" is forbidden: exceeded quota: q, requested: requests.storage=8Gi, \
                used: requests.storage=1Gi, limited: requests.storage=8Gi",
        "{refused}"
    );
    http.put(&format!("{claims}/data"), &grow(&mut stored, "5Gi"))
        .await?
        .expect(200)?;
    let q = http.fetch(&format!("/api/v1/namespaces/{ns}/resourcequotas/q")).await?;
    ensure!(q["status"]["used"]["requests.storage"] == "5Gi", "{q}");
    Ok(())
}
