//! What every command shares (DESIGN.md sections 5 and 6), through the real
//! binary in a sandbox: messages that say what happened and what to do,
//! the log file, `--help`, `--version`, `--config`, and
//! `install/install.sh`. The subcommands have suites of their own
//! (`cli_login`, `cli_status`, `cli_configure_docker`, `cli_doctor`).

mod support;

use docker_credential_exchange::for_tests::fingerprint;
use serde_json::{Value, json};
use support::cmd::Sandbox;
use support::setup::{REGISTRY, exchange_sandbox as setup};
use support::sts::{Fault, Sts, StsOptions};

fn write_exchange_config(sandbox: &Sandbox, sts: &Sts, extra: Value) {
    sandbox.write_exchange_config(REGISTRY, &sts.url(), extra);
}

// ---- logging ----

fn is_timestamped(line: &str) -> bool {
    // 2026-11-25T09:00:00Z [1234] debug: …
    let b = line.as_bytes();
    b.len() > 22
        && b[..4].iter().all(u8::is_ascii_digit)
        && b[4] == b'-'
        && b[10] == b'T'
        && b[19] == b'Z'
        && line[20..].starts_with(" [")
}

#[test]
fn log_file_gets_timestamped_lines() {
    let (mut sandbox, sts) = setup();
    let log = sandbox.root().join("helper.log");
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE", log.to_str().unwrap());
    sandbox.logged_in(REGISTRY, &sts);
    sandbox.get(REGISTRY).quiet_success();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.lines().count() >= 2, "{text}");
    for line in text.lines() {
        assert!(is_timestamped(line), "not timestamped: {line:?}");
    }
}

#[test]
fn log_file_and_verbose_stderr_show_tokens_only_as_fingerprints() {
    let (mut sandbox, sts) = setup();
    let log = sandbox.root().join("helper.log");
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE", log.to_str().unwrap());
    let subject = sandbox.logged_in(REGISTRY, &sts);
    let verbose = sandbox.cmd(&["-v", "token", REGISTRY, "--refresh", "--decode"]).run().success();
    let secret = sandbox.get(REGISTRY).quiet_success().secret();
    sts.set_fault(Fault::InvalidGrant);
    sandbox.cmd(&["-v", "token", REGISTRY, "--refresh"]).run();
    let text = std::fs::read_to_string(&log).unwrap();
    for token in [&subject, &secret] {
        assert!(!text.contains(token.as_str()), "a token in the log file:\n{text}");
        assert!(!verbose.stderr.contains(token.as_str()), "a token on stderr: {verbose:?}");
    }
    assert!(text.contains(&fingerprint(secret.as_bytes())), "the fingerprint is what identifies it:\n{text}");
}

/// Whether a log line shows a Rust `Debug` rendering rather than words or
/// `key=value`: `Name { field: … }`, `Some(…)`, `None`, `[]`, `364.46ms`.
fn looks_like_debug(line: &str) -> bool {
    let struct_like = line.split(" { ").nth(1).is_some_and(|rest| rest.contains(": "));
    let duration_like = line.split_whitespace().any(|w| {
        let w = w.trim_end_matches([';', ',', ')']);
        w.ends_with("ms") && w[..w.len() - 2].contains('.') && w[..w.len() - 2].parse::<f64>().is_ok()
    });
    struct_like || duration_like || ["Some(", "None", ": []", "=[]"].iter().any(|p| line.contains(p))
}

