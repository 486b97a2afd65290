//! # canary-notify
//!
//! Skeleton: the adapter is built in its own issue. It depends on `canary-core` only.

pub use canary_core;
