//! Service address allocation, restart persistence and the kube-rs client, end to end against a real etcd and `kube-apiserver`.

mod common;

use anyhow::{Context, Result, bail, ensure};
use common::*;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::watcher;
use serde_json::json;
use std::net::Ipv4Addr;
use testkit::apiserver::ApiServer;
use testkit::etcd::EtcdServer;

// ---------------------------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------------------------

fn in_service_range(ip: &str) -> Result<bool> {
    let ip: Ipv4Addr = ip.parse().with_context(|| format!("{ip:?} is not an IPv4 address"))?;
    // 10.96.0.0/12
    Ok(u32::from(ip) & 0xFFF0_0000 == u32::from(Ipv4Addr::new(10, 96, 0, 0)))
}

#[tokio::test]
async fn services_get_cluster_ips_and_node_ports() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "svc").await?;
    let path = format!("/api/v1/namespaces/{ns}/services");

    let a = http
        .create(&path, &service("a", json!({"selector": {"app": "a"}})))
        .await?;
    let ip_a = a["spec"]["clusterIP"].as_str().context("no clusterIP")?.to_string();
    ensure!(in_service_range(&ip_a)?, "{ip_a} is outside 10.96.0.0/12");
    ensure!(a["spec"]["clusterIPs"] == json!([ip_a]), "{a}");
    let b = http.create(&path, &service("b", json!({}))).await?;
    ensure!(b["spec"]["clusterIP"] != a["spec"]["clusterIP"], "{a} {b}");

    let np = http.create(&path, &service("np", json!({"type": "NodePort"}))).await?;
    let node_port = np["spec"]["ports"][0]["nodePort"].as_u64().context("no nodePort")?;
    ensure!((30000..=32767).contains(&node_port), "nodePort {node_port}");
    ensure!(
        in_service_range(np["spec"]["clusterIP"].as_str().unwrap_or(""))?,
        "{np}"
    );

    let taken = json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP", "nodePort": node_port}]});
    let status = http
        .post(&path, &service("np2", taken))
        .await?
        .expect_status(422, "Invalid")?;
    ensure!(
        cause_fields(&status).contains(&"spec.ports[0].nodePort".to_string()),
        "{status}"
    );
    let status = http
        .post(&path, &service("dup", json!({"clusterIP": ip_a})))
        .await?
        .expect_status(422, "Invalid")?;
    ensure!(
        cause_fields(&status).iter().any(|f| f.starts_with("spec.clusterIP")),
        "{status}"
    );
    http.post(&path, &service("outside", json!({"clusterIP": "192.168.1.1"})))
        .await?
        .expect_status(422, "Invalid")?;
    let outside = json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP", "nodePort": 8080}]});
    http.post(&path, &service("outside", outside))
        .await?
        .expect_status(422, "Invalid")?;

    // Headless services get no address.
    let headless = http
        .create(&path, &service("headless", json!({"clusterIP": "None"})))
        .await?;
    ensure!(headless["spec"]["clusterIP"] == "None", "{headless}");
    Ok(())
}

