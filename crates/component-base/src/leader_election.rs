//! Lease-based leader election (`coordination.k8s.io/v1` Lease), with client-go's semantics.
//!
//! One [`LeaderElector`] per replica competes for one Lease. The holder renews it every
//! `retry_period`; the others treat it as expired once its record has not changed for
//! `lease_duration` (measured on their own clock, so clock skew between replicas does not
//! matter) and take it over. A leader that cannot renew before `renew_deadline` (counted from its
//! last successful renewal, and shorter than `lease_duration`) steps down: the token handed to
//! its work is cancelled before anyone else may acquire the lease. On shutdown the leader
//! releases the lease so a standby takes over at once.
//!
//! ```no_run
//! # async fn example(client: kube::Client, shutdown: tokio_util::sync::CancellationToken) {
//! use component_base::leader_election::{LeaderElector, LeaseConfig};
//! let config = LeaseConfig::new("kube-system", "kube-scheduler", "host_1234");
//! let result = LeaderElector::new(client, config)
//!     .run(shutdown, |leading| async move {
//!         leading.cancelled().await; // do the work until leadership ends
//!     })
//!     .await;
//! # let _ = result;
//! # }
//! ```

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Where the lease lives, who we are, and the timings (upstream's defaults: 15 s, 10 s, 2 s).
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// Unique per replica (upstream: `hostname_<uuid>`).
    pub identity: String,
    /// How long others wait, after the last change of the record they saw, before taking over.
    pub lease_duration: Duration,
    /// How long the leader keeps trying to renew before it gives up leadership.
    pub renew_deadline: Duration,
    /// How often candidates try to acquire and the leader renews.
    pub retry_period: Duration,
}

impl LeaseConfig {
    /// A config with upstream's default timings.
    pub fn new(namespace: &str, name: &str, identity: &str) -> Self {
        Self {
            namespace: namespace.to_string(),
            name: name.to_string(),
            identity: identity.to_string(),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }

    fn validate(&self) -> Result<(), LeaderElectionError> {
        let invalid = |why: &str| Err(LeaderElectionError::InvalidConfig(why.to_string()));
        if self.identity.is_empty() {
            return invalid("identity must not be empty");
        }
        if self.name.is_empty() || self.namespace.is_empty() {
            return invalid("lease name and namespace must not be empty");
        }
        if self.lease_duration <= self.renew_deadline {
            return invalid("lease duration must be greater than renew deadline");
        }
        if self.renew_deadline.as_secs_f64() <= 1.2 * self.retry_period.as_secs_f64() {
            return invalid("renew deadline must be greater than 1.2 × retry period");
        }
        if self.retry_period.is_zero() {
            return invalid("retry period must be positive");
        }
        Ok(())
    }
}

/// Why [`LeaderElector::run`] returned with an error.
#[derive(Debug, thiserror::Error)]
pub enum LeaderElectionError {
    #[error("invalid leader election config: {0}")]
    InvalidConfig(String),
    #[error("leader election lost: lease {namespace}/{name} not renewed within {deadline:?}")]
    Lost {
        namespace: String,
        name: String,
        deadline: Duration,
    },
}

/// Competes for one Lease; see the module documentation.
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    /// The last record we saw and when (on our monotonic clock) it last changed.
    observed: Option<(LeaseSpec, Instant)>,
}

/// What a candidate does with the lease it just read (a pure decision, table-tested).
#[derive(Debug, PartialEq)]
pub(crate) enum Decision {
    /// Someone else holds a lease that has not expired.
    Wait,
    /// Write this record (acquire or renew).
    Write(LeaseSpec),
}

