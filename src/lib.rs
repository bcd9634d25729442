//! pc-autoscaler: autoscales AWS Lambda provisioned concurrency.
//!
//! The library holds everything; the binary only parses the command line. See
//! ARCHITECTURE.md for the code map and the invariants each module keeps.
//!
//! What it must not do: hold logic itself; each room's `mod.rs` says what it is for.

pub mod audit;
pub mod aws;
pub mod cli;
pub mod clock;
pub mod config;
pub mod escape;
pub mod leader;
pub mod metrics;
pub mod migrate;
pub mod policy;
pub mod runtime;
pub mod simulate;
pub mod trim;

#[cfg(test)]
mod test_alloc;

#[cfg(test)]
#[global_allocator]
static ALLOCATOR: test_alloc::Counting = test_alloc::Counting;
