//! What is done about a decision ([`deployer`]), who hears of it ([`notifier`]), and what is
//! kept ([`report`]). Re-exported at the crate root.

pub mod deployer;
pub mod notifier;
pub mod report;
