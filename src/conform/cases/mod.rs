//! The case catalogue, one module per PROTOCOL.md area. Every case has a
//! stable id `area::name`, the section it tests, a level, the requirement in
//! one sentence and the outcome it expects.

use super::case::Case;

pub mod craft;

mod breaking;
mod contention;
mod golden;
mod hostile;
mod hosts;
mod layout;
mod publication;
mod release;
mod staleness;

/// Every case, in report order.
pub fn catalogue() -> Vec<Case> {
    let mut all = Vec::new();
    all.extend(layout::cases());
    all.extend(golden::cases());
    all.extend(hosts::cases());
    all.extend(staleness::cases());
    all.extend(breaking::cases());
    all.extend(publication::cases());
    all.extend(release::cases());
    all.extend(hostile::cases());
    all.extend(contention::cases());
    all
}
