//! The deployment controller's pure decision, following upstream's sync: claim ReplicaSets,
//! sync the new ReplicaSet's revision (creating it when the rollout needs it), then scale
//! (proportionally while paused or resized), roll (RollingUpdate / Recreate), clean up old
//! revisions and compute the status with its Progressing and Available conditions. Each
//! step works on in-memory copies, so later steps see earlier decisions as upstream's
//! sequential API calls would.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, DeploymentStatus, ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;

use super::util::*;
use crate::util as common;

/// One API write.
#[derive(Debug, Clone)]
pub enum Action {
    /// Make the Deployment the controller of an orphan ReplicaSet.
    AdoptReplicaSet(Arc<ReplicaSet>),
    /// Drop the Deployment's owner reference from a ReplicaSet it no longer selects.
    ReleaseReplicaSet(Arc<ReplicaSet>),
    /// Create the new ReplicaSet.
    CreateReplicaSet(ReplicaSet),
    /// Write `spec.replicas`, `spec.minReadySeconds` and annotations of a ReplicaSet;
    /// `scaled_from` is its size before.
    UpdateReplicaSet { rs: ReplicaSet, scaled_from: i32 },
    /// Delete an old ReplicaSet beyond `revisionHistoryLimit`.
    DeleteReplicaSet { name: String, uid: String },
    /// Set annotations on the Deployment (its revision).
    AnnotateDeployment(BTreeMap<String, String>),
    /// Write the Deployment's status.
    UpdateStatus(DeploymentStatus),
}

/// What to do for one Deployment.
#[derive(Debug, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Sync again after this long (to notice a progress deadline passing).
    pub requeue_after: Option<Duration>,
}

/// Decides for `d`, given the ReplicaSets and pods of its namespace.
pub fn decide(d: &Deployment, replicasets: &[Arc<ReplicaSet>], pods: &[Arc<Pod>], now: Timestamp) -> Plan {
    let mut model = Model::claim(d, replicasets, now);
    if common::is_deleting(&d.metadata) {
        model.sync_revision(false);
        model.status = model.calculate_status();
    } else {
        model.check_paused_conditions();
        if d.spec.paused == Some(true) || model.is_scaling_event() {
            model.sync_scale();
        } else if is_rolling(d) {
            model.rollout_rolling();
        } else {
            model.rollout_recreate(pods);
        }
    }
    model.finish()
}

struct Model<'a> {
    d: &'a Deployment,
    now: Timestamp,
    rss: Vec<ReplicaSet>,
    new: Option<usize>,
    created: Option<usize>,
    touched: Vec<(usize, i32)>,
    claims: Vec<Action>,
    deletes: Vec<Action>,
    revision_annotation: Option<String>,
    status: DeploymentStatus,
    requeue_after: Option<Duration>,
}

impl<'a> Model<'a> {
    fn claim(d: &'a Deployment, replicasets: &[Arc<ReplicaSet>], now: Timestamp) -> Self {
        let uid = d.metadata.uid.as_deref().unwrap_or_default();
        let deleting = common::is_deleting(&d.metadata);
        let mut claims = Vec::new();
        let mut rss = Vec::new();
        for rs in replicasets {
            let matches = common::selects(&d.spec.selector, rs.labels());
            match common::controller_of(&rs.metadata) {
                Some(owner) if owner.uid == uid => {
                    if matches {
                        rss.push(rs.as_ref().clone());
                    } else if !deleting {
                        claims.push(Action::ReleaseReplicaSet(rs.clone()));
                    }
                }
                Some(_) => {}
                None if matches && !deleting && !common::is_deleting(&rs.metadata) => {
                    claims.push(Action::AdoptReplicaSet(rs.clone()));
                    rss.push(rs.as_ref().clone());
                }
                None => {}
            }
        }
        // Oldest first, like upstream's ReplicaSetsByCreationTimestamp.
        rss.sort_by(|a, b| {
            (a.metadata.creation_timestamp.as_ref().map(|t| t.0), a.name_any())
                .cmp(&(b.metadata.creation_timestamp.as_ref().map(|t| t.0), b.name_any()))
        });
        let new = rss.iter().position(|rs| {
            rs.spec
                .template
                .as_ref()
                .is_some_and(|t| equal_ignore_hash(t, &d.spec.template))
        });
        Model {
            d,
            now,
            rss,
            new,
            created: None,
            touched: Vec::new(),
            claims,
            deletes: Vec::new(),
            revision_annotation: None,
            status: d.status.clone().unwrap_or_default(),
            requeue_after: None,
        }
    }

