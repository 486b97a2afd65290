//! Python bindings for canary (module `canary`). Skeleton: built in its own issue.

pub use canary_core;
