//! Latency percentiles from every measured request.

use serde::Serialize;

/// Latency percentiles in milliseconds (microsecond precision).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarises latencies given in microseconds (sorts them in place).
    pub fn from_micros(latencies: &mut [u64]) -> Self {
        latencies.sort_unstable();
        let ms = |q: f64| percentile(latencies, q) as f64 / 1000.0;
        Self {
            p50_ms: ms(0.50),
            p90_ms: ms(0.90),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: ms(1.0),
        }
    }
}

/// The nearest-rank percentile `q` (0..=1) of ascending `sorted`; 0 when empty.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    // The rank is at most len (q <= 1), so the cast back is exact.
    let rank = (q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<u64> = (1..=1000).collect();
        assert_eq!(percentile(&sorted, 0.5), 500);
        assert_eq!(percentile(&sorted, 0.9), 900);
        assert_eq!(percentile(&sorted, 0.99), 990);
        assert_eq!(percentile(&sorted, 0.999), 999);
        assert_eq!(percentile(&sorted, 1.0), 1000);
        assert_eq!(percentile(&sorted, 0.0), 1);
        assert_eq!(percentile(&[7], 0.999), 7);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn summary_sorts_and_converts_to_milliseconds() {
        let mut micros = vec![3000, 250, 1000, 500, 750];
        let summary = LatencySummary::from_micros(&mut micros);
        assert_eq!(summary.p50_ms, 0.75);
        assert_eq!(summary.p90_ms, 3.0);
        assert_eq!(summary.max_ms, 3.0);
        assert_eq!(micros, vec![250, 500, 750, 1000, 3000]);
    }
}
