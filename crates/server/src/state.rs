//! What every handler shares.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use sluice_store::Store;

use crate::config::ServerConfig;
use crate::gateway::{KeyCache, RateLimiter};
use crate::runtime::Runtime;

/// The state behind the router.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub runtime: Arc<Runtime>,
    pub config: Arc<ServerConfig>,
    pub keys: Arc<KeyCache>,
    pub limits: Arc<RateLimiter>,
    /// Set once every stored deployment serves again after a start.
    pub ready: Arc<AtomicBool>,
}
