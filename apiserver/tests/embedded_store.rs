//! The apiserver on its embedded store (no etcd anywhere): reads, writes, conflicts,
//! pagination and watches from a resourceVersion through kube-rs and raw HTTP, and persistence of
//! objects, resourceVersions and Service allocations across a clean restart and a SIGKILL; and
//! Events expiring after `--event-ttl` on both stores.

mod common;

use anyhow::{Context, Result, bail, ensure};
use common::*;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use testkit::apiserver::ApiServer;

/// An apiserver of the test's own on a fresh embedded store, and an admin client for it.
async fn start() -> Result<(ApiServer, Http)> {
    let apiserver = ApiServer::start_embedded(apiserver_binary(), &[])?;
    let http = Http::from_kubeconfig_file(&apiserver.kubeconfig()).await?;
    Ok((apiserver, http))
}

fn configmaps(http: &Http, namespace: &str) -> Api<ConfigMap> {
    Api::namespaced(http.client.clone(), namespace)
}

fn new_configmap(name: &str, value: &str) -> Result<ConfigMap> {
    Ok(serde_json::from_value(configmap(name, json!({}), json!({"v": value})))?)
}

#[tokio::test]
async fn the_default_store_is_embedded_in_the_data_dir() -> Result<()> {
    let (apiserver, http) = start().await?;
    let store = apiserver.data_dir().join("store/kaji.db");
    ensure!(store.exists(), "no database at {}", store.display());
    // The system namespaces were bootstrapped into it.
    let namespaces = http.fetch("/api/v1/namespaces").await?;
    ensure!(
        names(&namespaces) == strs(&["default", "kube-node-lease", "kube-public", "kube-system"]),
        "{namespaces}"
    );
    // /metrics reports the store's size on disk and how much history it keeps.
    let metrics = http.get("/metrics").await?;
    ensure!(metrics.status == 200, "{}", metrics.text);
    let gauge = |name: &str| -> Option<i64> {
        metrics
            .text
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
    };
    ensure!(
        gauge("apiserver_storage_size_bytes ").is_some_and(|v| v > 0),
        "{}",
        metrics.text
    );
    ensure!(
        gauge("apiserver_storage_compaction_lag_revisions ").is_some_and(|v| v > 0),
        "{}",
        metrics.text
    );
    Ok(())
}

#[tokio::test]
async fn create_get_list_update_conflict_delete_and_pages() -> Result<()> {
    let (_apiserver, http) = start().await?;
    let ns = namespace(&http, "crud").await?;
    let api = configmaps(&http, &ns);

    let created = api.create(&PostParams::default(), &new_configmap("a", "1")?).await?;
    let created_rv = created
        .metadata
        .resource_version
        .clone()
        .context("no resourceVersion")?;
    let fetched = api.get("a").await?;
    ensure!(fetched.metadata.uid == created.metadata.uid, "{fetched:?}");
    ensure!(
        fetched.metadata.resource_version.as_deref() == Some(created_rv.as_str()),
        "{fetched:?}"
    );
    match api.create(&PostParams::default(), &new_configmap("a", "again")?).await {
        Err(kube::Error::Api(status)) => ensure!(status.code == 409 && status.reason == "AlreadyExists", "{status:?}"),
        other => bail!("a second create: expected 409 AlreadyExists, got {other:?}"),
    }

    let mut changed = fetched.clone();
    changed.data = Some([("v".to_string(), "2".to_string())].into());
    let updated = api.replace("a", &PostParams::default(), &changed).await?;
    let updated_rv: i64 = updated
        .metadata
        .resource_version
        .as_deref()
        .unwrap_or_default()
        .parse()?;
    ensure!(updated_rv > created_rv.parse::<i64>()?, "{updated:?}");
    // The same update again carries the stale resourceVersion.
    match api.replace("a", &PostParams::default(), &changed).await {
        Err(kube::Error::Api(status)) => ensure!(status.code == 409 && status.reason == "Conflict", "{status:?}"),
        other => bail!("a stale update: expected 409 Conflict, got {other:?}"),
    }

    for i in 0..7 {
        api.create(&PostParams::default(), &new_configmap(&format!("page-{i}"), "x")?)
            .await?;
    }
    let mut seen = Vec::new();
    let mut params = ListParams::default().limit(3);
    let mut pages = 0;
    loop {
        let page = api.list(&params).await?;
        pages += 1;
        seen.extend(page.items.iter().filter_map(|cm| cm.metadata.name.clone()));
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = ListParams::default().limit(3).continue_token(&token),
            None => break,
        }
        ensure!(pages < 10, "pagination does not end");
    }
    let mut expected = vec!["a".to_string()];
    expected.extend((0..7).map(|i| format!("page-{i}")));
    ensure!(seen == expected, "pages: {seen:?}");
    ensure!(pages == 3, "8 objects in pages of 3: {pages} pages");

    api.delete("a", &DeleteParams::default()).await?;
    match api.get("a").await {
        Err(kube::Error::Api(status)) => ensure!(status.code == 404, "{status:?}"),
        other => bail!("after delete: expected 404, got {other:?}"),
    }
    Ok(())
}

