//! Shared test support: the real binary in a sandbox ([`cmd`]) and the
//! Docker and containers config files it edits ([`docker_cfg`]), and the
//! servers the suites run against: a strict RFC 8693 STS ([`sts`]),
//! distribution's token realm ([`realm`]), endpoints that misbehave on
//! purpose ([`hostile`]), launchers for the real services ([`services`]:
//! Secret Service, docker-registry, dockerd), the end-to-end suites' shared
//! set-up ([`e2e`]), the kubelet's side of the credential provider API
//! ([`kubelet`], [`kubelet_e2e`], with the registry pulls of
//! [`registry_api`]), a pseudo-terminal ([`pty`]), and the session's own
//! keyring on macOS and Windows ([`native_keyring`]). Most suites start
//! from one exchange registry at a fresh STS ([`setup`]). A test that
//! cannot run here says so through [`skip`], never by passing quietly.
//!
//! The STS and the realm live in the `test-servers` workspace crate, which
//! the examples and the benchmark also use; they are re-exported here so
//! that tests keep naming them `support::sts::…` and `support::realm::…`.
#![allow(dead_code)]

pub mod cmd;
pub mod docker_cfg;
pub mod doctor;
// The real services and the end-to-end set-up are Debian's daemons driven
// through unix sockets, process groups and /proc: Linux only. The sandbox
// and the servers above run everywhere, so the suites built on them run on
// macOS and Windows too.
#[cfg(target_os = "linux")]
pub mod e2e;
pub mod hostile;
// The kubelet's side runs the plugin in a new session (setsid) and the
// end-to-end opening uses Debian's daemons: Linux only, like the kubelet.
#[cfg(target_os = "linux")]
pub mod kubelet;
#[cfg(target_os = "linux")]
pub mod kubelet_e2e;
#[cfg(any(target_os = "macos", windows))]
pub mod native_keyring;
// openpty's and TIOCSCTTY's types differ between Linux's libc and macOS's;
// the terminal tests run on Linux.
#[cfg(target_os = "linux")]
pub mod pty;
pub mod registry_api;
pub mod setup;
pub mod skip;

#[cfg(target_os = "linux")]
pub mod services;
// Win32 calls the Windows suite needs (Wine detection, access lists).
#[cfg(windows)]
pub mod windows;
// Each suite compiles its own copy of this module and names what it uses;
// on macOS and Windows, where the end-to-end set-up is left out, some use
// neither.
#[allow(unused_imports)]
pub use test_servers::{hold, realm, sts};
