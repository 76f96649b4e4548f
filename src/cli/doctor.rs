//! `doctor`: check everything a failing pull could be blamed on.

use std::process::ExitCode;

pub(super) fn doctor() -> anyhow::Result<ExitCode> {
    anyhow::bail!("doctor is not implemented yet")
}
