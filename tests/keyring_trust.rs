//! Whose keyring gets the secret (DESIGN.md section 4): the Secret Service
//! is used only when the bus daemon and the service are this user's, by
//! the kernel's and the bus's word. Real dbus-daemons and gnome-keyrings,
//! run by `nobody` where the test needs another user (which only root can
//! arrange), or reached over TCP where nobody's credentials can be checked.

#![cfg(target_os = "linux")]

mod support;

use std::path::Path;

use support::cmd::{Output, Sandbox};
use support::services::{SecretService, require_tools};

const REGISTRY: &str = "registry.example.com";
const SECRET: &str = "s3cret-for-whoever-runs-the-keyring-4417";
const OPT_IN: (&str, &str) = ("DOCKER_CREDENTIAL_EXCHANGE_SECRET_SERVICE", "trust-unverified-bus");

/// A sandbox whose keyring is the Secret Service `start` runs for it;
/// `None` (loudly) where the tools or another user are not available.
fn sandbox_with(start: impl FnOnce(&Path) -> Option<SecretService>) -> Option<(Sandbox, SecretService)> {
    if !require_tools(&["dbus-daemon", "gnome-keyring-daemon", "secret-tool"]) {
        return None;
    }
    let mut sandbox = Sandbox::new();
    let service = start(&sandbox.home())?;
    sandbox.use_keyring(&service.env());
    Some((sandbox, service))
}

/// A sandbox whose session bus is reached over TCP, where no peer's
/// credentials can be checked.
fn sandbox_over_tcp() -> Option<(Sandbox, SecretService)> {
    let (mut sandbox, service) = sandbox_with(|home| Some(SecretService::start_reachable_over_tcp(home)))?;
    sandbox.set_env("DBUS_SESSION_BUS_ADDRESS", service.tcp_address());
    Some((sandbox, service))
}

fn this_uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// The secret the keyring's own user finds with `secret-tool lookup`.
fn found_by_the_keyrings_user(service: &SecretService) -> Option<String> {
    service.secret_tool_lookup(&[("service", "docker-credential-exchange"), ("username", REGISTRY)])
}

/// A refusal as Docker sees it: one line on stdout naming why and every
/// way out, and no secret anywhere.
fn assert_refused(out: &Output, why: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.contains(why), "the reason is not given: {out:?}");
    for way_out in ["\"store\": \"file\"", "DOCKER_CREDENTIAL_EXCHANGE_STORE=file", "subject_token source"] {
        assert!(out.stdout.contains(way_out), "{way_out} is not named: {out:?}");
    }
    assert!(!out.stdout.contains(SECRET) && !out.stderr.contains(SECRET), "{out:?}");
}

#[test]
fn a_keyring_on_a_bus_another_user_runs_is_refused_and_gets_no_secret() {
    let Some((sandbox, service)) = sandbox_with(SecretService::start_on_a_bus_of_nobody) else {
        return;
    };

    let out = sandbox.store(REGISTRY, "alice", SECRET);

    let why = format!("is run by uid 65534, not by this user (uid {})", this_uid());
    assert_refused(&out, &why);
    assert!(out.stdout.contains("unset DBUS_SESSION_BUS_ADDRESS"), "{out:?}");
    assert_eq!(found_by_the_keyrings_user(&service), None, "nobody's keyring got the secret");
    // A read is refused the same way, not answered "not found".
    assert_refused(&sandbox.get(REGISTRY), &why);
}

#[test]
fn a_secret_service_another_user_runs_on_this_users_bus_is_refused() {
    let Some((sandbox, service)) = sandbox_with(SecretService::start_with_a_keyring_of_nobody) else {
        return;
    };

    let out = sandbox.store(REGISTRY, "alice", SECRET);

    assert_refused(
        &out,
        &format!("org.freedesktop.secrets) on the session bus at {} is run by uid 65534", service.address()),
    );
    assert_eq!(found_by_the_keyrings_user(&service), None, "nobody's keyring got the secret");
}

#[test]
fn a_bus_reached_over_tcp_is_refused_without_the_opt_in_and_says_how() {
    let Some((sandbox, service)) = sandbox_over_tcp() else { return };

    let out = sandbox.store(REGISTRY, "alice", SECRET);

    assert_refused(&out, "cannot be checked");
    assert!(out.stdout.contains("DOCKER_CREDENTIAL_EXCHANGE_SECRET_SERVICE=trust-unverified-bus"), "{out:?}");
    assert_eq!(found_by_the_keyrings_user(&service), None);
}

#[test]
fn a_bus_reached_over_tcp_is_used_when_the_user_opts_in() {
    let Some((mut sandbox, service)) = sandbox_over_tcp() else { return };
    sandbox.set_env(OPT_IN.0, OPT_IN.1).set_env("DOCKER_CREDENTIAL_EXCHANGE_LOG", "debug");

    let stored = sandbox.store(REGISTRY, "alice", SECRET).success();

    // Its traffic may cross a network: the encrypted session, never plain.
    assert!(stored.stderr.contains("opening an encrypted Secret Service session on tcp:"), "{stored:?}");
    assert_eq!(found_by_the_keyrings_user(&service).as_deref(), Some(SECRET));
    assert_eq!(sandbox.get(REGISTRY).success().secret(), SECRET);
}

#[test]
fn a_misspelt_opt_in_is_named_and_not_obeyed() {
    let Some((mut sandbox, service)) = sandbox_over_tcp() else { return };
    sandbox.set_env(OPT_IN.0, "yes");

    let out = sandbox.store(REGISTRY, "alice", SECRET);

    assert_refused(&out, "DOCKER_CREDENTIAL_EXCHANGE_SECRET_SERVICE=\"yes\" is not that value");
    assert_eq!(found_by_the_keyrings_user(&service), None);
}
