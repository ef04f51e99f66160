//! gridsentry, the edge daemon: field devices in, colour-graded work orders out.
//!
//! The data path shows in the module names: `ingest` → `pipeline` (`rules` → `orders`) →
//! `notify`, with `series` (the time-series store) beside it, and `api` (with the console, fed
//! by `live`) on top. Each stage has one job and one error enum. What flows between stages
//! (readings and acks, in batches) is `flow`; `clock` tells the time; `watchdog` turns a stuck
//! stage into a red `/readyz` and an exit.

pub mod access;
pub mod api;
pub mod backtest;
pub mod broker;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod demo;
pub mod devtime;
pub mod flow;
pub mod gate;
pub mod ingest;
pub mod live;
pub mod logsafe;
pub mod metrics;
pub mod notify;
pub mod orders;
pub mod ota;
pub mod pipeline;
pub mod provision;
pub mod report;
pub mod rules;
pub mod runtime;
pub mod series;
pub mod testhook;
pub mod warn;
pub mod watchdog;
