//! stathook: a self-hosted custom-metrics webhook with an embedded time-series store.
//!
//! The 30-second tour: `http` accepts `POST /api/webhooks/custom`, `ingest` turns the body
//! into a checked batch, `journal` appends it to a sharded, fsync'd append log and to the
//! in-memory `memtable`, `compact` moves sealed journal generations into columnar `segment`s
//! kept by `store` in one redb file, and `query` reads both. See ARCHITECTURE.md.

pub mod alert;
pub mod app;
pub mod auth;
pub mod bench;
pub mod cli;
pub mod client;
pub mod clock;
pub mod command;
pub mod compact;
pub mod config;
pub mod forward;
pub mod http;
pub mod ingest;
pub mod journal;
pub mod memtable;
pub mod outbound;
pub mod promql;
pub mod query;
pub mod segment;
pub mod service;
pub mod store;
pub mod web;
