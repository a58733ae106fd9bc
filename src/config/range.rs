//! The allowed range of every duration, size and count a user can give, in the config file
//! or on the command line, in one table; and the range-checked types that parse them.
//!
//! A value outside its range is refused where it is read: in the config file that is a
//! configuration error naming the file, line and key (exit 78, via `config::parse`), on the
//! command line a usage error naming the flag (exit 64). So nothing downstream ever sees a
//! duration that overflows `Instant + Duration` or `as i64`, nor a zero where zero makes no
//! sense. The bounds are documented in the man page (`cmd::generate`) and the README.
//!
//! | value | range | why |
//! |---|---|---|
//! | `timeout` | 1s ..= 1h | below a second a slow network fails spuriously; above an hour a dead server hangs a cron job for good |
//! | `mda_timeout` | 1s ..= 24h | a delivery command may be slow (spam filters), but not slower than a day |
//! | `delete_after` | 0 ..= 36500d | 0 deletes at once; 100 years is "never" without overflowing the state's clock |
//! | `max_size`, `--max-size` | 1 ..= 1024G | 0 would leave every message behind; 1 TiB is beyond any mailbox |
//! | `port`, `--port` | 1 ..= 65535 | port 0 cannot be connected to |
//! | `--daemon` | 1s ..= 30d | polling faster than a second hammers the server; a month is the longest sane poll |
//! | `--limit` | 1 ..= 4294967295 | 0 would fetch nothing; a POP3 message number is 32 bits |
//! | `--jobs` | 1 ..= 64 | each job is one thread with one connection |

use std::fmt;
use std::marker::PhantomData;
use std::ops::RangeInclusive;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

use super::file::{parse_duration, parse_size};

/// Milliseconds in a second, a minute, an hour and a day: the units of the duration bounds.
pub const SECOND_MS: u64 = 1_000;
pub const MINUTE_MS: u64 = 60 * SECOND_MS;
pub const HOUR_MS: u64 = 60 * MINUTE_MS;
pub const DAY_MS: u64 = 24 * HOUR_MS;

/// `timeout`: connect, TLS handshake and every read and write.
pub type Timeout = DurationValue<SECOND_MS, HOUR_MS>;
/// `mda_timeout`: one run of the delivery command.
pub type MdaTimeout = DurationValue<SECOND_MS, { 24 * HOUR_MS }>;
/// `delete_after`: 0 deletes what was fetched at once, 36500d (100 years) is the longest.
pub type DeleteAfter = DurationValue<0, { 36_500 * DAY_MS }>;
/// `password.timeout`: how long `password.command` may take (a pinentry waits for a person).
pub type PasswordTimeout = DurationValue<SECOND_MS, HOUR_MS>;
/// `keepalive`: how often a slow delivery sends the POP3 server a NOOP.
pub type Keepalive = DurationValue<SECOND_MS, HOUR_MS>;
/// `--daemon INTERVAL`.
pub type DaemonInterval = DurationValue<SECOND_MS, { 30 * DAY_MS }>;

/// `max_size` and `--max-size`: 1 byte to 1 TiB.
pub type MaxSize = SizeValue<1, { 1 << 40 }>;

/// `port` and `--port`.
pub const PORT: RangeInclusive<u16> = 1..=u16::MAX;
/// `--limit N`: a message number is a nonzero `u32` (RFC 1939 numbers from 1).
pub const LIMIT: RangeInclusive<u64> = 1..=u32::MAX as u64;
/// `--jobs N`.
pub const JOBS: RangeInclusive<u64> = 1..=64;

/// A duration the user wrote (`500ms`, `30s`, `5m`, `2h`, `1d`), within `MIN_MS..=MAX_MS`
/// milliseconds. The bounds are part of the type, so every key states its range where it is
/// declared (`config::file`) and cannot forget it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationValue<const MIN_MS: u64, const MAX_MS: u64>(pub Duration);

impl<const MIN_MS: u64, const MAX_MS: u64> DurationValue<MIN_MS, MAX_MS> {
    /// The shortest allowed.
    pub const MIN: Duration = Duration::from_millis(MIN_MS);
    /// The longest allowed.
    pub const MAX: Duration = Duration::from_millis(MAX_MS);