    fn old(&self) -> Vec<usize> {
        (0..self.rss.len()).filter(|i| Some(*i) != self.new).collect()
    }

    fn touch(&mut self, index: usize) {
        if !self.touched.iter().any(|(i, _)| *i == index) {
            let from = rs_replicas(&self.rss[index]);
            self.touched.push((index, from));
        }
    }

    /// Upstream's `getAllReplicaSetsAndSyncRevision`.
    fn sync_revision(&mut self, create: bool) {
        let max_old = self.old().iter().map(|i| revision(&self.rss[*i])).max().unwrap_or(0);
        let new_revision = max_old + 1;
        let d = self.d;
        if let Some(index) = self.new {
            let rs = &mut self.rss[index];
            let mut changed = false;
            let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
            for (key, value) in copyable_annotations(d) {
                if annotations.get(&key) != Some(&value) {
                    annotations.insert(key, value);
                    changed = true;
                }
            }
            let old_revision = annotations.get(REVISION).cloned();
            let current = old_revision.as_deref().and_then(|r| r.parse::<i64>().ok()).unwrap_or(0);
            if current < new_revision {
                if let Some(old) = old_revision.filter(|r| !r.is_empty()) {
                    let history = match annotations.get(REVISION_HISTORY) {
                        Some(history) if !history.is_empty() => format!("{history},{old}"),
                        _ => old,
                    };
                    annotations.insert(REVISION_HISTORY.into(), history);
                }
                annotations.insert(REVISION.into(), new_revision.to_string());
                changed = true;
            }
            if rs.spec.min_ready_seconds.unwrap_or(0) != d.spec.min_ready_seconds.unwrap_or(0) {
                rs.spec.min_ready_seconds = d.spec.min_ready_seconds;
                changed = true;
            }
            let name = rs.name_any();
            self.revision_annotation = Some(revision(&self.rss[index]).to_string());
            if changed {
                self.touch(index);
            }
            if has_progress_deadline(d) && condition(&self.status, PROGRESSING).is_none() {
                let message = format!("Found new replica set \"{name}\"");
                set_condition(
                    &mut self.status,
                    PROGRESSING,
                    "True",
                    REASON_FOUND_NEW_RS,
                    message,
                    self.now,
                );
            }
        } else if create {
            let rs = self.new_replicaset(new_revision);
            let name = rs.name_any();
            self.rss.push(rs);
            let index = self.rss.len() - 1;
            self.new = Some(index);
            self.created = Some(index);
            self.revision_annotation = Some(new_revision.to_string());
            if has_progress_deadline(d) {
                let message = format!("Created new replica set \"{name}\"");
                set_condition(
                    &mut self.status,
                    PROGRESSING,
                    "True",
                    REASON_NEW_RS_CREATED,
                    message,
                    self.now,
                );
            }
        }
    }

