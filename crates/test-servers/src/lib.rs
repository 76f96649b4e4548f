//! The servers that docker-credential-exchange's tests, examples and
//! benchmark run against, in one place so that each of them starts the same
//! code rather than a copy:
//!
//! - [`sts`]: a small, strict RFC 8693 token-exchange server that is also the
//!   identity provider (it mints the subject tokens it later accepts) and
//!   imitates GitHub Actions' OIDC endpoint;
//! - [`realm`]: distribution's token authentication ("realm") for Debian's
//!   `docker-registry`, trusting the STS's access tokens.
//!
//! Both run in-process on their own threads, bind 127.0.0.1 only, keep
//! everything in memory and stop when dropped. [`codec`] holds the few
//! encodings both need (form bodies, base64) and that test code reuses;
//! [`hold`] lets a test hold a server's requests until it releases them.

pub mod codec;
pub mod hold;
pub mod realm;
mod serve;
pub mod sts;
