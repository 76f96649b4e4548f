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
        Generated::Man => man_page(command, out),
        Generated::Completions { shell } => {
            let name = command.get_name().to_owned();
            clap_complete::generate(*shell, &mut command, name, out);
            Ok(())
        }
    }
}

/// One page for the whole tool, like ssh(1) rather than git's page per
/// command: clap_mangen's own SUBCOMMANDS section points at a page per
/// subcommand (`docker-credential-exchange-login(1)`), which would be
/// dangling. So the top-level sections come from clap_mangen as they are,
/// and each visible subcommand, down to `cache clear`, gets a subsection
/// made of its own synopsis, description, options and example.
fn man_page(mut command: clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    // Building sets every subcommand's full name (`docker-credential-exchange
    // cache clear`) for its synopsis.
    command.build();
    let top = clap_mangen::Man::new(command.clone());
    top.render_title(out)?;
    top.render_name_section(out)?;
    top.render_synopsis_section(out)?;
    top.render_description_section(out)?;
    top.render_options_section(out)?;
    out.extend_from_slice(PROTOCOL_SECTION.as_bytes());
    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in visible_leaves(&command) {
        let man = clap_mangen::Man::new(sub.clone());
        let name = sub.get_bin_name().unwrap_or_else(|| sub.get_name());
        out.extend_from_slice(format!(".SS \"{}\"\n", name.replace('-', "\\-")).as_bytes());
        out.extend(section_body(|w| man.render_synopsis_section(w))?);
        out.extend_from_slice(b".PP\n");
        out.extend(section_body(|w| man.render_description_section(w))?);
        out.extend(section_body(|w| man.render_options_section(w))?);
        if sub.get_after_help().is_some() {
            // Examples keep their lines and indentation.
            out.extend_from_slice(b".PP\n.nf\n");
            out.extend(section_body(|w| man.render_extra_section(w))?);
            out.extend_from_slice(b".fi\n");
        }
    }
    top.render_version_section(out)
}

/// What Docker runs, which clap does not parse (see `crate::main`).
const PROTOCOL_SECTION: &str = r#".SH DOCKER CREDENTIAL HELPER PROTOCOL
Docker, BuildKit, skopeo, podman and other clients run
.B docker\-credential\-exchange get|store|erase|list|version
with the request on standard input, as for every docker\-credential\-* helper.
Point them at it with
.B configure\-docker
or by hand in Docker's config.json, for chosen registries or for all:
.PP
.nf
  { "credHelpers": { "registry.example.com": "exchange" } }
  { "credsStore": "exchange" }
.fi
"#;

/// Every subcommand a person runs, depth first, without the groups that
/// only hold others (`cache`) and without hidden ones.
fn visible_leaves(command: &clap::Command) -> Vec<&clap::Command> {
    let mut leaves = Vec::new();
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set() && s.get_name() != "help") {
        if sub.has_subcommands() {
            leaves.extend(visible_leaves(sub));
        } else {
            leaves.push(sub);
        }
    }
    leaves
}

/// A section rendered by clap_mangen without its `.SH` heading and the
/// preamble every render repeats, to be placed under a subsection.
fn section_body(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> std::io::Result<Vec<u8>> {
    let mut rendered = Vec::new();
    render(&mut rendered)?;
    let text = String::from_utf8_lossy(&rendered);
    let mut body = String::new();
    for line in text.lines() {
        let preamble = line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq");
        if !preamble && !line.starts_with(".SH ") {
            body.push_str(line);
            body.push('\n');
        }
    }
    Ok(body.into_bytes())
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
