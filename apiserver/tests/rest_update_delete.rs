//! Update, patch, subresources and delete semantics, end to end against a real etcd and `kube-apiserver`.

mod common;

use anyhow::{Context, Result, ensure};
use common::*;
use serde_json::json;

// ---------------------------------------------------------------------------------------------
// Update
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn put_uses_optimistic_concurrency() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "put").await?;
    let url = format!("/api/v1/namespaces/{ns}/configmaps/x");
    let created = http
        .create(
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            &configmap("x", json!({}), json!({"v": "1"})),
        )
        .await?;

    let mut first = created.clone();
    first["data"]["v"] = json!("2");
    let updated = http.put(&url, &first).await?.expect(200)?;
    ensure!(updated["data"]["v"] == "2", "{updated}");
    ensure!(rv(&updated)? > rv(&created)?, "{updated}");
    ensure!(updated["metadata"]["uid"] == created["metadata"]["uid"], "{updated}");

    let mut stale = created.clone();
    stale["data"]["v"] = json!("3");
    let status = http.put(&url, &stale).await?.expect_status(409, "Conflict")?;
    ensure!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("the object has been modified")),
        "{status}"
    );
    ensure!(
        http.fetch(&url).await?["data"]["v"] == "2",
        "the stale write must not land"
    );

    let mut unconditional = configmap("x", json!({}), json!({"v": "4"}));
    unconditional["metadata"]
        .as_object_mut()
        .context("metadata")?
        .remove("resourceVersion");
    let written = http.put(&url, &unconditional).await?.expect(200)?;
    ensure!(written["data"]["v"] == "4", "{written}");
    ensure!(
        written["metadata"]["uid"] == created["metadata"]["uid"]
            && written["metadata"]["creationTimestamp"] == created["metadata"]["creationTimestamp"],
        "server-owned metadata is kept: {written}"
    );

    http.put(&url, &configmap("other", json!({}), json!({})))
        .await?
        .expect_status(400, "BadRequest")?;
    http.put(
        &format!("/api/v1/namespaces/{ns}/configmaps/missing"),
        &configmap("missing", json!({}), json!({})),
    )
    .await?
    .expect_status(404, "NotFound")?;
    Ok(())
}

#[tokio::test]
async fn generation_counts_spec_changes_only() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "gen").await?;
    let url = format!("/apis/apps/v1/namespaces/{ns}/deployments/d");
    let created = http
        .create(
            &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
            &deployment("d", 1),
        )
        .await?;
    ensure!(created["metadata"]["generation"] == 1, "{created}");

    let mut labelled = created.clone();
    labelled["metadata"]["labels"]["extra"] = json!("yes");
    let after_labels = http.put(&url, &labelled).await?.expect(200)?;
    ensure!(after_labels["metadata"]["labels"]["extra"] == "yes", "{after_labels}");
    ensure!(after_labels["metadata"]["generation"] == 1, "{after_labels}");

    let mut respec = after_labels.clone();
    respec["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:1.27");
    let after_spec = http.put(&url, &respec).await?.expect(200)?;
    ensure!(after_spec["metadata"]["generation"] == 2, "{after_spec}");

    let patched = http
        .patch(&url, "application/merge-patch+json", &json!({"spec": {"replicas": 3}}))
        .await?
        .expect(200)?;
    ensure!(patched["metadata"]["generation"] == 3, "{patched}");

    let annotated = http
        .patch(
            &url,
            "application/merge-patch+json",
            &json!({"metadata": {"annotations": {"note": "x"}}}),
        )
        .await?
        .expect(200)?;
    ensure!(annotated["metadata"]["generation"] == 3, "{annotated}");

    // A client cannot set generation.
    let mut forged = annotated.clone();
    forged["metadata"]["generation"] = json!(42);
    let kept = http.put(&url, &forged).await?.expect(200)?;
    ensure!(kept["metadata"]["generation"] == 3, "{kept}");
    Ok(())
}

