//! Lease-based leader election against a real apiserver: one leader at a time, takeover when
//! the leader dies, and only the leading scheduler binds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use component_base::leader_election::{LeaderElector, LeaseConfig};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{Cluster, wait_for};

fn lease(identity: &str) -> LeaseConfig {
    LeaseConfig {
        lease_duration: Duration::from_secs(3),
        renew_deadline: Duration::from_secs(2),
        retry_period: Duration::from_millis(500),
        ..LeaseConfig::new("kube-system", "test-lease", identity)
    }
}

async fn holder(client: &kube::Client, name: &str) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-system");
    leases.get(name).await.ok()?.spec?.holder_identity
}

/// Starts an elector whose work counts how many replicas lead at once.
fn spawn_elector(
    client: kube::Client,
    identity: &'static str,
    leading_now: Arc<AtomicUsize>,
    max_leading: Arc<AtomicUsize>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let _ = LeaderElector::new(client, lease(identity))
            .run(shutdown, move |leading| async move {
                let now = leading_now.fetch_add(1, Ordering::SeqCst) + 1;
                max_leading.fetch_max(now, Ordering::SeqCst);
                leading.cancelled().await;
                leading_now.fetch_sub(1, Ordering::SeqCst);
            })
            .await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_leader_and_takeover_after_a_crash() -> Result<()> {
    let cluster = Cluster::start().await?;
    let leading_now = Arc::new(AtomicUsize::new(0));
    let max_leading = Arc::new(AtomicUsize::new(0));
    let (stop_a, stop_b) = (CancellationToken::new(), CancellationToken::new());
    let a = spawn_elector(
        cluster.client.clone(),
        "a",
        leading_now.clone(),
        max_leading.clone(),
        stop_a.clone(),
    );
    let b = spawn_elector(
        cluster.client.clone(),
        "b",
        leading_now.clone(),
        max_leading.clone(),
        stop_b.clone(),
    );
    let first = wait_for(Duration::from_secs(10), || holder(&cluster.client, "test-lease"))
        .await
        .context("nobody acquired the lease")?;
    // Both keep competing for a while: never two leaders.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        holder(&cluster.client, "test-lease").await.as_deref(),
        Some(first.as_str()),
        "no flapping"
    );
    assert_eq!(leading_now.load(Ordering::SeqCst), 1);
    // Kill the leader: no release, its lease just stops being renewed.
    let (leader, survivor) = if first == "a" { (a, "b") } else { (b, "a") };
    leader.abort();
    let _ = leader.await;
    leading_now.fetch_sub(1, Ordering::SeqCst); // the aborted work never decremented
    let started = tokio::time::Instant::now();
    let next = wait_for(Duration::from_secs(10), || async {
        holder(&cluster.client, "test-lease").await.filter(|h| h == survivor)
    })
    .await;
    assert_eq!(next.as_deref(), Some(survivor), "the survivor takes over");
    let took = started.elapsed();
    // Lease duration (3 s) counted from the survivor's last observation, plus one retry.
    assert!(took <= Duration::from_secs(5), "takeover took {took:?}");
    assert_eq!(max_leading.load(Ordering::SeqCst), 1, "never two leaders at once");
    // A clean shutdown releases the lease.
    stop_a.cancel();
    stop_b.cancel();
    let released = wait_for(Duration::from_secs(5), || async {
        holder(&cluster.client, "test-lease").await.is_none().then_some(())
    })
    .await;
    assert!(released.is_some(), "the lease was released on shutdown");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leading_scheduler_binds() -> Result<()> {
    let cluster = Cluster::start().await?;
    cluster.add_node("n1", "8", json!({})).await?;
    let options = |kubeconfig: std::path::PathBuf| scheduler::Options {
        kubeconfig: Some(kubeconfig),
        leader_elect: true,
        leader_elect_lease_duration: Duration::from_secs(3),
        leader_elect_renew_deadline: Duration::from_secs(2),
        leader_elect_retry_period: Duration::from_millis(500),
        leader_elect_resource_name: "kube-scheduler".into(),
        leader_elect_resource_namespace: "kube-system".into(),
    };
    let first = Replica::start(options(cluster.server.kubeconfig()))?;
    let leader = wait_for(Duration::from_secs(10), || holder(&cluster.client, "kube-scheduler"))
        .await
        .context("no scheduler acquired the lease")?;
    let second = Replica::start(options(cluster.server.kubeconfig()))?;
    for i in 0..5 {
        cluster.add_pod(&format!("p{i}"), "100m", json!({})).await?;
    }
    for i in 0..5 {
        cluster.wait_bound(&format!("p{i}"), Duration::from_secs(20)).await?;
    }
    // Every Scheduled event comes from the leader.
    let instances = wait_for(Duration::from_secs(10), || async {
        let mut instances = Vec::new();
        for i in 0..5 {
            let event = cluster
                .events_for(&format!("p{i}"), "Scheduled")
                .await
                .ok()?
                .into_iter()
                .next()?;
            instances.push(event.reporting_instance?);
        }
        Some(instances)
    })
    .await
    .context("missing Scheduled events")?;
    assert!(
        instances.iter().all(|i| *i == leader),
        "{instances:?} vs leader {leader}"
    );
    // The leader dies: the standby takes over and schedules new pods.
    first.kill();
    cluster.add_pod("after", "100m", json!({})).await?;
    cluster.wait_bound("after", Duration::from_secs(20)).await?;
    let new_leader = holder(&cluster.client, "kube-scheduler").await.context("no holder")?;
    assert_ne!(new_leader, leader);
    let event = wait_for(Duration::from_secs(10), || async {
        cluster.events_for("after", "Scheduled").await.ok()?.into_iter().next()
    })
    .await
    .context("no Scheduled event")?;
    assert_eq!(event.reporting_instance.as_deref(), Some(new_leader.as_str()));
    second.kill();
    Ok(())
}

/// A scheduler replica in its own runtime, so that killing it stops everything it runs, as a
/// process exit would.
struct Replica(Option<tokio::runtime::Runtime>);

impl Replica {
    fn start(options: scheduler::Options) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        runtime.spawn(scheduler::run(options, CancellationToken::new()));
        Ok(Self(Some(runtime)))
    }

    fn kill(mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
