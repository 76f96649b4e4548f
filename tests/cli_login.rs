//! `login` and `logout` as a person uses them (DESIGN.md section 5): on a
//! terminal the token is typed or pasted at a prompt with echo off and
//! Enter ends it; piped, the whole input is the token. The new token
//! replaces the old only once an exchange proved it; a registry that is not
//! configured for exchange is refused, naming the closest one; every
//! failure says what to do next.

mod support;

#[cfg(target_os = "linux")]
use std::time::Duration;

use serde_json::json;
// The terminal tests drive a pseudo-terminal (support::pty: Linux).
use support::cmd::Sandbox;
#[cfg(target_os = "linux")]
use support::pty::Pty;
use support::setup::{REGISTRY, assert_no_secret, exchange_sandbox as setup};
use support::sts::{Fault, Sts, StsOptions};

/// The helper on a pseudo-terminal, in the sandbox's environment.
#[cfg(target_os = "linux")]
fn on_a_terminal(sandbox: &Sandbox, args: &[&str]) -> Pty {
    let (mut command, _) = sandbox.cmd(args).into_command();
    command.env("TERM", "dumb");
    Pty::spawn(command)
}

#[cfg(target_os = "linux")]
const SCREEN: Duration = Duration::from_secs(20);

#[cfg(target_os = "linux")]
#[test]
fn on_a_terminal_the_token_is_read_as_one_line_with_echo_off() {
    let (sandbox, sts) = setup();
    let subject = sts.mint_subject_token("alice", 3600);
    let mut terminal = on_a_terminal(&sandbox, &["login", REGISTRY]);
    terminal.expect("Login token for registry.example.com: ", SCREEN);
    assert!(!terminal.echoes(), "the prompt left echo on");
    terminal.send(format!("{subject}\r").as_bytes());
    assert_eq!(terminal.wait(SCREEN), Some(0), "Enter did not end the prompt:\n{}", terminal.screen());
    let screen = terminal.screen();
    assert!(!screen.contains(&subject[..20]), "the token was echoed:\n{screen}");
    assert!(screen.contains("logged in to registry.example.com"), "{screen}");
    assert!(terminal.echoes(), "echo was not restored");
    assert_eq!(sts.last_request().unwrap().form_value("subject_token"), Some(subject.as_str()));
}

#[cfg(target_os = "linux")]
#[test]
fn a_token_sent_as_the_prompt_appears_is_not_echoed() {
    // An `expect` script or `tmux send-keys` sends the token the moment the
    // prompt shows. The terminal's output is held, so the helper is stuck
    // showing its prompt: echo must be off already.
    let (sandbox, sts) = setup();
    let subject = sts.mint_subject_token("alice", 3600);
    let (mut command, _) = sandbox.cmd(&["login", REGISTRY]).into_command();
    command.env("TERM", "dumb");
    let mut terminal = Pty::spawn_with_output_held(command);
    terminal.wait_until("echo was still on while the prompt was being shown", SCREEN, |t| !t.echoes());
    terminal.send(format!("{subject}\r").as_bytes());
    terminal.release_output();

    assert_eq!(terminal.wait(SCREEN), Some(0), "{}", terminal.screen());
    let screen = terminal.screen();
    assert!(screen.contains("Login token for registry.example.com: "), "{screen}");
    assert!(!screen.contains(&subject[..20]), "the token was echoed:\n{screen}");
    assert!(terminal.echoes(), "echo was not restored");
    assert_eq!(sts.last_request().unwrap().form_value("subject_token"), Some(subject.as_str()));
}

/// What a shell's terminal has on: echo, line editing and signal keys.
#[cfg(target_os = "linux")]
const COOKED: libc::tcflag_t = libc::ECHO | libc::ICANON | libc::ISIG;

#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_at_the_prompt_restores_the_terminal_exits_130_and_stores_nothing() {
    let (sandbox, sts) = setup();
    let mut terminal = on_a_terminal(&sandbox, &["login", REGISTRY]);
    terminal.expect("Login token for", SCREEN);
    terminal.send(b"half-typed");
    terminal.send(b"\x03");
    assert_eq!(terminal.wait(SCREEN), Some(130), "{}", terminal.screen());
    assert_eq!(terminal.local_modes() & COOKED, COOKED, "Ctrl-C left the terminal changed");
    assert!(!terminal.screen().contains("half-typed"), "{}", terminal.screen());
    assert_eq!(sts.requests(), 0);
    assert!(!sandbox.data_dir().join("credentials.json").exists());
}

