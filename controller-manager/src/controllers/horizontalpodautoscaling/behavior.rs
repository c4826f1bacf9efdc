//! Turning a metric proposal into the replicas to scale to (upstream's
//! `normalizeDesiredReplicas*`): the recommendation history per HPA and its stabilization
//! windows, the scale-event history and the `behavior` policies (Pods / Percent per period,
//! selectPolicy Max / Min / Disabled), the min/max clamp, and without a `behavior` the legacy
//! rules (downscale stabilization from the flag, scale-up at most ×2 or to 4).

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::autoscaling::v2::{HPAScalingRules, HorizontalPodAutoscalerBehavior};

/// A recommendation with the time it was made.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Recommendation {
    replicas: i32,
    at: Timestamp,
}

/// A scale change with the time it was made.
#[derive(Debug, Clone, Copy, PartialEq)]
struct ScaleEvent {
    change: i32,
    at: Timestamp,
    outdated: bool,
}

/// What the controller remembers about one HPA between syncs (in memory, as upstream).
#[derive(Debug, Clone, Default)]
pub struct History {
    recommendations: Vec<Recommendation>,
    scale_up: Vec<ScaleEvent>,
    scale_down: Vec<ScaleEvent>,
}

/// A condition decided by normalisation: (reason, message).
pub type Reason = (&'static str, &'static str);

/// The outcome of normalisation: the replicas, the AbleToScale reason and whether the
/// ScalingLimited condition is True, with its reason.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    pub replicas: i32,
    pub able_to_scale: Reason,
    pub limited: bool,
    pub limited_reason: Reason,
}

const READY: Reason = ("ReadyForNewScale", "recommended size matches current size");
const UP_STABILIZED: Reason = (
    "ScaleUpStabilized",
    "recent recommendations were lower than current one, applying the lowest recent recommendation",
);
const DOWN_STABILIZED: Reason = (
    "ScaleDownStabilized",
    "recent recommendations were higher than current one, applying the highest recent recommendation",
);
const WITHIN: Reason = ("DesiredWithinRange", "the desired count is within the acceptable range");
const TOO_MANY: Reason = (
    "TooManyReplicas",
    "the desired replica count is more than the maximum replica count",
);
const TOO_FEW: Reason = (
    "TooFewReplicas",
    "the desired replica count is less than the minimum replica count",
);
const UP_LIMIT: Reason = (
    "ScaleUpLimit",
    "the desired replica count is increasing faster than the maximum scale rate",
);
const DOWN_LIMIT: Reason = (
    "ScaleDownLimit",
    "the desired replica count is decreasing faster than the maximum scale rate",
);

fn seconds(secs: i32) -> SignedDuration {
    SignedDuration::from_secs(i64::from(secs))
}

fn before(now: Timestamp, secs: SignedDuration) -> Timestamp {
    now.checked_sub(secs).unwrap_or(Timestamp::MIN)
}

impl History {
    /// Seeds the history with the current replicas the first time an HPA is seen.
    pub fn record_initial(&mut self, current: i32, now: Timestamp) {
        if self.recommendations.is_empty() {
            self.recommendations.push(Recommendation {
                replicas: current,
                at: now,
            });
        }
    }

    /// Records `recommendation`, reusing the slot of one older than every window.
    fn record(&mut self, recommendation: i32, old_slot: Option<usize>, now: Timestamp) {
        let rec = Recommendation {
            replicas: recommendation,
            at: now,
        };
        match old_slot {
            Some(index) => self.recommendations[index] = rec,
            None => self.recommendations.push(rec),
        }
    }

    /// Records a successful rescale from `from` to `to` (only with a `behavior`, whose
    /// policies read it).
    pub fn record_scale(
        &mut self,
        behavior: Option<&HorizontalPodAutoscalerBehavior>,
        from: i32,
        to: i32,
        now: Timestamp,
    ) {
        let Some(behavior) = behavior else { return };
        let (events, rules, change) = if to > from {
            (&mut self.scale_up, behavior.scale_up.as_ref(), to - from)
        } else {
            (&mut self.scale_down, behavior.scale_down.as_ref(), from - to)
        };
        let longest = rules
            .and_then(|r| r.policies.as_ref())
            .into_iter()
            .flatten()
            .map(|p| p.period_seconds)
            .max()
            .unwrap_or(0);
        let cutoff = before(now, seconds(longest));
        for event in events.iter_mut() {
            if event.at < cutoff {
                event.outdated = true;
            }
        }
        let event = ScaleEvent {
            change,
            at: now,
            outdated: false,
        };
        match events.iter().rposition(|e| e.outdated) {
            Some(index) => events[index] = event,
            None => events.push(event),
        }
    }

    /// upstream's `normalizeDesiredReplicas` (no `behavior`): the highest recommendation of
    /// the last `window` holds a scale-down; a scale-up is at most ×2 (at least to 4).
    pub fn normalize_legacy(
        &mut self,
        current: i32,
        proposal: i32,
        min: i32,
        max: i32,
        window: SignedDuration,
        now: Timestamp,
    ) -> Normalized {
        let cutoff = before(now, window);
        let mut stabilized = proposal;
        let mut old_slot = None;
        for (index, rec) in self.recommendations.iter().enumerate() {
            if rec.at < cutoff {
                old_slot = Some(index);
            } else if rec.replicas > stabilized {
                stabilized = rec.replicas;
            }
        }
        self.record(proposal, old_slot, now);
        let able_to_scale = if stabilized != proposal { DOWN_STABILIZED } else { READY };
        let scale_up_limit = (2.0 * f64::from(current)).max(4.0) as i32;
        let (upper, upper_reason) = if max > scale_up_limit {
            (scale_up_limit, UP_LIMIT)
        } else {
            (max, TOO_MANY)
        };
        let (replicas, limited_reason) = if stabilized < min {
            (min, TOO_FEW)
        } else if stabilized > upper {
            (upper, upper_reason)
        } else {
            (stabilized, WITHIN)
        };
        Normalized {
            replicas,
            able_to_scale,
            limited: replicas != stabilized,
            limited_reason,
        }
    }