#[tokio::test]
async fn status_subresource_is_separate_from_the_main_resource() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "status").await?;
    let url = format!("/apis/apps/v1/namespaces/{ns}/deployments/d");
    let mut body = deployment("d", 1);
    body["status"] = json!({"replicas": 7});
    let created = http
        .create(&format!("/apis/apps/v1/namespaces/{ns}/deployments"), &body)
        .await?;
    ensure!(
        created.get("status").is_none_or(|s| s.get("replicas").is_none()),
        "status is not set on create: {created}"
    );

    let mut status_write = created.clone();
    status_write["status"] = json!({"replicas": 5, "observedGeneration": 1});
    status_write["spec"]["replicas"] = json!(9);
    status_write["metadata"]["labels"]["via-status"] = json!("yes");
    let after = http.put(&format!("{url}/status"), &status_write).await?.expect(200)?;
    ensure!(after["status"]["replicas"] == 5, "{after}");
    ensure!(after["spec"]["replicas"] == 1, "a status write ignores spec: {after}");
    ensure!(
        after["metadata"]["labels"].get("via-status").is_none(),
        "a status write ignores labels: {after}"
    );
    ensure!(after["metadata"]["generation"] == 1, "{after}");

    let mut main_write = after.clone();
    main_write["status"] = json!({"replicas": 0});
    main_write["spec"]["replicas"] = json!(2);
    let after = http.put(&url, &main_write).await?.expect(200)?;
    ensure!(after["spec"]["replicas"] == 2, "{after}");
    ensure!(after["status"]["replicas"] == 5, "a main write ignores status: {after}");

    let patched = http
        .patch(
            &format!("{url}/status"),
            "application/merge-patch+json",
            &json!({"status": {"readyReplicas": 2}, "spec": {"replicas": 4}}),
        )
        .await?
        .expect(200)?;
    ensure!(
        patched["status"]["readyReplicas"] == 2 && patched["status"]["replicas"] == 5,
        "{patched}"
    );
    ensure!(patched["spec"]["replicas"] == 2, "{patched}");
    let fetched = http.fetch(&url).await?;
    ensure!(fetched["status"]["readyReplicas"] == 2, "{fetched}");
    Ok(())
}

#[tokio::test]
async fn scale_subresource_reads_and_writes_replicas() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "scale").await?;
    let url = format!("/apis/apps/v1/namespaces/{ns}/deployments/web");
    http.create(
        &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        &deployment("web", 2),
    )
    .await?;

    let scale = http.fetch(&format!("{url}/scale")).await?;
    ensure!(
        scale["kind"] == "Scale" && scale["apiVersion"] == "autoscaling/v1",
        "{scale}"
    );
    ensure!(
        scale["metadata"]["name"] == "web" && scale["metadata"]["namespace"] == ns.as_str(),
        "{scale}"
    );
    ensure!(scale["spec"]["replicas"] == 2, "{scale}");
    ensure!(scale["status"]["selector"] == "app=web", "{scale}");

    let mut write = scale.clone();
    write["spec"]["replicas"] = json!(4);
    let written = http.put(&format!("{url}/scale"), &write).await?.expect(200)?;
    ensure!(
        written["kind"] == "Scale" && written["spec"]["replicas"] == 4,
        "{written}"
    );
    let deploy = http.fetch(&url).await?;
    ensure!(deploy["spec"]["replicas"] == 4, "{deploy}");
    ensure!(deploy["metadata"]["generation"] == 2, "{deploy}");
    ensure!(rv(&written)? == rv(&deploy)?, "{written} vs {deploy}");

    // The stale Scale carries the old resourceVersion.
    http.put(&format!("{url}/scale"), &write)
        .await?
        .expect_status(409, "Conflict")?;

    let patched = http
        .patch(
            &format!("{url}/scale"),
            "application/merge-patch+json",
            &json!({"spec": {"replicas": 1}}),
        )
        .await?
        .expect(200)?;
    ensure!(
        patched["kind"] == "Scale" && patched["spec"]["replicas"] == 1,
        "{patched}"
    );
    ensure!(http.fetch(&url).await?["spec"]["replicas"] == 1, "patch via scale");

    let patched = http
        .patch(
            &format!("{url}/scale"),
            "application/json-patch+json",
            &json!([{"op": "replace", "path": "/spec/replicas", "value": 3}]),
        )
        .await?
        .expect(200)?;
    ensure!(patched["spec"]["replicas"] == 3, "{patched}");
    ensure!(http.fetch(&url).await?["spec"]["replicas"] == 3, "json patch via scale");

    http.get(&format!("/apis/apps/v1/namespaces/{ns}/deployments/missing/scale"))
        .await?
        .expect_status(404, "NotFound")?;
    Ok(())
}

