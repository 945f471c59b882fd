//! Throttling windows: the fixed window a moment falls in for a limit of `unit_time`
//! `time_unit`s (seconds, minutes, hours, days aligned to the Unix epoch in UTC; months
//! aligned to calendar months in UTC), and the sliding-window estimate over the current
//! and the previous window. Gateways and the traffic manager both use these, so that every
//! node puts a request in the same window.

use std::fmt;
use std::str::FromStr;
use time::{Date, Month, OffsetDateTime};

/// The unit of a throttling window, as policies name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TimeUnit {
    /// `sec`.
    Second,
    /// `min`.
    Minute,
    /// `hour`.
    Hour,
    /// `day`.
    Day,
    /// `month` (calendar months, UTC).
    Month,
}

impl TimeUnit {
    /// The unit's length in milliseconds, for the fixed-length units.
    fn millis(self) -> Option<i64> {
        match self {
            TimeUnit::Second => Some(1_000),
            TimeUnit::Minute => Some(60_000),
            TimeUnit::Hour => Some(3_600_000),
            TimeUnit::Day => Some(86_400_000),
            TimeUnit::Month => None,
        }
    }
}

/// A time unit a policy names that Tollgate does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown time unit `{0}`: use sec, min, hour, day or month")]
pub struct UnknownTimeUnit(pub String);

impl FromStr for TimeUnit {
    type Err = UnknownTimeUnit;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "sec" | "second" | "seconds" => Ok(TimeUnit::Second),
            "min" | "minute" | "minutes" => Ok(TimeUnit::Minute),
            "hour" | "hours" => Ok(TimeUnit::Hour),
            "day" | "days" => Ok(TimeUnit::Day),
            "month" | "months" => Ok(TimeUnit::Month),
            _ => Err(UnknownTimeUnit(s.to_string())),
        }
    }
}

impl fmt::Display for TimeUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeUnit::Second => "sec",
            TimeUnit::Minute => "min",
            TimeUnit::Hour => "hour",
            TimeUnit::Day => "day",
            TimeUnit::Month => "month",
        })
    }
}

/// One fixed window, `[start, end)` in epoch milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    /// First millisecond of the window.
    pub start: i64,
    /// First millisecond after it.
    pub end: i64,
}

impl Window {
    /// The window's length in milliseconds.
    pub fn len(&self) -> i64 {
        self.end - self.start
    }

    /// Whether the window is empty (never, for a window from [`window`]).
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }
}

/// A limit ready for counting: so many requests (or bytes) per window of `unit_time`
/// `unit`s. Policies compile to this once, when the gateway learns of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    /// Requests, or bytes for a bandwidth limit, per window.
    pub amount: u64,
    /// Whether `amount` counts bytes (charged after the response) rather than requests.
    pub bandwidth: bool,
    /// The window's unit.
    pub unit: TimeUnit,
    /// How many units make the window.
    pub unit_time: u32,
}

impl Limit {
    /// The window this limit counts `at` in.
    pub fn window(&self, at: i64) -> Window {
        window(self.unit, self.unit_time, at)
    }
}

/// The window of `unit_time` (at least 1) `unit`s that contains `at` (epoch ms).
pub fn window(unit: TimeUnit, unit_time: u32, at: i64) -> Window {
    let unit_time = i64::from(unit_time.max(1));
    match unit.millis() {
        Some(ms) => {
            let len = ms * unit_time;
            let start = at - at.rem_euclid(len);
            Window {
                start,
                end: start + len,
            }
        }
        None => {
            let index = months_since_epoch(at).div_euclid(unit_time) * unit_time;
            Window {
                start: month_start(index),
                end: month_start(index + unit_time),
            }
        }
    }
}

/// Calendar months from January 1970 to the month containing `at` (UTC).
fn months_since_epoch(at: i64) -> i64 {
    let seconds = at.div_euclid(1_000);
    let date = OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    (i64::from(date.year()) - 1970) * 12 + i64::from(u8::from(date.month())) - 1
}

/// The first millisecond of the month `index` months after January 1970 (UTC).
fn month_start(index: i64) -> i64 {
    let year = 1970 + index.div_euclid(12);
    let month = u8::try_from(index.rem_euclid(12) + 1).unwrap_or(1);
    let date = i32::try_from(year)
        .ok()
        .and_then(|y| Date::from_calendar_date(y, Month::try_from(month).ok()?, 1).ok())
        .unwrap_or(Date::MIN);
    date.midnight().assume_utc().unix_timestamp() * 1_000
}

