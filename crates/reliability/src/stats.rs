//! Latency percentiles.

use std::time::Duration;

use serde::Serialize;

/// Percentiles of a set of latencies, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub(crate) struct Latency {
    /// How many.
    pub(crate) count: u64,
    /// Median.
    pub(crate) p50_ms: f64,
    /// 99th percentile.
    pub(crate) p99_ms: f64,
    /// Largest.
    pub(crate) max_ms: f64,
}

/// The nearest-rank percentile `p` (0 < p ≤ 100) of sorted values.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0 * 1000.0).round() / 1000.0
}

impl Latency {
    /// The percentiles of `values` (sorted in place).
    pub(crate) fn of(values: &mut [Duration]) -> Self {
        values.sort_unstable();
        Self {
            count: values.len() as u64,
            p50_ms: ms(percentile(values, 50.0)),
            p99_ms: ms(percentile(values, 99.0)),
            max_ms: ms(values.last().copied().unwrap_or_default()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let l = Latency::of(&mut v);
        assert_eq!(l.count, 100);
        assert_eq!(l.p50_ms, 50.0);
        assert_eq!(l.p99_ms, 99.0);
        assert_eq!(l.max_ms, 100.0);
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
        let one = [Duration::from_micros(1500)];
        assert_eq!(percentile(&one, 1.0), one[0]);
        assert_eq!(Latency::of(&mut one.to_vec()).p99_ms, 1.5);
    }
}
