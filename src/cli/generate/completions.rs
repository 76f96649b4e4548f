//! Shell completion scripts: clap_complete's, repaired and extended where
//! it falls short for this binary.
//!
//! - bash: clap_complete (4.6.12 and earlier) spells the state of a
//!   hyphenated binary two ways, `docker__credential__exchange__subcmd__import`
//!   in the loop that walks the words and
//!   `docker__subcmd__credential__subcmd__exchange__subcmd__import` in the
//!   arms that complete it, so nothing below the top level ever completed
//!   (clap issues 6421 and 6529). The script is generated for a name
//!   without hyphens, where both spellings agree, and only the
//!   `complete` registration names the real command. The function name is
//!   then a valid identifier too, which POSIX-mode bash insists on.
//! - `import --from` completes the helpers found on `PATH`: every
//!   `docker-credential-*` program, without the prefix and without this
//!   helper. clap's static scripts cannot list them, so each shell gets a
//!   small function that looks at `PATH` when the user presses TAB.
//!
//! Each repair checks that the text it changes is there, so a clap_complete
//! that generates something else fails `generate` (and its tests) instead of
//! shipping a script that silently lost the repair.

use std::io;

use clap_complete::Shell;

/// The command's real name.
const NAME: &str = "docker-credential-exchange";
/// The name bash's script is generated for: no hyphen, so that
/// clap_complete's two spellings of a subcommand's state agree.
const BASH_NAME: &str = "docker_credential_exchange";

/// Writes the completion script for `shell`.
///
/// # Errors
/// clap_complete generated something the repairs do not recognise.
pub(super) fn render(shell: Shell, command: &mut clap::Command, out: &mut Vec<u8>) -> io::Result<()> {
    match shell {
        Shell::Bash => {
            let mut script = Vec::new();
            clap_complete::generate(shell, command, BASH_NAME, &mut script);
            out.extend_from_slice(bash(&String::from_utf8_lossy(&script))?.as_bytes());
        }
        Shell::Zsh => {
            let mut script = Vec::new();
            clap_complete::generate(shell, command, NAME, &mut script);
            out.extend_from_slice(zsh(&String::from_utf8_lossy(&script))?.as_bytes());
        }
        Shell::Fish => {
            let mut script = Vec::new();
            clap_complete::generate(shell, command, NAME, &mut script);
            out.extend_from_slice(fish(&String::from_utf8_lossy(&script))?.as_bytes());
        }
        other => clap_complete::generate(other, command, NAME, out),
    }
    Ok(())
}

fn unexpected(shell: &str, what: &str) -> io::Error {
    io::Error::other(format!(
        "clap_complete's {shell} script has no {what}; the repairs in src/cli/generate/completions.rs need updating"
    ))
}

