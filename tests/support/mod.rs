//! Shared test support: the real binary in a sandbox ([`cmd`]), and the
//! servers the suites run against: a strict RFC 8693 STS ([`sts`]),
//! distribution's token realm ([`realm`]), and launchers for the real
//! services ([`services`]: Secret Service, docker-registry, dockerd), the
//! end-to-end suites' shared set-up ([`e2e`]), and the kubelet's side of
//! the credential provider API ([`kubelet`], [`kubelet_e2e`], with the
//! registry pulls of [`registry_api`]).
//!
//! The STS and the realm live in the `test-servers` workspace crate, which
//! the examples and the benchmark also use; they are re-exported here so
//! that tests keep naming them `support::sts::…` and `support::realm::…`.
#![allow(dead_code)]

pub mod cmd;
pub mod e2e;
pub mod hostile;
// The kubelet's side runs the plugin in a new session (setsid) and the
// end-to-end opening uses Debian's daemons: Linux only, like the kubelet.
#[cfg(target_os = "linux")]
pub mod kubelet;
#[cfg(target_os = "linux")]
pub mod kubelet_e2e;
#[cfg(unix)]
pub mod pty;
pub mod registry_api;
pub mod services;
pub use test_servers::{realm, sts};
