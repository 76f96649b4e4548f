//! `generate man` and `generate completions SHELL`: the man page and shell
//! completion scripts, printed to stdout, made from the same clap
//! definitions that parse the arguments, so they describe exactly the CLI
//! that ships. Hidden: packaging runs it (`cargo deb` through `.ci/run`,
//! `install/install.sh`), people read its output.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Subcommand};

use super::Cli;

mod completions;
mod man;

/// What to generate.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    #[command(subcommand)]
    what: Generated,
}

#[derive(Debug, Subcommand)]
enum Generated {
    /// The man page, docker-credential-exchange(1), in roff.
    Man,
    /// The completion script for SHELL.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// Prints what `args` asks for to stdout.
///
/// # Errors
/// Writing to stdout failed.
pub fn generate(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    render(&args.what, &mut out).context("rendering")?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out).and_then(|()| stdout.flush()).context("writing to stdout")?;
    Ok(ExitCode::SUCCESS)
}

fn render(what: &Generated, out: &mut Vec<u8>) -> std::io::Result<()> {
    let mut command = Cli::command();
    match what {
        Generated::Man => man::render(command, out),
        Generated::Completions { shell } => completions::render(*shell, &mut command, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(what: Generated) -> String {
        let mut out = Vec::new();
        render(&what, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn man_page_is_section_1_and_names_every_subcommand_people_run() {
        let man = rendered(Generated::Man);
        assert!(man.contains(".TH docker-credential-exchange 1"), "{man}");
        for sub in ["login", "logout", "status", "token", "cache", "configure\\-docker", "doctor"] {
            assert!(man.contains(sub), "{sub} missing from the man page");
        }
    }

    #[test]
    fn man_page_leaves_out_hidden_subcommands() {
        let man = rendered(Generated::Man);
        assert!(!man.contains("generate"), "{man}");
    }

    #[test]
    fn man_page_is_one_page_without_references_to_others() {
        let man = rendered(Generated::Man);
        assert!(!man.contains("docker\\-credential\\-exchange\\-login(1)"), "{man}");
        assert!(man.contains(".SS \"docker\\-credential\\-exchange cache clear\""), "{man}");
        assert_eq!(man.matches(".TH ").count(), 1, "{man}");
    }

    #[test]
    fn man_page_says_how_docker_runs_the_helper() {
        let man = rendered(Generated::Man);
        assert!(man.contains("get|store|erase|list|version"), "{man}");
    }

    #[test]
    fn bash_completion_completes_the_subcommands() {
        let bash = rendered(Generated::Completions { shell: clap_complete::Shell::Bash });
        assert!(bash.contains("-o default docker-credential-exchange"), "{bash}");
        assert!(bash.contains("configure-docker"), "{bash}");
    }

    #[test]
    fn zsh_and_fish_completions_name_the_binary() {
        let zsh = rendered(Generated::Completions { shell: clap_complete::Shell::Zsh });
        assert!(zsh.starts_with("#compdef docker-credential-exchange"), "{zsh}");
        let fish = rendered(Generated::Completions { shell: clap_complete::Shell::Fish });
        assert!(fish.contains("complete -c docker-credential-exchange"), "{fish}");
    }
}
