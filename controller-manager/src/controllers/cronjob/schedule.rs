//! Cron schedules as upstream parses them (robfig/cron's standard parser): five fields
//! (minute hour day-of-month month day-of-week) of `*`, `?`, numbers, names, ranges, steps
//! and lists, or a descriptor (`@yearly`, `@monthly`, `@weekly`, `@daily`, `@hourly`,
//! `@every 1h30m`), optionally after `TZ=` / `CRON_TZ=`; and the next activation after a
//! time, in the schedule's time zone.
//!
//! Day-of-month and day-of-week combine as robfig's: when either is `*` (or `?`) both must
//! match, otherwise either may.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};

use crate::options::parse_duration;

/// Why a schedule does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(String);

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    kind: Kind,
    /// The time zone named by `TZ=` / `CRON_TZ=`, if any.
    pub time_zone: Option<TimeZone>,
}

#[derive(Debug, Clone)]
enum Kind {
    Fields {
        minute: u64,
        hour: u64,
        dom: u64,
        month: u64,
        dow: u64,
        /// Day-of-month or day-of-week was `*` / `?`.
        any_day: bool,
    },
    Every(SignedDuration),
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Schedule {
    /// Parses `spec`.
    pub fn parse(spec: &str) -> Result<Self, ParseError> {
        let spec = spec.trim();
        let mut time_zone = None;
        let mut rest = spec;
        if let Some(after) = spec.strip_prefix("TZ=").or_else(|| spec.strip_prefix("CRON_TZ=")) {
            let (name, tail) = after.split_once(' ').unwrap_or((after, ""));
            let zone = jiff::tz::db()
                .get(name)
                .map_err(|error| ParseError(format!("provided bad location {name}: {error}")))?;
            time_zone = Some(zone);
            rest = tail.trim();
        }
        let expanded = match rest {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        if let Some(every) = expanded.strip_prefix("@every ") {
            let duration = parse_duration(every)
                .map_err(|error| ParseError(format!("failed to parse duration {rest}: {error}")))?;
            // Like robfig, sub-second precision is dropped and the interval is at least 1 s.
            let secs = duration.as_secs().max(1);
            return Ok(Schedule {
                kind: Kind::Every(SignedDuration::from_secs(i64::try_from(secs).unwrap_or(i64::MAX))),
                time_zone,
            });
        }
        if expanded.starts_with('@') {
            return Err(ParseError(format!("unrecognized descriptor: {expanded}")));
        }
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(ParseError(format!(
                "expected exactly 5 fields, found {}: [{}]",
                fields.len(),
                fields.join(" ")
            )));
        }
        let minute = field(fields[0], 0, 59, &[])?;
        let hour = field(fields[1], 0, 23, &[])?;
        let dom = field(fields[2], 1, 31, &[])?;
        let month = field(fields[3], 1, 12, &MONTHS)?;
        let dow = field(fields[4], 0, 6, &DAYS)?;
        let any_day = is_star(fields[2]) || is_star(fields[4]);
        Ok(Schedule {
            kind: Kind::Fields {
                minute,
                hour,
                dom,
                month,
                dow,
                any_day,
            },
            time_zone,
        })
    }

    /// The first activation strictly after `after`, in `zone` (the schedule's own `TZ=`
    /// wins); `None` when there is none within five years.
    pub fn next(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        let zone = self.time_zone.as_ref().unwrap_or(zone);
        let Kind::Fields {
            minute,
            hour,
            dom,
            month,
            dow,
            any_day,
        } = &self.kind
        else {
            let Kind::Every(every) = &self.kind else {
                return None;
            };
            // Like robfig: the next whole second plus the interval.
            let base = Timestamp::from_second(after.as_second()).ok()?;
            return base.checked_add(*every).ok();
        };
        let has = |set: u64, value: i8| value >= 0 && set & (1u64 << value) != 0;
        let start = after.to_zoned(zone.clone()).datetime();
        let mut dt = start
            .with()
            .second(0)
            .subsec_nanosecond(0)
            .build()
            .ok()?
            .checked_add(1.minute())
            .ok()?;
        let limit = start.checked_add(5.years()).ok()?;
        while dt <= limit {
            if !has(*month, dt.month()) {
                dt = first_of_next_month(dt)?;
                continue;
            }
            let dom_ok = has(*dom, dt.day());
            let dow_ok = has(*dow, dt.weekday().to_sunday_zero_offset());
            let day_ok = if *any_day { dom_ok && dow_ok } else { dom_ok || dow_ok };
            if !day_ok {
                dt = dt.date().tomorrow().ok()?.to_datetime(jiff::civil::time(0, 0, 0, 0));
                continue;
            }
            if !has(*hour, dt.hour()) {
                dt = dt.with().minute(0).build().ok()?.checked_add(1.hour()).ok()?;
                continue;
            }
            if !has(*minute, dt.minute()) {
                dt = dt.checked_add(1.minute()).ok()?;
                continue;
            }
            let at = zone.to_ambiguous_timestamp(dt).compatible().ok()?;
            if at > after {
                return Some(at);
            }
            dt = dt.checked_add(1.minute()).ok()?;
        }
        None
    }
}

fn first_of_next_month(dt: DateTime) -> Option<DateTime> {
    let first = dt.date().first_of_month().checked_add(1.month()).ok()?;
    Some(first.to_datetime(jiff::civil::time(0, 0, 0, 0)))
}

fn is_star(text: &str) -> bool {
    text.starts_with('*') || text.starts_with('?')
}

/// Parses one field into a bit set of the allowed values.
fn field(text: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, ParseError> {
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step = number(step, names, 0)?;
                if step == 0 {
                    return Err(ParseError(format!("step of range should be a positive number: {part}")));
                }
                (range, Some(step))
            }
            None => (part, None),
        };
        let (low, high) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((low, high)) = range.split_once('-') {
            (number(low, names, min)?, number(high, names, min)?)
        } else {
            let low = number(range, names, min)?;
            // `5/10` means 5 to the maximum, every 10.
            (low, if step.is_some() { max } else { low })
        };
        if low < min {
            return Err(ParseError(format!(
                "beginning of range ({low}) below minimum ({min}): {part}"
            )));
        }
        if high > max {
            return Err(ParseError(format!(
                "end of range ({high}) above maximum ({max}): {part}"
            )));
        }
        if low > high {
            return Err(ParseError(format!(
                "beginning of range ({low}) beyond end of range ({high}): {part}"
            )));
        }
        let step = step.unwrap_or(1);
        let mut value = low;
        while value <= high {
            bits |= 1u64 << value;
            value += step;
        }
    }
    Ok(bits)
}

