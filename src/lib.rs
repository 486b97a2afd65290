//! # canary
//!
//! One dependency for the whole library: [`core`] (always), and the adapters behind features.
//!
//! | feature | default | re-export |
//! |---|---|---|
//! | `prometheus` | yes | [`prometheus`]: `MetricsSource` over the Prometheus HTTP API |
//! | `helm` | yes | [`helm`]: `Deployer` over the helm CLI |
//! | `notify` | yes | [`notify`]: Slack, webhook and Alertmanager notifiers |
//! | `test-util` | no | `core::test_util`: fakes, strategies, mocks, conformance suites |
//! | `sim` | no | [`sim`]: the canary scenario simulator (`canary-sim`), for judging your own judges |

pub use canary_core as core;
pub use canary_core::*;

#[cfg(feature = "helm")]
pub use canary_helm as helm;
#[cfg(feature = "notify")]
pub use canary_notify as notify;
#[cfg(feature = "prometheus")]
pub use canary_prometheus as prometheus;
#[cfg(feature = "sim")]
pub use canary_sim as sim;

// Runs the Rust examples of the README and the book as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(doctest)]
#[doc = include_str!("../docs/src/rust.md")]
struct BookRustDoctests;
