//! Get, list and watch semantics, end to end against a real etcd and `kube-apiserver`.

mod common;

use anyhow::{Context, Result, ensure};
use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use storage::Storage;
use testkit::apiserver::ApiServer;
use testkit::etcd::EtcdServer;

// ---------------------------------------------------------------------------------------------
// Get and list
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn label_selectors_filter_lists() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "labels").await?;
    let path = format!("/api/v1/namespaces/{ns}/pods");
    for (name, labels) in [
        ("a", json!({"app": "web", "tier": "fe"})),
        ("b", json!({"app": "web", "tier": "be"})),
        ("c", json!({"app": "db"})),
        ("d", json!({})),
    ] {
        http.create(&path, &pod(name, labels)).await?;
    }
    for (selector, expected) in [
        ("app=web", vec!["a", "b"]),
        ("app==web", vec!["a", "b"]),
        ("app!=web", vec!["c", "d"]),
        ("tier in (fe,xx)", vec!["a"]),
        ("tier notin (fe)", vec!["b", "c", "d"]),
        ("tier", vec!["a", "b"]),
        ("!tier", vec!["c", "d"]),
        ("app=web,tier=be", vec!["b"]),
        ("app in (web,db),!tier", vec!["c"]),
        ("app=none", vec![]),
    ] {
        let list = http.fetch(&format!("{path}?labelSelector={}", enc(selector))).await?;
        ensure!(
            names(&list) == strs(&expected),
            "labelSelector {selector:?}: got {:?}, want {expected:?}",
            names(&list)
        );
        ensure!(list["kind"] == "PodList" && list["apiVersion"] == "v1", "{list}");
    }
    http.get(&format!("{path}?labelSelector={}", enc("app in web")))
        .await?
        .expect_status(400, "BadRequest")?;
    // Across namespaces too.
    let all = http
        .fetch(&format!("/api/v1/pods?labelSelector={}", enc("app=web")))
        .await?;
    let ours: Vec<&Value> = all["items"]
        .as_array()
        .context("items")?
        .iter()
        .filter(|p| p["metadata"]["namespace"] == ns.as_str())
        .collect();
    ensure!(ours.len() == 2, "cluster-wide list: {all}");
    Ok(())
}

#[tokio::test]
async fn field_selectors_filter_lists() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "fields").await?;
    let path = format!("/api/v1/namespaces/{ns}/pods");
    for name in ["a", "b", "c"] {
        http.create(&path, &pod(name, json!({"app": "x"}))).await?;
    }
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "b"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"},
    });
    http.post(&format!("{path}/b/binding"), &binding).await?.expect(201)?;

    for (selector, expected) in [
        ("metadata.name=a", vec!["a"]),
        ("metadata.name!=a", vec!["b", "c"]),
        ("spec.nodeName=node-1", vec!["b"]),
        ("spec.nodeName=", vec!["a", "c"]),
        ("spec.nodeName!=node-1,metadata.name!=c", vec!["a"]),
        (&*format!("metadata.namespace={ns}"), vec!["a", "b", "c"]),
    ] {
        let list = http.fetch(&format!("{path}?fieldSelector={}", enc(selector))).await?;
        ensure!(
            names(&list) == strs(&expected),
            "fieldSelector {selector:?}: got {:?}, want {expected:?}",
            names(&list)
        );
    }
    let list = http
        .fetch(&format!(
            "{path}?fieldSelector={}&labelSelector={}",
            enc("spec.nodeName="),
            enc("app=x")
        ))
        .await?;
    ensure!(names(&list) == strs(&["a", "c"]), "{list}");

    let status = http
        .get(&format!("{path}?fieldSelector={}", enc("spec.foo=bar")))
        .await?
        .expect_status(400, "BadRequest")?;
    ensure!(
        status["message"].as_str().is_some_and(|m| m.contains("spec.foo")),
        "{status}"
    );
    // spec.nodeName is selectable on pods only.
    http.get(&format!(
        "/api/v1/namespaces/{ns}/configmaps?fieldSelector={}",
        enc("spec.nodeName=node-1")
    ))
    .await?
    .expect_status(400, "BadRequest")?;
    Ok(())
}