#[tokio::test]
async fn patches_merge_json_and_strategic() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "patch").await?;
    let cm_url = format!("/api/v1/namespaces/{ns}/configmaps/x");
    http.create(
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        &configmap("x", json!({"keep": "1", "drop": "1"}), json!({"a": "1", "b": "2"})),
    )
    .await?;

    let merged = http
        .patch(
            &cm_url,
            "application/merge-patch+json",
            &json!({"data": {"b": null, "c": "3"}, "metadata": {"labels": {"drop": null}}}),
        )
        .await?
        .expect(200)?;
    ensure!(merged["data"] == json!({"a": "1", "c": "3"}), "{merged}");
    ensure!(merged["metadata"]["labels"] == json!({"keep": "1"}), "{merged}");

    let jsonpatched = http
        .patch(
            &cm_url,
            "application/json-patch+json",
            &json!([
                {"op": "add", "path": "/data/d", "value": "4"},
                {"op": "remove", "path": "/data/a"},
                {"op": "replace", "path": "/data/c", "value": "33"},
            ]),
        )
        .await?
        .expect(200)?;
    ensure!(jsonpatched["data"] == json!({"c": "33", "d": "4"}), "{jsonpatched}");
    ensure!(
        http.fetch(&cm_url).await?["data"] == json!({"c": "33", "d": "4"}),
        "the JSON patch was stored"
    );
    http.patch(
        &cm_url,
        "application/json-patch+json",
        &json!([
            {"op": "test", "path": "/data/c", "value": "wrong"},
            {"op": "replace", "path": "/data/c", "value": "44"},
        ]),
    )
    .await?
    .expect_status(422, "Invalid")?;
    http.patch(
        &cm_url,
        "application/json-patch+json",
        &json!({"op": "add", "path": "/data/q", "value": "1"}),
    )
    .await?
    .expect_status(400, "BadRequest")?;

    // Strategic merge patch merges containers by name; a merge patch replaces the list.
    let deploy_url = format!("/apis/apps/v1/namespaces/{ns}/deployments/d");
    http.create(
        &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        &deployment("d", 1),
    )
    .await?;
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox:2"}]}}}});
    let strategic = http
        .patch(&deploy_url, "application/strategic-merge-patch+json", &patch)
        .await?
        .expect(200)?;
    let containers = &strategic["spec"]["template"]["spec"]["containers"];
    ensure!(containers.as_array().is_some_and(|c| c.len() == 2), "{strategic}");
    ensure!(
        containers[0]["name"] == "web" && containers[0]["image"] == "nginx:1.25",
        "{strategic}"
    );
    ensure!(
        containers[1]["name"] == "sidecar" && containers[1]["image"] == "busybox:2",
        "{strategic}"
    );
    ensure!(strategic["metadata"]["generation"] == 2, "{strategic}");

    let merge = http
        .patch(&deploy_url, "application/merge-patch+json", &patch)
        .await?
        .expect(200)?;
    let containers = &merge["spec"]["template"]["spec"]["containers"];
    ensure!(
        containers == &json!([{"name": "sidecar", "image": "busybox:2"}])
            || containers
                .as_array()
                .is_some_and(|c| c.len() == 1 && c[0]["name"] == "sidecar"),
        "a merge patch replaces lists: {merge}"
    );

    // A patch with a stale resourceVersion conflicts.
    http.patch(
        &cm_url,
        "application/merge-patch+json",
        &json!({"metadata": {"resourceVersion": "1"}, "data": {"z": "1"}}),
    )
    .await?
    .expect_status(409, "Conflict")?;

    http.patch(&cm_url, "application/json", &json!({"data": {"e": "5"}}))
        .await?
        .expect_status(415, "UnsupportedMediaType")?;
    http.patch(&cm_url, "text/plain", &json!({"data": {"e": "5"}}))
        .await?
        .expect_status(415, "UnsupportedMediaType")?;
    http.patch(&cm_url, "application/merge-patch+json", &json!([1, 2]))
        .await?
        .expect_status(400, "BadRequest")?;
    http.patch(
        &format!("/api/v1/namespaces/{ns}/configmaps/missing"),
        "application/merge-patch+json",
        &json!({"data": {"e": "5"}}),
    )
    .await?
    .expect_status(404, "NotFound")?;
    ensure!(
        http.fetch(&cm_url).await?["data"] == json!({"c": "33", "d": "4"}),
        "rejected patches must not land"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Delete
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn scheduled_pods_are_deleted_gracefully() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "grace").await?;
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    http.create(&pods, &pod("sched", json!({}))).await?;
    http.create(&pods, &pod("unsched", json!({}))).await?;

    let binding = json!({
        "apiVersion": "v1", "kind": "Binding", "metadata": {"name": "sched"},
        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"},
    });
    let bound = http
        .post(&format!("{pods}/sched/binding"), &binding)
        .await?
        .expect(201)?;
    ensure!(bound["kind"] == "Status" && bound["status"] == "Success", "{bound}");
    let scheduled = http.fetch(&format!("{pods}/sched")).await?;
    ensure!(scheduled["spec"]["nodeName"] == "node-1", "{scheduled}");
    // A second binding conflicts.
    http.post(&format!("{pods}/sched/binding"), &binding)
        .await?
        .expect_status(409, "Conflict")?;

    let deleting = http.delete(&format!("{pods}/sched")).await?.expect(200)?;
    ensure!(
        deleting["kind"] == "Pod",
        "pods answer a DELETE with the pod: {deleting}"
    );
    ensure!(deleting["metadata"]["deletionTimestamp"].is_string(), "{deleting}");
    ensure!(deleting["metadata"]["deletionGracePeriodSeconds"] == 30, "{deleting}");
    let still = http.fetch(&format!("{pods}/sched")).await?;
    ensure!(still["metadata"]["deletionTimestamp"].is_string(), "{still}");

    let gone = http
        .delete_with(
            &format!("{pods}/sched"),
            &json!({"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0}),
        )
        .await?
        .expect(200)?;
    ensure!(gone["metadata"]["name"] == "sched", "{gone}");
    http.get(&format!("{pods}/sched"))
        .await?
        .expect_status(404, "NotFound")?;

    // An unscheduled pod goes at once.
    let deleted = http.delete(&format!("{pods}/unsched")).await?.expect(200)?;
    ensure!(deleted["metadata"]["name"] == "unsched", "{deleted}");
    http.get(&format!("{pods}/unsched"))
        .await?
        .expect_status(404, "NotFound")?;
    http.delete(&format!("{pods}/unsched"))
        .await?
        .expect_status(404, "NotFound")?;
    Ok(())
}

#[tokio::test]
async fn delete_preconditions_are_checked() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "precond").await?;
    let url = format!("/api/v1/namespaces/{ns}/configmaps/x");
    let created = http
        .create(
            &format!("/api/v1/namespaces/{ns}/configmaps"),
            &configmap("x", json!({}), json!({})),
        )
        .await?;
    let uid = created["metadata"]["uid"].as_str().context("uid")?.to_string();
    let current_rv = created["metadata"]["resourceVersion"]
        .as_str()
        .context("rv")?
        .to_string();

    http.delete_with(
        &url,
        &json!({"preconditions": {"uid": "00000000-0000-0000-0000-000000000000"}}),
    )
    .await?
    .expect_status(409, "Conflict")?;
    http.delete_with(&url, &json!({"preconditions": {"resourceVersion": "1"}}))
        .await?
        .expect_status(409, "Conflict")?;
    http.fetch(&url).await?;

    let status = http
        .delete_with(
            &url,
            &json!({"preconditions": {"uid": uid, "resourceVersion": current_rv}}),
        )
        .await?
        .expect(200)?;
    ensure!(
        status["kind"] == "Status" && status["status"] == "Success" && status["details"]["uid"] == uid.as_str(),
        "{status}"
    );
    http.get(&url).await?.expect_status(404, "NotFound")?;
    Ok(())
}

