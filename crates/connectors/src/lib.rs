//! Steps that talk to other systems or transform data formats, on top of
//! the engine's common step machinery (timeouts, `failOnError`, `into`,
//! masking, traces). Each family is a cargo feature; [`catalog`] is the
//! engine's core steps plus every family built in.

use sluice_engine::{Catalog, StepFactory};

mod input;

#[cfg(feature = "db")]
mod db;
#[cfg(feature = "email")]
mod email;
#[cfg(feature = "file")]
mod file;
#[cfg(feature = "formats")]
mod formats;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "kafka")]
mod kafka;
#[cfg(feature = "mqtt")]
mod mqtt;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "object-storage")]
mod object_storage;
#[cfg(feature = "rabbitmq")]
mod rabbitmq;
#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "security")]
mod security;

/// AMQP URLs as the `rabbitmq` step and trigger read and show them.
#[cfg(feature = "rabbitmq")]
pub mod amqp {
    pub use crate::rabbitmq::{parse_url, shown};
}

/// MQTT URLs as the `mqtt` step and trigger read them.
#[cfg(feature = "mqtt")]
pub mod mqtt_url {
    pub use crate::mqtt::parse_url;
}

pub use input::{Input, account, account_field, account_text, as_text, bad_input, url_or_account};

/// The step types of every family built in.
#[allow(clippy::vec_init_then_push)]
pub fn factories() -> Vec<StepFactory> {
    #[allow(unused_mut)]
    let mut all = Vec::new();
    #[cfg(feature = "formats")]
    all.extend(formats::FACTORIES);
    #[cfg(feature = "security")]
    all.extend(security::FACTORIES);
    #[cfg(feature = "http")]
    all.push(http::HTTP_REQUEST);
    #[cfg(feature = "db")]
    all.push(db::DB);
    #[cfg(feature = "redis")]
    all.push(redis::REDIS);
    #[cfg(feature = "file")]
    all.push(file::FILE);
    #[cfg(feature = "nats")]
    all.push(nats::NATS);
    #[cfg(feature = "rabbitmq")]
    all.push(rabbitmq::RABBITMQ);
    #[cfg(feature = "mqtt")]
    all.push(mqtt::MQTT);
    #[cfg(feature = "email")]
    all.push(email::EMAIL);
    #[cfg(feature = "kafka")]
    all.push(kafka::KAFKA);
    #[cfg(feature = "object-storage")]
    all.push(object_storage::OBJECT_STORAGE);
    all
}

/// Makes aws-lc-rs the process's rustls crypto provider, so every HTTPS
/// client of the process (the CLI's too) uses it. Call once at start;
/// later calls do nothing.
pub fn install_tls_provider() {
    #[cfg(feature = "http")]
    {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// The core steps and every connector step built in.
pub fn catalog() -> Catalog {
    let mut catalog = Catalog::core();
    catalog.extend(factories());
    catalog
}
