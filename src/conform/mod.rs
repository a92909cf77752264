//! The conformance suite: drive any implementation of RVLF v1 through an
//! adapter process (conformance/ADAPTER.md) and judge it case by case.
//!
//! - [`wire`]: the adapter protocol's lines; [`client`]: the harness side of
//!   it; [`serve`]: the reference's own adapter, as any variant of
//!   `crate::variant` (the reference with a named defect).
//! - [`case`]: what a case is and may do; [`cases`]: the catalogue;
//!   [`runner`]: selection, scheduling, deadlines, verdicts; [`report`]:
//!   the human table, JSON and JUnit; [`scratch`]: the run's scratch
//!   directories and the file operations used where an adapter can write.
//! - [`matrix`]: several runs' JSON reports side by side (`rvlf report merge`).

pub mod case;
pub mod cases;
pub mod cli;
pub mod client;
pub mod matrix;
pub mod report;
pub mod runner;
pub mod scratch;
pub mod serve;
pub mod wire;