#[tokio::test]
async fn finalizers_hold_an_object_until_removed() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "finalizer").await?;
    let url = format!("/api/v1/namespaces/{ns}/configmaps/held");
    let mut body = configmap("held", json!({}), json!({"v": "1"}));
    body["metadata"]["finalizers"] = json!(["example.com/hold"]);
    http.create(&format!("/api/v1/namespaces/{ns}/configmaps"), &body)
        .await?;

    let answer = http.delete(&url).await?.expect(200)?;
    ensure!(
        answer["metadata"]["deletionTimestamp"].is_string(),
        "a pending delete answers with the object: {answer}"
    );
    let pending = http.fetch(&url).await?;
    ensure!(pending["metadata"]["deletionTimestamp"].is_string(), "{pending}");
    ensure!(
        pending["metadata"]["finalizers"] == json!(["example.com/hold"]),
        "{pending}"
    );
    // Deleting again changes nothing.
    http.delete(&url).await?.expect(200)?;
    let again = http.fetch(&url).await?;
    ensure!(
        again["metadata"]["deletionTimestamp"] == pending["metadata"]["deletionTimestamp"],
        "{again}"
    );

    let mut release = again.clone();
    release["metadata"]["finalizers"] = json!([]);
    http.put(&url, &release).await?.expect(200)?;
    http.get(&url).await?.expect_status(404, "NotFound")?;
    Ok(())
}