#[tokio::test]
async fn pagination_returns_a_consistent_snapshot_exactly_once() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "pages").await?;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    for i in 0..7 {
        http.create(
            &path,
            &configmap(
                &format!("cm-{i}"),
                json!({"odd": (i % 2 == 1).to_string()}),
                json!({"v": "1"}),
            ),
        )
        .await?;
    }

    let page1 = http.fetch(&format!("{path}?limit=3")).await?;
    ensure!(names(&page1) == strs(&["cm-0", "cm-1", "cm-2"]), "{page1}");
    ensure!(page1["metadata"]["remainingItemCount"] == 4, "{page1}");
    let token1 = page1["metadata"]["continue"].as_str().context("no continue token")?;
    let snapshot = rv(&page1)?;

    // Changes after the first page are not visible in later pages.
    http.create(&path, &configmap("cm-9", json!({}), json!({}))).await?;
    http.delete(&format!("{path}/cm-5")).await?.expect(200)?;
    http.patch(
        &format!("{path}/cm-4"),
        "application/merge-patch+json",
        &json!({"data": {"v": "2"}}),
    )
    .await?
    .expect(200)?;

    let page2 = http.fetch(&format!("{path}?limit=3&continue={}", enc(token1))).await?;
    ensure!(names(&page2) == strs(&["cm-3", "cm-4", "cm-5"]), "{page2}");
    ensure!(page2["metadata"]["remainingItemCount"] == 1, "{page2}");
    ensure!(
        rv(&page2)? == snapshot,
        "page 2 is not at the first page's revision: {page2}"
    );
    let cm4 = page2["items"]
        .as_array()
        .context("items")?
        .iter()
        .find(|i| i["metadata"]["name"] == "cm-4")
        .context("cm-4")?;
    ensure!(cm4["data"]["v"] == "1", "cm-4 must be served as of the snapshot: {cm4}");
    let token2 = page2["metadata"]["continue"].as_str().context("no continue token")?;

    let page3 = http.fetch(&format!("{path}?limit=3&continue={}", enc(token2))).await?;
    ensure!(names(&page3) == strs(&["cm-6"]), "{page3}");
    ensure!(
        page3["metadata"]["continue"].as_str().unwrap_or("").is_empty(),
        "{page3}"
    );
    ensure!(page3["metadata"].get("remainingItemCount").is_none(), "{page3}");

    // With a label selector, every match exactly once.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..20 {
        let mut url = format!("{path}?limit=1&labelSelector={}", enc("odd=true"));
        if let Some(token) = &token {
            url.push_str(&format!("&continue={}", enc(token)));
        }
        let page = http.fetch(&url).await?;
        seen.extend(names(&page));
        token = page["metadata"]["continue"]
            .as_str()
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    ensure!(token.is_none(), "pagination did not end");
    ensure!(seen == strs(&["cm-1", "cm-3"]), "labelled pages: {seen:?}");

    // Tokens are validated.
    http.get(&format!("{path}?limit=3&continue=garbage!!"))
        .await?
        .expect_status(400, "BadRequest")?;
    http.get(&format!("{path}?limit=3&continue={}", enc("eyJub3QiOiJhIHRva2VuIn0=")))
        .await?
        .expect_status(400, "BadRequest")?;
    Ok(())
}