#[tokio::test]
async fn watch_from_a_resource_version_replays_then_follows() -> Result<()> {
    let (_apiserver, http) = start().await?;
    let ns = namespace(&http, "watch").await?;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let a = http
        .create(&path, &configmap("a", json!({}), json!({"v": "1"})))
        .await?;
    let from = rv(&a)?;
    let mut a2 = a.clone();
    a2["data"] = json!({"v": "2"});
    http.put(&format!("{path}/a"), &a2).await?.expect(200)?;
    http.create(&path, &configmap("b", json!({}), json!({}))).await?;
    http.delete(&format!("{path}/a")).await?.expect(200)?;

    let mut watch = http.watch(&format!("{path}?watch=true&resourceVersion={from}")).await?;
    let modified = watch.expect("MODIFIED", "a").await?;
    ensure!(modified["data"]["v"] == "2", "{modified}");
    watch.expect("ADDED", "b").await?;
    let deleted = watch.expect("DELETED", "a").await?;
    watch.expect_quiet().await?;
    // And live from there on.
    let c = http.create(&path, &configmap("c", json!({}), json!({}))).await?;
    let added = watch.expect("ADDED", "c").await?;
    ensure!(rv(&added)? == rv(&c)? && rv(&c)? > rv(&deleted)?, "{added}");
    Ok(())
}

#[tokio::test]
async fn objects_revisions_and_allocations_survive_restart_and_sigkill() -> Result<()> {
    let (mut apiserver, http) = start().await?;
    let cms = "/api/v1/namespaces/default/configmaps";
    let svcs = "/api/v1/namespaces/default/services";
    let cm = http
        .create(cms, &configmap("keep", json!({}), json!({"v": "1"})))
        .await?;
    let svc = http.create(svcs, &service("keep", json!({"type": "NodePort"}))).await?;
    let ip = svc["spec"]["clusterIP"].as_str().context("clusterIP")?.to_string();
    let port = svc["spec"]["ports"][0]["nodePort"].as_u64().context("nodePort")?;

    apiserver.restart()?;
    let http = Http::from_kubeconfig_file(&apiserver.kubeconfig()).await?;
    check_survivors(&http, &cm, &svc, &ip, port).await?;

    // Written, acknowledged, then SIGKILL: no clean shutdown, no checkpoint.
    let last = http
        .create(cms, &configmap("last", json!({}), json!({"v": "acked"})))
        .await?;
    apiserver.kill();
    apiserver.restart()?;
    let http = Http::from_kubeconfig_file(&apiserver.kubeconfig()).await?;
    check_survivors(&http, &cm, &svc, &ip, port).await?;
    let last_after = http.fetch(&format!("{cms}/last")).await?;
    ensure!(
        last_after["metadata"]["resourceVersion"] == last["metadata"]["resourceVersion"]
            && last_after["data"] == last["data"],
        "{last} vs {last_after}"
    );
    // Revisions go on from where they were.
    let next = http.create(cms, &configmap("next", json!({}), json!({}))).await?;
    ensure!(rv(&next)? > rv(&last)?, "{next}");
    Ok(())
}

