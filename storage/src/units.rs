//! The one parser for durations and sizes in configuration values, shared by the engine's
//! configuration (`ember_engine::config`) and the storage layer's ([`crate::config`]).
//!
//! - Durations: a number with an optional unit, `ms`, `s`, `m` or `h`; a bare number is
//!   milliseconds (`0`, `250`, `100ms`, `1.5s`, `2m`, `1h`). Negative, NaN, infinite and values
//!   above [`MAX_DURATION`] are errors, never a panic or a saturated value.
//! - Sizes: a whole number with an optional binary multiple, `k`, `m`, `g` or `t`, and an optional
//!   trailing `b` (`1048576`, `64k`, `8MB`, `2g`); overflowing `u64` is an error.

use std::time::Duration;

/// The longest duration a configuration value may give: 100 years. Anything longer is almost
/// certainly a mistake, and `Instant + duration` panics on overflow far below `u64::MAX` seconds.
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Why a duration or size does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Not a number with a known unit.
    #[error("`{value}` is not a {what} (expected {expected})")]
    Malformed {
        /// The value as written.
        value: String,
        /// `duration` or `size`.
        what: &'static str,
        /// Examples of accepted values.
        expected: &'static str,
    },
    /// A negative (or NaN) duration.
    #[error("`{value}` is negative or not a number; durations must be >= 0")]
    Negative {
        /// The value as written.
        value: String,
    },
    /// A value too large to represent (or above [`MAX_DURATION`]).
    #[error("`{value}` is too large (at most {max})")]
    TooLarge {
        /// The value as written.
        value: String,
        /// The largest accepted value, in words.
        max: &'static str,
    },
}

/// Examples of accepted durations, for error messages.
pub const DURATION_EXAMPLES: &str =
    "a duration such as `0`, `250` (ms), `100ms`, `3s`, `2m` or `1h`";
/// Examples of accepted sizes, for error messages.
pub const SIZE_EXAMPLES: &str = "a size such as `1048576`, `64k`, `256m` or `2g`";

/// Parses a duration (see the module docs).
pub fn parse_duration(value: &str) -> Result<Duration, UnitError> {
    let s = value.trim();
    let malformed = || UnitError::Malformed {
        value: value.to_string(),
        what: "duration",
        expected: DURATION_EXAMPLES,
    };
    let (num, unit_ms): (&str, u64) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1_000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        (s, 1)
    };
    let num = num.trim();
    if num.is_empty() {
        return Err(malformed());
    }
    let too_large = || UnitError::TooLarge {
        value: value.to_string(),
        max: "100 years",
    };
    // Whole numbers exactly; fractions through f64 (nanosecond precision is plenty).
    let d = if let Ok(n) = num.parse::<u64>() {
        let ms = n.checked_mul(unit_ms).ok_or_else(too_large)?;
        Duration::from_millis(ms)
    } else {
        if num.starts_with('-') && num.parse::<i128>().is_ok() {
            return Err(UnitError::Negative {
                value: value.to_string(),
            });
        }
        // Only plain decimal notation: `inf`, `nan` and friends are not durations.
        if !num
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))
        {
            return Err(malformed());
        }
        let n: f64 = num.parse().map_err(|_| malformed())?;
        if n.is_nan() || n < 0.0 {
            return Err(UnitError::Negative {
                value: value.to_string(),
            });
        }
        let secs = n * unit_ms as f64 / 1000.0;
        Duration::try_from_secs_f64(secs).map_err(|_| too_large())?
    };
    if d > MAX_DURATION {
        return Err(too_large());
    }
    Ok(d)
}

/// Parses a size in bytes (see the module docs).
pub fn parse_size(value: &str) -> Result<u64, UnitError> {
    let lower = value.trim().to_ascii_lowercase();
    let s = lower.strip_suffix('b').unwrap_or(&lower);
    let malformed = || UnitError::Malformed {
        value: value.to_string(),
        what: "size",
        expected: SIZE_EXAMPLES,
    };
    let (num, mult) = match s.chars().last().ok_or_else(malformed)? {
        'k' => (&s[..s.len() - 1], 1u64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        't' => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let num = num.trim();
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit()) {
        return Err(malformed());
    }
    let too_large = || UnitError::TooLarge {
        value: value.to_string(),
        max: "2^64 - 1 bytes",
    };
    num.parse::<u64>()
        .map_err(|_| too_large())?
        .checked_mul(mult)
        .ok_or_else(too_large)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 100ms "), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1e3ms"), Ok(Duration::from_secs(1)));
    }

    #[test]
    fn extreme_durations_are_errors_not_panics() {
        for v in [
            "1e30s",
            "1e300",
            "18446744073709551615s",
            "1000000h",
            "1e19",
        ] {
            assert!(
                matches!(parse_duration(v), Err(UnitError::TooLarge { .. })),
                "{v}: {:?}",
                parse_duration(v)
            );
        }
        for v in ["-1s", "-0.5", "-3", "NaN", "nans"] {
            assert!(parse_duration(v).is_err(), "{v}");
        }
        assert!(matches!(
            parse_duration("-1s"),
            Err(UnitError::Negative { .. })
        ));
        for v in ["", "s", "soon", "inf", "infs", "1x", "3 days", "0x10"] {
            assert!(
                matches!(parse_duration(v), Err(UnitError::Malformed { .. })),
                "{v}: {:?}",
                parse_duration(v)
            );
        }
        let msg = parse_duration("1e30s").unwrap_err().to_string();
        assert!(msg.contains("1e30s") && msg.contains("100 years"), "{msg}");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("64k"), Ok(65536));
        assert_eq!(parse_size("8MB"), Ok(8 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("1t"), Ok(1 << 40));
        assert!(matches!(parse_size("-1"), Err(UnitError::Malformed { .. })));
        assert!(matches!(
            parse_size("lots"),
            Err(UnitError::Malformed { .. })
        ));
        assert!(matches!(parse_size(""), Err(UnitError::Malformed { .. })));
        assert!(matches!(
            parse_size("16777216t"),
            Err(UnitError::TooLarge { .. })
        ));
        assert!(matches!(
            parse_size("99999999999999999999"),
            Err(UnitError::TooLarge { .. })
        ));
    }
}
