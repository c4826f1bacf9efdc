//! The serviceaccount controller, run under leader election: a `default` ServiceAccount
//! appears in every namespace and comes back when deleted; the Lease names the leader.

use std::time::Duration;

use anyhow::Result;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::api::DeleteParams;

use crate::{Harness, wait_for};

#[tokio::test]
async fn default_service_account_in_every_namespace_under_leader_election() -> Result<()> {
    let harness = Harness::start_with(
        "serviceaccount",
        &[
            "--leader-elect=true",
            "--leader-elect-lease-duration=3s",
            "--leader-elect-renew-deadline=2s",
            "--leader-elect-retry-period=500ms",
        ],
    )
    .await?;
    harness.namespace("sa").await?;
    let accounts: Api<ServiceAccount> = Api::namespaced(harness.client.clone(), "sa");
    let timeout = Duration::from_secs(20);
    wait_for("default ServiceAccount", timeout, || async {
        Ok(accounts.get_opt("default").await?)
    })
    .await?;
    let kube_system: Api<ServiceAccount> = Api::namespaced(harness.client.clone(), "kube-system");
    wait_for("default ServiceAccount in kube-system", timeout, || async {
        Ok(kube_system.get_opt("default").await?)
    })
    .await?;
    accounts.delete("default", &DeleteParams::default()).await?;
    wait_for("recreated default ServiceAccount", timeout, || async {
        Ok(accounts
            .get_opt("default")
            .await?
            .filter(|sa| sa.metadata.deletion_timestamp.is_none()))
    })
    .await?;
    let leases: Api<Lease> = Api::namespaced(harness.client.clone(), "kube-system");
    let lease = leases.get("kube-controller-manager").await?;
    let holder = lease.spec.and_then(|spec| spec.holder_identity).unwrap_or_default();
    assert!(!holder.is_empty(), "the lease has a holder");
    Ok(())
}