#[tokio::test]
async fn list_resource_version_semantics() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "listrv").await?;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let v1 = http
        .create(&path, &configmap("x", json!({}), json!({"v": "1"})))
        .await?;
    let rv1 = rv(&v1)?;
    let v2 = http
        .patch(
            &format!("{path}/x"),
            "application/merge-patch+json",
            &json!({"data": {"v": "2"}}),
        )
        .await?
        .expect(200)?;
    let rv2 = rv(&v2)?;
    ensure!(rv2 > rv1, "{v2}");

    // Unset: a consistent read.
    let list = http.fetch(&path).await?;
    ensure!(list["items"][0]["data"]["v"] == "2", "{list}");
    ensure!(rv(&list)? >= rv2, "{list}");

    // 0: any state; the cache has just been shown to be current.
    let list = http.fetch(&format!("{path}?resourceVersion=0")).await?;
    ensure!(list["items"][0]["data"]["v"] == "2", "{list}");

    // N (NotOlderThan): at least as new as N.
    let list = http.fetch(&format!("{path}?resourceVersion={rv1}")).await?;
    ensure!(list["items"][0]["data"]["v"] == "2", "{list}");
    ensure!(rv(&list)? >= rv2, "{list}");
    let list = http
        .fetch(&format!(
            "{path}?resourceVersion={rv1}&resourceVersionMatch=NotOlderThan"
        ))
        .await?;
    ensure!(list["items"][0]["data"]["v"] == "2", "{list}");

    // Exact: the state at that revision.
    let list = http
        .fetch(&format!("{path}?resourceVersion={rv1}&resourceVersionMatch=Exact"))
        .await?;
    ensure!(list["items"][0]["data"]["v"] == "1", "{list}");
    ensure!(rv(&list)? == rv1, "{list}");
    ensure!(rv(&list["items"][0])? == rv1, "{list}");
    let before = http
        .fetch(&format!(
            "{path}?resourceVersion={}&resourceVersionMatch=Exact",
            rv1 - 1
        ))
        .await?;
    ensure!(names(&before).is_empty(), "{before}");

    // GET with a resourceVersion is also "not older than".
    let got = http.fetch(&format!("{path}/x?resourceVersion={rv1}")).await?;
    ensure!(got["data"]["v"] == "2", "{got}");

    http.get(&format!("{path}?resourceVersionMatch=Exact"))
        .await?
        .expect_status(400, "BadRequest")?;
    http.get(&format!("{path}?resourceVersion=0&resourceVersionMatch=Exact"))
        .await?
        .expect_status(400, "BadRequest")?;
    http.get(&format!("{path}?resourceVersion=abc"))
        .await?
        .expect_status(400, "BadRequest")?;

    // A revision from the future: the cache never gets there.
    let status = http
        .get(&format!("{path}?resourceVersion={}", rv2 + 1_000_000))
        .await?
        .expect_status(504, "Timeout")?;
    ensure!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("Too large resource version")),
        "{status}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Watch
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn watch_from_a_resource_version_replays_later_events_in_order() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "watchrv").await?;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");

    let a = http.create(&path, &configmap("a", json!({}), json!({}))).await?;
    let rv_a = rv(&a)?;
    let modified = http
        .patch(
            &format!("{path}/a"),
            "application/merge-patch+json",
            &json!({"metadata": {"labels": {"step": "2"}}}),
        )
        .await?
        .expect(200)?;
    let b = http.create(&path, &configmap("b", json!({}), json!({}))).await?;
    http.delete(&format!("{path}/a")).await?.expect(200)?;

    let mut watch = http.watch(&format!("{path}?watch=true&resourceVersion={rv_a}")).await?;
    let object = watch.expect("MODIFIED", "a").await?;
    ensure!(rv(&object)? == rv(&modified)?, "{object}");
    ensure!(object["metadata"]["labels"]["step"] == "2", "{object}");
    ensure!(
        object["kind"] == "ConfigMap" && object["apiVersion"] == "v1",
        "{object}"
    );
    let object = watch.expect("ADDED", "b").await?;
    ensure!(rv(&object)? == rv(&b)?, "{object}");
    let object = watch.expect("DELETED", "a").await?;
    let rv_deleted = rv(&object)?;
    ensure!(rv_deleted > rv(&b)?, "the deletion's revision: {object}");
    watch.expect_quiet().await?;

    // Then live events.
    let c = http.create(&path, &configmap("c", json!({}), json!({}))).await?;
    let object = watch.expect("ADDED", "c").await?;
    ensure!(rv(&object)? == rv(&c)?, "{object}");
    // Another namespace's objects do not show up.
    let other = namespace(&http, "watchother").await?;
    http.create(
        &format!("/api/v1/namespaces/{other}/configmaps"),
        &configmap("c", json!({}), json!({})),
    )
    .await?;
    watch.expect_quiet().await?;

    // A watch from the latest revision sees only what comes after it.
    let list = http.fetch(&path).await?;
    let mut from_list = http
        .watch(&format!("{path}?watch=1&resourceVersion={}", rv(&list)?))
        .await?;
    from_list.expect_quiet().await?;
    http.delete(&format!("{path}/b")).await?.expect(200)?;
    from_list.expect("DELETED", "b").await?;
    watch.expect("DELETED", "b").await?;

    // A watch without a resourceVersion starts with the current state.
    let mut from_now = http.watch(&format!("{path}?watch=true")).await?;
    from_now.expect("ADDED", "c").await?;
    from_now.expect_quiet().await?;
    Ok(())
}

