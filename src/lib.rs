//! rvlf: the harness that checks implementations of the RVF writer-lock
//! protocol (RVLF v1, see PROTOCOL.md), and the `rvlf` command.
//!
//! The lock itself is the `rvlf-lock` crate; this crate runs it and others:
//!
//! - [`conform`]: the conformance suite, which drives any implementation
//!   through an adapter process (conformance/ADAPTER.md);
//! - [`stress`]: forked writers racing for one lock, with faults, and a
//!   history checker;
//! - [`model`]: an exhaustive model check of the lock machine on [`sim`];
//! - [`golden`]: the golden lock files and their manifest;
//! - [`variant`]: the catalogue of deliberately broken variants of the
//!   reference, which all three use to prove that they catch defects.
//!
//! Its library API serves the `rvlf` command and this repository's tests; it
//! is not meant to be depended on.

mod output;

pub mod args;
pub mod cli;
pub mod conform;
pub mod flaws;
pub mod golden;
pub mod html;
pub mod model;
pub mod sim;
pub mod stress;
pub mod variant;
