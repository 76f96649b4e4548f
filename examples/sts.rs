//! The local STS (the one the tests use) as a standalone process, for people
//! trying the helper by hand and for the benchmark.
//!
//! ```text
//! cargo run --example sts -- --help
//! cargo run --example sts -- --port 8080
//! cargo run --example sts -- --registry-realm     # and a token realm for docker-registry
//! ```
//!
//! By default it prints where it listens, a subject token, and commands
//! that work as printed: a config of its own for the helper (a host entry
//! with a fixed `scope`, the shape Docker can use, since Docker passes a
//! helper the host only), the login, and a `get` as Docker runs it. Then it
//! serves until Ctrl-C or SIGTERM. It never reads stdin for that: a shell
//! that starts a command in the background with `&` gives it /dev/null as
//! stdin (a non-interactive shell does so explicitly; an interactive one
//! stops a background reader of the terminal with SIGTTIN), which is why a
//! version that served "until stdin closes" exited at once when started
//! with `&`. Such a background job also ignores SIGINT (the shell's doing),
//! so it is stopped with `kill PID`.
//!
//! `--registry-realm` also serves distribution's token authentication
//! ("realm") trusting this STS's tokens, the one the end-to-end tests use,
//! and writes a complete config for Debian's `docker-registry` that trusts
//! the realm: the commands it prints then go from nothing to a `docker
//! push` and `docker pull` through the helper (README, "Try it end to
//! end").
//!
//! Scripts ask for `--json` (one JSON line: `url`, `subject_token`,
//! `mint_url`, `oidc_url`, `oidc_request_token`, `stats_url`, and with
//! `--registry-realm` a `realm` object) and may tie the server's life to a
//! pipe with `--until-stdin-closes`, as bench/run.sh does.
//!
//! `--https` serves TLS with a fresh self-signed certificate for 127.0.0.1
//! and adds its PEM to the JSON line as `ca_pem` (the benchmark's cold
//! HTTPS row trusts it through the config's `ca_file`, and curl through
//! `--cacert`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use test_servers::realm::{Realm, RealmOptions};
use test_servers::sts::{self, Fault, Sts, StsOptions};

/// The config key when there is no registry: any name works, since
/// nothing but the helper ever sees it.
const EXAMPLE_REGISTRY: &str = "registry.example.com";
/// The audience the realm demands on STS tokens, and so the one the
/// printed config asks for.
const REALM_AUDIENCE: &str = "https://registry.local";
/// The repository the printed config's fixed scope names, and the image
/// the printed commands push and pull.
const REPOSITORY: &str = "demo/hello";

/// A local RFC 8693 token-exchange server that is also its own identity
/// provider: it mints the subject (login) tokens it later accepts. It binds
/// 127.0.0.1 only and keeps everything in memory.
#[derive(Debug, Parser)]
#[command(name = "sts")]
#[command(after_help = "Examples:\n  \
cargo run --example sts                        # a free port, printed; Ctrl-C stops it\n  \
cargo run --example sts -- --port 8080 --lifetime 60\n  \
cargo run --example sts -- --registry-realm    # and a token realm for docker-registry on 127.0.0.1:5000\n  \
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
    /// Also serve a Docker registry token realm that trusts this STS, and
    /// write a docker-registry config that trusts the realm.
    #[arg(long)]
    registry_realm: bool,
    /// With --registry-realm: the port docker-registry is to listen on.
    #[arg(long, value_name = "N", default_value_t = 5000, requires = "registry_realm")]
    registry_port: u16,
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