#[tokio::test]
async fn watch_list_sends_initial_events_then_a_bookmark() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "watchlist").await?;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let mut newest = 0;
    for name in ["a", "b", "c"] {
        let created = http.create(&path, &configmap(name, json!({}), json!({}))).await?;
        newest = newest.max(rv(&created)?);
    }
    let mut watch = http
        .watch(&format!(
            "{path}?watch=true&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
        ))
        .await?;
    let mut initial = Vec::new();
    for _ in 0..3 {
        let event = watch.event().await?;
        ensure!(event["type"] == "ADDED", "expected an initial ADDED, got {event}");
        initial.push(event["object"]["metadata"]["name"].as_str().unwrap_or("").to_string());
    }
    initial.sort();
    ensure!(initial == strs(&["a", "b", "c"]), "initial events: {initial:?}");
    let bookmark = watch.event().await?;
    ensure!(bookmark["type"] == "BOOKMARK", "expected the bookmark, got {bookmark}");
    let object = &bookmark["object"];
    ensure!(
        object["metadata"]["annotations"]["k8s.io/initial-events-end"] == "true",
        "{bookmark}"
    );
    ensure!(
        object["kind"] == "ConfigMap" && object["apiVersion"] == "v1",
        "{bookmark}"
    );
    ensure!(rv(object)? >= newest, "{bookmark}");

    let d = http.create(&path, &configmap("d", json!({}), json!({}))).await?;
    let object = watch.expect("ADDED", "d").await?;
    ensure!(rv(&object)? == rv(&d)?, "{object}");

    // timeoutSeconds ends the stream.
    let started = std::time::Instant::now();
    let mut short = http.watch(&format!("{path}?watch=true&timeoutSeconds=1")).await?;
    for _ in 0..4 {
        short.event().await?;
    }
    short.expect_end().await?;
    ensure!(
        started.elapsed() < Duration::from_secs(15),
        "timeoutSeconds=1 was not honoured"
    );

    // A watch of one object (what clients do for a single name).
    let list = http.fetch(&path).await?;
    let mut one = http
        .watch(&format!(
            "{path}?watch=true&fieldSelector={}&resourceVersion={}",
            enc("metadata.name=b"),
            rv(&list)?
        ))
        .await?;
    for name in ["a", "b"] {
        http.patch(
            &format!("{path}/{name}"),
            "application/merge-patch+json",
            &json!({"data": {"touched": "yes"}}),
        )
        .await?
        .expect(200)?;
    }
    let object = one.expect("MODIFIED", "b").await?;
    ensure!(object["data"]["touched"] == "yes", "{object}");
    one.expect_quiet().await?;

    // sendInitialEvents needs resourceVersionMatch=NotOlderThan and bookmarks.
    http.get(&format!(
        "{path}?watch=true&allowWatchBookmarks=true&sendInitialEvents=true"
    ))
    .await?
    .expect_status(400, "BadRequest")?;
    http.get(&format!(
        "{path}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
    ))
    .await?
    .expect_status(400, "BadRequest")?;
    Ok(())
}