/// Decides whether `identity` may write the lease whose current record is `current`, unchanged
/// for `unchanged_for` on our clock, and which record to write.
pub(crate) fn decide(
    current: &LeaseSpec,
    unchanged_for: Duration,
    identity: &str,
    lease_duration: Duration,
    now: Timestamp,
) -> Decision {
    let holder = current.holder_identity.as_deref().unwrap_or_default();
    let held_by_us = holder == identity;
    let duration = Duration::from_secs(current.lease_duration_seconds.unwrap_or(0).max(0) as u64);
    if !holder.is_empty() && !held_by_us && unchanged_for < duration {
        return Decision::Wait;
    }
    let mut next = LeaseSpec {
        holder_identity: Some(identity.to_string()),
        lease_duration_seconds: Some(lease_duration.as_secs().max(1) as i32),
        renew_time: Some(MicroTime(now)),
        ..current.clone()
    };
    if !held_by_us {
        next.acquire_time = Some(MicroTime(now));
        next.lease_transitions = Some(current.lease_transitions.unwrap_or(0) + i32::from(!holder.is_empty()));
    }
    Decision::Write(next)
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        let api = Api::namespaced(client, &config.namespace);
        Self {
            api,
            config,
            observed: None,
        }
    }

    /// Waits until this replica holds the lease, runs `work` with a token that is cancelled when
    /// leadership ends, keeps renewing, and returns once `work` has finished after leadership
    /// ended: `Ok` on `shutdown` (the lease is released), [`LeaderElectionError::Lost`] when a
    /// renewal did not succeed in time (callers should exit, as upstream components do).
    pub async fn run<F, Fut>(mut self, shutdown: CancellationToken, work: F) -> Result<(), LeaderElectionError>
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.config.validate()?;
        // Acquire.
        let mut last_renewed = loop {
            if self.try_acquire_or_renew().await {
                break Instant::now();
            }
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(self.jittered_retry()) => {}
            }
        };
        tracing::info!(lease = %self.lease_key(), identity = %self.config.identity, "acquired lease");
        let leading = shutdown.child_token();
        let handle = tokio::spawn(work(leading.clone()));
        // Renew.
        let result = loop {
            tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                () = tokio::time::sleep(self.config.retry_period) => {}
            }
            let deadline = last_renewed + self.config.renew_deadline;
            let renewed = tokio::select! {
                () = shutdown.cancelled() => break Ok(()),
                renewed = tokio::time::timeout_at(deadline, self.try_acquire_or_renew()) => renewed.unwrap_or(false),
            };
            if renewed {
                last_renewed = Instant::now();
            } else if Instant::now() >= deadline {
                tracing::error!(lease = %self.lease_key(), "failed to renew lease before the deadline, stepping down");
                break Err(LeaderElectionError::Lost {
                    namespace: self.config.namespace.clone(),
                    name: self.config.name.clone(),
                    deadline: self.config.renew_deadline,
                });
            }
        };
        leading.cancel();
        let _ = handle.await;
        if result.is_ok() {
            self.release().await;
        }
        result
    }

    fn lease_key(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.name)
    }

    fn jittered_retry(&self) -> Duration {
        // client-go's wait.JitterUntil with factor 1.2: [retry, 2.2 × retry).
        let jitter = rand_fraction() * 1.2;
        self.config.retry_period.mul_f64(1.0 + jitter)
    }

    /// One attempt to acquire or renew; `true` if we hold the lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> bool {
        let now = Timestamp::now();
        let existing = match self.api.get_opt(&self.config.name).await {
            Ok(existing) => existing,
            Err(error) => {
                tracing::warn!(lease = %self.lease_key(), %error, "cannot read lease");
                return false;
            }
        };
        let Some(mut lease) = existing else {
            let spec = LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(self.config.lease_duration.as_secs().max(1) as i32),
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            };
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(spec.clone()),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => {
                    self.observed = Some((spec, Instant::now()));
                    true
                }
                Err(error) => {
                    tracing::debug!(lease = %self.lease_key(), %error, "cannot create lease");
                    false
                }
            };
        };
        let current = lease.spec.clone().unwrap_or_default();
        let changed_at = match &self.observed {
            Some((seen, at)) if *seen == current => *at,
            _ => Instant::now(),
        };
        self.observed = Some((current.clone(), changed_at));
        let decision = decide(
            &current,
            changed_at.elapsed(),
            &self.config.identity,
            self.config.lease_duration,
            now,
        );
        let Decision::Write(next) = decision else {
            return false;
        };
        lease.spec = Some(next.clone());
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                self.observed = Some((next, Instant::now()));
                true
            }
            Err(error) => {
                tracing::debug!(lease = %self.lease_key(), %error, "cannot update lease");
                false
            }
        }
    }

    /// Gives the lease up (empty holder, 1 s duration) so that a standby acquires it at once.
    async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.config.name).await else {
            return;
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return;
        }
        let now = Timestamp::now();
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(now));
        spec.acquire_time = Some(MicroTime(now));
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => tracing::info!(lease = %self.lease_key(), "released lease"),
            Err(error) => tracing::warn!(lease = %self.lease_key(), %error, "cannot release lease"),
        }
    }
}

/// A number in [0, 1) from the clock's sub-second noise; good enough for retry jitter and keeps
/// this crate free of a random-number dependency.
fn rand_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1000) / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(holder: &str, duration: i32, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: (!holder.is_empty()).then(|| holder.to_string()),
            lease_duration_seconds: Some(duration),
            lease_transitions: Some(transitions),
            acquire_time: Some(MicroTime(Timestamp::UNIX_EPOCH)),
            renew_time: Some(MicroTime(Timestamp::UNIX_EPOCH)),
            ..LeaseSpec::default()
        }
    }

    #[test]
    fn decide_table() {
        let now = Timestamp::from_second(1000).expect("valid timestamp");
        let fifteen = Duration::from_secs(15);
        // (current, unchanged for, expect write, expected transitions, acquire time reset)
        let cases = [
            ("other holder, fresh", spec("b", 15, 3), 5, false, 0, false),
            ("other holder, expired", spec("b", 15, 3), 15, true, 4, true),
            ("other holder, long lease", spec("b", 60, 3), 30, false, 0, false),
            ("we hold it: renew", spec("a", 15, 3), 0, true, 3, false),
            ("released", spec("", 1, 3), 0, true, 3, true),
        ];
        for (name, current, secs, writes, transitions, acquired) in cases {
            let decision = decide(&current, Duration::from_secs(secs), "a", fifteen, now);
            match decision {
                Decision::Wait => assert!(!writes, "{name}: expected a write"),
                Decision::Write(next) => {
                    assert!(writes, "{name}: expected to wait");
                    assert_eq!(next.holder_identity.as_deref(), Some("a"), "{name}");
                    assert_eq!(next.lease_duration_seconds, Some(15), "{name}");
                    assert_eq!(next.renew_time, Some(MicroTime(now)), "{name}");
                    assert_eq!(next.lease_transitions, Some(transitions), "{name}");
                    assert_eq!(next.acquire_time == Some(MicroTime(now)), acquired, "{name}");
                }
            }
        }
    }

    #[test]
    fn config_validation() {
        let mut config = LeaseConfig::new("kube-system", "x", "me");
        assert!(config.validate().is_ok());
        config.renew_deadline = config.lease_duration;
        assert!(config.validate().is_err());
        let mut config = LeaseConfig::new("kube-system", "x", "me");
        config.retry_period = Duration::from_secs(9);
        assert!(config.validate().is_err());
        let config = LeaseConfig::new("kube-system", "x", "");
        assert!(config.validate().is_err());
    }
}
