//! Calling other pipelines from files beside the caller (`sluice run`
//! and `sluice test`; the server calls deployed pipelines instead).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::services::{BoxFuture, CallRequest, PipelineCaller};
use crate::{Catalog, FlowError, LoadError, Plan, RunOptions, load_file};

/// Runs `call` steps against pipeline files in one directory:
/// `<name>.yaml`, `<name>.yml` or `<name>.json`, each compiled once.
pub struct FileCaller {
    dir: PathBuf,
    catalog: Catalog,
    plans: Mutex<HashMap<String, Arc<Plan>>>,
    detached: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl FileCaller {
    /// A caller for pipelines in `dir`.
    pub fn new(dir: PathBuf, catalog: Catalog) -> Self {
        FileCaller {
            dir,
            catalog,
            plans: Mutex::default(),
            detached: Mutex::default(),
        }
    }

    fn plan(&self, name: &str) -> Result<Arc<Plan>, FlowError> {
        let mut plans = self
            .plans
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(plan) = plans.get(name) {
            return Ok(plan.clone());
        }
        let file = ["yaml", "yml", "json"]
            .iter()
            .map(|ext| self.dir.join(format!("{name}.{ext}")))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                FlowError::new(
                    "not_found",
                    404,
                    format!(
                        "no pipeline file {name}.yaml, .yml or .json in {}",
                        self.dir.display()
                    ),
                )
            })?;
        let plan = load_file(&file, &self.catalog).map_err(|e| match e {
            LoadError::Invalid(problems) => {
                FlowError::new("invalid_pipeline", 500, format!("{name} is invalid"))
                    .with_details(json!({"problems": problems.to_string()}))
            }
            other => FlowError::new("not_found", 404, other.to_string()),
        })?;
        let plan = Arc::new(plan);
        plans.insert(name.to_owned(), plan.clone());
        Ok(plan)
    }

    /// Waits for every `async` call started so far.
    pub async fn wait_detached(&self) {
        loop {
            let handles: Vec<_> = std::mem::take(
                &mut *self
                    .detached
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
            );
            if handles.is_empty() {
                return;
            }
            for h in handles {
                // A detached call that panicked has nothing to hand back.
                let _ = h.await;
            }
        }
    }
}

impl PipelineCaller for FileCaller {
    fn call(&self, request: CallRequest) -> BoxFuture<'static, Result<Value, FlowError>> {
        let plan = self.plan(&request.pipeline);
        let detached = request.detached;
        let key = uuid::Uuid::now_v7().to_string();
        let options = RunOptions {
            services: request.services,
            globals: request.globals,
            accounts: request.accounts,
            major: request.major.unwrap_or(1),
            execution_key: Some(key.clone()),
            call_depth: request.depth,
            ..RunOptions::default()
        };
        let input = request.input;
        let run = async move {
            let plan = plan?;
            let execution = plan.execute(input, options).await;
            execution.into_answer()
        };
        if detached {
            let handle = tokio::spawn(async move {
                // The caller went on; the outcome of a detached call is its own.
                let _ = run.await;
            });
            self.detached
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(handle);
            Box::pin(std::future::ready(Ok(json!({ "executionKey": key }))))
        } else {
            Box::pin(run)
        }
    }
}