#[tokio::test]
async fn label_filtered_watches_see_objects_leave_as_deleted() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "watchfilter").await?;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    let list = http.fetch(&path).await?;
    let mut watch = http
        .watch(&format!(
            "{path}?watch=true&labelSelector={}&resourceVersion={}",
            enc("app=web"),
            rv(&list)?
        ))
        .await?;
    let relabel = |app: &'static str| {
        let http = http.clone();
        let path = path.clone();
        async move {
            http.patch(
                &format!("{path}/a"),
                "application/merge-patch+json",
                &json!({"metadata": {"labels": {"app": app}}}),
            )
            .await?
            .expect(200)
        }
    };

    http.create(&path, &configmap("a", json!({"app": "web"}), json!({})))
        .await?;
    watch.expect("ADDED", "a").await?;
    let left = relabel("db").await?;
    let gone = watch.expect("DELETED", "a").await?;
    ensure!(
        gone["metadata"]["labels"]["app"] == "web",
        "the DELETED event carries the last matching state: {gone}"
    );
    ensure!(rv(&gone)? == rv(&left)?, "at the revision of the change: {gone}");
    http.create(&path, &configmap("b", json!({"app": "db"}), json!({})))
        .await?;
    http.patch(
        &format!("{path}/a"),
        "application/merge-patch+json",
        &json!({"data": {"x": "y"}}),
    )
    .await?
    .expect(200)?;
    watch.expect_quiet().await?;
    let back = relabel("web").await?;
    let object = watch.expect("ADDED", "a").await?;
    ensure!(rv(&object)? == rv(&back)?, "{object}");
    http.delete(&format!("{path}/a")).await?.expect(200)?;
    watch.expect("DELETED", "a").await?;
    http.delete(&format!("{path}/b")).await?.expect(200)?;
    watch.expect_quiet().await?;
    Ok(())
}