/// The realm and the docker-registry config written for it.
struct RegistrySide {
    realm: Realm,
    /// `127.0.0.1:PORT`: the registry's name for Docker, and the config key.
    addr: String,
    config: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Before any server thread starts, so that every thread inherits it.
    #[cfg(unix)]
    let stop_signals = stop::block();
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
    let registry = if args.registry_realm {
        match start_realm(&server, args.registry_port) {
            Ok(side) => Some(side),
            Err(e) => {
                eprintln!("sts: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        None
    };
    let subject_token = server.mint_subject_token(&args.subject, args.subject_lifetime);
    let text = if args.json {
        json_line(&server, &subject_token, ca_pem.as_deref(), registry.as_ref())
    } else {
        for_people(&server, &args, &subject_token, registry.as_ref())
    };
    let mut stdout = std::io::stdout().lock();
    if stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()).is_err() {
        return ExitCode::FAILURE;
    }
    drop(stdout);

    if args.until_stdin_closes {
        // Signals keep their default action here: a script may stop the
        // server with one instead of closing the pipe.
        #[cfg(unix)]
        stop::unblock(&stop_signals);
        let mut sink = [0u8; 256];
        while matches!(std::io::stdin().read(&mut sink), Ok(n) if n > 0) {}
        return ExitCode::SUCCESS;
    }
    // Ctrl-C (SIGINT) and SIGTERM stop it. On Unix they are waited for,
    // so that the servers are dropped and the realm's directory (its
    // certificate, the registry config and the pushed images) is removed;
    // a background job started by a shell inherits SIGINT ignored, as it
    // should, and is stopped by SIGTERM. Elsewhere their default action
    // ends the process.
    #[cfg(unix)]
    stop::wait(&stop_signals);
    #[cfg(not(unix))]
    loop {
        std::thread::park();
    }
    #[cfg(unix)]
    ExitCode::SUCCESS
}

/// Waiting for SIGINT or SIGTERM instead of dying by them.
#[cfg(unix)]
mod stop {
    /// Blocks SIGINT and SIGTERM in this thread (and the threads it
    /// starts later); returns the set for [`wait`].
    pub fn block() -> libc::sigset_t {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before
        // use; pthread_sigmask only changes this thread's mask.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            set
        }
    }

    /// Undoes [`block`] for this thread, which then takes the signals with
    /// their default action (the other threads keep them blocked).
    pub fn unblock(set: &libc::sigset_t) {
        // SAFETY: as in `block`.
        unsafe {
            libc::pthread_sigmask(libc::SIG_UNBLOCK, set, std::ptr::null_mut());
        }
    }

    /// Returns when one of the blocked signals arrives.
    pub fn wait(set: &libc::sigset_t) {
        let mut signal = 0;
        // SAFETY: `set` was made by `block`; sigwait writes one int.
        while unsafe { libc::sigwait(set, &mut signal) } != 0 {}
    }
}

/// The realm, trusting `server`'s access tokens for [`REALM_AUDIENCE`],
/// and a docker-registry config beside its signing certificate.
fn start_realm(server: &Sts, registry_port: u16) -> Result<RegistrySide, String> {
    let realm =
        Realm::start(RealmOptions::new(&server.issuer(), server.access_token_decoding_key(), REALM_AUDIENCE));
    let addr = format!("127.0.0.1:{registry_port}");
    let config = realm.dir().join("registry.yml");
    let storage = realm.dir().join("storage");
    std::fs::create_dir_all(&storage).map_err(|e| format!("cannot create {}: {e}", storage.display()))?;
    let yaml = registry_config(&realm, &addr, &storage);
    std::fs::write(&config, yaml).map_err(|e| format!("cannot write {}: {e}", config.display()))?;
    Ok(RegistrySide { realm, addr, config })
}

/// distribution's `auth: token:` settings for the realm.
fn auth_block(realm: &Realm) -> String {
    format!(
        "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    rootcertbundle: {}\n",
        yaml(&realm.url()),
        yaml(realm.service()),
        yaml(realm.issuer()),
        yaml(&realm.rootcert_path().display().to_string()),
    )
}

/// A whole docker-registry config: plain http on `addr` (Docker trusts
/// 127.0.0.0/8 without TLS), storage beside it, and the realm's auth.
fn registry_config(realm: &Realm, addr: &str, storage: &Path) -> String {
    format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
         http:\n  addr: {}\n  secret: local-try-it\n{}",
        yaml(&storage.display().to_string()),
        yaml(addr),
        auth_block(realm),
    )
}

/// A YAML string (JSON strings are YAML strings).
fn yaml(value: &str) -> String {
    serde_json::Value::String(value.to_owned()).to_string()
}

fn json_line(
    server: &Sts,
    subject_token: &str,
    ca_pem: Option<&str>,
    registry: Option<&RegistrySide>,
) -> String {
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
    if let Some(side) = registry {
        line["realm"] = serde_json::json!({
            "url": side.realm.url(),
            "service": side.realm.service(),
            "issuer": side.realm.issuer(),
            "rootcertbundle": side.realm.rootcert_path(),
            "registry_config": side.config,
            "registry": side.addr,
            "audience": REALM_AUDIENCE,
        });
    }
    format!("{line}\n")
}