#[tokio::test]
async fn service_addresses_are_released_on_delete() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "svcrel").await?;
    let path = format!("/api/v1/namespaces/{ns}/services");
    // Explicit values other tests are unlikely to hold; retried if they do.
    let mut chosen = None;
    for _ in 0..10 {
        let ip = Ipv4Addr::new(10, 100, rand::random_range(0..=255), rand::random_range(1..=254)).to_string();
        let port: u16 = rand::random_range(30000..=32767);
        let spec = json!({"type": "NodePort", "clusterIP": ip,
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": port}]});
        let reply = http.post(&path, &service("first", spec.clone())).await?;
        if reply.status == 201 {
            chosen = Some((ip, port, spec, reply.body));
            break;
        }
        reply.expect_status(422, "Invalid")?;
    }
    let (ip, port, spec, first) = chosen.context("no free explicit address found")?;
    ensure!(
        first["spec"]["clusterIP"] == ip.as_str() && first["spec"]["ports"][0]["nodePort"] == port,
        "{first}"
    );
    // While held, they cannot be requested again.
    http.post(&path, &service("second", spec.clone()))
        .await?
        .expect_status(422, "Invalid")?;

    let deleted = http.delete(&format!("{path}/first")).await?.expect(200)?;
    ensure!(
        deleted["kind"] == "Service",
        "services answer a DELETE with the service: {deleted}"
    );
    let second = http.create(&path, &service("second", spec)).await?;
    ensure!(
        second["spec"]["clusterIP"] == ip.as_str() && second["spec"]["ports"][0]["nodePort"] == port,
        "{second}"
    );

    Ok(())
}

#[tokio::test]
async fn switching_a_node_port_service_to_cluster_ip_releases_the_port() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "svcswitch").await?;
    let path = format!("/api/v1/namespaces/{ns}/services");
    let created = http.create(&path, &service("np", json!({"type": "NodePort"}))).await?;
    let port = created["spec"]["ports"][0]["nodePort"]
        .as_u64()
        .context("no nodePort")?;
    // What `kubectl edit` sends: the object as read, with the type changed and the node port
    // removed; upstream drops the type-dependent fields (externalTrafficPolicy) left unchanged.
    let mut to_cluster_ip = created.clone();
    to_cluster_ip["spec"]["type"] = json!("ClusterIP");
    to_cluster_ip["spec"]["ports"][0]
        .as_object_mut()
        .context("port")?
        .remove("nodePort");
    let switched = http.put(&format!("{path}/np"), &to_cluster_ip).await?.expect(200)?;
    ensure!(switched["spec"]["type"] == "ClusterIP", "{switched}");
    ensure!(switched["spec"]["ports"][0].get("nodePort").is_none(), "{switched}");
    ensure!(
        switched["spec"]["clusterIP"] == created["spec"]["clusterIP"],
        "{switched}"
    );
    let reuse = json!({"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP", "nodePort": port}]});
    http.create(&path, &service("reuse", reuse)).await?;
    Ok(())
}