#[tokio::test]
async fn compacted_revisions_are_410_for_watches_and_continue_tokens() -> Result<()> {
    let etcd = EtcdServer::start()?;
    let mut apiserver = ApiServer::start(apiserver_binary(), &etcd.endpoint, &[])?;
    let http = Http::from_kubeconfig_file(&apiserver.kubeconfig()).await?;
    let path = "/api/v1/namespaces/default/configmaps";
    let a = http.create(path, &configmap("a", json!({}), json!({"v": "0"}))).await?;
    let rv_a = rv(&a)?;
    for name in ["b", "c"] {
        http.create(path, &configmap(name, json!({}), json!({}))).await?;
    }
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

    let storage = storage::etcd::EtcdStorage::connect(std::slice::from_ref(&etcd.endpoint)).await?;
    let current = storage.current_revision().await?;
    storage.compact(current).await?;

    let status = http
        .get(&format!("{path}?limit=1&continue={}", enc(&token)))
        .await?
        .expect_status(410, "Expired")?;
    ensure!(status["message"].as_str().is_some_and(|m| !m.is_empty()), "{status}");
    http.get(&format!("{path}?resourceVersion={rv_a}&resourceVersionMatch=Exact"))
        .await?
        .expect_status(410, "Expired")?;

    // A restarted apiserver's watch cache starts after the compaction.
    apiserver.restart()?;
    let http = Http::from_kubeconfig_file(&apiserver.kubeconfig()).await?;
    let mut watch = http
        .watch(&format!("{path}?watch=true&resourceVersion={rv_a}"))
        .await
        .with_context(|| apiserver.log_tail())?;
    let event = watch.event().await?;
    ensure!(event["type"] == "ERROR", "expected an ERROR event, got {event}");
    let status = &event["object"];
    ensure!(
        status["kind"] == "Status" && status["code"] == 410 && status["reason"] == "Expired",
        "{event}"
    );
    watch.expect_end().await?;

    // A watch from a current revision works.
    let list = http.fetch(path).await?;
    let mut watch = http
        .watch(&format!("{path}?watch=true&resourceVersion={}", rv(&list)?))
        .await?;
    http.create(path, &configmap("d", json!({}), json!({}))).await?;
    watch.expect("ADDED", "d").await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// PartialObjectMetadata
// ---------------------------------------------------------------------------------------------

const PARTIAL: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const PARTIAL_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

/// A GET with an Accept header: status and the body's JSON lines.
async fn get_as(http: &Http, path: &str, accept: &str) -> Result<(u16, Vec<Value>)> {
    let request = http::Request::get(path)
        .header(http::header::ACCEPT, accept)
        .body(kube::client::Body::empty())?;
    let exchange = async {
        let response = http.client.send(request).await?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect_bytes().await?;
        anyhow::Ok((status, bytes))
    };
    let (status, bytes) = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .context("GET timed out")??;
    let lines = String::from_utf8_lossy(&bytes)
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<Vec<Value>, _>>()?;
    Ok((status, lines))
}

/// Metadata clients (kube-rs `get_metadata`/`list_metadata`/`metadata_watcher`, client-go's
/// metadata informers) get the objects' metadata only, for GET, LIST, WATCH and writes.
#[tokio::test]
async fn partial_object_metadata_answers_carry_metadata_only() -> Result<()> {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams, Patch, PatchParams};
    use kube::core::PartialObjectMeta;
    use kube::runtime::{WatchStreamExt, watcher};

    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "partial").await?;
    let path = format!("/api/v1/namespaces/{ns}/pods");
    http.create(&path, &pod("a", json!({"app": "web"}))).await?;
    let pods: Api<Pod> = Api::namespaced(http.client.clone(), &ns);

    let one = pods.get_metadata("a").await?;
    let types = one.types.clone().context("types")?;
    ensure!(
        (types.api_version.as_str(), types.kind.as_str()) == ("meta.k8s.io/v1", "PartialObjectMetadata"),
        "{types:?}"
    );
    ensure!(
        one.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("app"))
            .map(String::as_str)
            == Some("web")
    );
    let list = pods.list_metadata(&ListParams::default()).await?;
    ensure!(
        list.types.kind == "PartialObjectMetadataList" && list.items.len() == 1,
        "{:?}",
        list.types
    );
    ensure!(list.metadata.resource_version.is_some());

    // On the wire: nothing but kind, apiVersion and metadata.
    let (status, body) = get_as(&http, &format!("{path}/a"), PARTIAL).await?;
    ensure!(status == 200, "{body:?}");
    let keys: Vec<&String> = body[0].as_object().context("object")?.keys().collect();
    ensure!(keys.len() == 3 && body[0].get("spec").is_none(), "{}", body[0]);
    let (_, body) = get_as(&http, &path, PARTIAL_LIST).await?;
    ensure!(
        body[0]["items"][0]
            == json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": serde_json::to_value(&one.metadata)?}),
        "{}",
        body[0]
    );
    // client-go's metadata client offers protobuf first; the JSON alternative is served.
    let (status, body) = get_as(
        &http,
        &path,
        &format!("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,{PARTIAL_LIST},application/json"),
    )
    .await?;
    ensure!(
        status == 200 && body[0]["kind"] == "PartialObjectMetadataList",
        "{body:?}"
    );
    // The wrong one of the two is 406, worded as upstream's.
    let (status, body) = get_as(&http, &path, PARTIAL).await?;
    ensure!(
        status == 406
            && body[0]["reason"] == "NotAcceptable"
            && body[0]["message"]
                == "you requested PartialObjectMetadata, but the requested object is a list (*core.PodList)",
        "{body:?}"
    );
    let (status, body) = get_as(&http, &format!("{path}/a"), PARTIAL_LIST).await?;
    ensure!(status == 406, "{body:?}");

    // Watch events (and their bookmarks) are converted one by one.
    let (status, events) = get_as(
        &http,
        &format!("{path}?watch=true&timeoutSeconds=1&allowWatchBookmarks=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"),
        PARTIAL,
    )
    .await?;
    ensure!(status == 200 && events.len() == 2, "{events:?}");
    ensure!(
        events[0]["type"] == "ADDED"
            && events[0]["object"]["kind"] == "PartialObjectMetadata"
            && events[0]["object"].get("spec").is_none(),
        "{}",
        events[0]
    );
    ensure!(
        events[1]["type"] == "BOOKMARK" && events[1]["object"]["kind"] == "PartialObjectMetadata",
        "{}",
        events[1]
    );
    // kube 5's metadata watcher: an `Api` of `PartialObjectMeta`.
    let metadata_pods: Api<PartialObjectMeta<Pod>> = Api::namespaced(http.client.clone(), &ns);
    let stream = watcher(metadata_pods, watcher::Config::default()).applied_objects();
    let mut stream = std::pin::pin!(stream);
    let first = tokio::time::timeout(TIMEOUT, stream.try_next())
        .await??
        .context("first")?;
    ensure!(first.metadata.name.as_deref() == Some("a"));
    http.create(&path, &pod("b", json!({}))).await?;
    let second = tokio::time::timeout(TIMEOUT, stream.next())
        .await?
        .context("second")??;
    ensure!(second.metadata.name.as_deref() == Some("b"));

    // Writes answer in the same form.
    let patched = pods
        .patch_metadata(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await?;
    ensure!(
        patched
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("x"))
            .map(String::as_str)
            == Some("y")
    );
    Ok(())
}