    fn new_replicaset(&self, new_revision: i64) -> ReplicaSet {
        let d = self.d;
        let collision_count = d.status.as_ref().and_then(|s| s.collision_count);
        let hash = template_hash(&d.spec.template, collision_count);
        let mut template = d.spec.template.clone();
        let template_meta = template.metadata.get_or_insert_with(Default::default);
        template_meta
            .labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let labels = template_meta.labels.clone();
        let mut selector = d.spec.selector.clone();
        selector
            .match_labels
            .get_or_insert_with(BTreeMap::new)
            .insert(POD_TEMPLATE_HASH.into(), hash.clone());
        let mut annotations = copyable_annotations(d);
        annotations.insert(REVISION.into(), new_revision.to_string());
        annotations.insert(DESIRED_REPLICAS.into(), replicas(d).to_string());
        annotations.insert(MAX_REPLICAS.into(), (replicas(d) + max_surge(d)).to_string());
        let mut rs = ReplicaSet {
            metadata: ObjectMeta {
                name: Some(format!("{}-{hash}", d.name_any())),
                namespace: d.namespace(),
                labels,
                annotations: Some(annotations),
                owner_references: Some(vec![common::controller_ref(d)]),
                ..Default::default()
            },
            spec: ReplicaSetSpec {
                replicas: Some(0),
                min_ready_seconds: d.spec.min_ready_seconds,
                selector,
                template: Some(template),
            },
            status: None,
        };
        rs.spec.replicas = Some(self.new_rs_new_replicas(0));
        rs
    }

    /// Upstream's `NewRSNewReplicas` for a new ReplicaSet of size `new_size`.
    fn new_rs_new_replicas(&self, new_size: i32) -> i32 {
        let d = self.d;
        if !is_rolling(d) {
            return replicas(d);
        }
        let current: i32 = self.old().iter().map(|i| rs_replicas(&self.rss[*i])).sum::<i32>() + new_size;
        let max_total = replicas(d) + max_surge(d);
        if current >= max_total {
            return new_size;
        }
        let scale_up = (max_total - current).min(replicas(d) - new_size);
        new_size + scale_up
    }

    /// Sets the size and replica annotations of a ReplicaSet; true if its size changed.
    fn scale_rs(&mut self, index: usize, new_scale: i32) -> bool {
        let desired = replicas(self.d).to_string();
        let max = (replicas(self.d) + max_surge(self.d)).to_string();
        let rs = &self.rss[index];
        let size_changed = rs_replicas(rs) != new_scale;
        let annotations = rs.metadata.annotations.clone().unwrap_or_default();
        let annotations_changed =
            annotations.get(DESIRED_REPLICAS) != Some(&desired) || annotations.get(MAX_REPLICAS) != Some(&max);
        if size_changed || annotations_changed {
            self.touch(index);
            let rs = &mut self.rss[index];
            let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
            annotations.insert(DESIRED_REPLICAS.into(), desired);
            annotations.insert(MAX_REPLICAS.into(), max);
            rs.spec.replicas = Some(new_scale);
        }
        size_changed
    }

    fn check_paused_conditions(&mut self) {
        if !has_progress_deadline(self.d) {
            return;
        }
        let reason = condition(&self.status, PROGRESSING).and_then(|c| c.reason.clone());
        if reason.as_deref() == Some(REASON_TIMED_OUT) {
            return;
        }
        let paused = self.d.spec.paused == Some(true);
        let paused_condition = reason.as_deref() == Some(REASON_PAUSED);
        if paused && !paused_condition {
            let message = "Deployment is paused".to_string();
            set_condition(
                &mut self.status,
                PROGRESSING,
                "Unknown",
                REASON_PAUSED,
                message,
                self.now,
            );
        } else if !paused && paused_condition {
            let message = "Deployment is resumed".to_string();
            set_condition(
                &mut self.status,
                PROGRESSING,
                "Unknown",
                REASON_RESUMED,
                message,
                self.now,
            );
        }
    }

    fn is_scaling_event(&mut self) -> bool {
        self.sync_revision(false);
        let desired = i64::from(replicas(self.d));
        self.rss
            .iter()
            .filter(|rs| rs_replicas(rs) > 0)
            .any(|rs| int_annotation(rs, DESIRED_REPLICAS).is_some_and(|value| value != desired))
    }

    /// Upstream's `sync`: scale, clean up when paused, write the status.
    fn sync_scale(&mut self) {
        self.sync_revision(false);
        self.scale();
        if self.d.spec.paused == Some(true) {
            self.cleanup();
        }
        self.status = self.calculate_status();
    }

