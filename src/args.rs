//! Parsing of command-line values that several commands share.

use std::time::Duration;

/// Whether a flag given in seconds may be 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    /// 0 means something: `rvlf acquire --timeout 0` tries once, `--hold 0`
    /// releases at once.
    Allowed,
    /// The flag bounds something that takes time (a run, a case, a request):
    /// 0 would end it before it starts.
    Refused,
}

/// `value` seconds of the flag `--flag` as a [`Duration`]. Negative, NaN,
/// infinite and too large values are refused, and so is 0 unless `zero`
/// allows it; the error names the flag and the value.
pub fn seconds(value: f64, flag: &str, zero: Zero) -> Result<Duration, String> {
    let bound = match zero {
        Zero::Allowed => ">= 0",
        Zero::Refused => "> 0",
    };
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| zero == Zero::Allowed || !d.is_zero())
        .ok_or_else(|| format!("--{flag} must be a number of seconds {bound}, not {value}"))
}

/// The units [`duration`] knows, largest first, with their length in ns.
const UNITS: [(&str, u128); 4] = [
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
];

/// The duration `text` gives the flag `--flag`: plain seconds (`20`, `0.5`)
/// or numbers with units, largest first, each unit at most once: `500ms`,
/// `20s`, `5m`, `1h`, `1h30m`, `1.5s`. 0 only if `zero` allows it. Anything
/// else is refused with an error naming the flag and the text; made to be a
/// clap `value_parser`.
pub fn duration(text: &str, flag: &str, zero: Zero) -> Result<Duration, String> {
    let bound = match zero {
        Zero::Allowed => "",
        Zero::Refused => " greater than 0",
    };
    let refuse = || {
        format!(
            "--{flag} must be a duration{bound} such as 20s, 5m, 1h30m, 500ms \
             or plain seconds, not {text:?}"
        )
    };
    let nanos = plain_seconds(text)
        .or_else(|| with_units(text))
        .ok_or_else(refuse)?;
    if nanos == 0 && zero == Zero::Refused {
        return Err(refuse());
    }
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| refuse())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

/// `text` as plain seconds (digits and at most one point), in ns.
fn plain_seconds(text: &str) -> Option<u128> {
    number(text, 1_000_000_000)
}

/// A number of `unit_ns` nanoseconds written in decimal (`12`, `1.5`, `.5`,
/// no sign, no exponent), in whole ns; `None` if it is not one or too large.
fn number(text: &str, unit_ns: u128) -> Option<u128> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(unit_ns)?;
    // Digits past the nanosecond add nothing: at most 16 of them count
    // (an hour has 3.6e12 ns).
    let mut scale = unit_ns;
    for b in fraction.bytes().take(16) {
        scale /= 10;
        nanos = nanos.checked_add(u128::from(b - b'0') * scale)?;
    }
    Some(nanos)
}

/// `text` as numbers with units, largest unit first (`1h30m`), in ns.
fn with_units(text: &str) -> Option<u128> {
    let mut rest = text;
    let mut total: u128 = 0;
    let mut smallest_used = None;
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (value, tail) = rest.split_at(end);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let rank = UNITS.iter().position(|(name, _)| *name == unit)?;
        if smallest_used.is_some_and(|used| rank <= used) {
            return None;
        }
        smallest_used = Some(rank);
        total = total.checked_add(number(value, UNITS[rank].1)?)?;
        rest = tail;
    }
    smallest_used.map(|_| total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_refuses_zero_only_where_asked() {
        assert_eq!(seconds(0.0, "hold", Zero::Allowed), Ok(Duration::ZERO));
        assert_eq!(
            seconds(1.5, "timeout", Zero::Refused),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(
            seconds(0.0, "timeout", Zero::Refused),
            Err("--timeout must be a number of seconds > 0, not 0".into())
        );
        assert_eq!(
            seconds(-1.0, "hold", Zero::Allowed),
            Err("--hold must be a number of seconds >= 0, not -1".into())
        );
        assert!(seconds(f64::NAN, "timeout", Zero::Allowed).is_err());
        assert!(seconds(f64::INFINITY, "timeout", Zero::Refused).is_err());
    }

    #[test]
    fn durations_take_plain_seconds_and_units() {
        let ok = |text| duration(text, "duration", Zero::Refused);
        assert_eq!(ok("20"), Ok(Duration::from_secs(20)));
        assert_eq!(ok("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(ok("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(ok("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(ok("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(ok("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(ok("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(ok("2m15s250ms"), Ok(Duration::from_millis(135_250)));
        assert_eq!(ok("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(ok("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(
            duration("0", "progress-every", Zero::Allowed),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            duration("0s", "progress-every", Zero::Allowed),
            Ok(Duration::ZERO)
        );
    }

    #[test]
    fn anything_else_is_refused_naming_the_flag() {
        for bad in [
            "",
            "s",
            "20x",
            "20 s",
            "-5s",
            "1e3",
            "inf",
            "NaN",
            "1.2.3s",
            "30m1h",
            "5m5m",
            "1h 30m",
            "20S",
            "0",
            "0s",
            "0h0m",
            "99999999999999999999999h",
        ] {
            let e = duration(bad, "duration", Zero::Refused).expect_err(bad);
            assert!(e.starts_with("--duration must be a duration"), "{e}");
            assert!(e.ends_with(&format!("not {bad:?}")), "{e}");
        }
        assert_eq!(
            duration("soon", "timeout", Zero::Refused),
            Err(
                "--timeout must be a duration greater than 0 such as 20s, 5m, 1h30m, \
                 500ms or plain seconds, not \"soon\""
                    .into()
            )
        );
        assert!(duration("-1", "progress-every", Zero::Allowed).is_err());
    }
}
