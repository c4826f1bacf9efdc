//! The controllers' wall clock, shifted by a fixed offset in tests so that time-driven
//! controllers (cronjob) can be exercised without waiting for the real time to pass.

use jiff::{SignedDuration, Timestamp};

/// A wall clock: the system time plus an offset (zero in production).
#[derive(Debug, Clone, Copy, Default)]
pub struct Clock {
    offset: SignedDuration,
}

impl Clock {
    /// A clock running `offset` ahead of the system clock.
    pub fn offset(offset: SignedDuration) -> Self {
        Clock { offset }
    }

    /// The current time.
    pub fn now(&self) -> Timestamp {
        let now = Timestamp::now();
        now.checked_add(self.offset).unwrap_or(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_moves_now() {
        let ahead = Clock::offset(SignedDuration::from_secs(3600)).now();
        let now = Clock::default().now();
        let diff = ahead.duration_since(now).as_secs();
        assert!((3599..=3601).contains(&diff), "{diff}");
    }
}
