//! DefaultPreemption (PostFilter): when no node fits, finds a node where evicting pods of lower
//! priority makes the pod fit, keeping as many of them as possible (reprieve), and picks the
//! node whose victims matter least. The scheduler deletes the victims and nominates the node.

use super::prelude::*;
use crate::framework::runtime::Diagnosis;
use crate::framework::{Framework, PostFilterPlugin, PostFilterResult};

pub const NAME: &str = "DefaultPreemption";
pub const NOT_HELPFUL: &str = "Preemption is not helpful for scheduling";
pub const NO_VICTIMS: &str = "No preemption victims found for incoming pod";
/// Upstream's `minCandidateNodesPercentage` and `minCandidateNodesAbsolute`.
const MIN_CANDIDATE_NODES_PERCENTAGE: usize = 10;
const MIN_CANDIDATE_NODES_ABSOLUTE: usize = 100;

pub struct DefaultPreemption;

impl Plugin for DefaultPreemption {
    fn name(&self) -> &'static str {
        NAME
    }
}

/// A node and the pods to evict there.
struct Candidate {
    node: String,
    victims: Vec<Arc<PodInfo>>,
}

impl PostFilterPlugin for DefaultPreemption {
    fn post_filter(
        &self,
        framework: &Framework,
        state: &CycleState,
        pod: &PodInfo,
        snapshot: &Snapshot,
        diagnosis: &Diagnosis,
    ) -> (Option<PostFilterResult>, Status) {
        if pod.pod.spec.as_ref().and_then(|s| s.preemption_policy.as_deref()) == Some("Never") {
            return (
                None,
                Status::new(
                    Code::Unschedulable,
                    "preemption: not eligible due to preemptionPolicy=Never",
                ),
            );
        }
        let mut statuses = Diagnosis {
            num_all_nodes: snapshot.nodes.len(),
            ..Diagnosis::default()
        };
        let mut potential = Vec::new();
        for node in &snapshot.nodes {
            match diagnosis.status_of(&node.name).map(|s| s.code) {
                Some(Code::Unschedulable) => potential.push(node),
                _ => statuses.node_statuses.push((
                    node.name.clone(),
                    Status::new(Code::UnschedulableAndUnresolvable, NOT_HELPFUL),
                )),
            }
        }
        let wanted = (potential.len() * MIN_CANDIDATE_NODES_PERCENTAGE / 100)
            .max(MIN_CANDIDATE_NODES_ABSOLUTE)
            .min(potential.len());
        let mut candidates = Vec::new();
        for node in potential {
            if candidates.len() >= wanted {
                break;
            }
            match select_victims(framework, state, pod, node, snapshot) {
                Ok(victims) => candidates.push(Candidate {
                    node: node.name.clone(),
                    victims,
                }),
                Err(status) => statuses.node_statuses.push((node.name.clone(), status)),
            }
        }
        let Some(best) = pick_candidate(candidates) else {
            return (
                None,
                Status::new(
                    Code::Unschedulable,
                    format!("preemption: {}", statuses.message_without_period()),
                ),
            );
        };
        (
            Some(PostFilterResult {
                nominated_node: best.node,
                victims: best.victims,
            }),
            Status::success(),
        )
    }
}

impl Diagnosis {
    /// The FitError text without its final period (the caller's format adds one).
    fn message_without_period(&self) -> String {
        let message = self.message();
        message.strip_suffix('.').map(str::to_string).unwrap_or(message)
    }
}

/// Upstream's `selectVictimsOnNode`: remove every lower-priority pod, check the pod fits, then
/// give back as many as possible, most important first.
fn select_victims(
    framework: &Framework,
    state: &CycleState,
    pod: &PodInfo,
    node: &NodeInfo,
    snapshot: &Snapshot,
) -> Result<Vec<Arc<PodInfo>>, Status> {
    let mut state = state.clone();
    let mut info = node.clone();
    let mut potential: Vec<Arc<PodInfo>> = node
        .pods
        .iter()
        .filter(|p| p.priority < pod.priority)
        .cloned()
        .collect();
    if potential.is_empty() {
        return Err(Status::new(Code::UnschedulableAndUnresolvable, NO_VICTIMS));
    }
    for victim in &potential {
        info.remove_pod(&victim.key);
        framework.run_remove_pod(&mut state, pod, victim, &info, snapshot);
    }
    let status = framework.run_filters(&state, pod, &info);
    if !status.is_success() {
        return Err(status);
    }
    // Most important first: higher priority, then the longer-running.
    potential.sort_by(|a, b| {
        b.priority.cmp(&a.priority).then_with(|| {
            let started = |p: &PodInfo| p.pod.status.as_ref().and_then(|s| s.start_time.clone()).map(|t| t.0);
            started(a).cmp(&started(b))
        })
    });
    let mut victims = Vec::new();
    for candidate in potential {
        info.add_pod(candidate.clone());
        framework.run_add_pod(&mut state, pod, &candidate, &info, snapshot);
        if !framework.run_filters(&state, pod, &info).is_success() {
            info.remove_pod(&candidate.key);
            framework.run_remove_pod(&mut state, pod, &candidate, &info, snapshot);
            victims.push(candidate);
        }
    }
    Ok(victims)
}

