//! The test STS as a standalone process, for the benchmark and manual use.
//!
//! ```text
//! cargo run --example sts -- [--lifetime SECS] [--delay-ms N] [--subject-lifetime SECS] [--https] [--forever]
//! ```
//!
//! `--https` serves TLS with a fresh self-signed certificate for 127.0.0.1
//! and adds its PEM to the JSON line as `ca_pem` (the benchmark's cold
//! HTTPS row trusts it through `ca_file`, and curl through `--cacert`).
//!
//! Prints one JSON line, `{"url": …, "subject_token": …, "oidc_url": …}`, then
//! serves until killed or until stdin closes (`--forever` ignores stdin, for
//! callers that start it with stdin at /dev/null). `GET /stats` on the same
//! port answers `{"requests": N, "oidc_requests": M}`.

#[path = "../tests/support/sts.rs"]
mod sts;

use std::io::{Read, Write};
use std::process::ExitCode;

const USAGE: &str =
    "usage: sts [--lifetime SECS] [--delay-ms N] [--subject-lifetime SECS] [--https] [--forever]";

fn main() -> ExitCode {
    let mut options = sts::StsOptions::default();
    let mut delay_ms = 0u64;
    let mut subject_lifetime = 86_400i64;
    let mut forever = false;
    let mut https = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let parsed = match arg.as_str() {
            "--lifetime" => args.next().and_then(|v| v.parse().ok()).map(|v| options.lifetime_secs = v),
            "--delay-ms" => args.next().and_then(|v| v.parse().ok()).map(|v| delay_ms = v),
            "--subject-lifetime" => args.next().and_then(|v| v.parse().ok()).map(|v| subject_lifetime = v),
            "--https" => {
                https = true;
                Some(())
            }
            "--forever" => {
                forever = true;
                Some(())
            }
            _ => None,
        };
        if parsed.is_none() {
            eprintln!("sts: bad argument {arg:?}\n{USAGE}");
            return ExitCode::from(2);
        }
    }

    let (server, ca_pem) = if https {
        let Ok(cert) =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        else {
            eprintln!("sts: cannot make a self-signed certificate");
            return ExitCode::FAILURE;
        };
        let pem = cert.cert.pem();
        (sts::Sts::start_https(options, &pem, &cert.signing_key.serialize_pem()), Some(pem))
    } else {
        (sts::Sts::start(options), None)
    };
    if delay_ms > 0 {
        server.set_fault(sts::Fault::Delay { millis: delay_ms });
    }
    let mut line = serde_json::json!({
        "url": server.url(),
        "subject_token": server.mint_subject_token("bench-user", subject_lifetime),
        "oidc_url": server.oidc_url(),
        "oidc_request_token": server.oidc_request_token(),
        "stats_url": format!("{}/stats", server.base_url()),
    });
    if let Some(pem) = ca_pem {
        line["ca_pem"] = serde_json::Value::String(pem);
    }
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{line}").and_then(|()| stdout.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    drop(stdout);

    if forever {
        loop {
            std::thread::park();
        }
    }
    // Reading until EOF ties the server's life to the parent's pipe.
    let mut sink = [0u8; 256];
    while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
    ExitCode::SUCCESS
}
