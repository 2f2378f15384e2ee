//! One module per subcommand.

use std::sync::Arc;

use anyhow::Result;
use sluice_engine::Catalog;

pub mod remote;
pub mod run;
pub mod serve;
pub mod test;
pub mod validate;

/// Every step type this binary knows: the core and the connectors.
pub fn catalog() -> Catalog {
    sluice_connectors::catalog()
}

/// `sluice schema`.
#[allow(clippy::print_stdout)]
pub fn schema() -> Result<u8> {
    let catalog = catalog();
    println!("{}", serde_json::to_string_pretty(catalog.schema())?);
    Ok(0)
}

/// Prints published events on standard error as they happen.
pub struct PrintedEvents;

impl sluice_engine::services::EventPublisher for PrintedEvents {
    fn publish<'a>(
        &'a self,
        name: &'a str,
        payload: serde_json::Value,
    ) -> sluice_engine::services::BoxFuture<'a, Result<(), sluice_engine::FlowError>> {
        eprintln!("event {name}: {payload}");
        Box::pin(std::future::ready(Ok(())))
    }
}

/// Services for running files: in-memory sessions and objects, events on
/// standard error, `call` against files in `dir`.
pub fn file_services(
    dir: &std::path::Path,
    catalog: &Catalog,
    events: Arc<dyn sluice_engine::services::EventPublisher>,
) -> (sluice_engine::Services, Arc<sluice_engine::FileCaller>) {
    let caller = Arc::new(sluice_engine::FileCaller::new(
        dir.to_path_buf(),
        catalog.clone(),
    ));
    let mut services = sluice_engine::Services::in_memory(events);
    services.pipelines = caller.clone();
    (services, caller)
}
