//! Shared test support: the real binary in a sandbox ([`cmd`]), and the
//! servers the suites run against: a strict RFC 8693 STS ([`sts`]),
//! distribution's token realm ([`realm`]), and launchers for the real
//! services ([`services`]: Secret Service, docker-registry, dockerd), and the
//! end-to-end suites' shared set-up ([`e2e`]), and the session's own keyring
//! on macOS and Windows ([`native_keyring`]).
#![allow(dead_code)]

pub mod cmd;
// The real services and the end-to-end set-up are Debian's daemons driven
// through unix sockets, process groups and /proc: Linux only. The sandbox
// and the servers above run everywhere, so the suites built on them run on
// macOS and Windows too.
#[cfg(target_os = "linux")]
pub mod e2e;
pub mod hostile;
#[cfg(any(target_os = "macos", windows))]
pub mod native_keyring;
// openpty's and TIOCSCTTY's types differ between Linux's libc and macOS's;
// the terminal tests run on Linux.
#[cfg(target_os = "linux")]
pub mod pty;
pub mod realm;
#[cfg(target_os = "linux")]
pub mod services;
pub mod sts;
