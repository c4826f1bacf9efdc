//! Leases for keys written with a ttl, shared among writes as upstream's apiserver shares them.
//!
//! Granting a lease per write would double the round trips of every event write. Instead one
//! lease is granted for `ttl` plus a reuse window (5 % of the ttl, at most a minute) and attached
//! to every write in that window, so a key lives between `ttl` and `ttl` + the window after its
//! write. After 1 000 attached writes a new lease is granted, so that one expiry never deletes
//! an unbounded number of keys at once. (Upstream: `--lease-reuse-duration-seconds` 60 and
//! `leaseManager` in the apiserver's etcd3 store; the figures are the same.)

use std::time::{Duration, Instant};

/// The reuse window is this share of the ttl...
const REUSE_SHARE: f64 = 0.05;
/// ...but at most this long.
const REUSE_MAX_SECONDS: i64 = 60;
/// Writes attached to one lease at most.
const MAX_ATTACHED: u32 = 1000;

/// The lease writes are attached to now.
#[derive(Debug, Default)]
pub(super) struct Leases {
    current: Option<Lease>,
}

#[derive(Debug)]
struct Lease {
    id: i64,
    expires: Instant,
    attached: u32,
}

/// What a write with a ttl should do: attach to a lease, or grant one of `seconds` first.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Plan {
    Reuse(i64),
    Grant { seconds: i64 },
}

/// A ttl in whole seconds, rounded up (etcd's lease TTLs are seconds), at least 1.
fn seconds(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_secs())
        .unwrap_or(i64::MAX / 2)
        .saturating_add(i64::from(ttl.subsec_nanos() > 0))
        .max(1)
}

fn reuse_window(ttl_seconds: i64) -> i64 {
    // Ttls are far below 2^52 seconds, where the conversion would round.
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let share = (ttl_seconds as f64 * REUSE_SHARE) as i64;
    share.min(REUSE_MAX_SECONDS)
}

impl Leases {
    /// The current lease if a key written `now` with `ttl` may use it: it must outlive the ttl
    /// and end within the reuse window after it.
    pub(super) fn plan(&mut self, ttl: Duration, now: Instant) -> Plan {
        let ttl_seconds = seconds(ttl);
        let window = reuse_window(ttl_seconds);
        if let Some(lease) = &mut self.current {
            let earliest = now + Duration::from_secs(ttl_seconds.unsigned_abs());
            let latest = earliest + Duration::from_secs(window.unsigned_abs());
            if lease.expires > earliest && lease.expires <= latest && lease.attached < MAX_ATTACHED {
                lease.attached += 1;
                return Plan::Reuse(lease.id);
            }
        }
        Plan::Grant {
            seconds: ttl_seconds.saturating_add(window),
        }
    }

    /// Records a lease etcd granted at `granted` for `seconds` (etcd may raise a short ttl to
    /// its minimum); the write that asked for it is attached.
    pub(super) fn granted(&mut self, id: i64, seconds: i64, granted: Instant) {
        self.current = Some(Lease {
            id,
            expires: granted + Duration::from_secs(seconds.max(0).unsigned_abs()),
            attached: 1,
        });
    }

    /// Drops lease `id`, which etcd no longer knows.
    pub(super) fn forget(&mut self, id: i64) {
        if self.current.as_ref().is_some_and(|lease| lease.id == id) {
            self.current = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_hour_ttl_shares_a_lease_for_a_minute() {
        let mut leases = Leases::default();
        let start = Instant::now();
        let hour = Duration::from_secs(3600);
        assert_eq!(leases.plan(hour, start), Plan::Grant { seconds: 3660 });
        leases.granted(7, 3660, start);
        assert_eq!(leases.plan(hour, start + Duration::from_secs(59)), Plan::Reuse(7));
        // At 60 s the lease would end exactly when the key's ttl does: too early.
        assert_eq!(
            leases.plan(hour, start + Duration::from_secs(60)),
            Plan::Grant { seconds: 3660 }
        );
    }

    #[test]
    fn short_ttls_get_a_lease_each_and_round_up() {
        let mut leases = Leases::default();
        let start = Instant::now();
        assert_eq!(
            leases.plan(Duration::from_millis(1500), start),
            Plan::Grant { seconds: 2 }
        );
        leases.granted(1, 2, start);
        // No reuse window for a 2 s ttl: the lease would end before the next key's ttl.
        assert_eq!(
            leases.plan(Duration::from_secs(2), start + Duration::from_millis(10)),
            Plan::Grant { seconds: 2 }
        );
    }

    #[test]
    fn a_lease_carries_at_most_a_thousand_writes() {
        let mut leases = Leases::default();
        let start = Instant::now();
        let hour = Duration::from_secs(3600);
        leases.granted(3, 3660, start);
        for _ in 1..MAX_ATTACHED {
            assert_eq!(leases.plan(hour, start), Plan::Reuse(3));
        }
        assert_eq!(leases.plan(hour, start), Plan::Grant { seconds: 3660 });
        leases.forget(3);
        assert!(leases.current.is_none());
    }
}
