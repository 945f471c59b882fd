//! The Developer Portal component: the Developer Portal REST API under
//! `/api/am/devportal/v3` (applications, subscriptions, keys). This crate is the seam the
//! Key Manager and Developer Portal issue fills.
//!
//! Depends on `http`, `store` and `model` only; never on another component.

/// Where the Developer Portal REST API lives, as in the reference.
pub const BASE_PATH: &str = "/api/am/devportal/v3";