#[test]
fn verbose_log_lines_read_as_words_or_key_value_never_as_rust_structs() {
    let (mut sandbox, sts) = setup();
    write_exchange_config(
        &sandbox,
        &sts,
        json!({"scope": "repository:team/app:pull", "client_id": "docker"}),
    );
    sandbox.logged_in(REGISTRY, &sts);
    let out = sandbox.cmd(&["-v", "token", REGISTRY, "--refresh"]).run().success();
    let exchanging =
        out.stderr.lines().find(|l| l.contains("exchanging for")).unwrap_or_else(|| panic!("{out:?}"));
    assert!(exchanging.contains(" scope=\"repository:team/app:pull\""), "{out:?}");
    assert!(exchanging.contains(" client_id=\"docker\""), "{out:?}");
    // Retries of a refused connection: the waits are said in seconds.
    sandbox.write_exchange_config(REGISTRY, "http://127.0.0.1:9/token", json!({}));
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS", "3");
    let retried = sandbox.cmd(&["-v", "token", REGISTRY, "--refresh"]).run().failure();
    assert!(retried.stderr.contains("retrying in "), "{retried:?}");
    // And the kubelet's request.
    let request = json!({"apiVersion": "credentialprovider.kubelet.k8s.io/v1",
        "kind": "CredentialProviderRequest", "image": format!("{REGISTRY}/team/app")});
    let kubelet = sandbox.cmd(&["-v", "kubelet-credential-provider"]).stdin(request.to_string()).run();
    assert!(kubelet.stderr.contains("kubelet: credentials for"), "{kubelet:?}");
    for line in out.stderr.lines().chain(retried.stderr.lines()).chain(kubelet.stderr.lines()) {
        assert!(!looks_like_debug(line), "a Debug rendering in the log: {line:?}");
    }
}

// ---- help ----

#[test]
fn every_subcommand_help_shows_an_example() {
    let sandbox = Sandbox::new();
    for sub in ["login", "logout", "status", "token", "cache", "configure-docker", "doctor", "import"] {
        let out = sandbox.cmd(&[sub, "--help"]).run().success();
        assert!(out.stdout.contains("Example"), "{sub}: {out:?}");
    }
}

#[test]
fn login_help_says_docker_login_is_the_wrong_door_for_an_exchange_registry() {
    let sandbox = Sandbox::new();
    for flag in ["--help", "-h"] {
        let out = sandbox.cmd(&["login", flag]).run().success();
        let words = out.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(words.contains("not with `docker login`"), "{flag}: {out:?}");
        assert!(words.contains("the helper never hears of it"), "{flag}: {out:?}");
    }
}

// ---- messages that say what to do ----

#[test]
fn an_sts_that_is_down_is_one_line_naming_the_endpoint_once_and_what_to_try() {
    let sandbox = Sandbox::new();
    let idp = Sts::start(StsOptions::default());
    sandbox.write_exchange_config(REGISTRY, "http://127.0.0.1:9/token", json!({}));
    sandbox.store(REGISTRY, "alice", &idp.mint_subject_token("alice", 3600)).quiet_success();
    let out = sandbox.get(REGISTRY).failure();
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    assert_eq!(out.stdout.matches("http://127.0.0.1:9/token").count(), 1, "{out:?}");
    assert!(out.stdout.contains("connection refused") && out.stdout.contains("is it running"), "{out:?}");
    assert!(out.stdout.contains("doctor"), "{out:?}");
    assert!(!out.stdout.contains("os error"), "{out:?}");
}

#[test]
fn a_rejected_login_token_says_to_log_in_again() {
    let (sandbox, sts) = setup();
    sandbox.logged_in(REGISTRY, &sts);
    sandbox.cmd(&["cache", "clear"]).run().success();
    sts.set_fault(Fault::InvalidGrant);
    let out = sandbox.get(REGISTRY).failure();
    assert!(out.stdout.contains("the STS rejected the login token: log in again"), "{out:?}");
}

#[test]
fn a_timeout_names_the_limit_and_the_variable_that_sets_it() {
    let (mut sandbox, sts) = setup();
    sandbox.logged_in(REGISTRY, &sts);
    sandbox.cmd(&["cache", "clear"]).run().success();
    sts.set_fault(Fault::Hang { secs: 30 });
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS", "1.5");
    let out = sandbox.get(REGISTRY).failure();
    assert!(
        out.stdout.contains("within 1.5s")
            && out.stdout.contains("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS"),
        "{out:?}"
    );
}

