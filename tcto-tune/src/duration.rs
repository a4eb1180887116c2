//! Human durations on the command line: `500ms`, `3s`, `1m`, `2h`.
//!
//! Windows and timeouts are what a user types during an incident; a bare
//! number is refused because "60" could mean seconds or milliseconds.

use std::time::Duration;

/// Why a duration was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration `{text}`: {why}{} (examples: 500ms, 3s, 1m, 2h)", suggestion.as_ref().map(|s| format!(", e.g. `{s}`")).unwrap_or_default())]
pub struct DurationError {
    /// The rejected text (shortened).
    pub text: String,
    /// What is wrong.
    pub why: &'static str,
    /// The same duration written as it is read, when there is one.
    pub suggestion: Option<String>,
}

/// Parse `N` followed by a unit: `ms`, `s`, `m` or `h`. `N` is a whole
/// number; at most 24 hours.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let err = |why| DurationError {
        text: text.chars().take(40).collect(),
        why,
        suggestion: None,
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| err("missing unit"))?;
    let (num, unit) = text.split_at(split);
    if num.is_empty() {
        return Err(err("expected a whole number before the unit"));
    }
    if unit.starts_with('.') || unit.starts_with(',') {
        return Err(fraction(text, num, &unit[1..]));
    }
    let n: u64 = num.parse().map_err(|_| err("number too large"))?;
    let ms_per = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(err("unknown unit")),
    };
    let ms = n
        .checked_mul(ms_per)
        .ok_or_else(|| err("number too large"))?;
    if ms > 24 * 3_600_000 {
        return Err(err("longer than 24h"));
    }
    Ok(Duration::from_millis(ms))
}

/// `1.5s`: fractions are not read (a whole number of a smaller unit
/// says the same without rounding); name that number when there is one.
fn fraction(text: &str, whole: &str, rest: &str) -> DurationError {
    let digits = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (frac, unit) = rest.split_at(digits);
    let ms_per: u64 = match unit {
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => 0,
    };
    let exact = (|| {
        let scale = 10u64.checked_pow(u32::try_from(frac.len()).ok()?)?;
        let n: u64 = format!("{whole}{frac}").parse().ok()?;
        let ms = n.checked_mul(ms_per)?;
        (ms_per != 0 && ms % scale == 0).then(|| format_duration(Duration::from_millis(ms / scale)))
    })();
    DurationError {
        text: text.chars().take(40).collect(),
        why: "fractions are not supported: use a whole number of a smaller unit",
        suggestion: exact,
    }
}

/// Render a duration the way `parse_duration` reads it, choosing the
/// largest exact unit (`1500ms`, `3s`, `2m`).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        "0s".into()
    } else if ms % 3_600_000 == 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms % 60_000 == 0 {
        format!("{}m", ms / 60_000)
    } else if ms % 1000 == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fraction_is_refused_with_the_whole_number_to_write() {
        let e = parse_duration("1.5s").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid duration `1.5s`: fractions are not supported: use a whole number of a smaller unit, e.g. `1500ms` (examples: 500ms, 3s, 1m, 2h)"
        );
        assert_eq!(
            parse_duration("0.25m").unwrap_err().suggestion.as_deref(),
            Some("15s")
        );
        assert_eq!(parse_duration("1.0001s").unwrap_err().suggestion, None);
        assert_eq!(parse_duration("1.5ms").unwrap_err().suggestion, None);
    }

    #[test]
    fn units() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
    }

    #[test]
    fn rejects_ambiguous_and_huge() {
        for bad in [
            "60",
            "",
            "s",
            "1.5s",
            "-1s",
            "3 s",
            "3sec",
            "25h",
            "99999999999999999999s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
        let e = parse_duration("60").unwrap_err().to_string();
        assert!(e.contains("missing unit") && e.contains("500ms"), "{e}");
    }

    #[test]
    fn round_trip() {
        for t in ["500ms", "3s", "2m", "1h", "1500ms"] {
            assert_eq!(format_duration(parse_duration(t).unwrap()), t);
        }
    }
}
