//! When each request is due: request `i` at `start + i / rate`, warmup first.

use std::time::Duration;

/// The fixed-rate send plan of one run: warmup requests, then measured ones,
/// all at the same pace.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    rate: f64,
    warmup_requests: u64,
    measured_requests: u64,
}

impl Schedule {
    /// A plan of `rate` requests per second for `warmup`, then for `duration`.
    pub fn new(rate: f64, warmup: Duration, duration: Duration) -> Result<Self, String> {
        if !(rate.is_finite() && rate > 0.0) {
            return Err(format!("rate must be a positive number, got {rate}"));
        }
        let count = |span: Duration| (rate * span.as_secs_f64()).round();
        let measured = count(duration);
        if measured < 1.0 {
            return Err(format!(
                "a rate of {rate}/s for {duration:?} sends no request; raise the rate or the duration"
            ));
        }
        // Float to integer casts saturate; the bounds make the counts exact.
        if measured + count(warmup) > u64::MAX as f64 / 2.0 {
            return Err("rate × duration is too large".into());
        }
        Ok(Self {
            rate,
            warmup_requests: count(warmup) as u64,
            measured_requests: measured as u64,
        })
    }

    /// All requests, warmup included.
    pub fn total(&self) -> u64 {
        self.warmup_requests + self.measured_requests
    }

    /// Requests that count in the report.
    pub fn measured_requests(&self) -> u64 {
        self.measured_requests
    }

    /// How long after the start request `index` is due.
    pub fn offset(&self, index: u64) -> Duration {
        Duration::from_secs_f64(index as f64 / self.rate)
    }

    /// Whether request `index` counts (it is past the warmup).
    pub fn is_measured(&self, index: u64) -> bool {
        index >= self.warmup_requests
    }

    /// How long after the start the measured requests begin.
    pub fn measured_start(&self) -> Duration {
        self.offset(self.warmup_requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_evenly_spaced_and_warmup_comes_first() {
        let schedule =
            Schedule::new(200.0, Duration::from_millis(500), Duration::from_secs(2)).unwrap();
        assert_eq!(schedule.total(), 500);
        assert_eq!(schedule.measured_requests(), 400);
        assert_eq!(schedule.offset(0), Duration::ZERO);
        assert_eq!(schedule.offset(1), Duration::from_millis(5));
        assert_eq!(schedule.offset(200), Duration::from_secs(1));
        assert!(!schedule.is_measured(99));
        assert!(schedule.is_measured(100));
        assert_eq!(schedule.measured_start(), Duration::from_millis(500));
    }

    #[test]
    fn fractional_rates_and_no_warmup() {
        let schedule = Schedule::new(2.5, Duration::ZERO, Duration::from_secs(4)).unwrap();
        assert_eq!(schedule.total(), 10);
        assert_eq!(schedule.offset(5), Duration::from_secs(2));
        assert!(schedule.is_measured(0));
    }

    #[test]
    fn rejects_plans_that_send_nothing() {
        assert!(Schedule::new(0.0, Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(Schedule::new(f64::NAN, Duration::ZERO, Duration::from_secs(1)).is_err());
        assert!(Schedule::new(1.0, Duration::ZERO, Duration::from_millis(100)).is_err());
    }
}
