//! Printing for the commands: a closed stdout (a pipe whose reader has gone)
//! is not an error worth dying for; a dying `rvlf acquire` would leave its lock.

/// Print a line on stdout. A closed stdout (a pipe whose reader has gone) is
/// not an error worth dying for: a dying `rvlf acquire` would leave its lock.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Print without a newline, like [`say!`].
#[macro_export]
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}
