//! Shared test support: the real binary in a sandbox ([`cmd`]), and the
//! servers the suites run against: a strict RFC 8693 STS ([`sts`]),
//! distribution's token realm ([`realm`]), and launchers for the real
//! services ([`services`]: Secret Service, docker-registry, dockerd), and the
//! end-to-end suites' shared set-up ([`e2e`]).
//!
//! The STS and the realm live in the `test-servers` workspace crate, which
//! the examples and the benchmark also use; they are re-exported here so
//! that tests keep naming them `support::sts::…` and `support::realm::…`.
#![allow(dead_code)]

pub mod cmd;
pub mod e2e;
pub mod hostile;
#[cfg(unix)]
pub mod pty;
pub mod services;
pub use test_servers::{realm, sts};