/// The sliding-window estimate of how many requests fell in the last window's length
/// before `at`: the current window's count plus the previous window's, weighted by how
/// much of it the sliding window still covers (`previous · (1 − elapsed/len) + current`).
pub fn sliding_estimate(previous: u64, current: u64, current_window: Window, at: i64) -> f64 {
    let len = current_window.len().max(1) as f64;
    let elapsed = (at - current_window.start).clamp(0, current_window.len()) as f64;
    previous as f64 * (1.0 - elapsed / len) + current as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const UNITS: [TimeUnit; 5] = [
        TimeUnit::Second,
        TimeUnit::Minute,
        TimeUnit::Hour,
        TimeUnit::Day,
        TimeUnit::Month,
    ];

    #[test]
    fn units_parse_as_policies_name_them() {
        for unit in UNITS {
            assert_eq!(unit.to_string().parse::<TimeUnit>().unwrap(), unit);
        }
        assert_eq!("MIN".parse::<TimeUnit>().unwrap(), TimeUnit::Minute);
        assert!(
            "fortnight"
                .parse::<TimeUnit>()
                .unwrap_err()
                .to_string()
                .contains("sec, min")
        );
    }

    #[test]
    fn known_windows() {
        // 2026-11-24T10:15:30.500Z
        let at = 1_795_515_330_500;
        assert_eq!(
            window(TimeUnit::Minute, 1, at),
            Window {
                start: 1_795_515_300_000,
                end: 1_795_515_360_000
            }
        );
        assert_eq!(window(TimeUnit::Second, 1, at).start, 1_795_515_330_000);
        // 2026-11-01T00:00Z to 2026-12-01T00:00Z.
        assert_eq!(
            window(TimeUnit::Month, 1, at),
            Window {
                start: 1_793_491_200_000,
                end: 1_796_083_200_000
            }
        );
        // Quarters from January 1970: October–December 2026.
        assert_eq!(window(TimeUnit::Month, 3, at).start, 1_790_812_800_000);
        assert_eq!(window(TimeUnit::Month, 3, at).end, 1_798_761_600_000);
    }

    proptest! {
        #[test]
        fn windows_contain_the_moment_and_tile_time(
            unit in proptest::sample::select(UNITS.to_vec()),
            unit_time in 1u32..40,
            at in -2_000_000_000_000i64..5_000_000_000_000,
        ) {
            let w = window(unit, unit_time, at);
            prop_assert!(w.start <= at && at < w.end, "{w:?} for {at}");
            // The next window starts where this one ends; the moment before the start is
            // in the window before, which ends where this one starts.
            prop_assert_eq!(window(unit, unit_time, w.end).start, w.end);
            prop_assert_eq!(window(unit, unit_time, w.start - 1).end, w.start);
            prop_assert_eq!(window(unit, unit_time, w.start), w);
            if let Some(ms) = unit.millis() {
                prop_assert_eq!(w.len(), ms * i64::from(unit_time));
            } else {
                let first = OffsetDateTime::from_unix_timestamp(w.start / 1000).unwrap();
                prop_assert_eq!((first.day(), first.hour(), first.minute(), first.second()), (1, 0, 0, 0));
                // 28 to 31 days per month.
                let days = w.len() / 86_400_000;
                prop_assert!(days >= 28 * i64::from(unit_time) && days <= 31 * i64::from(unit_time));
            }
        }

        #[test]
        fn the_sliding_estimate_lies_between_current_and_current_plus_previous(
            previous in 0u64..1_000_000,
            current in 0u64..1_000_000,
            offset in 0i64..60_000,
        ) {
            let w = window(TimeUnit::Minute, 1, 0);
            let at = w.start + offset;
            let e = sliding_estimate(previous, current, w, at);
            prop_assert!(e >= current as f64 && e <= (current + previous) as f64);
            // At the window's start the whole previous window counts; it fades linearly.
            prop_assert_eq!(sliding_estimate(previous, current, w, w.start), (previous + current) as f64);
            let later = sliding_estimate(previous, current, w, (at + 1).min(w.end));
            prop_assert!(later <= e);
        }
    }
}
