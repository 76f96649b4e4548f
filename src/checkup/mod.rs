//! Everything a pull could trip on, each as a finding: fine, worth a look,
//! or a problem that will make a pull fail, with the fix. These are the
//! checks `doctor` runs; how a person or a script sees the findings is the
//! CLI's business (`cli/doctor.rs`), which hands in how to show each one
//! as it is made.
//!
//! The checks, by file: the config file (which one, and why), every
//! exchange registry's subject token, whether Docker can use its entry,
//! its client secret and last failure ([`registries`]); its endpoint and
//! clock, and `--exchange`'s proof ([`endpoint`]); the store, its entries,
//! the cache directory and the binary on PATH ([`local`]); Docker's and
//! containers' configs, which must route the registries to this helper
//! under the names it knows and must not shadow it with a stored `auth`
//! ([`clients`]); the client key and certificate of key-based client
//! authentication, and actor tokens ([`client_auth`]).

mod client_auth;
mod clients;
mod endpoint;
mod local;
mod registries;

use serde::Serialize;

use crate::helper::Helper;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Level {
    /// Fine.
    Ok,
    /// Worth a look; pulls work.
    Warning,
    /// A pull will fail.
    Problem,
}

#[derive(Debug, Serialize)]
pub(crate) struct Finding {
    pub(crate) level: Level,
    pub(crate) area: &'static str,
    pub(crate) text: String,
    pub(crate) fix: Option<String>,
}

/// Shows one finding the moment it is made, so a slow check (an endpoint
/// that does not answer) does not hold back what is known already.
pub(crate) type Show = fn(&Finding) -> std::io::Result<()>;

/// The findings so far.
pub(crate) struct Checks {
    pub(crate) findings: Vec<Finding>,
    show: Option<Show>,
}

impl Checks {
    fn report(
        &mut self,
        level: Level,
        area: &'static str,
        text: String,
        fix: Option<String>,
    ) -> anyhow::Result<()> {
        let (text, fix) = (crate::redact::line(&text), fix.map(|f| crate::redact::line(&f)));
        let finding = Finding { level, area, text, fix };
        if let Some(show) = self.show {
            show(&finding)?;
        }
        self.findings.push(finding);
        Ok(())
    }

    fn ok(&mut self, area: &'static str, text: impl Into<String>) -> anyhow::Result<()> {
        self.report(Level::Ok, area, text.into(), None)
    }

    fn warn(
        &mut self,
        area: &'static str,
        text: impl Into<String>,
        fix: impl Into<String>,
    ) -> anyhow::Result<()> {
        self.report(Level::Warning, area, text.into(), Some(fix.into()))
    }

    fn problem(
        &mut self,
        area: &'static str,
        text: impl Into<String>,
        fix: impl Into<String>,
    ) -> anyhow::Result<()> {
        self.report(Level::Problem, area, text.into(), Some(fix.into()))
    }

    pub(crate) fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }
}

/// Runs every check, in the order a person reads them, showing each
/// finding with `show` (`None`: collect them only); `exchange` also makes
/// one real exchange per registry.
///
/// # Errors
/// `show` failed (stdout closed).
pub(crate) fn run(helper: &Helper, exchange: bool, show: Option<Show>) -> anyhow::Result<Checks> {
    let started_ms = crate::time::now_ms();
    let mut checks = Checks { findings: Vec::new(), show };
    // Read first, reported last: the registries' checks need to know what
    // Docker sends here.
    let docker = clients::DockerSide::read(helper);
    registries::config(&mut checks, helper)?;
    local::store(&mut checks, helper)?;
    registries::registries(&mut checks, helper, &docker, exchange)?;
    registries::failures(&mut checks, helper, started_ms)?;
    local::cache(&mut checks, helper)?;
    local::path(&mut checks)?;
    clients::docker_config(&mut checks, helper, &docker)?;
    clients::containers_auth(&mut checks, &docker)?;
    Ok(checks)
}
