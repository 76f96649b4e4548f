//! `cargo run --example sts` prints instructions for people: a config for
//! the helper, a login and a `get` (and, with `--registry-realm`, a
//! docker-registry and a `docker push` and `pull`). These tests start the
//! example, take the commands it printed, and run them as printed in a
//! POSIX shell, with the helper on `PATH`: instructions that do not work
//! when followed literally are a bug. The README's "Try it end to end"
//! section shows the same commands, so the last test also checks that the
//! README's copy is what the example prints.
#![cfg(target_os = "linux")]

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use serde_json::Value;
use support::cmd::{Sandbox, bin};
use support::services::{Dockerd, Registry, find_tool, free_port, require_tools};

/// target/<profile>/deps/example_sts-<hash> → target/<profile>/examples/sts
fn sts_example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_owned();
    let example = profile_dir.join("examples").join("sts");
    if !example.exists() {
        // `cargo test` builds examples; `cargo test --test example_sts` does not.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--example", "sts"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "cargo build --example sts failed");
    }
    example
}

/// The example running, and everything it printed before it started
/// serving. Killed on drop.
struct Example {
    child: Child,
    printed: String,
}

impl Example {
    fn start(args: &[&str]) -> Example {
        let mut child = Command::new(sts_example())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        // Held from here on, so a panic below still kills the example.
        let mut example = Example { child, printed: String::new() };
        loop {
            let line = lines.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|e| {
                panic!("the example stopped printing ({e}); so far:\n{}", example.printed)
            });
            example.printed.push_str(&line);
            example.printed.push('\n');
            if line.starts_with("Serving until Ctrl-C") {
                return example;
            }
        }
    }

    /// The commands under "Try it": from the line that writes the config
    /// to the next blank line.
    fn commands(&self) -> Vec<String> {
        let lines: Vec<&str> = self.printed.lines().collect();
        let start = lines
            .iter()
            .position(|l| l.starts_with("printf '%s\\n' '{"))
            .unwrap_or_else(|| panic!("no command that writes the helper's config in:\n{}", self.printed));
        lines[start..].iter().take_while(|l| !l.trim().is_empty()).map(|l| (*l).to_owned()).collect()
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory holding only the helper, for the front of `PATH`: a
/// wrapper that appends the action it was run with to `calls` in the
/// sandbox, then runs the real binary.
fn helper_dir(sandbox: &Sandbox) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = sandbox.root().join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let wrapper = dir.join("docker-credential-exchange");
    let calls = sandbox.root().join("calls");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\nexec '{}' \"$@\"\n",
            calls.display(),
            bin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// The actions the helper was run with, in order.
fn helper_calls(sandbox: &Sandbox) -> Vec<String> {
    let calls = std::fs::read_to_string(sandbox.root().join("calls")).unwrap_or_default();
    calls.lines().map(str::to_owned).collect()
}

/// Runs `commands` with `sh -e` in a fresh working directory, with the
/// sandbox's environment (file store, its own cache and data) but without a
/// config: the commands choose it, as they would for a person.
fn run_in_sh(sandbox: &Sandbox, commands: &[String], path: &str, extra_env: &[(&str, String)]) -> String {
    let work = sandbox.root().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let script = commands.join("\n");
    let out = Command::new("sh")
        .args(["-e", "-c", &script])
        .current_dir(&work)
        .env_clear()
        .envs(sandbox.env().iter().filter(|(k, _)| *k != "DOCKER_CREDENTIAL_EXCHANGE_CONFIG"))
        .env("PATH", path)
        .envs(extra_env.iter().map(|(k, v)| (*k, v)))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "the printed commands failed ({}):\n{script}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The claims of a JWT, read without verifying it.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn the_printed_config_login_and_get_work_as_printed() {
    if !require_tools(&["sh", "curl"]) {
        return;
    }
    let example = Example::start(&[]);
    let commands = example.commands();
    let sandbox = Sandbox::new();
    let path = format!("{}:/usr/bin:/bin", helper_dir(&sandbox).display());
    let stdout = run_in_sh(&sandbox, &commands, &path, &[]);

    // The last command is `get` as Docker runs it: the host alone.
    let get_line = commands.last().unwrap();
    assert!(get_line.ends_with("| docker-credential-exchange get"), "{get_line}");
    let answer: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("get did not answer JSON ({e}):\n{stdout}"));
    assert_eq!(answer["ServerURL"], "registry.example.com", "{answer}");
    assert_eq!(answer["Username"], "oauth2accesstoken", "{answer}");
    let token = claims(answer["Secret"].as_str().unwrap());
    assert_eq!(token["iss"], "local-sts", "an access token from the example's STS: {token}");
    assert_eq!(token["scope"], "repository:demo/hello:pull,push", "the entry's fixed scope: {token}");
}

