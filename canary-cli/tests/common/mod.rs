//! What the binary's tests share: a real Prometheus holding 20 minutes of production (`v1`), a
//! healthy canary (`v2`) and one failing 8 % of its requests (`v3`).

use testkit::services::Service;
use testkit::traffic::{now_secs, openmetrics, Traffic};

/// The Prometheus and the instant its data ends (unix seconds).
pub(crate) fn prometheus() -> (Service, i64) {
    let end = now_secs() - 3;
    let data = openmetrics(
        &[
            Traffic::healthy("v1", 50.0),
            Traffic::healthy("v2", 10.0),
            Traffic {
                error_ratio: 0.08,
                ..Traffic::healthy("v3", 10.0)
            },
        ],
        1200,
        15,
        end,
    );
    (testkit::services::prometheus(&data), end)
}
