//! walguard's integration tests: one test binary, so that every test shares
//! one throwaway PostgreSQL server (see `harness`).

mod alerts;
mod fixture;
mod harness;
mod pipeline;
mod resilience;
mod running;
mod shapes;
mod smoke;
mod transactions;
mod types;
mod webhook_receiver;
