//! One conformance suite per trait. The in-memory fakes and every real adapter run the same
//! functions, so they keep the same contract. Each function panics on the first violation.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::deployer::{CanarySpec, Deployer, ReleaseState, RollbackTarget, TrafficWeight};
use crate::error::Error;
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

    // Series, where the source has them: finite points in time order within the window.
    let step = Duration::from_secs(15);
    let series = source
        .fetch_series(&query, step)
        .await
        .expect("series of a known version are fetched (or none)");
    let (from, to) = (
        (at.timestamp_millis() as f64 - window.as_millis() as f64) / 1000.0,
        at.timestamp_millis() as f64 / 1000.0,
    );
    for s in &series {
        assert!(
            s.points.windows(2).all(|w| w[0][0] < w[1][0]),
            "{}: points in time order",
            s.metric
        );
        for [t, v] in &s.points {
            assert!(
                v.is_finite(),
                "{}: a series holds no NaN or infinity",
                s.metric
            );
            assert!(
                (from - 1e-3..=to + 1e-3).contains(t),
                "{}: a point at {t} outside the window [{from}, {to}]",
                s.metric
            );
        }
    }

    let absent_version = Version::new(absent).expect("the absent version is a valid tag");
    let query = MetricsQuery::new(absent_version, Arm::Canary, window).at(at);
    match source.fetch(&query).await {
        Ok(m) => {
            for name in names::ALL {
                assert_eq!(
                    m.value(name),
                    None,
                    "{name} of a version with no series must be no data, not a number"
                );
            }
        }
        Err(e) => assert_source_error(&e, absent),
    }
}

fn assert_source_error(e: &Error, version: &str) {
    match e {
        Error::Source { version: v, .. } => {
            assert_eq!(
                v, version,
                "a source error names the version it was fetching"
            )
        }
        other => panic!("a source fails with Error::Source, not {other:?}"),
    }
}

/// Checks a [`MetricsSource`] that cannot answer (unreachable, failing): a fetch is an
/// [`Error::Source`] naming the version, with `retryable` as given, and never metrics.
pub async fn failing_metrics_source(source: &dyn MetricsSource, version: &str, retryable: bool) {
    let v = Version::new(version).expect("a valid tag");
    let query = MetricsQuery::new(v, Arm::Canary, Duration::from_secs(300));
    let e = source
        .fetch(&query)
        .await
        .expect_err("a failing source returns an error, never metrics");
    assert_source_error(&e, version);
    assert_eq!(
        e.is_retryable(),
        retryable,
        "retryable as documented: {e:?}"
    );
    if let Err(e) = source.fetch_series(&query, Duration::from_secs(15)).await {
        assert_source_error(&e, version);
    }
    assert!(
        std::error::Error::source(&e).is_some(),
        "the adapter's error is kept as the cause"
    );
}

/// Checks a [`Deployer`] whose operations fail: each is an [`Error::Deploy`] whose operation
/// names what was attempted (and the version, where there is one).
pub async fn failing_deployer(deployer: &dyn Deployer, version: &Version) {
    let spec = CanarySpec {
        version: version.clone(),
        values_file: None,
    };
    let check = |what: &str, r: Result<(), Error>, needle: &str| match r {
        Err(Error::Deploy { operation, .. }) => assert!(
            operation.contains(needle),
            "{what}: the operation {operation:?} names {needle:?}"
        ),
        Err(other) => panic!("{what}: a deployer fails with Error::Deploy, not {other:?}"),
        Ok(()) => panic!("{what}: the failing deployer succeeded"),
    };
    check(
        "deploy",
        deployer.deploy_canary(&spec).await,
        version.as_str(),
    );
    check("promote", deployer.promote(version).await, version.as_str());
    check(
        "roll back",
        deployer.rollback(&RollbackTarget::Canary).await,
        "",
    );
}