#[cfg(target_os = "linux")]
#[test]
fn a_termination_signal_at_the_prompt_restores_the_terminal() {
    let (sandbox, sts) = setup();
    let mut terminal = on_a_terminal(&sandbox, &["login", REGISTRY]);
    terminal.expect("Login token for", SCREEN);
    assert!(!terminal.echoes());
    // SAFETY: kill(2) on our own child, which has not been reaped.
    assert_eq!(unsafe { libc::kill(terminal.pid() as i32, libc::SIGTERM) }, 0);
    assert_eq!(terminal.wait(SCREEN), Some(128 + libc::SIGTERM), "{}", terminal.screen());
    assert_eq!(terminal.local_modes() & COOKED, COOKED, "SIGTERM left the terminal changed");
    assert_eq!(sts.requests(), 0);
}

#[cfg(target_os = "linux")]
#[test]
fn a_slow_check_says_what_it_waits_for_on_a_terminal() {
    let (sandbox, sts) = setup();
    // The check's exchange waits at the STS until the message is shown.
    let hold = sts.hold_exchanges();
    let token_file = sandbox.root().join("token");
    std::fs::write(&token_file, sts.mint_subject_token("alice", 3600)).unwrap();
    let mut terminal =
        on_a_terminal(&sandbox, &["login", REGISTRY, "--token-file", token_file.to_str().unwrap()]);
    terminal.expect(&format!("waiting for the token endpoint {}", sts.url()), SCREEN);
    hold.release();
    assert_eq!(terminal.wait(SCREEN), Some(0), "{}", terminal.screen());
}

#[test]
fn piped_input_is_read_whole() {
    let (sandbox, sts) = setup();
    let subject = sts.mint_subject_token("alice", 3600);
    sandbox.cmd(&["login", REGISTRY]).stdin(format!("{subject}\n")).run().success();
    assert_eq!(sts.last_request().unwrap().form_value("subject_token"), Some(subject.as_str()));
}

#[test]
fn login_proves_the_token_with_one_exchange_whose_token_the_next_get_uses() {
    let (sandbox, sts) = setup();
    let subject = sts.mint_subject_token("alice", 3600);
    let out = sandbox.login(REGISTRY, &subject).quiet_success();
    assert!(out.stdout.contains("logged in to registry.example.com"), "{out:?}");
    assert_no_secret(&out, &[&subject]);
    assert_eq!(sts.requests(), 1);
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.requests(), 1, "the proving exchange's token was not reused");
}

