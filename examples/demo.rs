//! A guided tour of docker-credential-exchange, run as
//! `cargo run --release --example demo`.
//!
//! It builds the helper, starts the local RFC 8693 STS on 127.0.0.1 (the
//! same one the tests use: it is also the identity provider that mints the
//! login token), and drives the real binary exactly as Docker would, with
//! a request on stdin, in a temporary HOME with its own config, cache and
//! file store. Nothing outside that temporary directory is touched, and no
//! external identity provider is needed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use test_servers::sts;

const REGISTRY: &str = "registry.example.com";
const LIFETIME: i64 = 8;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\ndemo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, String>;

fn run() -> Result<()> {
    let helper = build_helper()?;
    let tmp = tempfile::Builder::new().prefix("dce-demo-").tempdir().map_err(|e| e.to_string())?;
    let demo = Demo::new(helper, tmp.path());

    title("1. An ordinary registry, the way Docker uses a credential store");
    note("`docker login` sends `store` with JSON on stdin; `docker pull` sends `get` with the registry.");
    demo.run(
        &["store"],
        r#"{"ServerURL":"https://index.docker.io/v1/","Username":"alice","Secret":"hunter2"}"#,
        0,
    )?;
    demo.run(&["get"], "docker.io", 0)?;
    note("Docker Hub's aliases (docker.io, index.docker.io, registry-1.docker.io) are one registry.");
    demo.run(&["list"], "", 0)?;
    note("`list` never shows secrets. `docker logout` erases; erasing twice is not an error.");
    demo.run(&["erase"], "https://index.docker.io/v1/", 0)?;
    demo.run(&["erase"], "docker.io", 0)?;
    note("A registry with nothing stored answers the exact string Docker looks for:");
    demo.run(&["get"], "docker.io", 1)?;

    title("2. An exchange registry: a login token in, short-lived registry tokens out");
    let server = sts::Sts::start(sts::StsOptions { lifetime_secs: LIFETIME, ..sts::StsOptions::default() });
    note(&format!("Local RFC 8693 STS listening on {}", server.url()));
    let config = serde_json::json!({
        "store": "file",
        "registries": { REGISTRY: {
            "token_endpoint": server.url(),
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "audience": "https://{registry}",
            "scope": "repository:team/app:pull,push",
        }}
    });
    let config_text = serde_json::to_string_pretty(&config).map_err(|e| e.to_string())?;
    std::fs::write(&demo.config, &config_text).map_err(|e| e.to_string())?;
    note(&format!("Config {}:", demo.config.display()));
    for line in config_text.lines() {
        println!("    {line}");
    }
    let login_token = server.mint_subject_token("alice@example.com", 3600);
    note(
        "`login` stores the long-lived login token (read from stdin, never an argument) and proves it with one exchange:",
    );
    demo.run(&["login", REGISTRY, "--username", "alice", "--token-stdin"], &login_token, 0)?;

    note("login's check left its token in the cache; clear it to watch a cold `get` exchange:");
    demo.run(&["cache", "clear"], "", 0)?;
    let cold = demo.timed(&["get"], REGISTRY)?;
    note(&format!(
        "That `get` exchanged the login token at the STS (requests so far: {}).",
        server.requests()
    ));
    let warm = demo.timed(&["get"], REGISTRY)?;
    note(&format!(
        "The second `get` came from the cache: {:.1} ms instead of {:.1} ms, and the STS saw no new request (still {}).",
        warm.as_secs_f64() * 1000.0,
        cold.as_secs_f64() * 1000.0,
        server.requests()
    ));

    let margin = LIFETIME / 2;
    note(&format!(
        "Tokens here live {LIFETIME} s; the safety margin is min(60 s, lifetime/2) = {margin} s. Waiting {margin} s to cross it…"
    ));
    std::thread::sleep(Duration::from_secs(u64::try_from(margin).unwrap_or(4) + 1));
    let before = server.requests();
    demo.run(&["get"], REGISTRY, 0)?;
    note(&format!(
        "Inside the margin the helper refreshed: the STS saw {} new request.",
        server.requests() - before
    ));

    title("3. For people: status, token, logout");
    demo.run(&["status"], "", 0)?;
    demo.run(&["token", REGISTRY, "--decode"], "", 0)?;
    note("`token` shows the claims and a fingerprint; the token itself only with --show-secret.");
    demo.run(&["logout", REGISTRY], "", 0)?;
    note("After logout there is no login token, so Docker gets \"not found\" and no request is made:");
    let before = server.requests();
    demo.run(&["get"], REGISTRY, 1)?;
    if server.requests() != before {
        return Err("a get after logout reached the STS".into());
    }

    title("Done");
    note("Set it up for real with `docker-credential-exchange configure-docker REGISTRY`; see README.md.");
    Ok(())
}

