//! Scheduling throughput end to end against a real apiserver (release build, embedded store):
//! 1 000 fake Nodes, 5 000 pods. Run with `cargo bench -p scheduler --bench throughput` after
//! `cargo build --release -p apiserver --bin kube-apiserver`.
//!
//! Reports: (A) pods created while the scheduler runs, pods/s from the first create to the last
//! binding, with p50/p99 time in queue; (B) a backlog of pods already pending when the scheduler
//! starts; (C) the apiserver alone: pod creations/s and bindings/s with the same concurrency.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use scheduler::metrics::Metrics;
use scheduler::{Scheduler, SchedulerConfig};
use serde_json::json;
use testkit::apiserver::ApiServer;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const NODES: usize = 1000;
const PODS: usize = 5000;
const CONCURRENCY: usize = 64;

async fn client(server: &ApiServer) -> Result<kube::Client> {
    let kubeconfig = kube::config::Kubeconfig::read_from(server.kubeconfig())?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

async fn create_nodes(client: &kube::Client) -> Result<()> {
    let nodes: Api<Node> = Api::all(client.clone());
    futures::stream::iter(0..NODES)
        .map(|i| {
            let nodes = nodes.clone();
            async move {
                let name = format!("node-{i}");
                let node: Node = serde_json::from_value(json!({
                    "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "zone": format!("zone-{}", i % 3)}},
                }))?;
                nodes.create(&PostParams::default(), &node).await?;
                let status = json!({"status": {
                    "capacity": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                    "allocatable": {"cpu": "32", "memory": "128Gi", "pods": "110"},
                }});
                nodes.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status)).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

async fn create_pods(client: &kube::Client, prefix: &str, count: usize) -> Result<()> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    futures::stream::iter(0..count)
        .map(|i| {
            let pods = pods.clone();
            let name = format!("{prefix}-{i}");
            async move {
                let pod: Pod = serde_json::from_value(json!({
                    "metadata": {"name": name, "namespace": "default"},
                    "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10",
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]},
                }))?;
                pods.create(&PostParams::default(), &pod).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

async fn wait_bound(metrics: &Metrics, target: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while Metrics::count(&metrics.bound) < target {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {target} pods bound",
            Metrics::count(&metrics.bound)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn start(client: &kube::Client) -> (Arc<Scheduler>, CancellationToken) {
    let shutdown = CancellationToken::new();
    let scheduler = Scheduler::new(client.clone(), SchedulerConfig::default());
    tokio::spawn(scheduler.clone().run(shutdown.clone()));
    (scheduler, shutdown)
}

fn report(label: &str, pods: usize, elapsed: Duration, metrics: &Metrics) {
    println!(
        "{label}: {pods} pods in {:.2} s = {:.0} pods/s; time in queue p50 {:?} p99 {:?}; algorithm p50 {:?} p99 {:?}",
        elapsed.as_secs_f64(),
        pods as f64 / elapsed.as_secs_f64(),
        metrics.queue_latency_quantile(0.5),
        metrics.queue_latency_quantile(0.99),
        metrics.algorithm_latency_quantile(0.5),
        metrics.algorithm_latency_quantile(0.99),
    );
}

async fn bench() -> Result<()> {
    let binary = testkit::workspace_binary("kube-apiserver").context("build it: cargo build --release -p apiserver")?;
    let server = tokio::task::spawn_blocking(move || ApiServer::start_embedded(&binary, &[])).await??;
    let client = client(&server).await?;
    let started = Instant::now();
    create_nodes(&client).await?;
    println!("created {NODES} nodes in {:.2} s", started.elapsed().as_secs_f64());

    // (A) pods arrive while the scheduler runs.
    let (scheduler, shutdown) = start(&client);
    tokio::time::sleep(Duration::from_secs(2)).await; // informers synced
    let started = Instant::now();
    create_pods(&client, "a", PODS).await?;
    let created = started.elapsed();
    wait_bound(&scheduler.metrics, PODS as u64).await?;
    report(
        "A (create + schedule + bind)",
        PODS,
        started.elapsed(),
        &scheduler.metrics,
    );
    println!(
        "  of which creating the pods took {:.2} s ({:.0} creates/s)",
        created.as_secs_f64(),
        PODS as f64 / created.as_secs_f64()
    );
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // (B) a backlog of pending pods, then the scheduler starts.
    create_pods(&client, "b", PODS).await?;
    let started = Instant::now();
    let (scheduler, shutdown) = start(&client);
    wait_bound(&scheduler.metrics, PODS as u64).await?;
    report(
        "B (backlog, incl. informer sync of 5 000 bound pods)",
        PODS,
        started.elapsed(),
        &scheduler.metrics,
    );
    shutdown.cancel();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // (C) the apiserver alone: create then bind directly.
    let started = Instant::now();
    create_pods(&client, "c", PODS).await?;
    let creates = PODS as f64 / started.elapsed().as_secs_f64();
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let started = Instant::now();
    let results: Vec<Result<()>> = futures::stream::iter(0..PODS)
        .map(|i| {
            let pods = pods.clone();
            async move {
                let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": format!("c-{i}")},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": format!("node-{}", i % NODES)}});
                pods.create_subresource::<_, serde_json::Value>(
                    "binding",
                    &format!("c-{i}"),
                    &PostParams::default(),
                    &binding,
                )
                .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    let binds = PODS as f64 / started.elapsed().as_secs_f64();
    println!("C (apiserver alone, {CONCURRENCY} concurrent): {creates:.0} pod creates/s, {binds:.0} bindings/s");
    Ok(())
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(bench())
}