// ---- global options ----

#[test]
fn version_names_the_commit_and_the_target() {
    let out = Sandbox::new().cmd(&["--version"]).run().success();
    let line = out.stdout.trim();
    assert!(
        line.starts_with(concat!("docker-credential-exchange ", env!("CARGO_PKG_VERSION"), " (commit ")),
        "{line}"
    );
    assert!(line.contains("linux") || line.contains("darwin") || line.contains("windows"), "{line}");
}

#[test]
fn a_config_option_naming_a_missing_file_is_an_error() {
    let sandbox = Sandbox::new();
    let out = sandbox.cmd(&["status", "--config", "/nonexistent/config.json"]).run().failure();
    assert!(
        out.stderr.contains("/nonexistent/config.json") && out.stderr.contains("does not exist"),
        "{out:?}"
    );
}

#[test]
fn the_config_option_names_the_config_file() {
    let (sandbox, sts) = setup();
    let other = sandbox.root().join("other.json");
    std::fs::write(
        &other,
        json!({"registries": {"other.example": {"token_endpoint": sts.url()}}}).to_string(),
    )
    .unwrap();
    let status =
        sandbox.cmd(&["status", "--json", "--config", other.to_str().unwrap()]).run().quiet_success().json();
    let names: Vec<&str> =
        status["registries"].as_array().unwrap().iter().filter_map(|r| r["registry"].as_str()).collect();
    assert_eq!(names, ["other.example"]);
}

// ---- install ----

/// Slow: a release build. It reuses the target directory the tests were
/// built in, so only this crate is compiled. A POSIX sh script: not for
/// Windows.
#[cfg(unix)]
#[test]
fn install_script_installs_a_working_binary_into_a_prefix() {
    use std::path::Path;
    let prefix = tempfile::Builder::new().prefix("dce-install-").tempdir().unwrap();
    let bin = support::cmd::bin();
    let target_dir = bin.parent().and_then(Path::parent).unwrap().to_owned();
    let out = std::process::Command::new("sh")
        .arg(install_script())
        .arg("--prefix")
        .arg(prefix.path())
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("CARGO", std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "install.sh failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("credHelpers"), "it says how to configure Docker:\n{stdout}");
    assert_installed(prefix.path());
}

#[cfg(unix)]
fn install_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("install").join("install.sh")
}

/// PREFIX/bin holds a helper that runs and names this version, and
/// PREFIX/share its man page and completions exactly as that binary
/// generates them; bash accepts the completion script.
#[cfg(unix)]
fn assert_installed(prefix: &std::path::Path) {
    let installed = prefix.join("bin").join("docker-credential-exchange");
    let version = std::process::Command::new(&installed).arg("version").output().unwrap();
    assert!(version.status.success());
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        concat!("docker-credential-exchange ", env!("CARGO_PKG_VERSION"))
    );
    for (file, args) in [
        ("share/man/man1/docker-credential-exchange.1", &["man"][..]),
        ("share/bash-completion/completions/docker-credential-exchange", &["completions", "bash"][..]),
        ("share/zsh/site-functions/_docker-credential-exchange", &["completions", "zsh"][..]),
        ("share/fish/vendor_completions.d/docker-credential-exchange.fish", &["completions", "fish"][..]),
    ] {
        let text = std::fs::read(prefix.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let expected = std::process::Command::new(&installed).arg("generate").args(args).output().unwrap();
        assert!(expected.status.success() && text == expected.stdout, "{file} is not `generate {args:?}`");
    }
    let bash = std::process::Command::new("bash")
        .arg("-c")
        .arg("source \"$1\" && complete -p docker-credential-exchange")
        .arg("bash")
        .arg(prefix.join("share/bash-completion/completions/docker-credential-exchange"))
        .output()
        .unwrap();
    assert!(bash.status.success(), "{}", String::from_utf8_lossy(&bash.stderr));
}

