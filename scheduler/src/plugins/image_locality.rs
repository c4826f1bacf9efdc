//! ImageLocality: prefers nodes that already have the pod's images, weighted by image size and
//! by how widely the image is spread (so one node with a popular image does not win them all).

use super::prelude::*;
use crate::framework::helpers::normalized_image_name;

pub const NAME: &str = "ImageLocality";
const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

pub struct ImageLocality;

#[derive(Clone)]
struct PreScoreState {
    /// Per image of the pod: normalized name and on how many nodes it is.
    images: Vec<(String, usize)>,
    total_nodes: usize,
}

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl PreScorePlugin for ImageLocality {
    fn pre_score(&self, state: &mut CycleState, pod: &PodInfo, _: &[Arc<NodeInfo>], snapshot: &Snapshot) -> Status {
        let Some(spec) = pod.pod.spec.as_ref() else {
            return Status::skip();
        };
        let images = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .map(|c| {
                let name = normalized_image_name(c.image.as_deref().unwrap_or_default());
                let count = snapshot.image_nodes.get(&name).copied().unwrap_or(0);
                (name, count)
            })
            .collect();
        state.write(PreScoreState {
            images,
            total_nodes: snapshot.nodes.len().max(1),
        });
        Status::success()
    }
}

impl ScorePlugin for ImageLocality {
    fn score(&self, state: &CycleState, _pod: &PodInfo, node: &NodeInfo) -> Result<i64, Status> {
        let state = state
            .read::<PreScoreState>()
            .ok_or_else(|| Status::error("ImageLocality: no pre-score state"))?;
        let sum: i64 = state
            .images
            .iter()
            .filter_map(|(name, count)| {
                let size = node.images.get(name)?;
                Some((*size as f64 * (*count as f64 / state.total_nodes as f64)) as i64)
            })
            .sum();
        Ok(calculate_priority(sum, state.images.len()))
    }
}

fn calculate_priority(sum: i64, containers: usize) -> i64 {
    let max_threshold = MAX_CONTAINER_THRESHOLD * containers.max(1) as i64;
    let sum = sum.clamp(MIN_THRESHOLD, max_threshold);
    MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max_threshold - MIN_THRESHOLD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::framework::types::testing::*;
    use serde_json::json;

    #[test]
    fn score_table() {
        let with_images = |images: serde_json::Value| json!({"status": {"images": images}});
        let big = json!([{"names": ["nginx:latest"], "sizeBytes": 500 * MB}]);
        let small = json!([{"names": ["nginx:latest"], "sizeBytes": 10 * MB}]);
        let nodes = vec![
            node_info(node("big", with_images(big)), vec![]),
            node_info(node("small", with_images(small)), vec![]),
            node_info(node("none", json!({})), vec![]),
        ];
        let snapshot = Snapshot::from_nodes(nodes.clone());
        let pod = pod_info("p", json!({}));
        let mut state = CycleState::default();
        assert!(
            ImageLocality
                .pre_score(&mut state, &pod, &nodes, &snapshot)
                .is_success()
        );
        let scores: Vec<i64> = nodes
            .iter()
            .map(|n| ImageLocality.score(&state, &pod, n).expect("score"))
            .collect();
        // 500 MiB × 2/3 spread = 333 MiB → 100 × (333 − 23) / (1000 − 23) = 31.
        assert_eq!(scores, vec![31, 0, 0]);
    }
}
