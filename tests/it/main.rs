//! walguard's integration tests: one test binary, so that every test shares
//! one throwaway PostgreSQL server (see `harness`).

mod admin;
mod alerts;
mod commands;
mod fixture;
mod harness;
mod monitors;
mod pipeline;
mod reload;
mod resilience;
mod rules;
mod running;
mod shapes;
mod smoke;
mod transactions;
mod types;
mod webhook_receiver;
