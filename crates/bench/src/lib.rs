//! Benchmark tools for comparing Sluice with its peers on one machine: a
//! hand-written reference server (the ceiling a platform can only approach)
//! and an open-loop, fixed-rate HTTP load generator that measures latency
//! without coordinated omission.
//!
//! This crate owns no platform code and must not depend on the engine or the
//! server: the ceiling has to stay free of everything it is compared against.

pub mod ceiling;
pub mod load;

/// Makes aws-lc-rs the process's rustls provider. Built beside the rest of
/// the workspace, reqwest carries rustls and wants a provider even for
/// plain HTTP; this is the tree's one.
pub fn install_tls_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
