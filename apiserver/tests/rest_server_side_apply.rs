//! Server-side apply and `metadata.managedFields`, end to end against a real etcd and
//! `kube-apiserver`: apply creates and updates, prunes what the applier stopped applying,
//! keeps what others own, refuses to change other managers' fields unless forced, and every
//! write records its manager.

mod common;

use anyhow::{Context, Result, ensure};
use common::*;
use http::Method;
use serde_json::{Value, json};

const APPLY: &str = "application/apply-patch+yaml";

/// The managedFields entries as (manager, operation, subresource, fieldsV1).
fn entries(object: &Value) -> Vec<(String, String, String, Value)> {
    object["metadata"]["managedFields"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|e| {
                    let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
                    (
                        text("manager"),
                        text("operation"),
                        text("subresource"),
                        e["fieldsV1"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn entry<'a>(object: &'a Value, manager: &str) -> Option<&'a Value> {
    object["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager)
}

#[tokio::test]
async fn apply_creates_updates_and_prunes_what_is_no_longer_applied() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "ssa").await?;
    let url = format!("/api/v1/namespaces/{ns}/configmaps/cfg");
    let alice = format!("{url}?fieldManager=alice&fieldValidation=Strict");

    // Absent: the apply creates it (201) and alice owns what she applied.
    let created = http
        .patch(
            &alice,
            APPLY,
            &configmap("cfg", json!({"a": "1"}), json!({"x": "1", "y": "2"})),
        )
        .await?
        .expect(201)?;
    ensure!(created["data"] == json!({"x": "1", "y": "2"}), "{created}");
    ensure!(
        entries(&created)
            == vec![(
                "alice".into(),
                "Apply".into(),
                String::new(),
                json!({"f:data": {"f:x": {}, "f:y": {}}, "f:metadata": {"f:labels": {"f:a": {}}}}),
            )],
        "{created}"
    );
    let alice_entry = entry(&created, "alice").context("alice's entry")?;
    ensure!(
        alice_entry["apiVersion"] == "v1" && alice_entry["fieldsType"] == "FieldsV1" && alice_entry["time"].is_string(),
        "{alice_entry}"
    );

    // A plain update by bob: he owns the key he added.
    let patched = http
        .patch(
            &format!("{url}?fieldManager=bob"),
            "application/merge-patch+json",
            &json!({"data": {"z": "3"}}),
        )
        .await?
        .expect(200)?;
    let bob = entry(&patched, "bob").context("bob's entry")?;
    ensure!(
        bob["operation"] == "Update" && bob["fieldsV1"] == json!({"f:data": {"f:z": {}}}),
        "{patched}"
    );

    // A YAML body that no longer has y or the label: they go; bob's z stays.
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n  x: '10'\n";
    let applied = http
        .send(Method::PATCH, &alice, Some(APPLY), yaml.as_bytes().to_vec())
        .await?
        .expect(200)?;
    ensure!(applied["data"] == json!({"x": "10", "z": "3"}), "{applied}");
    ensure!(applied["metadata"].get("labels").is_none(), "{applied}");
    ensure!(
        entry(&applied, "alice").map(|e| &e["fieldsV1"]) == Some(&json!({"f:data": {"f:x": {}}})),
        "{applied}"
    );
    ensure!(
        http.fetch(&url).await?["data"] == applied["data"],
        "the apply was stored"
    );

    // Applying the same configuration again changes nothing.
    let again = http
        .send(Method::PATCH, &alice, Some(APPLY), yaml.as_bytes().to_vec())
        .await?
        .expect(200)?;
    ensure!(
        again["metadata"]["resourceVersion"] == applied["metadata"]["resourceVersion"],
        "a no-op apply must not write: {again}"
    );

    // A server-side dry run answers like the apply but stores nothing, creates included.
    let dry = http
        .patch(
            &format!("{alice}&dryRun=All"),
            APPLY,
            &configmap("cfg", json!({}), json!({"x": "dry"})),
        )
        .await?
        .expect(200)?;
    ensure!(dry["data"]["x"] == "dry", "{dry}");
    http.patch(
        &format!("/api/v1/namespaces/{ns}/configmaps/fresh?fieldManager=alice&dryRun=All"),
        APPLY,
        &configmap("fresh", json!({}), json!({})),
    )
    .await?
    .expect(201)?;
    http.get(&format!("/api/v1/namespaces/{ns}/configmaps/fresh"))
        .await?
        .expect_status(404, "NotFound")?;

    // Bad applies: no manager, another object's name, a body that is not an object or not YAML.
    let status = http
        .patch(&url, APPLY, &configmap("cfg", json!({}), json!({"x": "bad"})))
        .await?
        .expect_status(422, "Invalid")?;
    ensure!(cause_fields(&status) == strs(&["fieldManager"]), "{status}");
    http.patch(&alice, APPLY, &configmap("other", json!({}), json!({})))
        .await?
        .expect_status(400, "BadRequest")?;
    http.patch(&alice, APPLY, &json!([1, 2]))
        .await?
        .expect_status(400, "BadRequest")?;
    http.send(Method::PATCH, &alice, Some(APPLY), b"data: [unclosed".to_vec())
        .await?
        .expect_status(400, "BadRequest")?;
    ensure!(
        http.fetch(&url).await?["data"] == json!({"x": "10", "z": "3"}),
        "rejected and dry-run applies must not land"
    );
    Ok(())
}

#[tokio::test]
async fn conflicts_name_the_owner_and_force_takes_the_field() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "ssa-conflict").await?;
    let url = format!("/apis/apps/v1/namespaces/{ns}/deployments/web");
    let alice = format!("{url}?fieldManager=alice");
    http.patch(&alice, APPLY, &deployment("web", 1)).await?.expect(201)?;

    // `kubectl scale` writes through /scale; its manager owns spec.replicas from there.
    let scaled = http
        .patch(
            &format!("{url}/scale?fieldManager=scaler"),
            "application/merge-patch+json",
            &json!({"spec": {"replicas": 3}}),
        )
        .await?
        .expect(200)?;
    ensure!(scaled["kind"] == "Scale", "{scaled}");
    let live = http.fetch(&url).await?;
    ensure!(
        entries(&live).contains(&(
            "scaler".into(),
            "Update".into(),
            "scale".into(),
            json!({"f:spec": {"f:replicas": {}}}),
        )),
        "{live}"
    );
    ensure!(
        entry(&live, "alice").is_none_or(|e| e["fieldsV1"]["f:spec"].get("f:replicas").is_none()),
        "alice lost spec.replicas to the scaler: {live}"
    );

    // Applying another value conflicts; nothing is written.
    let status = http
        .patch(&alice, APPLY, &deployment("web", 1))
        .await?
        .expect_status(409, "Conflict")?;
    let message = "Apply failed with 1 conflict: conflict with \"scaler\" with subresource \"scale\" using apps/v1: .spec.replicas";
    ensure!(status["message"] == message, "{status}");
    ensure!(
        status["details"]["causes"]
            == json!([{
                "reason": "FieldManagerConflict",
                "message": "conflict with \"scaler\" with subresource \"scale\" using apps/v1",
                "field": ".spec.replicas",
            }]),
        "{status}"
    );
    ensure!(
        http.fetch(&url).await?["spec"]["replicas"] == 3,
        "the conflicting apply must not land"
    );

    // Two fields of another updater: both listed, grouped under the manager.
    http.patch(
        &format!("{url}?fieldManager=bob"),
        "application/strategic-merge-patch+json",
        &json!({"metadata": {"labels": {"app": "bobs"}}, "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:2"}]}}}}),
    )
    .await?
    .expect(200)?;
    let mut mine = deployment("web", 3);
    mine["metadata"]["labels"]["app"] = json!("mine");
    let status = http.patch(&alice, APPLY, &mine).await?.expect_status(409, "Conflict")?;
    ensure!(
        status["message"]
            == "Apply failed with 2 conflicts: conflicts with \"bob\" using apps/v1:\n- .metadata.labels.app\n- .spec.template.spec.containers[name=\"web\"].image",
        "{status}"
    );

    // Agreeing with the owner's value is no conflict: the field becomes shared.
    let mut agreeing = deployment("web", 3);
    agreeing["metadata"]["labels"]["app"] = json!("bobs");
    agreeing["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:2");
    let shared = http.patch(&alice, APPLY, &agreeing).await?.expect(200)?;
    let alice_fields = &entry(&shared, "alice").context("alice")?["fieldsV1"];
    ensure!(alice_fields["f:spec"].get("f:replicas").is_some(), "{shared}");
    ensure!(
        entry(&shared, "scaler").is_some_and(|e| e["fieldsV1"]["f:spec"].get("f:replicas").is_some()),
        "{shared}"
    );

    // Forced, the applier takes the fields and the others lose them.
    let forced = http
        .patch(&format!("{alice}&force=true"), APPLY, &mine)
        .await?
        .expect(200)?;
    ensure!(
        forced["spec"]["replicas"] == 3 && forced["metadata"]["labels"]["app"] == "mine",
        "{forced}"
    );
    ensure!(
        forced["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.25",
        "{forced}"
    );
    ensure!(entry(&forced, "bob").is_none(), "bob owned nothing else: {forced}");
    Ok(())
}