/// The objects and allocations made before a restart are all there, unchanged.
async fn check_survivors(
    http: &Http,
    cm: &serde_json::Value,
    svc: &serde_json::Value,
    ip: &str,
    port: u64,
) -> Result<()> {
    let cm_after = http.fetch("/api/v1/namespaces/default/configmaps/keep").await?;
    ensure!(
        cm_after["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]
            && cm_after["metadata"]["uid"] == cm["metadata"]["uid"]
            && cm_after["data"] == cm["data"],
        "{cm} vs {cm_after}"
    );
    check_service_survived(http, svc, ip, port).await?;
    Ok(())
}

#[tokio::test]
async fn automatic_compaction_expires_old_continuations_and_exact_reads() -> Result<()> {
    let flags = [
        "--embedded-retain-revisions",
        "1",
        "--embedded-retain-for",
        "0",
        "--embedded-compaction-interval",
        "100ms",
    ];
    let apiserver = ApiServer::start_embedded(apiserver_binary(), &flags)?;
    let http = Http::from_kubeconfig_file(&apiserver.kubeconfig()).await?;
    let ns = namespace(&http, "compact").await?;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let a = http
        .create(&path, &configmap("a", json!({}), json!({"v": "0"})))
        .await?;
    http.create(&path, &configmap("b", json!({}), json!({}))).await?;
    let page = http.fetch(&format!("{path}?limit=1")).await?;
    let token = page["metadata"]["continue"]
        .as_str()
        .context("no continue token")?
        .to_string();
    for i in 1..=5 {
        http.patch(
            &format!("{path}/a"),
            "application/merge-patch+json",
            &json!({"data": {"v": i.to_string()}}),
        )
        .await?
        .expect(200)?;
    }
    // Compaction runs every 100 ms and keeps one revision.
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let reply = http.get(&format!("{path}?limit=1&continue={}", enc(&token))).await?;
        if reply.status == 410 {
            reply.expect_status(410, "Expired")?;
            break;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "the continuation never expired: {}",
            reply.text
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    http.get(&format!(
        "{path}?resourceVersion={}&resourceVersionMatch=Exact",
        rv(&a)?
    ))
    .await?
    .expect_status(410, "Expired")?;
    // Current reads are unaffected.
    let now = http.fetch(&format!("{path}/a")).await?;
    ensure!(now["data"]["v"] == "5", "{now}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Benchmark (not a test)
// ---------------------------------------------------------------------------------------------

/// ConfigMap creates/s through `server` by `concurrency` workers for `seconds`.
async fn creates_per_second(server: &ApiServer, concurrency: usize, seconds: u64) -> Result<f64> {
    let http = Http::from_kubeconfig_file(&server.kubeconfig()).await?;
    let ns = namespace(&http, "bench").await?;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let filler = "x".repeat(900);
    let stop = tokio::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let workers = (0..concurrency).map(|worker| {
        let (http, path, filler) = (http.clone(), path.clone(), filler.clone());
        tokio::spawn(async move {
            let mut done = 0u64;
            while tokio::time::Instant::now() < stop {
                let body = configmap(&format!("w{worker}-{done}"), json!({}), json!({"v": filler}));
                http.create(&path, &body).await?;
                done += 1;
            }
            anyhow::Ok(done)
        })
    });
    let started = std::time::Instant::now();
    let mut total = 0;
    for worker in futures::future::join_all(workers).await {
        total += worker??;
    }
    Ok(total as f64 / started.elapsed().as_secs_f64())
}

/// `--event-ttl`: Events are deleted by the store once the ttl has passed since their last
/// write (a watcher sees DELETED), on both stores; other objects stay.
#[tokio::test]
async fn events_expire_after_the_event_ttl_on_both_stores() -> Result<()> {
    let etcd = testkit::etcd::EtcdServer::start()?;
    let ttl = ["--event-ttl", "2s"];
    let on_etcd = ApiServer::start(apiserver_binary(), &etcd.endpoint, &ttl)?;
    let on_embedded = ApiServer::start_embedded(apiserver_binary(), &ttl)?;
    for (store, apiserver) in [("etcd", &on_etcd), ("embedded", &on_embedded)] {
        let http = Http::from_kubeconfig_file(&apiserver.kubeconfig()).await?;
        let ns = namespace(&http, "ttl").await?;
        let event = |name: &str| {
            json!({
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": name, "namespace": ns},
                "involvedObject": {"kind": "ConfigMap", "name": "kept", "namespace": ns},
                "reason": "Tested", "message": "expires", "type": "Normal", "count": 1,
            })
        };
        let events = format!("/api/v1/namespaces/{ns}/events");
        http.create(
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            &configmap("kept", json!({}), json!({})),
        )
        .await?;
        let first = http.create(&events, &event("first")).await?;
        http.create(&events, &event("second")).await?;
        // Half-way, a write restarts the second Event's clock (as a repeat's count patch does).
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let patch = json!({"count": 2});
        let second = http
            .patch(&format!("{events}/second"), "application/merge-patch+json", &patch)
            .await?
            .expect(200)?;
        let rv = second["metadata"]["resourceVersion"]
            .as_str()
            .context("no resourceVersion")?;
        let mut watch = http.watch(&format!("{events}?watch=1&resourceVersion={rv}")).await?;
        let gone = watch.expect("DELETED", "first").await.context(store)?;
        ensure!(gone["metadata"]["uid"] == first["metadata"]["uid"], "{store}: {gone}");
        let gone = watch.expect("DELETED", "second").await.context(store)?;
        ensure!(gone["count"] == 2, "{store}: the last state is reported: {gone}");
        http.get(&format!("{events}/first"))
            .await?
            .expect_status(404, "NotFound")?;
        let listed = http.fetch(&events).await?;
        ensure!(names(&listed).is_empty(), "{store}: {listed}");
        http.fetch(&format!("/api/v1/namespaces/{ns}/configmaps/kept"))
            .await
            .context(store)?;
    }
    Ok(())
}

/// Not a test: creates/s of ~1 KiB ConfigMaps through the apiserver on its embedded store and
/// on etcd, side by side in one run (issue 8). Run it in release mode:
/// `cargo test --release -p apiserver --test embedded_store -- --ignored --nocapture bench_`
/// (KAJI_BENCH_SECONDS, default 10; KAJI_BENCH_CONCURRENCY, default 64).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it explicitly, in release mode"]
async fn bench_apiserver_creates_embedded_vs_etcd() -> Result<()> {
    let knob = |name: &str, default: u64| std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default);
    let seconds = knob("KAJI_BENCH_SECONDS", 10);
    let concurrency = usize::try_from(knob("KAJI_BENCH_CONCURRENCY", 64))?;
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before: {}", load().trim());
    let etcd = testkit::etcd::EtcdServer::start()?;
    let on_etcd = ApiServer::start(apiserver_binary(), &etcd.endpoint, &[])?;
    let on_embedded = ApiServer::start_embedded(apiserver_binary(), &[])?;
    println!("| apiserver storage | concurrency | seconds | creates/s |");
    println!("|---|---:|---:|---:|");
    for (name, server) in [("embedded (SQLite)", &on_embedded), ("etcd", &on_etcd)] {
        let rate = creates_per_second(server, concurrency, seconds)
            .await
            .with_context(|| server.log_tail())?;
        println!("| {name} | {concurrency} | {seconds} | {rate:.0} |");
    }
    println!("load average after: {}", load().trim());
    Ok(())
}
