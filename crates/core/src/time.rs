//! Time on the wire is epoch milliseconds. WASI has no time-zone database, so local dates are
//! computed from a fixed UTC offset given in minutes (default UTC+8).

/// China Standard Time, the deployment default (no daylight saving there, so a fixed offset is
/// exact).
pub const DEFAULT_TZ_OFFSET_MINUTES: i32 = 8 * 60;

/// Below this a timestamp is taken as seconds: 10^12 ms is September 2001, and 10^12 s is
/// 33,000 years away, so the two readings never overlap for real dates.
const SECONDS_LIMIT: i64 = 1_000_000_000_000;

/// The wall clock, in epoch ms. Services take `now_ms` from their `Env` instead, so tests can
/// pin it; adapters call this once per request.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A client timestamp in ms, accepting seconds (10 digits) too.
pub fn normalize_epoch(v: i64) -> i64 {
    if v > 0 && v < SECONDS_LIMIT {
        v.saturating_mul(1000)
    } else {
        v
    }
}

/// The feed's `latest_time`: missing, unparsable, zero, negative or future all mean "now", so a
/// client with a wrong clock or a stale value still gets the newest videos.
pub fn latest_time(raw: Option<&str>, now_ms: i64) -> i64 {
    match raw
        .and_then(|s| s.trim().parse::<i64>().ok())
        .map(normalize_epoch)
    {
        Some(t) if t > 0 && t <= now_ms => t,
        _ => now_ms,
    }
}

/// `"MM-DD"` of an epoch-ms instant in the zone `offset_minutes` east of UTC.
pub fn format_mm_dd(epoch_ms: i64, offset_minutes: i32) -> String {
    let local_secs = epoch_ms
        .div_euclid(1000)
        .saturating_add(i64::from(offset_minutes) * 60);
    // Beyond the years `time` represents (±9999), the nearest one it does.
    let local = time::OffsetDateTime::from_unix_timestamp(local_secs).unwrap_or_else(|_| {
        let edge = if local_secs < 0 {
            time::PrimitiveDateTime::MIN
        } else {
            time::PrimitiveDateTime::MAX
        };
        edge.assume_utc()
    });
    format!("{:02}-{:02}", u8::from(local.month()), local.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z

    #[test]
    fn seconds_become_milliseconds() {
        assert_eq!(normalize_epoch(1_700_000_000), NOW);
        assert_eq!(normalize_epoch(NOW), NOW);
        assert_eq!(normalize_epoch(0), 0);
        assert_eq!(normalize_epoch(-5), -5);
    }

    #[test]
    fn bad_latest_time_means_now() {
        for raw in [
            None,
            Some(""),
            Some("0"),
            Some("-1"),
            Some("abc"),
            Some("1e12"),
            Some("99999999999999"),
        ] {
            assert_eq!(latest_time(raw, NOW), NOW, "{raw:?}");
        }
        assert_eq!(latest_time(Some("1600000000"), NOW), 1_600_000_000_000);
        assert_eq!(latest_time(Some("1600000000123"), NOW), 1_600_000_000_123);
        assert_eq!(latest_time(Some(&NOW.to_string()), NOW), NOW);
    }

    #[test]
    fn month_day_in_an_offset_zone() {
        // 22:13 UTC on Nov 14 is 06:13 on Nov 15 in UTC+8.
        assert_eq!(format_mm_dd(NOW, 0), "11-14");
        assert_eq!(format_mm_dd(NOW, DEFAULT_TZ_OFFSET_MINUTES), "11-15");
        assert_eq!(format_mm_dd(NOW, -600), "11-14");
        assert_eq!(format_mm_dd(0, 0), "01-01");
        assert_eq!(format_mm_dd(-1, 0), "12-31");
        // 2024-02-29T12:00:00Z, a leap day.
        assert_eq!(format_mm_dd(1_709_208_000_000, 480), "02-29");
        // 2000-03-01T00:00:00Z minus one ms is Feb 29 of a 400-year leap year.
        assert_eq!(format_mm_dd(951_868_800_000 - 1, 0), "02-29");
        // Instants past year ±9999 read as the last or first day `time` has, not a panic.
        assert_eq!(format_mm_dd(i64::MAX, 840), "12-31");
        assert_eq!(format_mm_dd(i64::MIN, -720), "01-01");
    }
}
