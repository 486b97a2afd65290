//! Who decides: the [`judge`]s, the guide's [`policy`] they share, and its [`thresholds`].
//! Re-exported at the crate root.

pub mod judge;
pub mod policy;
pub mod thresholds;