#[tokio::test]
async fn writes_record_their_manager_and_managed_fields_can_be_replaced() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "ssa-fields").await?;
    let url = format!("/api/v1/namespaces/{ns}/configmaps/cm");
    let created = http
        .post(
            &format!("/api/v1/namespaces/{ns}/configmaps?fieldManager=creator"),
            &configmap("cm", json!({}), json!({"a": "1", "b": "2"})),
        )
        .await?
        .expect(201)?;
    ensure!(
        entries(&created)
            == vec![(
                "creator".into(),
                "Update".into(),
                String::new(),
                // An empty map is owned as a whole, as upstream records it.
                json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {}}}),
            )],
        "{created}"
    );

    // kubectl's client-side-apply → server-side-apply migration replaces the list by JSON patch.
    let migrated = json!([{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
        "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}, "f:b": {}}},
    }]);
    let replaced = http
        .patch(
            &format!("{url}?fieldManager=kubectl"),
            "application/json-patch+json",
            &json!([
                {"op": "replace", "path": "/metadata/managedFields", "value": migrated},
                {"op": "replace", "path": "/metadata/resourceVersion", "value": created["metadata"]["resourceVersion"]},
            ]),
        )
        .await?
        .expect(200)?;
    ensure!(
        entries(&replaced)
            == vec![(
                "kubectl".into(),
                "Apply".into(),
                String::new(),
                json!({"f:data": {"f:a": {}, "f:b": {}}})
            )],
        "{replaced}"
    );
    // The new owner's next apply prunes what it no longer applies.
    let applied = http
        .patch(
            &format!("{url}?fieldManager=kubectl"),
            APPLY,
            &configmap("cm", json!({}), json!({"a": "1"})),
        )
        .await?
        .expect(200)?;
    ensure!(applied["data"] == json!({"a": "1"}), "{applied}");

    // A stale resourceVersion in the replacement is a conflict.
    http.patch(
        &url,
        "application/json-patch+json",
        &json!([
            {"op": "replace", "path": "/metadata/managedFields", "value": []},
            {"op": "replace", "path": "/metadata/resourceVersion", "value": created["metadata"]["resourceVersion"]},
        ]),
    )
    .await?
    .expect_status(409, "Conflict")?;

    // `[{}]` clears them all.
    let mut cleared = http.fetch(&url).await?;
    cleared["metadata"]["managedFields"] = json!([{}]);
    let cleared = http.put(&url, &cleared).await?.expect(200)?;
    ensure!(cleared["metadata"].get("managedFields").is_none(), "{cleared}");

    // Status writes are recorded under the subresource.
    let pods = format!("/api/v1/namespaces/{ns}/pods");
    http.create(&pods, &pod("p", json!({}))).await?;
    let mut status = http.fetch(&format!("{pods}/p")).await?;
    status["status"] = json!({"phase": "Running"});
    let written = http
        .put(&format!("{pods}/p/status?fieldManager=kubelet"), &status)
        .await?
        .expect(200)?;
    ensure!(
        entries(&written).contains(&(
            "kubelet".into(),
            "Update".into(),
            "status".into(),
            json!({"f:status": {"f:phase": {}}}),
        )),
        "{written}"
    );
    Ok(())
}