/// The helper's config entry for this server: a host entry with a fixed
/// scope, which Docker can use (it passes the host only, so a `scope`
/// that needs `{repository}` would fail every `get`).
fn helper_config(server: &Sts, registry: Option<&RegistrySide>) -> serde_json::Value {
    let mut entry = serde_json::json!({
        "token_endpoint": server.url(),
        "subject_token_type": sts::TOKEN_TYPE_JWT,
        "scope": format!("repository:{REPOSITORY}:pull,push"),
    });
    let key = match registry {
        Some(side) => {
            entry["audience"] = REALM_AUDIENCE.into();
            side.addr.clone()
        }
        None => EXAMPLE_REGISTRY.to_owned(),
    };
    serde_json::json!({ "registries": { key: entry } })
}

/// The config file the helper reads when no variable names one, on this
/// system, as the helper computes it.
fn default_config_path() -> String {
    directories::ProjectDirs::from("", "", "docker-credential-exchange").map_or_else(
        || "the config file (`docker-credential-exchange doctor` names it)".to_owned(),
        |dirs| dirs.config_dir().join("config.json").display().to_string(),
    )
}

fn for_people(server: &Sts, args: &Args, subject_token: &str, registry: Option<&RegistrySide>) -> String {
    let url = server.url();
    let mint = server.mint_url();
    let config = helper_config(server, registry);
    let key = registry.map_or(EXAMPLE_REGISTRY, |side| side.addr.as_str());
    let mut text = format!(
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
         -d scope=repository:{REPOSITORY}:pull\n",
        port = server.port(),
        lifetime = args.lifetime,
        sub = args.subject,
        sub_life = args.subject_lifetime,
        grant = sts::GRANT_TYPE_TOKEN_EXCHANGE,
        jwt = sts::TOKEN_TYPE_JWT,
    );
    if let Some(side) = registry {
        text.push_str(&format!(
            "\n\
             Registry token realm on {realm}, trusting this server's tokens for audience {REALM_AUDIENCE}.\n\
             distribution's settings for it (paste into a docker-registry config.yml):\n\
             {auth}\
             A whole docker-registry config with them, listening on {addr}: {config}\n",
            realm = side.realm.url(),
            auth = indent(&auth_block(&side.realm)),
            addr = side.addr,
            config = side.config.display(),
        ));
    }
    text.push_str(&format!(
        "\n\
         Try it: run these in another shell (a POSIX shell, with docker-credential-exchange on PATH).\n\
         The helper gets a config of its own, so yours is left alone; to keep the entry, add it to\n\
         {default_config} instead.\n\
         \n\
         printf '%s\\n' '{config}' > sts-config.json\n\
         export DOCKER_CREDENTIAL_EXCHANGE_CONFIG=\"$PWD/sts-config.json\"\n",
        default_config = default_config_path(),
    ));
    match registry {
        None => text.push_str(&format!(
            "curl -s '{mint}?sub=alice' | docker-credential-exchange login {key} --token-stdin\n\
             echo {key} | docker-credential-exchange get\n"
        )),
        Some(side) => text.push_str(&format!(
            "docker-registry serve {config} &\n\
             docker-credential-exchange configure-docker {key}\n\
             curl -s '{mint}?sub=alice' | docker-credential-exchange login {key} --token-stdin\n\
             echo hello > hello.txt && tar -cf hello.tar hello.txt\n\
             docker import hello.tar {key}/{REPOSITORY}:1\n\
             docker push {key}/{REPOSITORY}:1\n\
             docker rmi {key}/{REPOSITORY}:1\n\
             docker pull {key}/{REPOSITORY}:1\n",
            config = side.config.display(),
        )),
    }
    text.push_str(&format!(
        "\n\
         Request counts: curl -s {base}/stats\n\
         Serving until Ctrl-C, or `kill {pid}` when started in the background.\n",
        base = server.base_url(),
        pid = std::process::id(),
    ));
    text
}

fn indent(block: &str) -> String {
    block.lines().map(|line| format!("  {line}\n")).collect()
}
