//! TLS, authentication and create, end to end against a real etcd and `kube-apiserver`.

mod common;

use anyhow::{Context, Result, ensure};
use common::*;
use http::Method;
use serde_json::json;
use std::collections::BTreeSet;
use testkit::apiserver::ApiServer;

// ---------------------------------------------------------------------------------------------
// TLS and authentication
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn anonymous_requests_are_rejected_but_health_and_version_are_public() -> Result<()> {
    let env = env();
    let anonymous = env.anonymous().await?;
    let status = anonymous
        .get("/api/v1/pods")
        .await?
        .expect_status(401, "Unauthorized")?;
    ensure!(status["message"] == "Unauthorized", "message: {status}");
    anonymous
        .get("/api/v1/namespaces/default")
        .await?
        .expect_status(401, "Unauthorized")?;
    anonymous
        .post(
            "/api/v1/namespaces/default/configmaps",
            &configmap("anon", json!({}), json!({})),
        )
        .await?
        .expect_status(401, "Unauthorized")?;
    for path in ["/readyz", "/healthz", "/livez"] {
        let reply = anonymous.get(path).await?;
        ensure!(
            reply.status == 200 && reply.text == "ok",
            "{path}: {} {}",
            reply.status,
            reply.text
        );
    }
    let version = anonymous.fetch("/version").await?;
    ensure!(version["major"] == "1", "version: {version}");
    ensure!(
        version["gitVersion"].as_str().is_some_and(|v| v.starts_with("v1.")),
        "version: {version}"
    );
    // The admin client certificate authenticates.
    env.admin().await?.fetch("/api/v1/namespaces/default").await?;
    Ok(())
}

#[tokio::test]
async fn bearer_tokens_from_the_token_file_authenticate() -> Result<()> {
    let env = env();
    let alice = env.with_token(TOKEN).await?;
    let namespaces = alice.fetch("/api/v1/namespaces").await?;
    ensure!(
        names(&namespaces).contains(&"default".to_string()),
        "namespaces: {namespaces}"
    );
    let ns = namespace(&alice, "token").await?;
    alice
        .create(
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            &configmap("by-token", json!({}), json!({"a": "b"})),
        )
        .await?;

    let wrong = env.with_token("not-the-token").await?;
    let status = wrong
        .get("/api/v1/namespaces")
        .await?
        .expect_status(401, "Unauthorized")?;
    ensure!(status["message"] == "Unauthorized", "{status}");
    wrong
        .get(&format!("/api/v1/namespaces/{ns}/configmaps/by-token"))
        .await?
        .expect_status(401, "Unauthorized")?;
    Ok(())
}