#[tokio::test]
async fn orphan_propagation_adds_the_orphan_finalizer() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "orphan").await?;
    let url = format!("/apis/apps/v1/namespaces/{ns}/deployments/d");
    http.create(
        &format!("/apis/apps/v1/namespaces/{ns}/deployments"),
        &deployment("d", 1),
    )
    .await?;
    http.delete_with(
        &url,
        &json!({"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Orphan"}),
    )
    .await?
    .expect(200)?;
    let pending = http.fetch(&url).await?;
    ensure!(pending["metadata"]["deletionTimestamp"].is_string(), "{pending}");
    ensure!(
        pending["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("orphan"))),
        "{pending}"
    );

    // The query parameter works as well.
    let cm_url = format!("/api/v1/namespaces/{ns}/configmaps/c");
    http.create(
        &format!("/api/v1/namespaces/{ns}/configmaps"),
        &configmap("c", json!({}), json!({})),
    )
    .await?;
    http.delete(&format!("{cm_url}?propagationPolicy=Orphan"))
        .await?
        .expect(200)?;
    let pending = http.fetch(&cm_url).await?;
    ensure!(pending["metadata"]["finalizers"] == json!(["orphan"]), "{pending}");

    http.delete(&format!("{cm_url}?propagationPolicy=Sideways"))
        .await?
        .expect_status(400, "BadRequest")?;

    // What the garbage collector does: remove the finalizer; the object goes.
    http.patch(
        &url,
        "application/merge-patch+json",
        &json!({"metadata": {"finalizers": null}}),
    )
    .await?
    .expect(200)?;
    http.get(&url).await?.expect_status(404, "NotFound")?;
    Ok(())
}

