//! The Publisher component: the Publisher REST API under `/api/am/publisher/v4` (APIs,
//! OpenAPI import, lifecycle, revisions, deployments). This crate is the seam the
//! Publisher and Admin issue fills; its routes are mounted on the management listener
//! when the node runs the `publisher` component.
//!
//! Depends on `http`, `store` and `model` only; never on another component.

/// Where the Publisher REST API lives, as in the reference.
pub const BASE_PATH: &str = "/api/am/publisher/v4";