#[test]
fn a_failed_check_keeps_the_previous_login_and_mentions_no_verify() {
    let (sandbox, sts) = setup();
    let old = sandbox.logged_in(REGISTRY, &sts);
    sts.set_fault(Fault::InvalidGrant);
    let new = sts.mint_subject_token("mallory", 3600);
    let out = sandbox.login(REGISTRY, &new).failure();
    assert!(
        out.stderr.contains("was not stored") && out.stderr.contains("previous login is unchanged"),
        "{out:?}"
    );
    assert!(out.stderr.contains("--no-verify"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    assert_no_secret(&out, &[&new, &old]);
    sts.set_fault(Fault::None);
    sandbox.cmd(&["cache", "clear"]).run().success();
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.last_request().unwrap().form_value("subject_token"), Some(old.as_str()));
}

#[test]
fn an_expired_token_is_refused_without_telling_to_run_login_again() {
    let (sandbox, sts) = setup();
    let out = sandbox.login(REGISTRY, &sts.mint_subject_token("alice", -60)).failure();
    assert!(out.stderr.contains("was not stored: it expired at "), "{out:?}");
    assert!(out.stderr.contains("get a fresh one from your identity provider"), "{out:?}");
    assert_eq!(out.stderr.matches("expired").count(), 1, "said more than once: {out:?}");
    assert!(!out.stderr.contains("run `docker-credential-exchange login"), "{out:?}");
    assert_eq!(sts.requests(), 0);
}

#[test]
fn a_registry_not_configured_for_exchange_is_refused_naming_the_closest_one() {
    let (mut sandbox, sts) = setup();
    sandbox.write_config(&json!({"registries": {"localhost:5055": {"token_endpoint": sts.url()}}}));
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS", "5");
    let out =
        sandbox.cmd(&["login", "localhost:5505"]).stdin(sts.mint_subject_token("a", 3600)).run().failure();
    assert!(out.stderr.contains("localhost:5505 is not configured for exchange"), "{out:?}");
    assert!(out.stderr.contains("did you mean localhost:5055?"), "{out:?}");
    assert!(out.stderr.contains("--plain"), "{out:?}");
    assert!(!sandbox.data_dir().join("credentials.json").exists(), "something was stored");
}

#[test]
fn a_docker_login_password_is_not_overwritten_by_a_login_for_a_plain_registry() {
    let (sandbox, sts) = setup();
    sandbox.store("127.0.0.1:5055", "bob", "docker-login-password").quiet_success();
    sandbox.cmd(&["login", "127.0.0.1:5055"]).stdin(sts.mint_subject_token("a", 3600)).run().failure();
    assert_eq!(sandbox.get("127.0.0.1:5055").secret(), "docker-login-password");
}

#[test]
fn plain_stores_a_plain_credential_on_request() {
    let (sandbox, _sts) = setup();
    let out = sandbox
        .cmd(&["login", "ghcr.io", "--plain", "--username", "bob", "--token-stdin"])
        .stdin("ghp_plainpassword")
        .run()
        .success();
    assert!(out.stdout.contains("stored a plain credential for ghcr.io"), "{out:?}");
    let answer = sandbox.get("ghcr.io").quiet_success().json();
    assert_eq!(
        (answer["Username"].as_str(), answer["Secret"].as_str()),
        (Some("bob"), Some("ghp_plainpassword"))
    );
}

#[test]
fn login_no_verify_stores_without_an_exchange() {
    let (sandbox, sts) = setup();
    let subject = sts.mint_subject_token("alice", 3600);
    sandbox.cmd(&["login", REGISTRY, "--token-stdin", "--no-verify"]).stdin(&subject).run().success();
    assert_eq!(sts.requests(), 0);
    sandbox.get(REGISTRY).quiet_success();
    assert_eq!(sts.last_request().unwrap().form_value("subject_token"), Some(subject.as_str()));
}

#[test]
fn login_reads_the_token_from_a_file() {
    let (sandbox, sts) = setup();
    let subject = sts.mint_subject_token("alice", 3600);
    let file = sandbox.root().join("token");
    std::fs::write(&file, format!("{subject}\n")).unwrap();
    sandbox.cmd(&["login", REGISTRY, "--token-file", file.to_str().unwrap()]).run().success();
    assert_eq!(sts.last_request().unwrap().form_value("subject_token"), Some(subject.as_str()));
}

#[test]
fn login_refuses_a_token_given_as_an_argument() {
    let (sandbox, sts) = setup();
    let out = sandbox.cmd(&["login", REGISTRY, "argument-token-value"]).run().failure();
    assert!(out.stderr.contains("--token-stdin") && out.stderr.contains("--token-file"), "{out:?}");
    assert_no_secret(&out, &["argument-token-value"]);
    assert_eq!(sts.requests(), 0);
    assert!(!sandbox.data_dir().join("credentials.json").exists());
}

#[test]
fn login_with_an_empty_token_is_refused() {
    let (sandbox, _sts) = setup();
    let out = sandbox.login(REGISTRY, "  \n").failure();
    assert!(out.stderr.contains("no login token"), "{out:?}");
}

#[test]
fn login_for_a_registry_whose_token_comes_from_the_environment_says_where() {
    let (sandbox, sts) = setup();
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({"subject_token": {"source": "env", "var": "CI_JWT"}}),
    );
    let out = sandbox.login(REGISTRY, &sts.mint_subject_token("alice", 3600)).failure();
    assert!(out.stderr.contains("env:CI_JWT"), "{out:?}");
}

