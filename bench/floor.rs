//! The benchmark's floor: the least a Rust credential helper can do, which
//! is to start and read one small file (the cache entry, in the helper's
//! case) and write it out. Built with `rustc -O` by bench/run.sh.

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(path) = std::env::args_os().nth(1) else {
        eprintln!("usage: floor FILE");
        return ExitCode::from(2);
    };
    match std::fs::read(&path) {
        Ok(bytes) => {
            let _ = std::io::stdout().lock().write_all(&bytes);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}
