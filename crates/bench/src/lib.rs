//! Benchmark tools for comparing Sluice with its peers on one machine: a
//! hand-written reference server (the ceiling a platform can only approach)
//! and an open-loop, fixed-rate HTTP load generator that measures latency
//! without coordinated omission.
//!
//! This crate owns no platform code and must not depend on the engine or the
//! server: the ceiling has to stay free of everything it is compared against.

pub mod ceiling;
pub mod load;
