//! Wall-clock times written for people and log readers, in UTC: the
//! listing's `2026-12-06 14:03`, RFC 3339 for JSON, and the
//! `[06/Dec/2026:14:03:59 +0000]` of the combined log format.
//!
//! HTTP dates (`Last-Modified`) come from `httpdate`; these three formats
//! need only the civil date of a Unix time, computed here (Howard
//! Hinnant's `civil_from_days`) rather than with a calendar crate.

use std::time::{SystemTime, UNIX_EPOCH};

/// English month abbreviations, as the combined log format writes them.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A UTC time broken into its civil fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// The year (proleptic Gregorian).
    pub year: i64,
    /// 1 to 12.
    pub month: u32,
    /// 1 to 31.
    pub day: u32,
    /// 0 to 23.
    pub hour: u32,
    /// 0 to 59.
    pub minute: u32,
    /// 0 to 59.
    pub second: u32,
    /// 0 to 999.
    pub millis: u32,
}

impl Civil {
    /// The civil UTC fields of `time`; times before 1970 are clamped to
    /// the epoch (file times and log times are never that old).
    pub fn of(time: SystemTime) -> Civil {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        let secs = since.as_secs();
        let days = (secs / 86_400) as i64;
        let rest = secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: (rest / 3600) as u32,
            minute: (rest / 60 % 60) as u32,
            second: (rest % 60) as u32,
            millis: since.subsec_millis(),
        }
    }

    /// `2026-12-06 14:03`: the listing's modification column.
    pub fn minutes(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute
        )
    }

    /// `2026-12-06T14:03:59Z` (RFC 3339, whole seconds): file times in
    /// the JSON listing.
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// `2026-12-06T14:03:59.123Z` (RFC 3339 with milliseconds): JSON log
    /// lines.
    pub fn rfc3339_millis(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }

    /// `06/Dec/2026:14:03:59 +0000`: the combined log format's time
    /// (without its brackets).
    pub fn common_log(&self) -> String {
        let month = MONTHS[(self.month as usize).clamp(1, 12) - 1];
        format!(
            "{:02}/{month}/{:04}:{:02}:{:02}:{:02} +0000",
            self.day, self.year, self.hour, self.minute, self.second
        )
    }
}

/// Year, month (1-12) and day (1-31) of the day `days` after 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> Civil {
        Civil::of(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
    }

    #[test]
    fn formats_agree_with_http_dates() {
        // Checked against httpdate, which has its own calendar code.
        for secs in [0, 951_782_400, 1_700_000_000, 1_798_761_599, 4_102_444_800] {
            let civil = at(secs, 0);
            let http = httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs));
            let expected_day = format!(
                "{:02} {} {:04} {:02}:{:02}:{:02}",
                civil.day,
                MONTHS[civil.month as usize - 1],
                civil.year,
                civil.hour,
                civil.minute,
                civil.second
            );
            assert!(http.contains(&expected_day), "{http} vs {expected_day}");
        }
    }

    #[test]
    fn each_format() {
        let civil = at(1_700_000_000, 42);
        assert_eq!(civil.minutes(), "2023-11-14 22:13");
        assert_eq!(civil.rfc3339(), "2023-11-14T22:13:20Z");
        assert_eq!(civil.rfc3339_millis(), "2023-11-14T22:13:20.042Z");
        assert_eq!(civil.common_log(), "14/Nov/2023:22:13:20 +0000");
        assert_eq!(at(951_782_400, 0).rfc3339(), "2000-02-29T00:00:00Z");
    }
}