#[tokio::test]
async fn invalid_tokens_are_rejected_on_public_paths_too() -> Result<()> {
    // Upstream's authenticator fails a request whose bearer token is invalid before any
    // authorization, so even the anonymously readable endpoints answer 401 to it.
    let env = env();
    let wrong = env.with_token("not-the-token").await?;
    for path in ["/healthz", "/readyz", "/livez", "/version"] {
        let reply = wrong.get(path).await?;
        ensure!(
            reply.status == 401,
            "GET {path} with an invalid token: expected 401, got {} {}",
            reply.status,
            reply.text
        );
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Create
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn create_fills_in_server_owned_metadata() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "create").await?;

    let created = http
        .create(
            &format!("/api/v1/namespaces/{ns}/pods"),
            &pod("web", json!({"app": "web"})),
        )
        .await?;
    let meta = &created["metadata"];
    ensure!(meta["name"] == "web" && meta["namespace"] == ns.as_str(), "{created}");
    let uid = meta["uid"].as_str().context("no uid")?;
    uuid::Uuid::parse_str(uid).with_context(|| format!("uid {uid:?} is not a UUID"))?;
    let created_at: jiff::Timestamp = meta["creationTimestamp"]
        .as_str()
        .context("no creationTimestamp")?
        .parse()?;
    let skew = (jiff::Timestamp::now() - created_at).get_seconds().abs();
    ensure!(skew < 300, "creationTimestamp {created_at} is far from now");
    let pod_rv = rv(&created)?;
    ensure!(pod_rv > 0, "{created}");
    ensure!(created["kind"] == "Pod" && created["apiVersion"] == "v1", "{created}");
    // The ServiceAccount admission plugin names the default service account.
    ensure!(
        created["spec"]["serviceAccountName"] == "default" && created["spec"]["serviceAccount"] == "default",
        "{}",
        created["spec"]
    );

    let fetched = http.fetch(&format!("/api/v1/namespaces/{ns}/pods/web")).await?;
    ensure!(fetched["metadata"]["uid"] == uid, "{fetched}");
    ensure!(rv(&fetched)? == pod_rv, "{fetched}");

    let deploy = http
        .create(
            &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
            &deployment("d", 2),
        )
        .await?;
    ensure!(deploy["metadata"]["generation"] == 1, "{deploy}");
    ensure!(rv(&deploy)? > pod_rv, "resourceVersions must grow: {deploy}");

    let cm = http
        .create(
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            &configmap("cm", json!({}), json!({"k": "v"})),
        )
        .await?;
    ensure!(
        cm["metadata"].get("generation").is_none(),
        "configmaps have no generation: {cm}"
    );

    // dryRun=All answers as a create would, but stores nothing.
    let dry = http
        .create(
            &format!("/api/v1/namespaces/{ns}/configmaps?dryRun=All"),
            &configmap("dry", json!({}), json!({})),
        )
        .await?;
    ensure!(dry["metadata"]["name"] == "dry", "{dry}");
    let status = http
        .get(&format!("/api/v1/namespaces/{ns}/configmaps/dry"))
        .await?
        .expect_status(404, "NotFound")?;
    ensure!(status["message"] == r#"configmaps "dry" not found"#, "{status}");
    http.post(
        &format!("/api/v1/namespaces/{ns}/configmaps?dryRun=Some"),
        &configmap("dry", json!({}), json!({})),
    )
    .await?
    .expect_status(400, "BadRequest")?;
    Ok(())
}

#[tokio::test]
async fn generate_name_creates_unique_names() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "genname").await?;
    let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "web-"}, "data": {}});
    let mut seen = BTreeSet::new();
    for _ in 0..3 {
        let created = http
            .create(&format!("/api/v1/namespaces/{ns}/configmaps"), &body)
            .await?;
        let name = created["metadata"]["name"].as_str().context("no name")?.to_string();
        ensure!(
            name.starts_with("web-") && name.len() == "web-".len() + 5,
            "generated name {name:?}"
        );
        ensure!(created["metadata"]["generateName"] == "web-", "{created}");
        http.fetch(&format!("/api/v1/namespaces/{ns}/configmaps/{name}"))
            .await?;
        ensure!(seen.insert(name.clone()), "name {name} generated twice");
    }
    Ok(())
}

#[tokio::test]
async fn create_errors_use_upstream_codes_and_messages() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "createerr").await?;
    let pods = format!("/api/v1/namespaces/{ns}/pods");

    http.create(&pods, &pod("x", json!({}))).await?;
    let status = http
        .post(&pods, &pod("x", json!({})))
        .await?
        .expect_status(409, "AlreadyExists")?;
    ensure!(status["message"] == r#"pods "x" already exists"#, "{status}");
    ensure!(
        status["details"]["name"] == "x" && status["details"]["kind"] == "pods",
        "{status}"
    );

    let status = http
        .post("/api/v1/namespaces/nope/pods", &pod("y", json!({})))
        .await?
        .expect_status(404, "NotFound")?;
    ensure!(status["message"] == r#"namespaces "nope" not found"#, "{status}");

    let mut other_ns = pod("y", json!({}));
    other_ns["metadata"]["namespace"] = json!("default");
    http.post(&pods, &other_ns).await?.expect_status(400, "BadRequest")?;

    let mut wrong_version = pod("y", json!({}));
    wrong_version["apiVersion"] = json!("apps/v1");
    http.post(&pods, &wrong_version)
        .await?
        .expect_status(400, "BadRequest")?;

    let mut wrong_kind = pod("y", json!({}));
    wrong_kind["kind"] = json!("Service");
    http.post(&pods, &wrong_kind).await?.expect_status(400, "BadRequest")?;

    http.send(
        Method::POST,
        &pods,
        Some("application/json"),
        b"{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {".to_vec(),
    )
    .await?
    .expect_status(400, "BadRequest")?;

    // A protobuf envelope without a kind is malformed; a media type we don't speak is 415.
    http.send(
        Method::POST,
        &pods,
        Some("application/vnd.kubernetes.protobuf"),
        b"k8s\x00\x0a\x04\x0a\x02v1".to_vec(),
    )
    .await?
    .expect_status(400, "BadRequest")?;
    http.send(Method::POST, &pods, Some("application/xml"), b"<pod/>".to_vec())
        .await?
        .expect_status(415, "UnsupportedMediaType")?;

    // None of the rejected bodies left an object behind.
    let list = http.fetch(&pods).await?;
    ensure!(names(&list) == strs(&["x"]), "{list}");
    Ok(())
}

#[tokio::test]
async fn yaml_bodies_are_accepted() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "yaml").await?;
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\n  labels:\n    fmt: yaml\ndata:\n  key: value\n  \
                number: \"42\"\n";
    let created = http
        .send(
            Method::POST,
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            Some("application/yaml"),
            yaml.as_bytes().to_vec(),
        )
        .await?
        .expect(201)?;
    ensure!(created["data"] == json!({"key": "value", "number": "42"}), "{created}");
    let fetched = http
        .fetch(&format!("/api/v1/namespaces/{ns}/configmaps/from-yaml"))
        .await?;
    ensure!(fetched["metadata"]["labels"]["fmt"] == "yaml", "{fetched}");
    Ok(())
}

