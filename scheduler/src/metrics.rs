//! Counters and latency histograms of the scheduler (read by logs and the benchmark).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

/// See the module documentation.
pub struct Metrics {
    pub scheduled: AtomicU64,
    pub bound: AtomicU64,
    pub unschedulable: AtomicU64,
    pub errors: AtomicU64,
    /// From the pod's first arrival in the queue to the cycle that placed it, in µs.
    queue_latency: Mutex<Histogram<u64>>,
    /// One scheduling algorithm run (filter + score), in µs.
    algorithm_latency: Mutex<Histogram<u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let histogram = || {
            Mutex::new(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant histogram bounds are valid"))
        };
        Self {
            scheduled: AtomicU64::new(0),
            bound: AtomicU64::new(0),
            unschedulable: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            queue_latency: histogram(),
            algorithm_latency: histogram(),
        }
    }
}

fn record(histogram: &Mutex<Histogram<u64>>, value: Duration) {
    let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX).max(1);
    if let Ok(mut histogram) = histogram.lock() {
        histogram.saturating_record(micros);
    }
}

fn quantile(histogram: &Mutex<Histogram<u64>>, q: f64) -> Duration {
    histogram
        .lock()
        .map(|h| Duration::from_micros(h.value_at_quantile(q)))
        .unwrap_or_default()
}

impl Metrics {
    pub fn record_queue_latency(&self, value: Duration) {
        record(&self.queue_latency, value);
    }

    pub fn record_algorithm_latency(&self, value: Duration) {
        record(&self.algorithm_latency, value);
    }

    pub fn queue_latency_quantile(&self, q: f64) -> Duration {
        quantile(&self.queue_latency, q)
    }

    pub fn algorithm_latency_quantile(&self, q: f64) -> Duration {
        quantile(&self.algorithm_latency, q)
    }

    pub fn count(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