    /// upstream's `normalizeDesiredReplicasWithBehaviors`: stabilization windows in both
    /// directions, then the rate the policies allow, then min/max.
    #[allow(clippy::too_many_arguments)]
    pub fn normalize_with_behavior(
        &mut self,
        behavior: &HorizontalPodAutoscalerBehavior,
        current: i32,
        proposal: i32,
        min: i32,
        max: i32,
        default_down_window: SignedDuration,
        now: Timestamp,
    ) -> Normalized {
        let default_up = HPAScalingRules::default();
        let up = behavior.scale_up.as_ref().unwrap_or(&default_up);
        let down = behavior.scale_down.as_ref().unwrap_or(&default_up);
        let up_window = seconds(up.stabilization_window_seconds.unwrap_or(0));
        let down_window = down
            .stabilization_window_seconds
            .map(seconds)
            .unwrap_or(default_down_window);
        let (up_cutoff, down_cutoff) = (before(now, up_window), before(now, down_window));
        let (mut up_rec, mut down_rec) = (proposal, proposal);
        let mut old_slot = None;
        for (index, rec) in self.recommendations.iter().enumerate() {
            if rec.at > up_cutoff {
                up_rec = up_rec.min(rec.replicas);
            }
            if rec.at > down_cutoff {
                down_rec = down_rec.max(rec.replicas);
            }
            if rec.at < up_cutoff && rec.at < down_cutoff {
                old_slot = Some(index);
            }
        }
        let stabilized = current.max(up_rec).min(down_rec);
        self.record(proposal, old_slot, now);
        let able_to_scale = if stabilized == proposal {
            READY
        } else if proposal >= current {
            UP_STABILIZED
        } else {
            DOWN_STABILIZED
        };

        let mut replicas = stabilized;
        let mut limited_reason = WITHIN;
        if stabilized > current {
            let limit = scale_up_limit(current, &self.scale_up, &self.scale_down, up, now).max(current);
            let (upper, reason) = if max > limit {
                (limit, UP_LIMIT)
            } else {
                (max, TOO_MANY)
            };
            if stabilized > upper {
                (replicas, limited_reason) = (upper, reason);
            }
        } else if stabilized < current {
            let limit = scale_down_limit(current, &self.scale_up, &self.scale_down, down, now).min(current);
            let (lower, reason) = if min < limit {
                (limit, DOWN_LIMIT)
            } else {
                (min, TOO_FEW)
            };
            if stabilized < lower {
                (replicas, limited_reason) = (lower, reason);
            }
        }
        Normalized {
            replicas,
            able_to_scale,
            limited: replicas != stabilized,
            limited_reason,
        }
    }
}

/// The replicas added (or removed) within the last `period_seconds`.
fn change_in_period(period_seconds: i32, events: &[ScaleEvent], now: Timestamp) -> i32 {
    let cutoff = before(now, seconds(period_seconds));
    events.iter().filter(|e| e.at > cutoff).map(|e| e.change).sum()
}

/// The replicas at the start of a policy's period.
fn period_start(current: i32, period_seconds: i32, up: &[ScaleEvent], down: &[ScaleEvent], now: Timestamp) -> i32 {
    current - change_in_period(period_seconds, up, now) + change_in_period(period_seconds, down, now)
}

/// upstream's `calculateScaleUpLimitWithScalingRules`.
fn scale_up_limit(
    current: i32,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    rules: &HPAScalingRules,
    now: Timestamp,
) -> i32 {
    let select = rules.select_policy.as_deref().unwrap_or("Max");
    if select == "Disabled" {
        return current;
    }
    let proposals = rules.policies.iter().flatten().map(|policy| {
        let start = period_start(current, policy.period_seconds, up, down, now);
        match policy.type_.as_str() {
            "Pods" => start.saturating_add(policy.value),
            _ => (f64::from(start) * (1.0 + f64::from(policy.value) / 100.0)).ceil() as i32,
        }
    });
    if select == "Min" {
        proposals.min().unwrap_or(i32::MAX)
    } else {
        proposals.max().unwrap_or(i32::MIN)
    }
}

/// upstream's `calculateScaleDownLimitWithBehaviors`.
fn scale_down_limit(
    current: i32,
    up: &[ScaleEvent],
    down: &[ScaleEvent],
    rules: &HPAScalingRules,
    now: Timestamp,
) -> i32 {
    let select = rules.select_policy.as_deref().unwrap_or("Max");
    if select == "Disabled" {
        return current;
    }
    let proposals = rules.policies.iter().flatten().map(|policy| {
        let start = period_start(current, policy.period_seconds, up, down, now);
        match policy.type_.as_str() {
            "Pods" => start.saturating_sub(policy.value),
            _ => (f64::from(start) * (1.0 - f64::from(policy.value) / 100.0)) as i32,
        }
    });
    if select == "Min" {
        proposals.max().unwrap_or(i32::MIN)
    } else {
        proposals.min().unwrap_or(i32::MAX)
    }
}

#[cfg(test)]
#[path = "behavior_tests.rs"]
mod tests;
