//! gridsentry, the edge daemon: field devices in, colour-graded work orders out.
//!
//! The data path shows in the module names: `ingest` → `rules` → `orders` → `notify`, with
//! `series` (the time-series store) beside it, and `api` (with the console, fed by `live`) on top. Each stage has one job and one error enum.

pub mod api;
pub mod app;
pub mod backtest;
pub mod broker;
pub mod config;
pub mod demo;
pub mod ingest;
pub mod live;
pub mod metrics;
pub mod notify;
pub mod orders;
pub mod pipeline;
pub mod rules;
pub mod series;
