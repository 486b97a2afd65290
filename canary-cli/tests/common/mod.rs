//! What the binary's tests share: a real Prometheus holding 20 minutes of production (`v1`), a
//! healthy canary (`v2`) and one failing 8 % of its requests (`v3`).

use testkit::services::Service;
use testkit::traffic::{now_secs, openmetrics, production_and_two_canaries};

/// The Prometheus and the instant its data ends (unix seconds).
pub(crate) fn prometheus() -> (Service, i64) {
    let end = now_secs() - 3;
    let data = openmetrics(&production_and_two_canaries(), 1200, 15, end);
    (testkit::services::prometheus(&data), end)
}