    /// Upstream's `scale`, including proportional scaling during a rolling update.
    fn scale(&mut self) {
        let d = self.d;
        let desired = replicas(d);
        let active: Vec<usize> = (0..self.rss.len()).filter(|i| rs_replicas(&self.rss[*i]) > 0).collect();
        let target = match active.len() {
            0 => self
                .new
                .or_else(|| self.old().into_iter().max_by_key(|i| created(&self.rss[*i]))),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(index) = target {
            if rs_replicas(&self.rss[index]) != desired {
                self.scale_rs(index, desired);
            }
            return;
        }
        if let Some(new) = self.new {
            let rs = &self.rss[new];
            let saturated = int_annotation(rs, DESIRED_REPLICAS) == Some(i64::from(desired))
                && rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0) == desired
                && rs_replicas(rs) == desired;
            if saturated {
                for index in self.old() {
                    if rs_replicas(&self.rss[index]) > 0 {
                        self.scale_rs(index, 0);
                    }
                }
                return;
            }
        }
        if !is_rolling(d) {
            return;
        }
        let mut all = active;
        let total: i32 = all.iter().map(|i| rs_replicas(&self.rss[*i])).sum();
        let allowed = if desired > 0 { desired + max_surge(d) } else { 0 };
        let to_add = allowed - total;
        if to_add > 0 {
            all.sort_by(|a, b| {
                let (a, b) = (&self.rss[*a], &self.rss[*b]);
                rs_replicas(b).cmp(&rs_replicas(a)).then(created(b).cmp(&created(a)))
            });
        } else {
            all.sort_by(|a, b| {
                let (a, b) = (&self.rss[*a], &self.rss[*b]);
                rs_replicas(b).cmp(&rs_replicas(a)).then(created(a).cmp(&created(b)))
            });
        }
        let mut added = 0;
        let mut sizes = Vec::new();
        for index in &all {
            let rs = &self.rss[*index];
            let proportion = if to_add != 0 {
                self.proportion(rs, to_add, added)
            } else {
                0
            };
            added += proportion;
            sizes.push(rs_replicas(rs) + proportion);
        }
        if to_add != added && !sizes.is_empty() {
            sizes[0] = (sizes[0] + to_add - added).max(0);
        }
        for (index, size) in all.into_iter().zip(sizes) {
            self.scale_rs(index, size);
        }
    }