    /// Parse and range-check `s`; the error says what is wrong and what is allowed.
    pub fn parse(s: &str) -> Result<Self, String> {
        let d = parse_duration(s).ok_or_else(|| {
            format!(
                "invalid duration {s:?}: write a number and a unit, e.g. \"30s\", \"5m\", \"1h\""
            )
        })?;
        if (Self::MIN..=Self::MAX).contains(&d) {
            Ok(DurationValue(d))
        } else {
            Err(format!(
                "{s:?} is out of range: it must be from {} to {}",
                show_duration(Self::MIN),
                show_duration(Self::MAX)
            ))
        }
    }

    /// The allowed range, as the man page shows it: `1s to 1h`.
    pub fn range_text() -> String {
        format!(
            "{} to {}",
            show_duration(Self::MIN),
            show_duration(Self::MAX)
        )
    }
}

impl<'de, const MIN_MS: u64, const MAX_MS: u64> Deserialize<'de> for DurationValue<MIN_MS, MAX_MS> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(de::Error::custom)
    }
}

/// A size the user wrote (`25M`, `500k`, `1G`, or a number of bytes), within `MIN..=MAX`
/// bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeValue<const MIN: u64, const MAX: u64>(pub u64);

impl<const MIN: u64, const MAX: u64> SizeValue<MIN, MAX> {
    /// Parse and range-check `s`; the error says what is wrong and what is allowed.
    pub fn parse(s: &str) -> Result<Self, String> {
        let n = parse_size(s).ok_or_else(|| {
            format!("invalid size {s:?}: write a number with an optional unit k, M or G")
        })?;
        Self::check(n, s)
    }

    fn check(n: u64, written: &str) -> Result<Self, String> {
        if (MIN..=MAX).contains(&n) {
            Ok(SizeValue(n))
        } else {
            Err(format!(
                "{written} is out of range: it must be from {}",
                Self::range_text()
            ))
        }
    }

    /// The allowed range, as the man page shows it: `1 to 1024G`.
    pub fn range_text() -> String {
        format!("{} to {}", show_size(MIN), show_size(MAX))
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for SizeValue<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MIN: u64, const MAX: u64>(PhantomData<SizeValue<MIN, MAX>>);
        impl<const MIN: u64, const MAX: u64> Visitor<'_> for V<MIN, MAX> {
            type Value = SizeValue<MIN, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"25M\", \"500k\" or a number of bytes")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                // A negative number is below every range; u64 holds every other i64.
                let n = u64::try_from(v).unwrap_or(0);
                SizeValue::check(n, &v.to_string()).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                SizeValue::check(v, &v.to_string()).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                SizeValue::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// `port = N` in the config: 1 to 65535.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortValue(pub u16);

impl<'de> Deserialize<'de> for PortValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = i64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a port number from 1 to 65535")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
                Ok(v)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
                Err(E::custom(format!(
                    "a port is a number, not a string: write port = {} (without quotes)",
                    v.trim()
                )))
            }
        }
        let n = d.deserialize_any(V)?;
        u16::try_from(n)
            .ok()
            .filter(|p| PORT.contains(p))
            .map(PortValue)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "{n} is out of range: it must be from {} to {}",
                    PORT.start(),
                    PORT.end()
                ))
            })
    }
}

/// A duration in the largest unit that shows it exactly (days only from two days on, so
/// that a day reads `24h`): `1h`, `36500d`, `1500ms`.
pub fn show_duration(d: Duration) -> String {
    let ms = d.as_millis();
    let days = u128::from(DAY_MS);
    if ms >= 2 * days && ms.is_multiple_of(days) {
        return format!("{}d", ms / days);
    }
    for (unit, name) in [(HOUR_MS, "h"), (MINUTE_MS, "m"), (SECOND_MS, "s")] {
        let unit = u128::from(unit);
        if ms >= unit && ms.is_multiple_of(unit) {
            return format!("{}{name}", ms / unit);
        }
    }
    if ms == 0 {
        "0".to_owned()
    } else {
        format!("{ms}ms")
    }
}