/// `sh install.sh ARGS` where no cargo can be found: a prebuilt binary must
/// install without Rust.
#[cfg(unix)]
fn install_without_cargo(script: &std::path::Path, args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new("sh")
        .arg(script)
        .args(args)
        .env("PATH", "/usr/bin:/bin")
        .env("CARGO", "/nonexistent/cargo")
        .output()
        .unwrap()
}

#[cfg(unix)]
#[test]
fn install_script_installs_a_prebuilt_binary_with_its_man_page_and_completions() {
    let prefix = tempfile::Builder::new().prefix("dce-install-").tempdir().unwrap();
    let bin = support::cmd::bin();
    let out = install_without_cargo(
        &install_script(),
        &["--binary".as_ref(), bin.as_os_str(), "--prefix".as_ref(), prefix.path().as_os_str()],
    );
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "install.sh --binary failed:\n{stdout}\n{stderr}");
    assert!(!stderr.contains("building"), "nothing is built:\n{stderr}");
    assert_installed(prefix.path());
}

#[cfg(unix)]
#[test]
fn install_script_refuses_a_binary_that_does_not_run_and_installs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("docker-credential-exchange");
    // What a download for another architecture looks like to the shell.
    std::fs::write(&foreign, b"\x7fELF\x02\x01\x01 not for this machine").unwrap();
    std::fs::set_permissions(&foreign, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let prefix = dir.path().join("prefix");
    let out = install_without_cargo(
        &install_script(),
        &["--binary".as_ref(), foreign.as_os_str(), "--prefix".as_ref(), prefix.as_os_str()],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("does not run here"), "{stderr}");
    assert!(!prefix.exists(), "nothing is installed");
}

#[cfg(unix)]
#[test]
fn a_release_archive_carries_the_man_page_and_completions_and_installs_itself() {
    let dir = tempfile::tempdir().unwrap();
    let bin = support::cmd::bin();
    let name = "docker-credential-exchange-v0.0.0-test";
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("install").join("archive.sh");
    let out = std::process::Command::new("sh")
        .arg(&script)
        .arg(&bin)
        .arg(name)
        .arg(dir.path().join("dist"))
        .output()
        .unwrap();
    assert!(out.status.success(), "archive.sh failed: {}", String::from_utf8_lossy(&out.stderr));
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let tar = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(dir.path().join("dist").join(format!("{name}.tar.gz")))
        .arg("-C")
        .arg(&unpacked)
        .output()
        .unwrap();
    assert!(tar.status.success(), "{}", String::from_utf8_lossy(&tar.stderr));
    let root = unpacked.join(name);
    let generated =
        |args: &[&str]| std::process::Command::new(&bin).arg("generate").args(args).output().unwrap().stdout;
    for (file, args) in [
        ("man/docker-credential-exchange.1", &["man"][..]),
        ("completions/docker-credential-exchange.bash", &["completions", "bash"][..]),
        ("completions/_docker-credential-exchange", &["completions", "zsh"][..]),
        ("completions/docker-credential-exchange.fish", &["completions", "fish"][..]),
        ("completions/_docker-credential-exchange.ps1", &["completions", "powershell"][..]),
    ] {
        let text =
            std::fs::read(root.join(file)).unwrap_or_else(|e| panic!("the archive has no {file}: {e}"));
        assert!(text == generated(args), "{file} in the archive is not `generate {args:?}`");
    }
    for file in ["docker-credential-exchange", "install.sh", "README.md", "LICENSE-MIT", "LICENSE-APACHE"] {
        assert!(root.join(file).is_file(), "the archive has no {file}");
    }
    // `./install.sh` in the unpacked archive installs the binary beside it.
    let prefix = dir.path().join("prefix");
    let out = install_without_cargo(&root.join("install.sh"), &["--prefix".as_ref(), prefix.as_os_str()]);
    assert!(
        out.status.success(),
        "the archive's install.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_installed(&prefix);
}
