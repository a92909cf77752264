//! Multi-process race tests: writer processes contend for one lock while the
//! harness injects faults, and a checker proves mutual exclusion from the
//! recorded history (`rvlf stress`).
//!
//! - [`scenario`]: the scenarios, the algorithm variants and a run's
//!   [`Config`]; [`engine`]: the harness's event loop, fault injection,
//!   restarts, and the run's [`engine::Outcome`].
//! - [`writer`]: what a writer process does, with the library in-process or
//!   through an adapter; [`spawn`]: forking it, on a simulated host if asked.
//! - [`history`] and [`ledger`]: the events, as JSON lines and as the
//!   per-writer binary files written during a run.
//! - [`check`]: the checker; [`report`]: what is printed; [`progress`]: the
//!   progress lines while a run goes on; [`faults`]: the seeded schedule of
//!   faults; [`picture`]: the history drawn as SVG and HTML.
//! - [`files`]: how the harness makes and reopens its files in the scratch
//!   directory, which adapters can write.
//!
//! Reference writers are forked from the harness, which never starts a
//! thread (signals are taken with `sigtimedwait`), so every fork — also the
//! restart of a killed writer in the middle of a run — happens in a
//! single-threaded process. An adapter writer is a forked process too; it
//! starts its adapter and drives it.

pub mod check;
pub mod cli;
pub mod engine;
pub mod faults;
pub mod files;
pub mod history;
pub mod ledger;
pub mod picture;
pub mod progress;
pub mod report;
pub mod scenario;
pub mod shared;
pub mod spawn;
pub mod sys;
pub mod writer;

pub use cli::{run_cli, StressArgs};
pub use engine::{run, Config, Outcome, Progress, Scenario, Variant};