/// Lines as the README may show them: ports, the example's temporary
/// directory and its process id vary from run to run.
fn normalized(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find("127.0.0.1:") {
        out.push_str(&rest[..at + "127.0.0.1:".len()]);
        rest = rest[at + "127.0.0.1:".len()..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push_str("PORT");
    }
    out.push_str(rest);
    out.split(' ')
        .map(|word| if word.ends_with("/registry.yml") { "DIR/registry.yml" } else { word })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The shell block of the README's "Try it end to end" section that shows
/// what the example prints: the one that starts with the config line.
fn readme_try_it_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section =
        readme.split("\n## Try it end to end\n").nth(1).expect("README has a \"Try it end to end\" section");
    let section = section.split("\n## ").next().unwrap();
    let lines: Vec<&str> = section.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.starts_with("printf '%s\\n' '{"))
        .expect("the section shows the commands the example prints");
    lines[start..].iter().take_while(|l| !l.starts_with("```")).map(|l| (*l).to_owned()).collect()
}

#[test]
fn the_readme_try_it_section_goes_from_nothing_to_a_docker_pull_through_the_helper() {
    if !require_tools(&["sh", "curl", "tar", "dockerd", "docker", "containerd", "runc", "docker-registry"]) {
        return;
    }
    let registry_port = free_port();
    let example = Example::start(&["--registry-realm", "--registry-port", &registry_port.to_string()]);
    let commands = example.commands();
    assert_eq!(
        readme_try_it_commands().iter().map(|l| normalized(l)).collect::<Vec<_>>(),
        commands.iter().map(|l| normalized(l)).collect::<Vec<_>>(),
        "the README's \"Try it end to end\" commands are not what the example prints"
    );

    // The registry runs for the rest of the test, as it would in a
    // person's second terminal; the other commands run in order in one
    // shell.
    let mut registry = None;
    let mut script = Vec::new();
    for command in &commands {
        if let Some(config) = command.strip_prefix("docker-registry serve ") {
            let config = config.trim_end_matches('&').trim();
            registry = Some(Registry::start_with_config(Path::new(config), registry_port));
        } else {
            script.push(command.clone());
        }
    }
    let registry = registry.expect("the commands start docker-registry");

    let dockerd = Dockerd::start();
    let sandbox = Sandbox::new();
    let docker_config = sandbox.root().join("docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    let docker_dir = find_tool("docker").unwrap().parent().unwrap().to_owned();
    let path = format!("{}:{}:/usr/bin:/bin", helper_dir(&sandbox).display(), docker_dir.display());
    let env = [("DOCKER_HOST", dockerd.host()), ("DOCKER_CONFIG", docker_config.display().to_string())];
    let stdout = run_in_sh(&sandbox, &script, &path, &env);
    assert!(
        stdout.contains(&format!("Downloaded newer image for 127.0.0.1:{registry_port}/demo/hello:1")),
        "the pull did not fetch the image:\n{stdout}\n--- registry log ---\n{}",
        registry.log()
    );
    let docker: Value =
        serde_json::from_slice(&std::fs::read(docker_config.join("config.json")).unwrap()).unwrap();
    assert_eq!(docker["credHelpers"][format!("127.0.0.1:{registry_port}")], "exchange", "{docker}");
    // Only the helper holds a credential for the registry, and the pull
    // came after `docker rmi`: Docker asked the helper.
    let calls = helper_calls(&sandbox);
    assert!(calls.iter().any(|c| c == "get"), "Docker never ran the helper's get: {calls:?}");
}

#[test]
fn stopping_the_example_removes_the_files_it_wrote() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut example = Example::start(&["--registry-realm", "--registry-port", &free_port().to_string()]);
        let config = example
            .commands()
            .iter()
            .find_map(|c| {
                c.strip_prefix("docker-registry serve ").map(|p| PathBuf::from(p.trim_end_matches(" &")))
            })
            .expect("the commands start docker-registry");
        let dir = config.parent().unwrap().to_owned();
        assert!(config.is_file(), "{}", config.display());
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe {
            libc::kill(i32::try_from(example.child.id()).unwrap(), signal);
        }
        let status = example.child.wait().unwrap();
        assert!(status.success(), "signal {signal}: {status}");
        assert!(!dir.exists(), "signal {signal} left {} behind", dir.display());
    }
}
