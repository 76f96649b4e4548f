//! The credential-helper protocol's exact error strings. Docker's client
//! maps them back to typed errors by their text (docker-credential-helpers'
//! `credentials/error.go`), so each is defined once, here, below every
//! module whose errors say them: the protocol, the helper's "not found" and
//! the server URL's "empty".

/// Docker's "not logged in".
pub const ERR_NOT_FOUND: &str = "credentials not found in native keychain";
/// An empty server URL.
pub const ERR_NO_SERVER_URL: &str = "no credentials server URL";
/// An empty username in `store`.
pub const ERR_NO_USERNAME: &str = "no credentials username";
