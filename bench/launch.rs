//! `launch [NAME=VALUE...] FILE PROGRAM [ARGS...]`: runs PROGRAM with FILE
//! as its stdin and the given variables added to its environment.
//!
//! `hyperfine -N` starts commands without a shell, so it cannot redirect
//! stdin or set a variable for one command of several; Docker feeds a
//! helper its request on stdin. This launcher opens the file and *execs*
//! the program (no fork, no wait), so it adds only its own start-up and one
//! `execve`. bench/run.sh measures that cost in the same run (`launch FILE
//! floor FILE` against `floor FILE`) and subtracts it. The variables let
//! one hyperfine invocation compare the same program under several configs
//! (e.g. 1 and 1000 configured registries), interleaved.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1).peekable();
    let mut vars = Vec::new();
    while let Some((name, value)) = args.peek().and_then(|a| a.to_str()).and_then(assignment) {
        vars.push((name, value));
        args.next();
    }
    let (Some(input), Some(program)) = (args.next(), args.next()) else {
        eprintln!("usage: launch [NAME=VALUE...] FILE PROGRAM [ARGS...]");
        return ExitCode::from(2);
    };
    let stdin = match std::fs::File::open(&input) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("launch: {}: {e}", input.to_string_lossy());
            return ExitCode::from(2);
        }
    };
    // `exec` only returns on failure.
    let e = Command::new(&program).args(args).envs(vars).stdin(stdin).exec();
    eprintln!("launch: {}: {e}", program.to_string_lossy());
    ExitCode::from(127)
}

/// `NAME=VALUE` where NAME is a shell variable name; anything else (the
/// request file's path, say) ends the assignments.
fn assignment(arg: &str) -> Option<(String, String)> {
    let (name, value) = arg.split_once('=')?;
    let mut chars = name.chars();
    let first = chars.next()?;
    let valid =
        (first.is_ascii_alphabetic() || first == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| (name.to_owned(), value.to_owned()))
}
