//! One conformance suite per trait. The in-memory fakes and every real adapter run the same
//! functions, so they keep the same contract. Each function panics on the first violation.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::deployer::{CanarySpec, Deployer, ReleaseState, RollbackTarget, TrafficWeight};
use crate::metrics::names;
use crate::notifier::{DecisionEvent, Notifier};
use crate::source::{Arm, MetricsQuery, MetricsSource};
use crate::version::Version;

/// Checks a [`MetricsSource`].
///
/// `known` must have complete data in the window ending at `at`; `absent` must have none.
/// - a known version's metrics are valid, labelled with the version, and have a sample count;
/// - the same query twice gives the same values (reads are idempotent);
/// - an absent version is an error or has no value at all: never a 0.
pub async fn metrics_source(
    source: &dyn MetricsSource,
    known: &str,
    absent: &str,
    window: Duration,
    at: DateTime<Utc>,
) {
    let known_version = Version::new(known).expect("the known version is a valid tag");
    let query = MetricsQuery::new(known_version, Arm::Baseline, window).at(at);
    let m = source
        .fetch(&query)
        .await
        .expect("a known version is fetched");
    m.validate().expect("fetched metrics are valid");
    assert_eq!(
        m.version, known,
        "metrics carry the version they were selected by"
    );
    for name in names::ALL {
        assert!(
            m.value(name).is_some(),
            "{name} of the known version is measured"
        );
    }
    let again = source.fetch(&query).await.expect("a second fetch works");
    for name in names::ALL {
        assert_eq!(
            m.value(name),
            again.value(name),
            "{name} is the same on a second fetch"
        );
    }

    let absent_version = Version::new(absent).expect("the absent version is a valid tag");
    let query = MetricsQuery::new(absent_version, Arm::Canary, window).at(at);
    if let Ok(m) = source.fetch(&query).await {
        for name in names::ALL {
            assert_eq!(
                m.value(name),
                None,
                "{name} of a version with no series must be no data, not a number"
            );
        }
    }
}

/// Checks a [`Deployer`] through a whole canary lifecycle with `version`.
///
/// The deployer must start with some production version and no canary.
pub async fn deployer(deployer: &dyn Deployer, version: &Version) {
    let before = deployer
        .production_version()
        .await
        .expect("production version is read");
    assert!(
        before.is_some(),
        "the suite starts with production deployed"
    );

    let spec = CanarySpec {
        version: version.clone(),
        values_file: None,
    };
    deployer.deploy_canary(&spec).await.expect("canary deploys");
    deployer
        .deploy_canary(&spec)
        .await
        .expect("deploying the same canary again is idempotent");
    let status = deployer.status().await.expect("status is read");
    assert_eq!(status.canary, ReleaseState::Deployed);
    assert_eq!(status.canary_version.as_ref(), Some(version));

    let w = TrafficWeight::new(25).unwrap();
    deployer.set_canary_weight(w).await.expect("weight is set");
    deployer
        .set_canary_weight(w)
        .await
        .expect("setting the same weight again is idempotent");

    deployer
        .rollback(&RollbackTarget::Canary)
        .await
        .expect("canary rolls back");
    deployer
        .rollback(&RollbackTarget::Canary)
        .await
        .expect("rolling back an absent canary is idempotent");
    let status = deployer.status().await.expect("status is read");
    assert_eq!(status.canary, ReleaseState::Absent, "the canary is gone");
    assert_eq!(
        deployer.production_version().await.unwrap(),
        before,
        "production is untouched"
    );

    deployer
        .deploy_canary(&spec)
        .await
        .expect("canary deploys again");
    deployer.promote(version).await.expect("canary promotes");
    assert_eq!(
        deployer.production_version().await.unwrap().as_ref(),
        Some(version)
    );
    let status = deployer.status().await.expect("status is read");
    assert_eq!(status.production, ReleaseState::Deployed);
    assert_eq!(
        status.canary,
        ReleaseState::Absent,
        "promotion removes the canary"
    );
}

/// Checks a [`Notifier`]: it has a name that is not a URL, and it accepts `event`.
pub async fn notifier(notifier: &dyn Notifier, event: &DecisionEvent) {
    let name = notifier.name();
    assert!(!name.is_empty(), "a notifier has a name");
    assert!(
        !name.contains("://"),
        "a notifier's name never shows its URL: {name}"
    );
    notifier.notify(event).await.expect("the event is accepted");
}