/// A size in the largest unit (G, M, k) that shows it exactly: `25M`, `1024G`, `1`.
pub fn show_size(n: u64) -> String {
    for (shift, name) in [(30, "G"), (20, "M"), (10, "k")] {
        let unit = 1u64 << shift;
        if n >= unit && n.is_multiple_of(unit) {
            return format!("{}{name}", n / unit);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DEFAULT_MDA_TIMEOUT, DEFAULT_TIMEOUT};

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn timeout_accepts_its_bounds_and_refuses_beyond() {
        assert_eq!(Timeout::parse("1s").unwrap().0, secs(1));
        assert_eq!(Timeout::parse("1000ms").unwrap().0, secs(1));
        assert_eq!(Timeout::parse("1h").unwrap().0, secs(3600));
        assert_eq!(Timeout::parse("3600s").unwrap().0, secs(3600));
        for bad in ["0s", "999ms", "3601s", "2h", "18446744073709551615s"] {
            let e = Timeout::parse(bad).unwrap_err();
            assert!(
                e.contains("out of range") && e.contains("1s to 1h"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn mda_timeout_is_one_second_to_a_day() {
        assert_eq!(MdaTimeout::parse("24h").unwrap().0, secs(86400));
        assert_eq!(MdaTimeout::parse("1s").unwrap().0, secs(1));
        for bad in ["86401s", "0s", "2d"] {
            let e = MdaTimeout::parse(bad).unwrap_err();
            assert!(e.contains("1s to 24h"), "{bad}: {e}");
        }
    }

    #[test]
    fn delete_after_allows_zero_and_a_century_and_nothing_beyond() {
        assert_eq!(DeleteAfter::parse("0s").unwrap().0, Duration::ZERO);
        assert_eq!(
            DeleteAfter::parse("36500d").unwrap().0,
            secs(36_500 * 86400)
        );
        for bad in [
            "36501d",
            "3153600001s",
            "10000000000000000000s",
            "99999999999999999999d",
        ] {
            let e = DeleteAfter::parse(bad).unwrap_err();
            assert!(e.contains("0 to 36500d"), "{bad}: {e}");
        }
        // The longest allowed still fits the state file's signed seconds.
        assert!(i64::try_from(DeleteAfter::MAX.as_secs()).is_ok());
    }

    #[test]
    fn daemon_interval_is_one_second_to_thirty_days() {
        assert_eq!(DaemonInterval::parse("30d").unwrap().0, secs(30 * 86400));
        assert_eq!(DaemonInterval::parse("1s").unwrap().0, secs(1));
        for bad in ["0s", "500ms", "31d", "2592001s"] {
            let e = DaemonInterval::parse(bad).unwrap_err();
            assert!(e.contains("1s to 30d"), "{bad}: {e}");
        }
    }

    #[test]
    fn malformed_durations_are_not_range_errors() {
        let e = Timeout::parse("soon").unwrap_err();
        assert!(e.contains("invalid duration"), "{e}");
    }

    #[test]
    fn max_size_is_one_byte_to_a_tebibyte() {
        assert_eq!(MaxSize::parse("1").unwrap().0, 1);
        assert_eq!(MaxSize::parse("1024G").unwrap().0, 1 << 40);
        for bad in ["0", "0k", "1025G", "1099511627777", "18446744073709551616"] {
            let e = MaxSize::parse(bad).unwrap_err();
            assert!(e.contains("1 to 1024G"), "{bad}: {e}");
        }
        assert!(MaxSize::parse("12T").unwrap_err().contains("invalid size"));
    }

    #[test]
    fn defaults_are_inside_their_ranges() {
        assert!((Timeout::MIN..=Timeout::MAX).contains(&DEFAULT_TIMEOUT));
        assert!((MdaTimeout::MIN..=MdaTimeout::MAX).contains(&DEFAULT_MDA_TIMEOUT));
    }

    #[test]
    fn bounds_are_shown_in_units_the_parser_reads_back() {
        assert_eq!(show_duration(secs(86400)), "24h");
        assert_eq!(show_duration(secs(2 * 86400)), "2d");
        assert_eq!(show_duration(Duration::from_millis(1500)), "1500ms");
        assert_eq!(show_duration(Duration::ZERO), "0");
        assert_eq!(show_size(1 << 40), "1024G");
        assert_eq!(show_size(25 << 20), "25M");
        assert_eq!(show_size(1), "1");
        for d in [secs(1), secs(3600), secs(86400), secs(36_500 * 86400)] {
            assert_eq!(parse_duration(&show_duration(d)), Some(d));
        }
    }
}
