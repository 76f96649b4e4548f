//! The shell completions, run in the real shells: the scripts the binary's
//! `generate completions SHELL` prints are loaded into bash, zsh and fish,
//! and each shell is asked what it would offer at TAB for a few command
//! lines a person types. Checking that the files exist (or contain a word)
//! missed that bash completed nothing below the top level.
//!
//! - bash: the script is sourced and the function `complete -p` names is
//!   called with `COMP_WORDS`/`COMP_CWORD` set, as readline calls it;
//!   `COMPREPLY` is the answer.
//! - zsh: an interactive `zsh` on a pseudo-terminal with compinit and the
//!   script on `fpath`; a TAB is typed, and a `compadd` wrapper writes every
//!   match the completion functions add (after zsh's own prefix matching)
//!   to a file.
//! - fish: `complete -C LINE` prints the candidates.
//!
//! Every shell gets the same `PATH`: a directory of fake credential helpers
//! first (for `import --from`), then the system's.
#![cfg(target_os = "linux")]

mod support;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use support::cmd::bin;
use support::pty::Pty;
use support::services::require_tool;

/// The fake helpers `import --from` must offer, as Docker names them.
const FAKE_HELPERS: [&str; 2] = ["fakevault", "fake-keychain"];

/// A directory with the completion script for `shell` and a `bin`
/// directory of fake helpers (plus this one, and a helper file that is not
/// executable).
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// The completions of `shell`, when the shell is installed (otherwise
    /// a loud skip).
    fn with(shell: &str) -> Option<Setup> {
        require_tool(shell).then(|| Setup::new(shell))
    }

    fn new(shell: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(bin()).args(["generate", "completions", shell]).output().unwrap();
        assert!(
            out.status.success(),
            "generate completions {shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let name = match shell {
            "zsh" => "_docker-credential-exchange".to_owned(),
            _ => format!("docker-credential-exchange.{shell}"),
        };
        fs::write(dir.path().join(name), out.stdout).unwrap();
        let bin_dir = dir.path().join("bin");
        fs::create_dir(&bin_dir).unwrap();
        for helper in FAKE_HELPERS {
            executable(&bin_dir.join(format!("docker-credential-{helper}")));
        }
        executable(&bin_dir.join("docker-credential-exchange"));
        fs::write(bin_dir.join("docker-credential-notrunnable"), "not a program").unwrap();
        Setup { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// The fake helpers' directory, then the system's PATH.
    fn search_path(&self) -> String {
        format!("{}:{}", self.path("bin").display(), std::env::var("PATH").unwrap_or_default())
    }
}

fn executable(path: &Path) {
    fs::write(path, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The credential helpers a shell may offer for `import --from` beyond the
/// fakes: whatever the system itself has on PATH (Debian's
/// golang-docker-credential-helpers installs `pass` and `secretservice`).
fn system_helpers() -> Vec<String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut found = Vec::new();
    for dir in std::env::split_paths(&path) {
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(helper) = name.strip_prefix("docker-credential-") {
                found.push(helper.to_owned());
            }
        }
    }
    found
}

/// Checks the offers for `import --from `: every fake helper, never this
/// helper, never a file that cannot run, nothing that is not a helper.
fn assert_helpers_offered(shell: &str, offered: &[String]) {
    for helper in FAKE_HELPERS {
        assert!(offered.iter().any(|o| o == helper), "{shell}: {helper} not offered in {offered:?}");
    }
    assert!(!offered.iter().any(|o| o == "exchange"), "{shell} offers this helper itself: {offered:?}");
    assert!(
        !offered.iter().any(|o| o == "notrunnable"),
        "{shell} offers a file that cannot run: {offered:?}"
    );
    let system = system_helpers();
    for o in offered {
        assert!(
            FAKE_HELPERS.contains(&o.as_str()) || system.contains(o),
            "{shell} offers {o:?}, which is no docker-credential-* program on PATH: {offered:?}"
        );
    }
}

/// The command lines typed before TAB, and what each must offer.
const CASES: [(&str, &[&str]); 4] = [
    ("docker-credential-exchange ", &["login", "configure-docker", "import", "doctor", "cache"]),
    ("docker-credential-exchange configure-docker -", &["--store", "--remove"]),
    ("docker-credential-exchange import --", &["--from", "--dry-run"]),
    ("docker-credential-exchange cache ", &["clear", "dir"]),
];
const IMPORT_FROM: &str = "docker-credential-exchange import --from ";

fn assert_offers(shell: &str, line: &str, offered: &[String], expected: &[&str]) {
    for word in expected {
        assert!(
            offered.iter().any(|o| o == word),
            "{shell}: `{line}` TAB does not offer {word}: {offered:?}"
        );
    }
}

// ---- bash ----

/// What bash's completion function offers for `line` (TAB at its end).
fn bash_offers(setup: &Setup, line: &str) -> Vec<String> {
    let script = r#"
source "$1"
spec=$(complete -p docker-credential-exchange) || exit 3
fn=${spec#*-F }
fn=${fn%% *}
read -r -a COMP_WORDS <<<"$2"
[[ $2 == *' ' ]] && COMP_WORDS+=("")
COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
COMP_LINE=$2
COMP_POINT=${#2}
cur=${COMP_WORDS[COMP_CWORD]}
prev=${COMP_WORDS[COMP_CWORD-1]}
"$fn" docker-credential-exchange "$cur" "$prev"
printf '%s\n' "${COMPREPLY[@]}"
"#;
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", script, "bash"])
        .arg(setup.path("docker-credential-exchange.bash"))
        .arg(line)
        .env("PATH", setup.search_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bash completion of {line:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn bash_completes_subcommands_and_their_options() {
    let Some(setup) = Setup::with("bash") else { return };
    for (line, expected) in CASES {
        assert_offers("bash", line, &bash_offers(&setup, line), expected);
    }
}

#[test]
fn bash_completes_import_from_with_the_helpers_on_path() {
    let Some(setup) = Setup::with("bash") else { return };
    assert_helpers_offered("bash", &bash_offers(&setup, IMPORT_FROM));
    let fake = bash_offers(&setup, "docker-credential-exchange import --from fakev");
    assert_eq!(fake, ["fakevault"], "the typed prefix narrows the helpers");
}

#[test]
fn bash_loads_the_script_in_posix_mode() {
    // Where /bin/sh is bash, scripts run with `set -o posix`, which refuses
    // a function name with a hyphen.
    let Some(setup) = Setup::with("bash") else { return };
    let out = Command::new("bash")
        .args(["--posix", "--norc", "-c", "source \"$1\" && complete -p docker-credential-exchange", "bash"])
        .arg(setup.path("docker-credential-exchange.bash"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

// ---- fish ----

/// What fish offers for `line`: `complete -C` prints `candidate\tdescription`.
fn fish_offers(setup: &Setup, line: &str) -> Vec<String> {
    let out = Command::new("fish")
        .args(["--no-config", "-c", "source $argv[1]; complete -C $argv[2]"])
        .arg(setup.path("docker-credential-exchange.fish"))
        .arg(line)
        .env("PATH", setup.search_path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fish completion of {line:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().map(|l| l.split('\t').next().unwrap_or_default().to_owned()).collect()
}

#[test]
fn fish_completes_subcommands_and_their_options() {
    let Some(setup) = Setup::with("fish") else { return };
    for (line, expected) in CASES {
        assert_offers("fish", line, &fish_offers(&setup, line), expected);
    }
}

#[test]
fn fish_completes_import_from_with_the_helpers_on_path_and_no_files() {
    let Some(setup) = Setup::with("fish") else { return };
    // A file in the working directory must not be offered as a helper.
    fs::write(setup.path("fakefile"), "").unwrap();
    let offered = fish_offers(&setup, IMPORT_FROM);
    assert_helpers_offered("fish", &offered);
    assert!(!offered.iter().any(|o| o.contains("fakefile")), "{offered:?}");
}

// ---- zsh ----

/// An interactive zsh on a pseudo-terminal, set up to record every match
/// its completion functions add.
struct Zsh {
    pty: Pty,
    matches: PathBuf,
    round: usize,
}

impl Zsh {
    fn start(setup: &Setup) -> Zsh {
        let matches = setup.path("matches.txt");
        // The wrapper records what a completion adds, after zsh's own
        // matching against the typed prefix (-A); calls that already
        // collect matches for a caller (-A, -O, -D) pass straight through.
        let zshrc = format!(
            r#"PS1='%% ' RPS1=''
unsetopt autolist listambiguous beep
fpath=({dir} $fpath)
autoload -Uz compinit && compinit -u -d {dir}/zcompdump
compadd() {{
    if [[ " $* " == *' -'[AOD]' '* ]]; then
        builtin compadd "$@"
        return
    fi
    local -a __matched
    builtin compadd -A __matched "$@"
    (( $#__matched )) && print -rl -- $__matched >> {matches}
    builtin compadd "$@"
}}
"#,
            dir = setup.dir.path().display(),
            matches = matches.display(),
        );
        fs::write(setup.path(".zshrc"), zshrc).unwrap();
        let mut command = Command::new("zsh");
        command
            .arg("-i")
            .env_clear()
            .env("ZDOTDIR", setup.dir.path())
            .env("HOME", setup.dir.path())
            .env("TERM", "dumb")
            .env("PATH", setup.search_path())
            .current_dir(setup.dir.path());
        let pty = Pty::spawn(command);
        pty.expect("% ", Duration::from_secs(30));
        Zsh { pty, matches, round: 0 }
    }

    /// Types `line`, then TAB, then clears the line and waits for a
    /// marker command's output: zle handles keys in order, so the
    /// completion has finished when the marker shows.
    fn offers(&mut self, line: &str) -> Vec<String> {
        let _ = fs::remove_file(&self.matches);
        self.round += 1;
        let marker = 1000 + self.round;
        self.pty.send(format!("{line}\t\x15print $(( {marker} - 1 ))done\r").as_bytes());
        self.pty.expect(&format!("{}done", marker - 1), Duration::from_secs(30));
        let text = fs::read_to_string(&self.matches).unwrap_or_default();
        text.lines().map(str::to_owned).collect()
    }
}

#[test]
fn zsh_completes_subcommands_and_their_options() {
    let Some(setup) = Setup::with("zsh") else { return };
    let mut zsh = Zsh::start(&setup);
    for (line, expected) in CASES {
        let offered = zsh.offers(line);
        assert_offers("zsh", line, &offered, expected);
    }
}

#[test]
fn zsh_completes_import_from_with_the_helpers_on_path() {
    let Some(setup) = Setup::with("zsh") else { return };
    let mut zsh = Zsh::start(&setup);
    let offered = zsh.offers(IMPORT_FROM);
    assert_helpers_offered("zsh", &offered);
}