#[tokio::test]
async fn bodies_over_max_request_bytes_are_413() -> Result<()> {
    let env = env();
    // A second apiserver on the shared etcd, with a small limit.
    let small = ApiServer::start(apiserver_binary(), &env.etcd_endpoint, &["--max-request-bytes", "4096"])?;
    let http = Http::from_kubeconfig_file(&small.kubeconfig()).await?;
    let name = unique("big");
    let big = configmap(&name, json!({}), json!({"blob": "x".repeat(8192)}));
    let status = http
        .post("/api/v1/namespaces/default/configmaps", &big)
        .await?
        .expect_status(413, "RequestEntityTooLarge")?;
    ensure!(
        status["message"].as_str().is_some_and(|m| m.contains("too large")),
        "{status}"
    );
    http.get(&format!("/api/v1/namespaces/default/configmaps/{name}"))
        .await?
        .expect_status(404, "NotFound")?;

    let fits = configmap(&name, json!({}), json!({"blob": "x".repeat(1024)}));
    http.create("/api/v1/namespaces/default/configmaps", &fits).await?;
    http.put(&format!("/api/v1/namespaces/default/configmaps/{name}"), &big)
        .await?
        .expect_status(413, "RequestEntityTooLarge")?;
    http.delete(&format!("/api/v1/namespaces/default/configmaps/{name}"))
        .await?
        .expect(200)?;
    Ok(())
}

#[tokio::test]
async fn negative_deployment_replicas_are_invalid() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "invalid").await?;
    let status = http
        .post(
            &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
            &deployment("neg", -1),
        )
        .await?
        .expect_status(422, "Invalid")?;
    ensure!(cause_fields(&status).contains(&"spec.replicas".to_string()), "{status}");
    ensure!(
        status["details"]["kind"] == "Deployment" && status["details"]["group"] == "apps",
        "{status}"
    );
    ensure!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(r#"Deployment.apps "neg" is invalid: "#)),
        "{status}"
    );
    Ok(())
}

#[tokio::test]
async fn pods_without_containers_are_invalid() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "invalid").await?;
    let body = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "empty"}, "spec": {"containers": []}});
    let status = http
        .post(&format!("/api/v1/namespaces/{ns}/pods"), &body)
        .await?
        .expect_status(422, "Invalid")?;
    ensure!(
        cause_fields(&status).contains(&"spec.containers".to_string()),
        "{status}"
    );
    http.get(&format!("/api/v1/namespaces/{ns}/pods/empty"))
        .await?
        .expect_status(404, "NotFound")?;
    Ok(())
}

#[tokio::test]
async fn invalid_names_are_invalid() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "invalid").await?;
    let status = http
        .post(
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            &configmap("Bad_Name", json!({}), json!({})),
        )
        .await?
        .expect_status(422, "Invalid")?;
    ensure!(cause_fields(&status).contains(&"metadata.name".to_string()), "{status}");
    Ok(())
}