#[test]
fn logout_removes_the_login_token_and_cached_tokens() {
    let (sandbox, sts) = setup();
    sandbox.logged_in(REGISTRY, &sts);
    let out = sandbox.cmd(&["logout", REGISTRY]).run().success();
    assert!(out.stdout.contains("removed the stored token"), "{out:?}");
    sandbox.get(REGISTRY).protocol_error("credentials not found in native keychain");
    assert_eq!(sts.requests(), 1, "logout must leave nothing to serve from the cache");
}

#[test]
fn logout_of_a_plain_entry_under_an_exchange_registry_removes_it_and_keeps_the_login() {
    // Stored before the registry was configured for exchange; `list` shows
    // both, and each must be removable by the name `list` gives it.
    let team = format!("{REGISTRY}/team");
    let sandbox = Sandbox::new();
    sandbox.store(&team, "bob", "bobs-team-password").quiet_success();
    let sts = Sts::start(StsOptions::default());
    sandbox.write_exchange_config(REGISTRY, &sts.url(), json!({}));
    sandbox.logged_in(REGISTRY, &sts);

    let out = sandbox.cmd(&["logout", &team]).run().success();

    assert!(
        out.stdout.contains(&format!("removed the stored token and the cached tokens of {team}")),
        "{out:?}"
    );
    let listed = sandbox.list().quiet_success().json();
    assert_eq!(listed.as_object().unwrap().keys().collect::<Vec<_>>(), [REGISTRY]);
    // The login token is still stored: a get past the cache exchanges it.
    sandbox
        .cmd(&["get"])
        .env("DOCKER_CREDENTIAL_EXCHANGE_NO_CACHE", "1")
        .stdin(REGISTRY)
        .run()
        .quiet_success();
    assert_eq!(sts.requests(), 2);
}

#[test]
fn an_entry_whose_templates_need_a_repository_is_proved_against_one() {
    let (sandbox, sts) = setup();
    sandbox.write_exchange_config(REGISTRY, &sts.url(), json!({"scope": "repository:{repository}:pull"}));
    let subject = sts.mint_subject_token("alice", 3600);
    let out = sandbox.login(REGISTRY, &subject).failure();
    assert!(
        out.stderr.contains(&format!("login {REGISTRY}/REPOSITORY")) && out.stderr.contains("--no-verify"),
        "{out:?}"
    );
    assert_eq!(sts.requests(), 0);
    sandbox.cmd(&["login", &format!("{REGISTRY}/team/app"), "--token-stdin"]).stdin(&subject).run().success();
    assert_eq!(sts.last_request().unwrap().form_value("scope"), Some("repository:team/app:pull"));
    sandbox.cmd(&["get"]).stdin(format!("{REGISTRY}/team/app")).run().quiet_success();
    assert_eq!(sts.requests(), 1, "the proving exchange's token serves the repository");
}

#[test]
fn a_token_pasted_as_an_options_value_is_not_echoed_by_the_parser() {
    let (sandbox, sts) = setup();
    let subject = sts.mint_subject_token("alice", 3600);
    let opaque = "ghp_0123456789abcdefghijklmnopqrstuvwxyzAB";
    for token in [subject.as_str(), opaque] {
        let out = sandbox.cmd(&["login", REGISTRY, &format!("--token-stdin={token}")]).run();
        assert_eq!(out.code, Some(2), "{out:?}");
        assert!(!out.stderr.contains(&token[..16]) && !out.stdout.contains(&token[..16]), "{out:?}");
    }
}

#[test]
fn a_login_token_about_to_expire_is_stored_with_a_warning() {
    let (sandbox, sts) = setup();
    let out = sandbox.login(REGISTRY, &sts.mint_subject_token("alice", 30)).success();
    assert!(out.stdout.contains("logged in to registry.example.com"), "{out:?}");
    let warning = out.stderr.lines().find(|l| l.contains("warning:")).unwrap_or_else(|| panic!("{out:?}"));
    assert!(warning.contains("this login token expires in") && warning.contains("log in"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}

#[test]
fn a_freshly_issued_one_hour_login_token_is_stored_without_a_word() {
    let (sandbox, sts) = setup();
    sandbox.login(REGISTRY, &sts.mint_subject_token("alice", 3600)).quiet_success();
    sandbox.login(REGISTRY, &sts.mint_subject_token("alice", 86_400)).quiet_success();
}
