//! Where evidence comes from: one look at both arms ([`metrics`], read through a
//! [`source::MetricsSource`]) or evidence over time ([`observation`]), for validated
//! [`version`]s. Re-exported at the crate root.

pub mod metrics;
pub mod observation;
pub mod source;
pub mod version;