    fn proportion(&self, rs: &ReplicaSet, to_add: i32, added: i32) -> i32 {
        if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
            return 0;
        }
        let d = self.d;
        let fraction = if replicas(d) == 0 {
            -rs_replicas(rs)
        } else {
            let deployment_replicas = f64::from(replicas(d) + max_surge(d));
            let annotated = int_annotation(rs, MAX_REPLICAS)
                .map(|v| v as f64)
                .unwrap_or_else(|| f64::from(d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0)));
            if annotated == 0.0 {
                0
            } else {
                (f64::from(rs_replicas(rs)) * deployment_replicas / annotated).round() as i32 - rs_replicas(rs)
            }
        };
        let allowed = to_add - added;
        if to_add > 0 {
            fraction.min(allowed)
        } else {
            fraction.max(allowed)
        }
    }

    fn rollout_rolling(&mut self) {
        self.sync_revision(true);
        if self.reconcile_new() || self.reconcile_old() {
            self.sync_rollout_status();
            return;
        }
        if is_complete(self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup();
        }
        self.sync_rollout_status();
    }

    fn reconcile_new(&mut self) -> bool {
        let Some(new) = self.new else {
            return false;
        };
        let desired = replicas(self.d);
        let current = rs_replicas(&self.rss[new]);
        if current == desired {
            return false;
        }
        if current > desired {
            return self.scale_rs(new, desired);
        }
        let count = self.new_rs_new_replicas(current);
        self.scale_rs(new, count)
    }

    fn reconcile_old(&mut self) -> bool {
        let d = self.d;
        let old = self.old();
        if old.iter().map(|i| rs_replicas(&self.rss[*i])).sum::<i32>() == 0 {
            return false;
        }
        let all_pods: i32 = self.rss.iter().map(rs_replicas).sum();
        let min_available = replicas(d) - max_unavailable(d);
        let new_unavailable = self.new.map_or(0, |i| {
            let rs = &self.rss[i];
            rs_replicas(rs) - rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)
        });
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        // Old ReplicaSets' unhealthy pods go first: they cost no availability.
        let mut cleaned = 0;
        for index in self.sorted_old() {
            if cleaned >= max_scaled_down {
                break;
            }
            let rs = &self.rss[index];
            let size = rs_replicas(rs);
            let available = rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
            if size == 0 || size <= available {
                continue;
            }
            let down = (max_scaled_down - cleaned).min(size - available);
            self.scale_rs(index, size - down);
            cleaned += down;
        }
        // Then healthy pods, as far as availability allows. An old ReplicaSet's status may
        // not reflect a scale-down yet: never count more available pods than it may keep.
        let available: i32 = self
            .rss
            .iter()
            .map(|rs| {
                let available = rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
                available.min(rs_replicas(rs))
            })
            .sum();
        let mut scaled = 0;
        if available > min_available {
            let total = available - min_available;
            for index in self.sorted_old() {
                if scaled >= total {
                    break;
                }
                let size = rs_replicas(&self.rss[index]);
                if size == 0 {
                    continue;
                }
                let down = size.min(total - scaled);
                self.scale_rs(index, size - down);
                scaled += down;
            }
        }
        cleaned + scaled > 0
    }

    fn sorted_old(&self) -> Vec<usize> {
        let mut old = self.old();
        old.sort_by_key(|i| (created(&self.rss[*i]), self.rss[*i].name_any()));
        old
    }

    fn rollout_recreate(&mut self, pods: &[Arc<Pod>]) {
        self.sync_revision(false);
        let mut scaled = false;
        for index in self.old() {
            if rs_replicas(&self.rss[index]) > 0 {
                scaled |= self.scale_rs(index, 0);
            }
        }
        if scaled || self.old_pods_running(pods) {
            self.sync_rollout_status();
            return;
        }
        if self.new.is_none() {
            self.sync_revision(true);
        }
        if let Some(new) = self.new
            && self.created != Some(new)
            && self.scale_rs(new, replicas(self.d))
        {
            self.sync_rollout_status();
            return;
        }
        if is_complete(self.d, &self.d.status.clone().unwrap_or_default()) {
            self.cleanup();
        }
        self.sync_rollout_status();
    }

    fn old_pods_running(&self, pods: &[Arc<Pod>]) -> bool {
        let old = self.old();
        if old
            .iter()
            .any(|i| self.rss[*i].status.as_ref().is_some_and(|s| s.replicas > 0))
        {
            return true;
        }
        let old_uids: Vec<&str> = old
            .iter()
            .filter_map(|i| self.rss[*i].metadata.uid.as_deref())
            .collect();
        pods.iter().any(|pod| {
            let owned =
                common::controller_of(&pod.metadata).is_some_and(|owner| old_uids.contains(&owner.uid.as_str()));
            let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
            owned && !matches!(phase, Some("Failed") | Some("Succeeded"))
        })
    }

    /// Upstream's `cleanupDeployment`: delete the oldest idle ReplicaSets beyond the limit.
    fn cleanup(&mut self) {
        let Some(limit) = self.d.spec.revision_history_limit.filter(|l| *l != i32::MAX) else {
            return;
        };
        let mut cleanable: Vec<usize> = self
            .old()
            .into_iter()
            .filter(|i| !common::is_deleting(&self.rss[*i].metadata) && self.created != Some(*i))
            .collect();
        let excess = cleanable.len() as i64 - i64::from(limit.max(0));
        if excess <= 0 {
            return;
        }
        cleanable.sort_by_key(|i| (revision(&self.rss[*i]), created(&self.rss[*i])));
        for index in cleanable.into_iter().take(excess as usize) {
            let rs = &self.rss[index];
            let status = rs.status.clone().unwrap_or_default();
            if status.replicas != 0
                || rs_replicas(rs) != 0
                || rs.metadata.generation > status.observed_generation
                || self.touched.iter().any(|(i, _)| *i == index)
            {
                continue;
            }
            self.deletes.push(Action::DeleteReplicaSet {
                name: rs.name_any(),
                uid: rs.metadata.uid.clone().unwrap_or_default(),
            });
        }
    }

    fn calculate_status(&self) -> DeploymentStatus {
        let new = self.new.map(|i| &self.rss[i]);
        calculate_status(self.d, &self.rss, new, &self.status, self.now)
    }

    /// Upstream's `syncRolloutStatus`.
    fn sync_rollout_status(&mut self) {
        let d = self.d;
        let mut status = self.calculate_status();
        if !has_progress_deadline(d) {
            remove_condition(&mut status, PROGRESSING);
        }
        let current = condition(&status, PROGRESSING).cloned();
        let complete_already = status.replicas == status.updated_replicas
            && current.as_ref().and_then(|c| c.reason.as_deref()) == Some(REASON_NEW_RS_AVAILABLE);
        let new_name = self.new.map(|i| self.rss[i].name_any()).unwrap_or_default();
        if has_progress_deadline(d) && !complete_already {
            if is_complete(d, &status) {
                let message = format!("ReplicaSet \"{new_name}\" has successfully progressed.");
                set_condition(
                    &mut status,
                    PROGRESSING,
                    "True",
                    REASON_NEW_RS_AVAILABLE,
                    message,
                    self.now,
                );
            } else if is_progressing(d, &status) {
                let message = format!("ReplicaSet \"{new_name}\" is progressing.");
                let transition = current
                    .as_ref()
                    .filter(|c| c.status.as_deref() == Some("True"))
                    .and_then(|c| c.last_transition_time.clone());
                remove_condition(&mut status, PROGRESSING);
                set_condition(&mut status, PROGRESSING, "True", REASON_RS_UPDATED, message, self.now);
                if let Some(transition) = transition
                    && let Some(c) = status
                        .conditions
                        .as_mut()
                        .and_then(|cs| cs.iter_mut().find(|c| c.type_.as_deref() == Some(PROGRESSING)))
                {
                    c.last_transition_time = Some(transition);
                }
            } else {
                let (timed_out, remaining) = timed_out(d, &status, self.now);
                if timed_out {
                    let message = format!("ReplicaSet \"{new_name}\" has timed out progressing.");
                    set_condition(&mut status, PROGRESSING, "False", REASON_TIMED_OUT, message, self.now);
                }
                self.requeue_after = remaining;
            }
        }
        self.status = status;
    }

    fn finish(self) -> Plan {
        let mut actions = self.claims;
        if let Some(index) = self.created {
            actions.push(Action::CreateReplicaSet(self.rss[index].clone()));
        }
        for (index, from) in &self.touched {
            if Some(*index) != self.created {
                actions.push(Action::UpdateReplicaSet {
                    rs: self.rss[*index].clone(),
                    scaled_from: *from,
                });
            }
        }
        actions.extend(self.deletes);
        if let Some(revision) = self.revision_annotation {
            let current = self.d.metadata.annotations.as_ref().and_then(|a| a.get(REVISION));
            if current != Some(&revision) {
                actions.push(Action::AnnotateDeployment([(REVISION.to_string(), revision)].into()));
            }
        }
        let old_status = serde_json::to_value(self.d.status.clone().unwrap_or_default()).unwrap_or_default();
        if serde_json::to_value(&self.status).unwrap_or_default() != old_status {
            actions.push(Action::UpdateStatus(self.status));
        }
        Plan {
            actions,
            requeue_after: self.requeue_after,
        }
    }
}

fn created(rs: &ReplicaSet) -> Option<Timestamp> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}
