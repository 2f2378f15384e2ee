//! The server in-process: API, gateway, runtime and triggers through the
//! router, on an in-memory store.

#![allow(clippy::unwrap_used)]

mod api;
mod gateway;
mod harness;
mod records;
mod triggers;
