//! The scheduler: one task per deployment with a `scheduler` trigger.
//! Each firing is claimed in the store first (`claim_tick`), so a tick
//! fires once; after downtime the one most recent missed tick fires once
//! (marked `missed`), never every tick that was missed.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use serde_json::json;
use sluice_spec::{SchedulerTrigger, Trigger};

use crate::runtime::{Deployed, RunRequest, Runtime};

/// A parsed schedule.
pub struct Schedule {
    cron: Cron,
    zone: chrono_tz::Tz,
}

impl Schedule {
    /// Parses the trigger's cron (5 fields, or 6 with seconds first) and zone.
    pub fn parse(trigger: &SchedulerTrigger) -> Result<Self, (&'static str, String)> {
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .build()
            .parse(&trigger.cron)
            .map_err(|e| {
                (
                    "trigger.cron",
                    format!("'{}' is not a cron expression: {e}", trigger.cron),
                )
            })?;
        let zone = match &trigger.timezone {
            None => chrono_tz::UTC,
            Some(name) => chrono_tz::Tz::from_str(name).map_err(|_| {
                (
                    "trigger.timezone",
                    format!("'{name}' is not an IANA time zone (like Europe/Berlin)"),
                )
            })?,
        };
        Ok(Schedule { cron, zone })
    }

    /// The first firing after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&whole_second(after).with_timezone(&self.zone), false)
            .ok()
            .map(|t| whole_second(t.with_timezone(&Utc)))
    }

    /// The last firing at or before `at`.
    pub fn previous(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&whole_second(at).with_timezone(&self.zone), true)
            .ok()
            .map(|t| whole_second(t.with_timezone(&Utc)))
    }
}

/// Firings are whole seconds, so a tick has one name in the store.
fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// Keeps one task per scheduled deployment until aborted.
pub async fn run(runtime: Arc<Runtime>) {
    let mut running: HashSet<usize> = HashSet::new();
    loop {
        let changed = runtime.schedules_changed.notified();
        let current: Vec<Arc<Deployed>> = runtime
            .all()
            .into_iter()
            .filter(|d| matches!(d.plan.definition.trigger, Some(Trigger::Scheduler(_))))
            .collect();
        let ids: HashSet<usize> = current.iter().map(|d| Arc::as_ptr(d) as usize).collect();
        running.retain(|id| ids.contains(id));
        for deployed in current {
            if running.insert(Arc::as_ptr(&deployed) as usize) {
                tokio::spawn(fire_loop(runtime.clone(), deployed));
            }
        }
        changed.await;
    }
}

fn schedule_key(d: &Deployed) -> String {
    let d = &d.deployment;
    format!("{}/{}/{}/v{}", d.realm, d.environment, d.pipeline, d.major)
}

async fn fire_loop(runtime: Arc<Runtime>, deployed: Arc<Deployed>) {
    let Some(Trigger::Scheduler(trigger)) = &deployed.plan.definition.trigger else {
        return;
    };
    let schedule = match Schedule::parse(trigger) {
        Ok(s) => s,
        Err((path, message)) => {
            tracing::error!(pipeline = %deployed.deployment.pipeline, path, message, "a schedule cannot run");
            return;
        }
    };
    let key = schedule_key(&deployed);
    let busy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // One missed firing (the latest) is made up for after downtime.
    if let Ok(Some(last)) = runtime.store.last_tick(&key).await
        && let Some(missed) = schedule.previous(Utc::now())
        && missed.timestamp_millis() > last
    {
        fire(
            &runtime,
            &deployed,
            &key,
            trigger.concurrent,
            &busy,
            missed,
            true,
        )
        .await;
    }
    let mut after = Utc::now();
    loop {
        if !runtime.is_current(&deployed) {
            return;
        }
        let Some(next) = schedule.next_after(after) else {
            return;
        };
        // Wake at least every minute to notice a replaced deployment.
        let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        if wait > Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_secs(60)).await;
            continue;
        }
        tokio::time::sleep(wait).await;
        if !runtime.is_current(&deployed) {
            return;
        }
        fire(
            &runtime,
            &deployed,
            &key,
            trigger.concurrent,
            &busy,
            next,
            false,
        )
        .await;
        after = next;
    }
}

async fn fire(
    runtime: &Arc<Runtime>,
    deployed: &Arc<Deployed>,
    key: &str,
    concurrent: bool,
    busy: &Arc<std::sync::atomic::AtomicBool>,
    scheduled: DateTime<Utc>,
    missed: bool,
) {
    use std::sync::atomic::Ordering;
    match runtime
        .store
        .claim_tick(key, scheduled.timestamp_millis())
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::error!(error = %e, schedule = key, "a firing could not be claimed");
            return;
        }
    }
    if !concurrent && busy.swap(true, Ordering::AcqRel) {
        tracing::info!(schedule = key, "skipped a firing: the last one still runs");
        runtime.metrics.reject("schedule_busy");
        return;
    }
    let input = json!({
        "firedAt": Utc::now().to_rfc3339(),
        "scheduledAt": scheduled.to_rfc3339(),
        "missed": missed,
    });
    let runtime = runtime.clone();
    let deployed = deployed.clone();
    let busy = busy.clone();
    tokio::spawn(async move {
        let _ = runtime
            .run(&deployed, RunRequest::new(input, "scheduler"))
            .await;
        if !concurrent {
            busy.store(false, Ordering::Release);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str, zone: Option<&str>) -> Schedule {
        let trigger = SchedulerTrigger {
            cron: cron.to_owned(),
            timezone: zone.map(str::to_owned),
            concurrent: true,
        };
        Schedule::parse(&trigger).unwrap_or_else(|(path, m)| panic!("{path}: {m}"))
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn a_time_zone_moves_the_firing_with_summer_time() {
        let s = schedule("0 30 9 * * *", Some("Europe/Berlin"));
        assert_eq!(
            s.next_after(at("2026-01-10T00:00:00Z")),
            Some(at("2026-01-10T08:30:00Z"))
        );
        assert_eq!(
            s.next_after(at("2026-07-10T00:00:00Z")),
            Some(at("2026-07-10T07:30:00Z"))
        );
    }

    #[test]
    fn firings_are_whole_seconds_whatever_the_clock_reads() {
        let s = schedule("* * * * * *", None);
        let now = at("2026-01-10T10:00:05.731Z");
        assert_eq!(s.previous(now), Some(at("2026-01-10T10:00:05Z")));
        assert_eq!(s.next_after(now), Some(at("2026-01-10T10:00:06Z")));
        let five = schedule("*/5 * * * *", None);
        assert_eq!(
            five.previous(at("2026-01-10T10:07:59.9Z")),
            Some(at("2026-01-10T10:05:00Z"))
        );
    }

    #[test]
    fn a_bad_cron_or_zone_names_its_field() {
        let bad = SchedulerTrigger {
            cron: "every day".into(),
            timezone: None,
            concurrent: true,
        };
        assert_eq!(
            Schedule::parse(&bad).err().map(|e| e.0),
            Some("trigger.cron")
        );
        let zone = SchedulerTrigger {
            cron: "0 * * * *".into(),
            timezone: Some("Mars/Olympus".into()),
            concurrent: true,
        };
        assert_eq!(
            Schedule::parse(&zone).err().map(|e| e.0),
            Some("trigger.timezone")
        );
    }
}
