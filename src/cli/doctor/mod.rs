//! `doctor`: everything a pull could trip on, each as a finding: `✓` fine,
//! `!` worth a look, `✗` a problem that will make a pull fail, with the fix.
//! Exits 1 if there is any problem; `--json` gives the same findings to
//! scripts; `--exchange` also makes one real exchange per registry.
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

use std::process::ExitCode;

use serde::Serialize;

use crate::helper::Helper;

/// `doctor`'s arguments.
#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    /// Also prove every exchange registry with one real exchange.
    #[arg(long)]
    pub exchange: bool,
    /// Print the findings as JSON: {"problems": N, "warnings": N, "findings": [{level, area, text, fix}]}.
    #[arg(long)]
    pub json: bool,
}

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    /// Fine.
    Ok,
    /// Worth a look; pulls work.
    Warning,
    /// A pull will fail.
    Problem,
}

#[derive(Debug, Serialize)]
struct Finding {
    level: Level,
    area: &'static str,
    text: String,
    fix: Option<String>,
}

/// The findings so far; printed as they are made unless `--json`.
struct Checks {
    findings: Vec<Finding>,
    json: bool,
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
        if !self.json {
            let mark = match level {
                Level::Ok => "✓",
                Level::Warning => "!",
                Level::Problem => "✗",
            };
            super::output::line(&format!("{mark} {area}: {text}"))?;
            if let Some(fix) = &fix {
                super::output::line(&format!("    fix: {fix}"))?;
            }
        }
        self.findings.push(Finding { level, area, text, fix });
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

    fn count(&self, level: Level) -> usize {
        self.findings.iter().filter(|f| f.level == level).count()
    }
}

pub(super) fn doctor(args: DoctorArgs, helper: &Helper) -> anyhow::Result<ExitCode> {
    let started_ms = crate::time::now_ms();
    let mut checks = Checks { findings: Vec::new(), json: args.json };
    // Read first, reported last: the registries' checks need to know what
    // Docker sends here.
    let docker = clients::DockerSide::read(helper);
    registries::config(&mut checks, helper)?;
    local::store(&mut checks, helper)?;
    registries::registries(&mut checks, helper, &docker, args.exchange)?;
    registries::failures(&mut checks, helper, started_ms)?;
    local::cache(&mut checks, helper)?;
    local::path(&mut checks)?;
    clients::docker_config(&mut checks, helper, &docker)?;
    clients::containers_auth(&mut checks, &docker)?;
    let (problems, warnings) = (checks.count(Level::Problem), checks.count(Level::Warning));
    if args.json {
        #[derive(Serialize)]
        struct Summary<'a> {
            problems: usize,
            warnings: usize,
            findings: &'a [Finding],
        }
        let summary = Summary { problems, warnings, findings: &checks.findings };
        super::output::line(&serde_json::to_string_pretty(&summary)?)?;
    } else {
        super::output::line(&match (problems, warnings) {
            (0, 0) => "\nno problems found".to_owned(),
            (p, w) => format!("\n{p} problem(s), {w} warning(s)"),
        })?;
    }
    Ok(if problems == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