#[tokio::test]
async fn updates_keep_allocated_service_addresses() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "svckeep").await?;
    let path = format!("/api/v1/namespaces/{ns}/services");
    let created = http
        .create(
            &path,
            &service("s", json!({"type": "NodePort", "selector": {"app": "s"}})),
        )
        .await?;
    let ip = created["spec"]["clusterIP"].clone();
    let node_port = created["spec"]["ports"][0]["nodePort"].clone();
    ensure!(ip.is_string() && node_port.is_u64(), "{created}");

    let mut update = created.clone();
    let spec = update["spec"].as_object_mut().context("spec")?;
    spec.remove("clusterIP");
    spec.remove("clusterIPs");
    spec.insert("selector".into(), json!({"app": "other"}));
    update["spec"]["ports"][0]
        .as_object_mut()
        .context("port")?
        .remove("nodePort");
    let updated = http.put(&format!("{path}/s"), &update).await?.expect(200)?;
    ensure!(updated["spec"]["clusterIP"] == ip, "{updated}");
    ensure!(updated["spec"]["clusterIPs"] == json!([ip]), "{updated}");
    ensure!(updated["spec"]["ports"][0]["nodePort"] == node_port, "{updated}");
    ensure!(updated["spec"]["selector"]["app"] == "other", "{updated}");
    let fetched = http.fetch(&format!("{path}/s")).await?;
    ensure!(fetched["spec"]["clusterIP"] == ip, "{fetched}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Restarts
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn objects_allocations_and_pki_survive_a_restart() -> Result<()> {
    let etcd = EtcdServer::start()?;
    let mut apiserver = ApiServer::start(apiserver_binary(), &etcd.endpoint, &[])?;
    let http = Http::from_kubeconfig_file(&apiserver.kubeconfig()).await?;
    let cm = http
        .create(
            "/api/v1/namespaces/default/configmaps",
            &configmap("keep", json!({}), json!({"v": "1"})),
        )
        .await?;
    let svc = http
        .create(
            "/api/v1/namespaces/default/services",
            &service("keep", json!({"type": "NodePort"})),
        )
        .await?;
    let ip = svc["spec"]["clusterIP"].as_str().context("clusterIP")?.to_string();
    let port = svc["spec"]["ports"][0]["nodePort"].as_u64().context("nodePort")?;
    let ca_path = apiserver.data_dir().join("pki/ca.crt");
    let ca_before = std::fs::read_to_string(&ca_path)?;
    let kubeconfig_before = std::fs::read_to_string(apiserver.kubeconfig())?;

    apiserver.restart()?;

    ensure!(
        std::fs::read_to_string(&ca_path)? == ca_before,
        "the CA was regenerated"
    );
    ensure!(
        std::fs::read_to_string(apiserver.kubeconfig())? == kubeconfig_before,
        "the admin kubeconfig changed"
    );
    // A client made from the old kubeconfig still works.
    let http = Http::from_kubeconfig_yaml(&kubeconfig_before).await?;
    let cm_after = http.fetch("/api/v1/namespaces/default/configmaps/keep").await?;
    ensure!(
        cm_after["metadata"]["resourceVersion"] == cm["metadata"]["resourceVersion"]
            && cm_after["metadata"]["uid"] == cm["metadata"]["uid"]
            && cm_after["data"] == cm["data"],
        "{cm} vs {cm_after}"
    );
    check_service_survived(&http, &svc, &ip, port).await?;
    // New writes continue after the old revisions.
    let next = http
        .create(
            "/api/v1/namespaces/default/configmaps",
            &configmap("next", json!({}), json!({})),
        )
        .await?;
    ensure!(rv(&next)? > rv(&svc)?, "{next}");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// kube-rs
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn kube_rs_api_and_watcher() -> Result<()> {
    let env = env();
    let http = env.admin().await?;
    let ns = namespace(&http, "kubers").await?;
    let client = http.client.clone();
    let pods: Api<Pod> = Api::namespaced(client, &ns);

    let first: Pod = serde_json::from_value(pod("first", json!({"app": "kube-rs"})))?;
    let created = pods.create(&PostParams::default(), &first).await?;
    ensure!(created.metadata.uid.is_some(), "{created:?}");
    let fetched = pods.get("first").await?;
    ensure!(fetched.metadata.uid == created.metadata.uid, "{fetched:?}");
    let listed = pods.list(&ListParams::default().labels("app=kube-rs")).await?;
    ensure!(
        listed
            .items
            .iter()
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect::<Vec<_>>()
            == ["first"],
        "{:?}",
        listed.items
    );
    match pods.get("missing").await {
        Err(kube::Error::Api(status)) => ensure!(status.code == 404, "{status:?}"),
        other => bail!("expected a 404, got {other:?}"),
    }

    let mut events = watcher(pods.clone(), watcher::Config::default()).boxed();
    let init = async {
        let mut initial = Vec::new();
        while let Some(event) = events.next().await {
            match event? {
                watcher::Event::InitApply(p) => initial.push(p.metadata.name.unwrap_or_default()),
                watcher::Event::InitDone => return anyhow::Ok(initial),
                _ => {}
            }
        }
        bail!("the watcher ended during its initial list")
    };
    let initial = tokio::time::timeout(TIMEOUT, init)
        .await
        .context("the watcher's initial list did not finish")??;
    ensure!(initial == ["first"], "initial objects: {initial:?}");

    let second: Pod = serde_json::from_value(pod("second", json!({"app": "kube-rs"})))?;
    pods.create(&PostParams::default(), &second).await?;
    let applied = async {
        while let Some(event) = events.next().await {
            if let watcher::Event::Apply(p) = event?
                && p.metadata.name.as_deref() == Some("second")
            {
                return anyhow::Ok(p);
            }
        }
        bail!("the watcher ended")
    };
    let applied = tokio::time::timeout(TIMEOUT, applied)
        .await
        .context("no Apply for the new pod")??;
    ensure!(
        applied.metadata.namespace.as_deref() == Some(ns.as_str()),
        "{applied:?}"
    );
    Ok(())
}
