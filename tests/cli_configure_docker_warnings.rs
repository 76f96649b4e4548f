//! What `configure-docker` warns about (DESIGN.md section 5): a registry
//! it can give Docker nothing for (neither configured for exchange nor
//! stored: a typo, often, with the closest configured name offered), and,
//! before `--store` switches `credsStore`, the old helper's credentials
//! that this helper does not hold, only those.

mod support;

use serde_json::json;
use support::cmd::Sandbox;
use support::docker_cfg::docker_config;
// The stand-in old helper is a sh script.
#[cfg(unix)]
use support::docker_cfg::write;
use support::sts::{Sts, StsOptions};

#[test]
fn a_registry_neither_configured_nor_stored_is_added_with_a_warning_naming_the_closest_configured_one() {
    let sts = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
    sandbox.write_exchange_config("127.0.0.1:1500", &sts.url(), json!({}));
    let path = docker_config(&mut sandbox);

    let out = sandbox.cmd(&["configure-docker", "127.0.0.1:15000"]).run().success();

    assert!(
        out.stderr.contains(
            "127.0.0.1:15000 is not configured for exchange (in "
        ) && out.stderr.contains(
            "and docker-credential-exchange's store holds nothing for it: Docker will get no credentials for it \
             until you log in (`docker login 127.0.0.1:15000` stores them through docker-credential-exchange); \
             did you mean 127.0.0.1:1500, which the config has?"
        ),
        "{out:?}"
    );
    assert!(std::fs::read_to_string(&path).unwrap().contains("127.0.0.1:15000"), "the entry is still added");
}

#[test]
fn a_configured_or_stored_registry_is_added_without_a_word_on_stderr() {
    let sts = Sts::start(StsOptions::default());
    let mut sandbox = Sandbox::new();
    sandbox.write_exchange_config("registry.example.com", &sts.url(), json!({}));
    docker_config(&mut sandbox);
    sandbox.store("ghcr.io", "bob", "ghcr-password-1").quiet_success();

    sandbox.cmd(&["configure-docker", "registry.example.com", "ghcr.io"]).run().quiet_success();
}

/// A sandbox whose Docker config names `docker-credential-old` as
/// `credsStore`, a stand-in holding a.example and b.example.
#[cfg(unix)]
fn switching_from_old() -> Sandbox {
    let mut sandbox = Sandbox::new();
    sandbox.write_config(&json!({"registries": {}}));
    let path = docker_config(&mut sandbox);
    write(&path, r#"{"credsStore": "old"}"#);
    sandbox.add_script(
        "docker-credential-old",
        r#"case "$1" in
list) echo '{"a.example":"ua","https://b.example":"ub"}';;
get) read s; case "$s" in
  a.example) echo '{"Username":"ua","Secret":"secret-of-a-1"}';;
  *) echo '{"Username":"ub","Secret":"secret-of-b-2"}';;
  esac;;
esac
"#,
    );
    sandbox
}

// The old helper is a sh script.
#[cfg(unix)]
#[test]
fn switching_creds_store_after_an_import_warns_of_nothing() {
    let sandbox = switching_from_old();
    sandbox.cmd(&["import", "--from", "old"]).run().quiet_success();

    sandbox.cmd(&["configure-docker", "--store"]).run().quiet_success();
}

// The old helper is a sh script.
#[cfg(unix)]
#[test]
fn switching_creds_store_warns_only_of_the_credentials_this_helper_does_not_hold() {
    let sandbox = switching_from_old();
    sandbox.store("a.example", "ua", "secret-of-a-1").quiet_success();

    let out = sandbox.cmd(&["configure-docker", "--store"]).run().success();

    assert!(
        out.stderr.contains(
            "docker-credential-old holds credentials for 1 registry that docker-credential-exchange does not \
             (https://b.example); once credsStore is \"exchange\" (set now), Docker no longer sees them: copy them \
             with `docker-credential-exchange import --from old`, or put credsStore \"old\" back with \
             `docker-credential-exchange configure-docker --remove`"
        ),
        "{out:?}"
    );
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}
