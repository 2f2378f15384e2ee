//! Deletes execution records past their environment's retention.

use std::collections::BTreeSet;
use std::sync::Arc;

use sluice_store::Page;

use crate::runtime::{Runtime, ms, now_ms};

/// Runs at start and then every `retention_interval` until aborted.
pub async fn run(runtime: Arc<Runtime>) {
    let mut tick = tokio::time::interval(runtime.config.retention_interval);
    loop {
        tick.tick().await;
        if let Err(e) = sweep(&runtime).await {
            tracing::error!(error = %e, "the retention job failed");
        }
    }
}

/// One pass over every environment name in use.
pub async fn sweep(runtime: &Runtime) -> Result<u64, sluice_store::Error> {
    let store = &runtime.store;
    let mut names = BTreeSet::new();
    let mut offset = 0;
    loop {
        let realms = store.list_realms(Page { limit: 500, offset }).await?;
        for realm in &realms {
            for env in store.list_environments(&realm.name).await? {
                names.insert(env.name);
            }
        }
        if realms.len() < 500 {
            break;
        }
        offset += 500;
    }
    let mut deleted = 0;
    for env in names {
        let keep = runtime.config.retention_for(&env);
        let cutoff = now_ms().saturating_sub(ms(keep));
        let n = store.delete_executions_before(&env, cutoff).await?;
        if n > 0 {
            tracing::info!(environment = %env, deleted = n, "old executions deleted");
        }
        deleted += n;
    }
    Ok(deleted)
}
