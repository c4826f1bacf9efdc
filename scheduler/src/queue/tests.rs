//! Queue tests on tokio's paused clock.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::*;
use crate::framework::types::testing::pod;

fn queue() -> SchedulingQueue {
    let mut events = HashMap::new();
    events.insert(
        "NodeResourcesFit",
        vec![ClusterEvent::NodeAdd, ClusterEvent::AssignedPodDelete],
    );
    SchedulingQueue::new(events)
}

fn add(queue: &SchedulingQueue, name: &str, priority: i32) {
    queue.add_or_update(Arc::new(pod(name, json!({"spec": {"priority": priority}}))));
}

async fn pop_name(queue: &SchedulingQueue) -> String {
    tokio::time::timeout(Duration::from_millis(10), queue.pop())
        .await
        .expect("a pod is active")
        .expect("queue open")
        .info
        .name
        .clone()
}

async fn nothing_active(queue: &SchedulingQueue) -> bool {
    tokio::time::timeout(Duration::from_millis(1), queue.pop())
        .await
        .is_err()
}

fn fit() -> BTreeSet<&'static str> {
    BTreeSet::from(["NodeResourcesFit"])
}

#[tokio::test(start_paused = true)]
async fn pops_by_priority_then_arrival() {
    let queue = queue();
    add(&queue, "low", 0);
    tokio::time::advance(Duration::from_millis(1)).await;
    add(&queue, "high", 10);
    tokio::time::advance(Duration::from_millis(1)).await;
    add(&queue, "mid", 5);
    tokio::time::advance(Duration::from_millis(1)).await;
    add(&queue, "low2", 0);
    let mut order = Vec::new();
    for _ in 0..4 {
        order.push(pop_name(&queue).await);
    }
    assert_eq!(order, ["high", "mid", "low", "low2"]);
    assert!(nothing_active(&queue).await);
}

#[tokio::test(start_paused = true)]
async fn errors_back_off_exponentially_up_to_ten_seconds() {
    let queue = queue();
    add(&queue, "p", 0);
    let mut expected = [1u64, 2, 4, 8, 10, 10].into_iter();
    loop {
        let popped = queue.pop().await.expect("open");
        let Some(seconds) = expected.next() else { break };
        assert_eq!(popped.backoff_duration(), Duration::from_secs(seconds));
        queue.add_unschedulable(&popped, BTreeSet::new());
        assert_eq!(queue.lengths(), (0, 1, 0, 0));
        tokio::time::advance(Duration::from_secs(seconds) - Duration::from_millis(1)).await;
        queue.flush();
        assert!(nothing_active(&queue).await, "still backing off after {seconds} s");
        tokio::time::advance(Duration::from_millis(2)).await;
        queue.flush();
        assert_eq!(queue.lengths(), (1, 0, 0, 0));
    }
}

#[tokio::test(start_paused = true)]
async fn unschedulable_pods_move_on_relevant_events_only() {
    let queue = queue();
    add(&queue, "p", 0);
    let popped = queue.pop().await.expect("open");
    queue.add_unschedulable(&popped, fit());
    assert_eq!(queue.lengths(), (0, 0, 1, 0));
    queue.move_on_event(ClusterEvent::NodeUpdate);
    queue.move_on_event(ClusterEvent::AssignedPodAdd);
    assert_eq!(queue.lengths(), (0, 0, 1, 0));
    tokio::time::advance(Duration::from_secs(2)).await;
    queue.move_on_event(ClusterEvent::NodeAdd);
    assert_eq!(
        queue.lengths(),
        (1, 0, 0, 0),
        "back-off already over: straight to active"
    );
    assert_eq!(pop_name(&queue).await, "p");
}

#[tokio::test(start_paused = true)]
async fn a_move_during_the_attempt_sends_the_pod_to_backoff() {
    let queue = queue();
    add(&queue, "p", 0);
    let popped = queue.pop().await.expect("open");
    queue.move_on_event(ClusterEvent::NodeAdd);
    queue.add_unschedulable(&popped, fit());
    assert_eq!(queue.lengths(), (0, 1, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn deleted_and_scheduled_pods_leave_the_queue() {
    let queue = queue();
    add(&queue, "a", 0);
    add(&queue, "b", 0);
    let a = queue.pop().await.expect("open");
    queue.delete(&a.info.key);
    queue.add_unschedulable(&a, fit());
    let b = queue.pop().await.expect("open");
    queue.done(&b.info.key);
    assert_eq!(queue.lengths(), (0, 0, 0, 0));
    add(&queue, "c", 0);
    queue.delete("default/c");
    assert!(nothing_active(&queue).await);
}

#[tokio::test(start_paused = true)]
async fn status_updates_do_not_move_but_spec_updates_do() {
    let queue = queue();
    add(&queue, "p", 0);
    let popped = queue.pop().await.expect("open");
    queue.add_unschedulable(&popped, fit());
    let mut with_status = pod("p", json!({"spec": {"priority": 0}}));
    with_status.metadata.resource_version = Some("42".into());
    with_status.status = Some(
        serde_json::from_value(json!({"conditions": [{"type": "PodScheduled", "status": "False"}]})).expect("status"),
    );
    queue.add_or_update(Arc::new(with_status));
    assert_eq!(queue.lengths(), (0, 0, 1, 0));
    queue.add_or_update(Arc::new(pod(
        "p",
        json!({"metadata": {"labels": {"new": "label"}}, "spec": {"priority": 0}}),
    )));
    assert_eq!(queue.lengths(), (0, 1, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn unschedulable_pods_are_retried_after_five_minutes() {
    let queue = queue();
    add(&queue, "p", 0);
    let popped = queue.pop().await.expect("open");
    queue.add_unschedulable(&popped, fit());
    tokio::time::advance(MAX_IN_UNSCHEDULABLE - Duration::from_secs(1)).await;
    queue.flush();
    assert_eq!(queue.lengths(), (0, 0, 1, 0));
    tokio::time::advance(Duration::from_secs(1)).await;
    queue.flush();
    assert_eq!(queue.lengths(), (1, 0, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn pop_waits_for_a_pod_and_close_ends_it() {
    let queue = Arc::new(queue());
    let waiter = tokio::spawn({
        let queue = queue.clone();
        async move { queue.pop().await.map(|p| p.info.name.clone()) }
    });
    tokio::task::yield_now().await;
    add(&queue, "late", 0);
    assert_eq!(waiter.await.expect("joined"), Some("late".to_string()));
    queue.close();
    assert!(queue.pop().await.is_none());
}
