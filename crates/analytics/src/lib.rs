//! The Analytics component: receives gateway usage events in batches, aggregates them per
//! minute, and serves `/api/am/analytics/v1`. This crate is the seam the Analytics issue
//! fills.
//!
//! Depends on `http`, `store` and `model` only; never on another component.

/// Where the analytics REST API lives.
pub const BASE_PATH: &str = "/api/am/analytics/v1";
