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
}
