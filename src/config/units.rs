//! Human units in the policy file: durations (`500ms`, `30s`, `10m`) and sizes (`16KiB`).
//!
//! Both parsers are strict on purpose: a bare number is refused for durations (is `30` seconds
//! or milliseconds?) and decimal units such as `KB` are refused for sizes, because the
//! difference between 1000 and 1024 matters for limits and nobody should have to guess.

use std::time::Duration;

/// Parses `500ms`, `30s`, `10m`, `1h`, `1d` (one integer and one unit, no spaces inside).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let explain = || {
        format!("{text:?} is not a duration; write a whole number with a unit ms, s, m, h or d (e.g. 500ms, 30s, 10m)")
    };
    if digits.is_empty() {
        return Err(explain());
    }
    let amount: u64 = digits.parse().map_err(|_| explain())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(explain()),
    };
    amount
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long a duration"))
}

/// Parses `512`, `512B`, `16KiB`, `1MiB`, `2GiB` into a number of bytes.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let explain = || {
        format!(
            "{text:?} is not a size; write a whole number with an optional unit B, KiB, MiB or GiB (e.g. 16KiB, 1MiB)"
        )
    };
    if digits.is_empty() {
        return Err(explain());
    }
    let amount: u64 = digits.parse().map_err(|_| explain())?;
    let multiplier: u64 = match unit {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return Err(explain()),
    };
    amount.checked_mul(multiplier).ok_or_else(|| format!("{text:?} is too large a size"))
}

/// Formats a duration the way the policy file writes it, for messages and `--print`.
pub fn format_duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if !millis.is_multiple_of(1_000) {
        format!("{millis}ms")
    } else if !millis.is_multiple_of(60_000) {
        format!("{}s", millis / 1_000)
    } else {
        format!("{}m", millis / 60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_every_unit() {
        let cases =
            [("500ms", 500), ("30s", 30_000), ("10m", 600_000), ("1h", 3_600_000), ("2d", 172_800_000), ("0s", 0)];
        for (text, millis) in cases {
            assert_eq!(parse_duration(text), Ok(Duration::from_millis(millis)), "{text}");
        }
    }

    #[test]
    fn durations_without_unit_or_with_junk_are_refused() {
        for text in ["30", "s", "", "1.5s", "10 s", "-1s", "5sec", "99999999999999999999s"] {
            let error = parse_duration(text).expect_err(text);
            assert!(error.contains(text.trim()), "{error}");
        }
    }

    #[test]
    fn sizes_use_binary_units_only() {
        assert_eq!(parse_size("16KiB"), Ok(16 * 1024));
        assert_eq!(parse_size("1MiB"), Ok(1024 * 1024));
        assert_eq!(parse_size("2GiB"), Ok(2 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("512B"), Ok(512));
        for text in ["16KB", "1mb", "MiB", "1.5MiB", "-1"] {
            assert!(parse_size(text).is_err(), "{text}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["500ms", "30s", "10m"] {
            let duration = parse_duration(text).expect("valid");
            assert_eq!(format_duration(duration), text);
        }
    }
}