/// Bash: registers the command under its real name, through a function
/// that completes `import --from` and hands everything else to clap's.
fn bash(script: &str) -> io::Result<String> {
    let clap_function = format!("_{BASH_NAME}");
    let mut out = String::with_capacity(script.len() + BASH_HELPERS.len());
    let mut registered = 0;
    for line in script.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        let registration = format!("complete -F {clap_function} ");
        if let Some(options) = trimmed.strip_prefix(&registration) {
            // `complete -F _fn -o … NAME`: the options stay, the command
            // becomes the real one and the function the wrapper below.
            let options =
                options.strip_suffix(BASH_NAME).ok_or_else(|| unexpected("bash", "registration"))?;
            out.push_str(&format!("{indent}complete -F {clap_function}_with_helpers {options}{NAME}\n"));
            registered += 1;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if registered == 0 || !script.contains(&format!("{BASH_NAME}__subcmd__import)")) {
        return Err(unexpected("bash", "registration or import arm"));
    }
    // The wrapper must exist before bash can call it, not before `complete`
    // names it; putting it last keeps clap's script intact above.
    out.push_str(BASH_HELPERS);
    Ok(out)
}

const BASH_HELPERS: &str = r#"
# `import --from HELPER`: the credential helpers on PATH, as Docker names
# them (docker-credential-pass is `pass`), this one left out.
_docker_credential_exchange_helpers() {
    local name
    compgen -c docker-credential- | while IFS= read -r name; do
        name=${name#docker-credential-}
        [[ -n $name && $name != exchange ]] && printf '%s\n' "$name"
    done | sort -u
}

_docker_credential_exchange_with_helpers() {
    local word seen_import=0
    for word in "${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
        [[ $word == import ]] && seen_import=1
    done
    if [[ $seen_import == 1 && $3 == --from ]]; then
        local IFS=$'\n'
        COMPREPLY=( $(compgen -W "$(_docker_credential_exchange_helpers)" -- "$2") )
        return 0
    fi
    _docker_credential_exchange "$@"
}
"#;

/// Zsh: `import --from` completes through a function that lists the
/// helpers on PATH.
fn zsh(script: &str) -> io::Result<String> {
    const CLAP_FROM: &str = "]:HELPER:_default' \\";
    const OURS: &str = "]:HELPER:_docker-credential-exchange_helpers' \\";
    const DISPATCH: &str = "if [ \"$funcstack[1]\" = \"_docker-credential-exchange\" ]; then";
    let from_lines = script.lines().filter(|l| l.starts_with("'--from=[") && l.ends_with(CLAP_FROM)).count();
    if from_lines != 1 || !script.contains(DISPATCH) {
        return Err(unexpected("zsh", "single `--from` spec or dispatch block"));
    }
    let mut out = String::with_capacity(script.len() + ZSH_HELPERS.len());
    for line in script.lines() {
        if line.starts_with("'--from=[") && line.ends_with(CLAP_FROM) {
            out.push_str(&line.replace(CLAP_FROM, OURS));
        } else {
            if line == DISPATCH {
                out.push_str(ZSH_HELPERS);
            }
            out.push_str(line);
        }
        out.push('\n');
    }
    Ok(out)
}

const ZSH_HELPERS: &str = r"(( $+functions[_docker-credential-exchange_helpers] )) ||
_docker-credential-exchange_helpers() {
    # The credential helpers on PATH, as Docker names them, this one left
    # out: executable files only (N: none is no error, -*: executable, after
    # symlinks), where zsh's command table would list any file.
    local -a helpers
    helpers=( ${^path}/docker-credential-*(N-*:t) )
    helpers=( ${(u)${helpers#docker-credential-}:#exchange} )
    _wanted helpers expl 'credential helper' compadd -a helpers
}

";

/// Fish: `import --from` takes no file names, only the helpers on PATH.
fn fish(script: &str) -> io::Result<String> {
    let is_from = |line: &str| {
        line.starts_with(&format!(
            "complete -c {NAME} -n \"__fish_docker_credential_exchange_using_subcommand import\""
        )) && line.contains(" -l from ")
            && line.ends_with(" -r")
    };
    if script.lines().filter(|l| is_from(l)).count() != 1 {
        return Err(unexpected("fish", "single `import --from` line"));
    }
    let mut out = String::with_capacity(script.len() + FISH_HELPERS.len());
    out.push_str(FISH_HELPERS);
    for line in script.lines() {
        if is_from(line) {
            // -x: a value is required and it is not a file.
            let without_r = &line[..line.len() - " -r".len()];
            out.push_str(&format!("{without_r} -x -a '(__fish_docker_credential_exchange_helpers)'"));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    Ok(out)
}

const FISH_HELPERS: &str = r"# The credential helpers on PATH, as Docker names them, this one left out.
function __fish_docker_credential_exchange_helpers
    for dir in $PATH
        for file in $dir/docker-credential-*
            test -x $file; and not test -d $file; and string replace -r '^.*/docker-credential-' '' -- $file
        end
    end | string match -v -- exchange | sort -u
end

";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_renders_with_its_repairs() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::Elvish, Shell::PowerShell] {
            let mut out = Vec::new();
            render(shell, &mut <crate::cli::Cli as clap::CommandFactory>::command(), &mut out).unwrap();
            assert!(String::from_utf8(out).unwrap().contains(NAME), "{shell}");
        }
    }

    #[test]
    fn a_script_the_repairs_do_not_recognise_is_an_error_not_a_silent_loss() {
        let script = "_something_else() { :; }\n";
        for repaired in [bash(script), zsh(script), fish(script)] {
            let error = repaired.unwrap_err().to_string();
            assert!(error.contains("src/cli/generate/completions.rs"), "{error}");
        }
    }

    #[test]
    fn bash_states_are_spelled_one_way() {
        let mut out = Vec::new();
        render(Shell::Bash, &mut <crate::cli::Cli as clap::CommandFactory>::command(), &mut out).unwrap();
        let script = String::from_utf8(out).unwrap();
        // The loop sets this state and an arm completes it.
        assert!(script.contains("cmd=\"docker_credential_exchange__subcmd__import\""), "{script}");
        assert!(script.contains("\n        docker_credential_exchange__subcmd__import)"), "{script}");
        assert!(!script.contains("docker__subcmd__credential"), "{script}");
    }
}
