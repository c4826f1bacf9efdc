//! Idle tracking for streaming connections: a clock that the data path touches, and a future
//! that resolves once nothing touched it for a while (what the kubelet's
//! `--streaming-connection-idle-timeout` needs, for SPDY sessions and WebSocket sessions alike).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// When a connection last carried something; clones share the clock.
#[derive(Clone, Debug)]
pub struct IdleClock {
    start: Instant,
    /// Milliseconds from `start` to the last activity.
    last: Arc<AtomicU64>,
}

impl Default for IdleClock {
    fn default() -> IdleClock {
        IdleClock::new()
    }
}

impl IdleClock {
    /// A clock whose last activity is now.
    pub fn new() -> IdleClock {
        IdleClock {
            start: Instant::now(),
            last: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Records activity now.
    pub fn touch(&self) {
        let now = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last.fetch_max(now, Ordering::Relaxed);
    }

    /// How long since the last activity.
    pub fn idle_for(&self) -> Duration {
        self.start
            .elapsed()
            .saturating_sub(Duration::from_millis(self.last.load(Ordering::Relaxed)))
    }

    /// Resolves once there was no activity for `timeout`.
    pub async fn expired(&self, timeout: Duration) {
        loop {
            let idle = self.idle_for();
            if idle >= timeout {
                return;
            }
            tokio::time::sleep(timeout - idle).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn expires_only_after_a_quiet_timeout() {
        let clock = IdleClock::new();
        let timeout = Duration::from_secs(10);
        let waiter = tokio::spawn({
            let clock = clock.clone();
            async move { clock.expired(timeout).await }
        });
        tokio::time::sleep(Duration::from_secs(6)).await;
        clock.touch();
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert!(!waiter.is_finished(), "activity at 6 s moves the deadline to 16 s");
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(waiter.is_finished());
    }
}
