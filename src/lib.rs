//! pc-autoscaler: autoscales AWS Lambda provisioned concurrency.
//!
//! The library holds everything; the binary only parses the command line. See
//! ARCHITECTURE.md for the code map and the invariants each module keeps.

pub mod actuator;
pub mod aws;
pub mod check;
pub mod config;
pub mod policy;
pub mod simulate;