/// Builds the helper binary beside this example (same profile), because a
/// fresh clone has nothing built and `cargo run --example` builds only the
/// example.
fn build_helper() -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--bin", "docker-credential-exchange"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if !cfg!(debug_assertions) {
        cmd.arg("--release");
    }
    let status = cmd.status().map_err(|e| format!("cannot run cargo build: {e}"))?;
    if !status.success() {
        return Err("cargo build of the helper failed".into());
    }
    // target/<profile>/examples/demo → target/<profile>/docker-credential-exchange
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe.parent().and_then(Path::parent).ok_or("cannot locate the target directory")?;
    Ok(dir.join(format!("docker-credential-exchange{}", std::env::consts::EXE_SUFFIX)))
}

struct Demo {
    helper: PathBuf,
    home: PathBuf,
    config: PathBuf,
    root: PathBuf,
}

impl Demo {
    fn new(helper: PathBuf, root: &Path) -> Demo {
        let home = root.join("home");
        let _ = std::fs::create_dir_all(&home);
        Demo { helper, home, config: root.join("config.json"), root: root.to_owned() }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.helper);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("DOCKER_CREDENTIAL_EXCHANGE_CONFIG", &self.config)
            .env("DOCKER_CREDENTIAL_EXCHANGE_CACHE_DIR", self.root.join("cache"))
            .env("DOCKER_CREDENTIAL_EXCHANGE_DATA_DIR", self.root.join("data"))
            .env("DOCKER_CREDENTIAL_EXCHANGE_STORE", "file")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs the helper, shows the exchange like a terminal session, and
    /// checks the exit status.
    fn run(&self, args: &[&str], stdin: &str, expect: i32) -> Result<()> {
        let shown_stdin = shorten_tokens(stdin);
        if stdin.is_empty() {
            println!("  $ docker-credential-exchange {}", args.join(" "));
        } else {
            println!("  $ echo '{shown_stdin}' | docker-credential-exchange {}", args.join(" "));
        }
        let (out, _) = self.exec(args, stdin)?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            println!("    {}", shorten_tokens(line));
        }
        for line in String::from_utf8_lossy(&out.stderr).lines() {
            println!("    (stderr) {line}");
        }
        let code = out.status.code().unwrap_or(-1);
        if code != 0 {
            println!("    (exit status {code})");
        }
        if code != expect {
            return Err(format!("expected exit status {expect}, got {code}"));
        }
        Ok(())
    }

    /// Runs `get` and returns how long it took.
    fn timed(&self, args: &[&str], stdin: &str) -> Result<Duration> {
        println!("  $ echo '{stdin}' | docker-credential-exchange {}", args.join(" "));
        let (out, took) = self.exec(args, stdin)?;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            println!("    {}", shorten_tokens(line));
        }
        println!("    ({:.1} ms)", took.as_secs_f64() * 1000.0);
        if !out.status.success() {
            return Err(format!("get failed: {}", String::from_utf8_lossy(&out.stdout)));
        }
        Ok(took)
    }

    fn exec(&self, args: &[&str], stdin: &str) -> Result<(std::process::Output, Duration)> {
        let start = Instant::now();
        let mut child = self.command(args).spawn().map_err(|e| format!("cannot run the helper: {e}"))?;
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        Ok((out, start.elapsed()))
    }
}

/// Long tokens make a log unreadable; show the start of anything that
/// looks like a JWT (they all begin with `eyJ`, base64 of `{"`).
fn shorten_tokens(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("eyJ") {
        out.push_str(&rest[..start]);
        let token = &rest[start..];
        let end = token
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(token.len());
        if end > 40 {
            out.push_str(&token[..24]);
            out.push('…');
        } else {
            out.push_str(&token[..end]);
        }
        rest = &token[end..];
    }
    out.push_str(rest);
    out
}

fn title(text: &str) {
    println!("\n== {text}");
}

fn note(text: &str) {
    println!("  # {text}");
}
