//! Cases: layout.

use crate::conform::case::Case;

pub fn cases() -> Vec<Case> {
    Vec::new()
}
