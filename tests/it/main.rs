//! walguard's integration tests: one test binary, so that every test shares
//! one throwaway PostgreSQL server (see `harness`).

mod commands;
mod fixture;
mod harness;
mod monitors;
mod pipeline;
mod reload;
mod smoke;
mod webhook_receiver;