fn number(text: &str, names: &[&str], offset: u32) -> Result<u32, ParseError> {
    let lower = text.to_ascii_lowercase();
    if let Some(position) = names.iter().position(|name| *name == lower) {
        return Ok(u32::try_from(position).unwrap_or(0) + offset);
    }
    text.parse::<u32>()
        .map_err(|_| ParseError(format!("failed to parse int from {text}: invalid syntax")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(spec: &str, after: &str) -> String {
        let schedule = Schedule::parse(spec).expect("valid schedule");
        let after: Timestamp = after.parse().expect("valid time");
        schedule
            .next(after, &TimeZone::UTC)
            .map(|t| t.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn next_activation_table() {
        let cases = [
            ("* * * * *", "2025-01-01T00:00:00Z", "2025-01-01T00:01:00Z"),
            ("* * * * *", "2025-01-01T00:00:30Z", "2025-01-01T00:01:00Z"),
            ("*/15 * * * *", "2025-01-01T00:16:00Z", "2025-01-01T00:30:00Z"),
            ("5/20 * * * *", "2025-01-01T00:26:00Z", "2025-01-01T00:45:00Z"),
            ("0 9-17/4 * * *", "2025-01-01T10:00:00Z", "2025-01-01T13:00:00Z"),
            ("30 2 * * mon", "2025-01-01T00:00:00Z", "2025-01-06T02:30:00Z"),
            ("0 0 1 jan,JUL *", "2025-02-01T00:00:00Z", "2025-07-01T00:00:00Z"),
            // Day-of-month and day-of-week both restricted: either matches.
            ("0 0 13 * 5", "2025-01-01T00:00:00Z", "2025-01-03T00:00:00Z"),
            ("0 0 29 2 *", "2025-01-01T00:00:00Z", "2028-02-29T00:00:00Z"),
            ("@hourly", "2025-01-01T00:59:59Z", "2025-01-01T01:00:00Z"),
            ("@daily", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"),
            ("@weekly", "2025-01-01T00:00:00Z", "2025-01-05T00:00:00Z"),
            ("@every 1h30m", "2025-01-01T00:00:00.5Z", "2025-01-01T01:30:00Z"),
            (
                "CRON_TZ=Asia/Tokyo 0 9 * * *",
                "2025-01-01T01:00:00Z",
                "2025-01-02T00:00:00Z",
            ),
            (
                "TZ=America/New_York 0 0 * * *",
                "2025-07-01T00:00:00Z",
                "2025-07-01T04:00:00Z",
            ),
            ("0 0 31 2 *", "2025-01-01T00:00:00Z", ""),
        ];
        for (spec, after, expected) in cases {
            assert_eq!(next(spec, after), expected, "{spec} after {after}");
        }
    }

    #[test]
    fn time_zone_argument_applies_without_prefix() {
        let schedule = Schedule::parse("0 12 * * *").expect("valid");
        let zone = jiff::tz::db().get("Europe/Paris").expect("zone exists");
        let after: Timestamp = "2025-01-01T00:00:00Z".parse().expect("valid time");
        let at = schedule.next(after, &zone).map(|t| t.to_string());
        assert_eq!(at.as_deref(), Some("2025-01-01T11:00:00Z"));
    }

    #[test]
    fn invalid_schedules_are_rejected() {
        for spec in [
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "* * * * 7",
            "*/0 * * * *",
            "5-1 * * * *",
            "x * * * *",
            "@often",
            "TZ=Nowhere/City * * * * *",
            "@every nope",
        ] {
            assert!(Schedule::parse(spec).is_err(), "{spec} should not parse");
        }
    }
}