/// Checks a [`Notifier`] that cannot deliver: [`Error::Notify`] under its own name, and no
/// URL in the error's text.
pub async fn failing_notifier(notifier: &dyn Notifier, event: &DecisionEvent) {
    let e = notifier
        .notify(event)
        .await
        .expect_err("a failing notifier returns an error");
    match &e {
        Error::Notify { notifier: n, .. } => assert_eq!(*n, notifier.name()),
        other => panic!("a notifier fails with Error::Notify, not {other:?}"),
    }
    let text = crate::error::chain(&e);
    assert!(
        !text.contains("://"),
        "no URL in a notifier's error: {text}"
    );
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

/// Checks a [`Deployer`]'s deployed baseline with production's `version`: it deploys, deploys
/// again (idempotent), is removed, and removing it again succeeds; production is untouched.
pub async fn deployer_baseline(deployer: &dyn Deployer, version: &Version) {
    let before = deployer
        .production_version()
        .await
        .expect("production version is read");
    let spec = CanarySpec {
        version: version.clone(),
        values_file: None,
    };
    deployer
        .deploy_baseline(&spec)
        .await
        .expect("the baseline deploys");
    deployer
        .deploy_baseline(&spec)
        .await
        .expect("deploying the same baseline again is idempotent");
    deployer
        .remove_baseline()
        .await
        .expect("the baseline is removed");
    deployer
        .remove_baseline()
        .await
        .expect("removing an absent baseline is idempotent");
    assert_eq!(
        deployer.production_version().await.unwrap(),
        before,
        "production is untouched"
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

/// Checks an [`ObservationSource`](crate::observation::ObservationSource).
///
/// `known` must have data (requests and latency at least) between `start` and `end`; `absent`
/// none.
/// - a known version's observations are in time order, within the range, labelled with it, and
///   valid; counters never go down and histograms keep their bounds and never lose counts;
/// - the same query twice gives the same observations;
/// - an absent version gives no observation, or an [`Error::Source`] naming it.
pub async fn observation_source(
    source: &dyn crate::observation::ObservationSource,
    known: &str,
    absent: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: Duration,
) {
    use crate::observation::{names as series, ObservationQuery};

    let v = Version::new(known).expect("the known version is a valid tag");
    let query = ObservationQuery::new(v.clone(), Arm::Baseline, start, end, step);
    let all = source
        .observe(&query)
        .await
        .expect("a known version is observed");
    assert!(
        all.len() >= 2,
        "a known version has observations over the range"
    );
    for o in &all {
        assert_eq!(
            o.version, v,
            "observations carry the version they were selected by"
        );
        assert!(o.at >= start && o.at <= end, "within the range: {}", o.at);
        o.validate().expect("observations are valid");
    }
    for pair in all.windows(2) {
        let (then, now) = (&pair[0], &pair[1]);
        assert!(then.at < now.at, "in time order");
        for (name, &before) in &then.counters {
            if let Some(&after) = now.counters.get(name) {
                assert!(
                    after >= before,
                    "counter {name} went down: {before} -> {after}"
                );
            }
        }
        for (name, before) in &then.histograms {
            if let Some(after) = now.histograms.get(name) {
                assert!(
                    after.since(before).is_some(),
                    "histogram {name} changed bounds or lost counts"
                );
            }
        }
    }
    let last = all.last().expect("checked above");
    assert!(
        last.counters.contains_key(series::REQUESTS),
        "requests are observed"
    );
    assert!(
        last.histograms.contains_key(series::LATENCY),
        "latency is observed"
    );
    let again = source.observe(&query).await.expect("a second query works");
    assert_eq!(again, all, "the same query gives the same observations");

    let absent_version = Version::new(absent).expect("the absent version is a valid tag");
    let query = ObservationQuery::new(absent_version, Arm::Canary, start, end, step);
    match source.observe(&query).await {
        Ok(none) => assert!(
            none.is_empty(),
            "a version with no series has no observation"
        ),
        Err(e) => assert_source_error(&e, absent),
    }
}

/// Checks an [`ObservationSource`](crate::observation::ObservationSource) that cannot answer:
/// an [`Error::Source`] naming the version, never observations.
pub async fn failing_observation_source(
    source: &dyn crate::observation::ObservationSource,
    version: &str,
) {
    let v = Version::new(version).expect("a valid tag");
    let now = Utc::now();
    let query = crate::observation::ObservationQuery::new(
        v,
        Arm::Canary,
        now - chrono::Duration::minutes(5),
        now,
        Duration::from_secs(15),
    );
    let e = source
        .observe(&query)
        .await
        .expect_err("a failing source returns an error, never observations");
    assert_source_error(&e, version);
}
