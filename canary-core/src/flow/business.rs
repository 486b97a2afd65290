//! A user's own check (A/B test, business KPIs) that must pass alongside the technical one.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::policy::Evaluation;
use crate::version::Version;

/// The answer of a business check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BusinessVerdict {
    /// Whether the canary passes.
    pub passed: bool,
    /// Why, for the report.
    pub details: String,
}

/// A check of the user's that must pass for the canary to be promoted.
///
/// It runs only when the technical analysis says `Proceed`. If it does not pass, the decision
/// becomes `RollbackManual`; a technical `RollbackAuto` is never softened by it. If it fails to
/// run (returns `Err`), the validation fails and the canary is rolled back.
#[async_trait]
pub trait BusinessCheck: Send + Sync {
    /// A name for the report.
    fn name(&self) -> String;
    /// Judges the canary, given the technical evaluation.
    async fn check(&self, version: &Version, evaluation: &Evaluation) -> Result<BusinessVerdict>;
}

type CheckFn =
    dyn Fn(Version, Evaluation) -> BoxFuture<'static, Result<BusinessVerdict>> + Send + Sync;

/// A business check from an async closure.
pub struct FnBusinessCheck {
    name: String,
    f: Arc<CheckFn>,
}

impl std::fmt::Debug for FnBusinessCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnBusinessCheck")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Makes a [`BusinessCheck`] from an async closure.
///
/// ```
/// use canary_core::{business_check_fn, BusinessVerdict};
/// let check = business_check_fn("conversion", |_version, _evaluation| async {
///     Ok(BusinessVerdict { passed: true, details: "conversion +0.2%".into() })
/// });
/// ```
pub fn business_check_fn<F, Fut>(name: impl Into<String>, f: F) -> FnBusinessCheck
where
    F: Fn(Version, Evaluation) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<BusinessVerdict>> + Send + 'static,
{
    FnBusinessCheck {
        name: name.into(),
        f: Arc::new(move |v, e| Box::pin(f(v, e))),
    }
}

#[async_trait]
impl BusinessCheck for FnBusinessCheck {
    fn name(&self) -> String {
        self.name.clone()
    }
    async fn check(&self, version: &Version, evaluation: &Evaluation) -> Result<BusinessVerdict> {
        (self.f)(version.clone(), evaluation.clone()).await
    }
}
