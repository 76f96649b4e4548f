//! The local STS (the one the tests use) as a standalone process, for people
//! trying the helper by hand and for the benchmark.
//!
//! ```text
//! cargo run --example sts -- --help
//! cargo run --example sts -- --port 8080
//! ```
//!
//! By default it prints where it listens, a subject token and how to mint
//! more and exchange one, then serves until Ctrl-C or SIGTERM. It never
//! reads stdin for that: a shell that starts a command in the background
//! with `&` gives it /dev/null as stdin (a non-interactive shell does so
//! explicitly; an interactive one stops a background reader of the terminal
//! with SIGTTIN), which is why a version that served "until stdin closes"
//! exited at once when started with `&`. Such a background job also ignores
//! SIGINT (the shell's doing), so it is stopped with `kill PID`.
//!
//! Scripts ask for `--json` (one JSON line: `url`, `subject_token`,
//! `mint_url`, `oidc_url`, `oidc_request_token`, `stats_url`) and may tie the
//! server's life to a pipe with `--until-stdin-closes`, as bench/run.sh does.
//!
//! `--https` serves TLS with a fresh self-signed certificate for 127.0.0.1
//! and adds its PEM to the JSON line as `ca_pem` (the benchmark's cold
//! HTTPS row trusts it through the config's `ca_file`, and curl through
//! `--cacert`).

use std::io::{Read, Write};
use std::process::ExitCode;

use clap::Parser;
use test_servers::sts::{self, Fault, Sts, StsOptions};

/// A local RFC 8693 token-exchange server that is also its own identity
/// provider: it mints the subject (login) tokens it later accepts. It binds
/// 127.0.0.1 only and keeps everything in memory.
#[derive(Debug, Parser)]
#[command(name = "sts")]
#[command(after_help = "Examples:\n  \
cargo run --example sts                        # a free port, printed; Ctrl-C stops it\n  \
cargo run --example sts -- --port 8080 --lifetime 60\n  \
cargo run --example sts -- --json --until-stdin-closes <fifo   # for scripts\n  \
cargo run --example sts -- --json --https      # TLS; the JSON line carries ca_pem")]
struct Args {
    /// Listen on 127.0.0.1:N (default: a free port, printed at start).
    #[arg(long, value_name = "N", default_value_t = 0)]
    port: u16,
    /// Lifetime of the access tokens it issues (`expires_in`), in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3600)]
    lifetime: i64,
    /// Answer every exchange this many milliseconds late.
    #[arg(long, value_name = "N", default_value_t = 0)]
    delay_ms: u64,
    /// `sub` of the subject token printed at start.
    #[arg(long, value_name = "NAME", default_value = "alice")]
    subject: String,
    /// Lifetime of the subject token printed at start, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 86_400)]
    subject_lifetime: i64,
    /// Print one JSON line for scripts instead of the text for people.
    #[arg(long)]
    json: bool,
    /// Stop when stdin reaches end-of-file, so that the server lives exactly
    /// as long as the pipe a script holds open.
    #[arg(long)]
    until_stdin_closes: bool,
    /// Serve HTTPS with a fresh self-signed certificate for 127.0.0.1 (on a
    /// free port); --json then carries its PEM as `ca_pem`.
    #[arg(long, conflicts_with = "port")]
    https: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let options = StsOptions { lifetime_secs: args.lifetime, ..StsOptions::default() };
    let (server, ca_pem) = if args.https {
        let Ok(cert) =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        else {
            eprintln!("sts: cannot make a self-signed certificate");
            return ExitCode::FAILURE;
        };
        let pem = cert.cert.pem();
        (Sts::start_https(options, &pem, &cert.signing_key.serialize_pem()), Some(pem))
    } else {
        match Sts::bind(args.port, options) {
            Ok(server) => (server, None),
            Err(e) => {
                eprintln!("sts: {e}");
                return ExitCode::FAILURE;
            }
        }
    };
    if args.delay_ms > 0 {
        server.set_fault(Fault::Delay { millis: args.delay_ms });
    }
    let subject_token = server.mint_subject_token(&args.subject, args.subject_lifetime);
    let text = if args.json {
        json_line(&server, &subject_token, ca_pem.as_deref())
    } else {
        for_people(&server, &args, &subject_token)
    };
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    drop(stdout);

    if args.until_stdin_closes {
        let mut sink = [0u8; 256];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        return ExitCode::SUCCESS;
    }
    // Ctrl-C (SIGINT) and SIGTERM end the process by their default action;
    // nothing here needs cleaning up. A background job started by a shell
    // inherits SIGINT ignored, as it should, and is stopped by SIGTERM.
    loop {
        std::thread::park();
    }
}

fn json_line(server: &Sts, subject_token: &str, ca_pem: Option<&str>) -> String {
    let mut line = serde_json::json!({
        "url": server.url(),
        "subject_token": subject_token,
        "mint_url": server.mint_url(),
        "oidc_url": server.oidc_url(),
        "oidc_request_token": server.oidc_request_token(),
        "stats_url": format!("{}/stats", server.base_url()),
    });
    if let Some(pem) = ca_pem {
        line["ca_pem"] = pem.into();
    }
    format!("{line}\n")
}

fn for_people(server: &Sts, args: &Args, subject_token: &str) -> String {
    let url = server.url();
    let mint = server.mint_url();
    let config = serde_json::json!({
        "registries": { "registry.example.com": {
            "token_endpoint": url,
            "subject_token_type": sts::TOKEN_TYPE_JWT,
            "scope": "repository:{repository}:pull",
        }}
    });
    format!(
        "Local RFC 8693 token-exchange server on 127.0.0.1:{port} (access tokens live {lifetime} s)\n\
         \n\
         Token endpoint:\n  {url}\n\
         \n\
         A subject (login) token for {sub:?}, valid {sub_life} s, from the server's own identity provider:\n  \
         {subject_token}\n\
         \n\
         Mint another (sub, aud and lifetime in seconds are optional):\n  \
         curl -s '{mint}?sub=alice&lifetime=3600'\n\
         \n\
         Exchange one by hand:\n  \
         curl -s {url} \\\n    \
         -d grant_type={grant} \\\n    \
         -d subject_token_type={jwt} \\\n    \
         -d subject_token=\"$(curl -s '{mint}?sub=alice')\" \\\n    \
         -d scope=repository:team/app:pull\n\
         \n\
         Or point the helper at it (~/.config/docker-credential-exchange/config.json):\n  \
         {config}\n\
         and log in:\n  \
         curl -s '{mint}?sub=alice' | docker-credential-exchange login registry.example.com --token-stdin\n\
         \n\
         Request counts: curl -s {base}/stats\n\
         Serving until Ctrl-C, or `kill {pid}` when started in the background.\n",
        port = server.port(),
        lifetime = args.lifetime,
        sub = args.subject,
        sub_life = args.subject_lifetime,
        grant = sts::GRANT_TYPE_TOKEN_EXCHANGE,
        jwt = sts::TOKEN_TYPE_JWT,
        base = server.base_url(),
        pid = std::process::id(),
    )
}
