//! InfluxDB v2.0 Client API
pub mod authorizations;
pub mod buckets;
pub mod delete;
pub mod health;
pub mod label;
pub mod organization;
pub mod query;
pub mod ready;
pub mod setup;
pub mod task;
pub mod write;
