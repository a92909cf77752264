//! rvlf: the reference implementation of the RVF writer-lock protocol
//! (RVLF v1, see PROTOCOL.md) and the tools that check implementations of it.
//!
//! ```no_run
//! use rvlf::{WriterLock, Released};
//!
//! let lock = WriterLock::try_acquire("data.rvf")?;   // creates data.rvf.lock
//! // ... write data.rvf: no other writer holds the lock ...
//! match lock.release()? {
//!     Released::Released => {}
//!     Released::Lost(how) => eprintln!("lock was taken over: {how:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The algorithm lives in [`machine`] as a pure state machine; [`driver`]
//! runs it on the real file system and [`sim`] on a simulated one.

pub mod cli;
pub mod conform;
pub mod driver;
pub mod failpoint;
pub mod flaws;
pub mod golden;
pub mod host;
pub mod inspect;
pub mod lock;
pub mod machine;
pub mod model;
pub mod policy;
pub mod record;
pub mod sim;
pub mod stress;
pub mod wait;

pub use driver::lock_path_for;
pub use inspect::{inspect, Inspection};
pub use lock::{AcquireError, Options, ReleaseError, WriterLock};
pub use machine::{Busy, Lost, Released};
pub use policy::{Thresholds, Verdict};
pub use record::{decode, encode, DecodeError, Hostname, Record, WriterId};