/// The candidate whose victims matter least: lowest highest priority, then lowest sum of
/// priorities, then fewest victims, then the first found.
fn pick_candidate(candidates: Vec<Candidate>) -> Option<Candidate> {
    candidates.into_iter().min_by_key(|c| {
        let highest = c.victims.iter().map(|v| v.priority).max().unwrap_or(i32::MIN);
        let sum: i64 = c
            .victims
            .iter()
            .map(|v| i64::from(v.priority) + i64::from(i32::MAX) + 1)
            .sum();
        (highest, sum, c.victims.len())
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::framework::ScheduleResult;
    use crate::framework::types::testing::*;
    use crate::plugins::{default_plugins, framework};

    fn requesting(cpu: &str, priority: i32) -> serde_json::Value {
        json!({"spec": {"priority": priority, "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu}}}]}})
    }

    fn schedule(pod: &PodInfo, snapshot: &Snapshot) -> ScheduleResult {
        framework(default_plugins(None, true)).schedule(&mut CycleState::default(), pod, snapshot)
    }

    #[test]
    fn preempts_the_cheapest_node() {
        // n1 runs a priority-5 pod, n2 two priority-1 pods: evicting on n2 matters least.
        let snapshot = Snapshot::from_nodes(vec![
            node_info(node("n1", json!({})), vec![pod("high", requesting("3", 5))]),
            node_info(
                node("n2", json!({})),
                vec![pod("low1", requesting("2", 1)), pod("low2", requesting("1500m", 1))],
            ),
        ]);
        let result = schedule(&pod_info("p", requesting("2", 10)), &snapshot);
        let ScheduleResult::Unschedulable {
            nominated: Some(nominated),
            diagnosis,
        } = result
        else {
            panic!("expected a nomination, got {result:?}");
        };
        assert_eq!(nominated.nominated_node, "n2");
        // Reprieve in order: low1 (2 CPUs) fits back next to the pod (2 + 2 ≤ 4), low2 does not.
        let victims: Vec<&str> = nominated.victims.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(victims, vec!["low2"]);
        assert_eq!(diagnosis.message(), "0/2 nodes are available: 2 Insufficient cpu.");
    }

    #[test]
    fn messages_when_preemption_cannot_help() {
        let snapshot = Snapshot::from_nodes(vec![
            node_info(
                node(
                    "cp",
                    json!({"spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}),
                ),
                vec![],
            ),
            node_info(node("n1", json!({})), vec![pod("same", requesting("3", 0))]),
            node_info(node("n2", json!({})), vec![pod("same2", requesting("3", 0))]),
        ]);
        let result = schedule(&pod_info("p", requesting("2", 0)), &snapshot);
        let ScheduleResult::Unschedulable {
            nominated: None,
            diagnosis,
        } = result
        else {
            panic!("expected unschedulable, got {result:?}");
        };
        assert_eq!(
            diagnosis.message(),
            "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, \
             2 Insufficient cpu. preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, \
             2 No preemption victims found for incoming pod."
        );
        let too_big = schedule(
            &pod_info("p", requesting("8", 0)),
            &Snapshot::from_nodes(vec![snapshot.nodes[0].clone()]),
        );
        let ScheduleResult::Unschedulable { diagnosis, .. } = too_big else {
            panic!("expected unschedulable");
        };
        assert_eq!(
            diagnosis.message(),
            "0/1 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }. \
             preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        );
        let never = pod_info(
            "p",
            json!({"spec": {"preemptionPolicy": "Never", "priority": 10,
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "2"}}}]}}),
        );
        let ScheduleResult::Unschedulable {
            diagnosis,
            nominated: None,
        } = schedule(&never, &snapshot)
        else {
            panic!("expected unschedulable");
        };
        assert!(
            diagnosis
                .message()
                .ends_with("preemption: not eligible due to preemptionPolicy=Never.")
        );
    }
}
