//! The cronjob controller with the job controller: a `* * * * *` CronJob creates its Job
//! (the controllers' clock runs a minute ahead, so no test waits for a real minute), which
//! completes and shows up as the CronJob's last success.

use std::time::Duration;

use anyhow::Result;
use jiff::SignedDuration;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{Harness, wait_for};

const TIMEOUT: Duration = Duration::from_secs(40);

#[tokio::test]
async fn every_minute_cronjob_creates_a_job_and_records_its_success() -> Result<()> {
    let clock = controller_manager::clock::Clock::offset(SignedDuration::from_secs(61));
    let harness = Harness::start_with_clock("cronjob,job", &["--leader-elect=false"], clock).await?;
    harness.namespace("cron").await?;
    let client = harness.client.clone();
    let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), "cron");
    let jobs: Api<Job> = Api::namespaced(client.clone(), "cron");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "cron");
    let cj: CronJob = serde_json::from_value(json!({
        "metadata": {"name": "tick"},
        "spec": {
            "schedule": "* * * * *",
            "concurrencyPolicy": "Forbid",
            "jobTemplate": {
                "metadata": {"labels": {"app": "tick"}},
                "spec": {"template": {"spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "busybox"}],
                }}},
            },
        },
    }))?;
    let cj = cronjobs.create(&PostParams::default(), &cj).await?;
    let uid = cj.metadata.uid.clone().unwrap_or_default();

    let job = wait_for("the scheduled job", TIMEOUT, || async {
        Ok(jobs.list(&ListParams::default()).await?.items.into_iter().next())
    })
    .await?;
    let name = job.metadata.name.clone().unwrap_or_default();
    let minute: i64 = name.trim_start_matches("tick-").parse()?;
    let created = cj
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_second())
        .unwrap_or_default();
    assert!(
        minute * 60 > created,
        "{name} is for a minute after the CronJob was created"
    );
    let owner = job
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true));
    assert_eq!(
        owner.map(|r| (r.kind.as_str(), r.uid.as_str())),
        Some(("CronJob", uid.as_str()))
    );
    assert_eq!(
        job.metadata.labels.unwrap_or_default().get("app").map(String::as_str),
        Some("tick")
    );
    assert!(
        job.metadata
            .annotations
            .unwrap_or_default()
            .contains_key("batch.kubernetes.io/cronjob-scheduled-timestamp")
    );
    let status = wait_for("active job in status", TIMEOUT, || async {
        let status = cronjobs.get("tick").await?.status.unwrap_or_default();
        let active = status.active.clone().unwrap_or_default();
        Ok((active.len() == 1 && active[0].name.as_deref() == Some(&name)).then_some(status))
    })
    .await?;
    let scheduled = status.last_schedule_time.map(|t| t.0.as_second());
    assert_eq!(scheduled, Some(minute * 60));

    // Run the job's pod to success, as a kubelet would report it.
    let pod = wait_for("the job's pod", TIMEOUT, || async {
        let list = pods
            .list(&ListParams::default().labels(&format!("job-name={name}")))
            .await?;
        Ok(list.items.into_iter().next())
    })
    .await?;
    let now = jiff::Timestamp::now().to_string();
    let finished = json!({"status": {"phase": "Succeeded", "containerStatuses": [{
        "name": "main", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
        "state": {"terminated": {"exitCode": 0, "startedAt": now, "finishedAt": now}},
    }]}});
    let pod_name = pod.metadata.name.clone().unwrap_or_default();
    pods.patch_status(&pod_name, &PatchParams::default(), &Patch::Merge(&finished))
        .await?;
    wait_for("last successful time, no active job", TIMEOUT, || async {
        let status = cronjobs.get("tick").await?.status.unwrap_or_default();
        Ok((status.last_successful_time.is_some() && status.active.is_none()).then_some(()))
    })
    .await?;
    Ok(())
}
