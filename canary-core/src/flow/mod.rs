//! The [`validator`] that runs source → judge → deploy → notify → report, and what drives it:
//! the [`clock`], [`progress`] events and [`business`] checks. Re-exported at the crate root.

pub mod business;
pub mod clock;
pub mod progress;
pub mod validator;
