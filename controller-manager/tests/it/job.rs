//! The job controller (and ttl-after-finished): completions with parallelism until the real
//! `kubectl wait --for=condition=Complete` returns, backoffLimit, Indexed Jobs, TTL deletion.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Result, bail};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use crate::{Harness, wait_for};

const TIMEOUT: Duration = Duration::from_secs(40);
const FINALIZER: &str = "batch.kubernetes.io/job-tracking";

async fn create_job(harness: &Harness, namespace: &str, spec: serde_json::Value) -> Result<Job> {
    let api: Api<Job> = Api::namespaced(harness.client.clone(), namespace);
    let job: Job = serde_json::from_value(spec)?;
    Ok(api.create(&PostParams::default(), &job).await?)
}

fn job_spec(name: &str, spec: serde_json::Value) -> serde_json::Value {
    let mut spec = spec;
    spec["template"] = json!({
        "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox"}]},
    });
    json!({"metadata": {"name": name}, "spec": spec})
}

/// Marks a pod finished with `phase`, as a kubelet would report its container's exit.
async fn finish(harness: &Harness, namespace: &str, name: &str, phase: &str) -> Result<()> {
    let api: Api<Pod> = Api::namespaced(harness.client.clone(), namespace);
    let now = jiff::Timestamp::now().to_string();
    let code = if phase == "Succeeded" { 0 } else { 1 };
    let status = json!({"status": {
        "phase": phase,
        "containerStatuses": [{
            "name": "main", "image": "busybox", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": code, "startedAt": now, "finishedAt": now}},
        }],
    }});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await?;
    Ok(())
}

/// The job's pods that have not finished yet.
async fn running(harness: &Harness, namespace: &str, job: &str) -> Result<Vec<Pod>> {
    let pods = harness
        .live_pods(namespace, &format!("batch.kubernetes.io/job-name={job}"))
        .await?;
    Ok(pods
        .into_iter()
        .filter(|pod| {
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Succeeded" | "Failed"))
        })
        .collect())
}

fn condition(job: &Job, type_: &str) -> Option<(String, String)> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_ && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

#[tokio::test]
async fn job_runs_completions_with_parallelism_until_kubectl_wait_returns() -> Result<()> {
    let harness = Harness::start("job").await?;
    harness.namespace("jobs").await?;
    let jobs: Api<Job> = Api::namespaced(harness.client.clone(), "jobs");
    let job = create_job(
        &harness,
        "jobs",
        job_spec("pi", json!({"completions": 3, "parallelism": 2})),
    )
    .await?;
    let uid = job.metadata.uid.clone().unwrap_or_default();

    let mut finished = BTreeSet::new();
    while finished.len() < 3 {
        let want = 2.min(3 - finished.len());
        let pods = wait_for("running pods", TIMEOUT, || async {
            let pods = running(&harness, "jobs", "pi").await?;
            Ok((pods.len() == want).then_some(pods))
        })
        .await?;
        for pod in &pods {
            let meta = &pod.metadata;
            assert!(meta.finalizers.iter().flatten().any(|f| f == FINALIZER));
            let labels = meta.labels.clone().unwrap_or_default();
            assert_eq!(labels.get("batch.kubernetes.io/controller-uid"), Some(&uid));
            assert_eq!(labels.get("controller-uid"), Some(&uid));
            assert_eq!(labels.get("job-name").map(String::as_str), Some("pi"));
            let owner = meta
                .owner_references
                .iter()
                .flatten()
                .find(|r| r.controller == Some(true));
            assert_eq!(owner.map(|r| r.uid.as_str()), Some(uid.as_str()));
        }
        // Never more than parallelism at once.
        assert!(running(&harness, "jobs", "pi").await?.len() <= 2);
        let name = pods[0].metadata.name.clone().unwrap_or_default();
        finish(&harness, "jobs", &name, "Succeeded").await?;
        finished.insert(name);
    }

    let (ok, output) = harness
        .kubectl(&[
            "wait",
            "-n",
            "jobs",
            "--for=condition=Complete",
            "job/pi",
            "--timeout=40s",
        ])
        .await?;
    assert!(ok, "kubectl wait failed: {output}");
    assert!(output.contains("job.batch/pi condition met"), "{output}");
    let job = jobs.get("pi").await?;
    let status = job.status.clone().unwrap_or_default();
    assert_eq!(status.succeeded, Some(3));
    assert_eq!(status.active, Some(0));
    assert!(status.start_time.is_some() && status.completion_time.is_some());
    assert!(condition(&job, "SuccessCriteriaMet").is_some());
    // Every pod was counted and let go.
    let pods = harness.live_pods("jobs", "batch.kubernetes.io/job-name=pi").await?;
    assert_eq!(pods.len(), 3);
    assert!(
        pods.iter()
            .all(|pod| pod.metadata.finalizers.iter().flatten().all(|f| f != FINALIZER))
    );
    Ok(())
}