#[tokio::test]
async fn kube_rs_server_side_apply_works_unmodified() -> Result<()> {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, Patch, PatchParams};
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "ssa-kube").await?;
    let api: Api<ConfigMap> = Api::namespaced(http.client.clone(), &ns);
    let params = PatchParams::apply("kube-rs-test");
    let config = |value: &str| configmap("rs", json!({}), json!({"k": value}));
    let created = api.patch("rs", &params, &Patch::Apply(config("1"))).await?;
    ensure!(
        created.data.as_ref().and_then(|d| d.get("k")).map(String::as_str) == Some("1"),
        "{created:?}"
    );
    let owners = created.metadata.managed_fields.clone().unwrap_or_default();
    ensure!(
        owners.len() == 1
            && owners[0].manager.as_deref() == Some("kube-rs-test")
            && owners[0].operation.as_deref() == Some("Apply"),
        "{owners:?}"
    );
    // Another manager's conflicting apply is refused, and goes through when forced.
    let other = PatchParams::apply("other");
    let refused = api.patch("rs", &other, &Patch::Apply(config("2"))).await;
    ensure!(
        matches!(&refused, Err(kube::Error::Api(status)) if status.code == 409),
        "{refused:?}"
    );
    let forced = api.patch("rs", &other.force(), &Patch::Apply(config("2"))).await?;
    ensure!(
        forced.data.as_ref().and_then(|d| d.get("k")).map(String::as_str) == Some("2"),
        "{forced:?}"
    );
    Ok(())
}
