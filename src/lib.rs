//! walguard watches every row that enters a PostgreSQL database and records the
//! rows that break their table's schema.
//!
//! ```text
//!  PostgreSQL ──pgoutput──▶ replication ──bytes──▶ pgoutput::decode
//!                               ▲                        │ messages
//!                               │ ack (commit end lsn)   ▼
//!                               │               relation cache + row view
//!                               │                        │ rows as JSON
//!                               │                        ▼
//!                               │                validate (schema files)
//!                               │                        │ findings
//!                               │                        ▼
//!                               └──── after commit ── sink (violations,
//!                                                      webhook outbox)
//! ```
//!
//! The acknowledgement to the server happens in one place,
//! [`replication::progress`], and only for positions whose violations the sink
//! has committed: a crash replays from the slot and the violations table's
//! unique key drops the duplicates.

pub mod pgoutput;

pub mod app;
pub mod catalog;
pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod drift;
pub mod init;
pub mod monitor;
pub mod pipeline;
pub mod postgres;
pub mod references;
pub mod relation;
pub mod reload;
pub mod replication;
pub mod row;
pub mod schema;
pub mod setup;
pub mod sink;
pub mod telemetry;
pub mod throwaway;
pub mod type_catalog;
pub mod validate;