#[tokio::test]
async fn failing_job_backs_off_then_hits_its_backoff_limit() -> Result<()> {
    let harness = Harness::start("job").await?;
    harness.namespace("fail").await?;
    let jobs: Api<Job> = Api::namespaced(harness.client.clone(), "fail");
    create_job(&harness, "fail", job_spec("flaky", json!({"backoffLimit": 1}))).await?;
    for attempt in 0..2 {
        let pods = wait_for("a running pod", TIMEOUT, || async {
            let pods = running(&harness, "fail", "flaky").await?;
            Ok((pods.len() == 1).then_some(pods))
        })
        .await?;
        let name = pods[0].metadata.name.clone().unwrap_or_default();
        let failed_at = tokio::time::Instant::now();
        finish(&harness, "fail", &name, "Failed").await?;
        if attempt == 0 {
            // The replacement waits for the 10 s back-off.
            wait_for("failed count 1", TIMEOUT, || async {
                let status = jobs.get("flaky").await?.status.unwrap_or_default();
                Ok((status.failed == Some(1)).then_some(()))
            })
            .await?;
            wait_for("the replacement", TIMEOUT, || async {
                Ok((running(&harness, "fail", "flaky").await?.len() == 1).then_some(()))
            })
            .await?;
            let waited = failed_at.elapsed();
            if waited < Duration::from_secs(8) {
                bail!("replacement created after {waited:?}, before the back-off");
            }
        }
    }
    let job = wait_for("Failed condition", TIMEOUT, || async {
        let job = jobs.get("flaky").await?;
        Ok(condition(&job, "Failed").is_some().then_some(job))
    })
    .await?;
    let expected = (
        "BackoffLimitExceeded".to_string(),
        "Job has reached the specified backoff limit".to_string(),
    );
    assert_eq!(condition(&job, "Failed"), Some(expected.clone()));
    assert_eq!(condition(&job, "FailureTarget"), Some(expected));
    let status = job.status.unwrap_or_default();
    assert_eq!(status.failed, Some(2));
    assert!(status.completion_time.is_none());
    assert!(running(&harness, "fail", "flaky").await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn indexed_job_gets_distinct_indexes_and_ttl_deletes_it() -> Result<()> {
    let harness = Harness::start("job,ttl-after-finished").await?;
    harness.namespace("idx").await?;
    let jobs: Api<Job> = Api::namespaced(harness.client.clone(), "idx");
    let spec = json!({"completions": 3, "parallelism": 3, "completionMode": "Indexed", "ttlSecondsAfterFinished": 2});
    create_job(&harness, "idx", job_spec("shard", spec)).await?;
    let pods = wait_for("3 indexed pods", TIMEOUT, || async {
        let pods = running(&harness, "idx", "shard").await?;
        Ok((pods.len() == 3).then_some(pods))
    })
    .await?;
    let mut indexes = BTreeSet::new();
    for pod in &pods {
        let index = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("batch.kubernetes.io/job-completion-index"))
            .cloned()
            .unwrap_or_default();
        let label = pod
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("batch.kubernetes.io/job-completion-index"));
        assert_eq!(label, Some(&index));
        let spec = pod.spec.clone().unwrap_or_default();
        assert_eq!(spec.hostname, Some(format!("shard-{index}")));
        let env = spec.containers[0].env.clone().unwrap_or_default();
        assert!(env.iter().any(|var| var.name == "JOB_COMPLETION_INDEX"));
        indexes.insert(index);
    }
    assert_eq!(indexes, ["0", "1", "2"].iter().map(|s| s.to_string()).collect());

    for pod in &pods {
        finish(
            &harness,
            "idx",
            pod.metadata.name.as_deref().unwrap_or_default(),
            "Succeeded",
        )
        .await?;
    }
    wait_for("Complete with completedIndexes 0-2", TIMEOUT, || async {
        let job = match jobs.get_opt("shard").await? {
            Some(job) => job,
            None => bail!("deleted before it was seen Complete"),
        };
        let status = job.status.clone().unwrap_or_default();
        Ok((condition(&job, "Complete").is_some() && status.completed_indexes.as_deref() == Some("0-2")).then_some(()))
    })
    .await?;
    wait_for("ttl deletion", TIMEOUT, || async {
        Ok(jobs.get_opt("shard").await?.is_none().then_some(()))
    })
    .await?;
    Ok(())
}