#[tokio::test]
async fn deletecollection_honours_the_label_selector() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "delcoll").await?;
    let path = format!("/api/v1/namespaces/{ns}/configmaps");
    for (name, doomed) in [("a", true), ("b", false), ("c", true), ("d", false)] {
        let labels = if doomed {
            json!({"doomed": "yes"})
        } else {
            json!({"doomed": "no"})
        };
        http.create(&path, &configmap(name, labels, json!({}))).await?;
    }
    // The same names in another namespace are untouched.
    let other = namespace(&http, "delcoll").await?;
    http.create(
        &format!("/api/v1/namespaces/{other}/configmaps"),
        &configmap("a", json!({"doomed": "yes"}), json!({})),
    )
    .await?;

    let deleted = http
        .delete(&format!("{path}?labelSelector={}", enc("doomed=yes")))
        .await?
        .expect(200)?;
    ensure!(deleted["kind"] == "ConfigMapList", "{deleted}");
    ensure!(names(&deleted) == strs(&["a", "c"]), "{deleted}");
    let left = http.fetch(&path).await?;
    ensure!(names(&left) == strs(&["b", "d"]), "{left}");
    http.fetch(&format!("/api/v1/namespaces/{other}/configmaps/a")).await?;
    Ok(())
}

#[tokio::test]
async fn namespace_deletion_terminates_and_blocks_creates() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "term").await?;
    let cms = format!("/api/v1/namespaces/{ns}/configmaps");
    http.create(&cms, &configmap("before", json!({}), json!({}))).await?;

    let answer = http.delete(&format!("/api/v1/namespaces/{ns}")).await?.expect(200)?;
    ensure!(answer["status"]["phase"] == "Terminating", "{answer}");
    let namespace = http.fetch(&format!("/api/v1/namespaces/{ns}")).await?;
    ensure!(namespace["status"]["phase"] == "Terminating", "{namespace}");
    ensure!(namespace["metadata"]["deletionTimestamp"].is_string(), "{namespace}");

    let status = http
        .post(&cms, &configmap("after", json!({}), json!({})))
        .await?
        .expect_status(403, "Forbidden")?;
    ensure!(
        status["message"]
            .as_str()
            .is_some_and(|m| m.contains("because it is being terminated")),
        "{status}"
    );
    // Existing content can still be changed (controllers finish their work).
    http.patch(
        &format!("{cms}/before"),
        "application/merge-patch+json",
        &json!({"data": {"x": "y"}}),
    )
    .await?
    .expect(200)?;

    let status = http
        .delete("/api/v1/namespaces/default")
        .await?
        .expect_status(403, "Forbidden")?;
    ensure!(status["details"]["name"] == "default", "{status}");
    http.delete("/api/v1/namespaces/kube-system")
        .await?
        .expect_status(403, "Forbidden")?;
    let default = http.fetch("/api/v1/namespaces/default").await?;
    ensure!(
        default["status"]["phase"] == "Active" && default["metadata"].get("deletionTimestamp").is_none(),
        "{default}"
    );

    // Once the namespace controller clears the `kubernetes` finalizer, the namespace goes.
    let mut namespace = http.fetch(&format!("/api/v1/namespaces/{ns}")).await?;
    namespace["spec"]["finalizers"] = json!([]);
    http.put(&format!("/api/v1/namespaces/{ns}/finalize"), &namespace)
        .await?
        .expect(200)?;
    http.get(&format!("/api/v1/namespaces/{ns}"))
        .await?
        .expect_status(404, "NotFound")?;
    Ok(())
}
