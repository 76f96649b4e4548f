//! `doctor`: everything a pull could trip on, each as a finding: `✓` fine,
//! `!` worth a look, `✗` a problem that will make a pull fail, with the fix.
//! Exits 1 if there is any problem; `--json` gives the same findings to
//! scripts; `--exchange` also makes one real exchange per registry. The
//! checks themselves are [`crate::checkup`]'s.

use std::process::ExitCode;

use serde::Serialize;

use crate::checkup::{self, Finding, Level};
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

/// One finding for a person, as it is made.
fn show(finding: &Finding) -> std::io::Result<()> {
    let mark = match finding.level {
        Level::Ok => "✓",
        Level::Warning => "!",
        Level::Problem => "✗",
    };
    super::output::line(&format!("{mark} {}: {}", finding.area, finding.text))?;
    if let Some(fix) = &finding.fix {
        super::output::line(&format!("    fix: {fix}"))?;
    }
    Ok(())
}

pub(super) fn doctor(args: DoctorArgs, helper: &Helper) -> anyhow::Result<ExitCode> {
    let checks = checkup::run(helper, args.exchange, (!args.json).then_some(show as checkup::Show))?;
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
