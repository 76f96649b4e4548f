//! `launch FILE PROGRAM [ARGS...]`: runs PROGRAM with FILE as its stdin.
//!
//! `hyperfine -N` starts commands without a shell, so it cannot redirect
//! stdin; Docker feeds a helper its request on stdin. This launcher opens
//! the file and *execs* the program (no fork, no wait), so it adds only its
//! own start-up and one `execve`. bench/run.sh measures that cost in the
//! same run (`launch FILE floor FILE` against `floor FILE`) and subtracts it.

use std::os::unix::process::CommandExt;
use std::process::{Command, ExitCode};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(input), Some(program)) = (args.next(), args.next()) else {
        eprintln!("usage: launch FILE PROGRAM [ARGS...]");
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
    let e = Command::new(&program).args(args).stdin(stdin).exec();
    eprintln!("launch: {}: {e}", program.to_string_lossy());
    ExitCode::from(127)
}
