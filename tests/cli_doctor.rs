//! `doctor` (DESIGN.md section 5): everything a pull would trip on is a
//! problem with its fix and makes `doctor` exit 1; what is only worth a look
//! is a warning; a healthy setup passes.

mod support;

use serde_json::{Value, json};
use support::doctor::{REGISTRY, docker_config, doctor_fails_with, fix_after, healthy, line_with};

#[test]
fn a_healthy_setup_passes() {
    let (sandbox, sts) = healthy();
    let out = sandbox.cmd(&["doctor"]).run().success();
    for check in
        ["config:", "store:", "login:", "endpoint:", "clock:", "cache:", "PATH:", "docker:", "shadowing:"]
    {
        assert!(line_with(&out, check).starts_with('✓'), "{check}: {out:?}");
    }
    assert!(out.stdout.contains("no problems found"), "{out:?}");
    assert_eq!(sts.requests_to("/token"), 1, "one probe of the endpoint, no exchange");
}

#[test]
fn no_login_token_is_a_problem_with_the_login_command_as_its_fix() {
    let (sandbox, _sts) = healthy();
    sandbox.cmd(&["logout", REGISTRY]).run().success();
    let out = doctor_fails_with(&sandbox, "no login token");
    assert!(
        fix_after(&out, "no login token").contains(&format!("docker-credential-exchange login {REGISTRY}")),
        "{out:?}"
    );
}

#[test]
fn an_expired_login_token_is_a_problem() {
    let (sandbox, sts) = healthy();
    sandbox.store(REGISTRY, "alice", &sts.mint_subject_token("alice", -60)).quiet_success();
    let out = doctor_fails_with(&sandbox, "expired at");
    assert!(fix_after(&out, "expired at").contains("fresh token"), "{out:?}");
}

#[test]
fn a_client_secret_from_an_unset_variable_is_a_problem() {
    let (sandbox, sts) = healthy();
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({"client_id": "docker", "client_secret": {"source": "env", "var": "STS_CLIENT_SECRET"}}),
    );
    let out = doctor_fails_with(&sandbox, "client secret (env:STS_CLIENT_SECRET) is not available");
    assert!(fix_after(&out, "client secret").contains("set STS_CLIENT_SECRET"), "{out:?}");
}

#[test]
fn a_missing_subject_file_is_a_problem() {
    let (sandbox, sts) = healthy();
    let missing = sandbox.root().join("no-such-token");
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({"subject_token": {"source": "file", "path": missing}}),
    );
    doctor_fails_with(&sandbox, "no login token from file:");
}

#[test]
fn an_unset_subject_variable_is_a_problem() {
    let (sandbox, sts) = healthy();
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({"subject_token": {"source": "env", "var": "CI_JOB_JWT"}}),
    );
    let out = doctor_fails_with(&sandbox, "no login token from env:CI_JOB_JWT");
    assert!(fix_after(&out, "env:CI_JOB_JWT").contains("set CI_JOB_JWT"), "{out:?}");
}

#[test]
fn a_clock_a_day_off_is_a_problem() {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    std::thread::spawn(move || {
        for request in server.incoming_requests() {
            let yesterday = std::time::SystemTime::now() - std::time::Duration::from_secs(86_400);
            let date = httpdate(yesterday);
            let header = tiny_http::Header::from_bytes("Date", date.as_bytes()).unwrap();
            // A token endpoint's answer to the probe; only the clock is off.
            let body = r#"{"error":"invalid_request"}"#;
            let _ = request
                .respond(tiny_http::Response::from_string(body).with_status_code(400).with_header(header));
        }
    });
    let (sandbox, _sts) = healthy();
    sandbox.write_exchange_config(REGISTRY, &format!("http://127.0.0.1:{port}/token"), json!({}));
    let out = doctor_fails_with(&sandbox, "clock:");
    assert!(line_with(&out, "clock:").contains("1d 0h ahead of"), "{out:?}");
}

/// An IMF-fixdate, as a `Date` header carries it.
fn httpdate(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let rfc = docker_credential_exchange::for_tests::rfc3339(secs);
    // 2026-11-24T09:00:00Z -> Tue, 24 Nov 2026 09:00:00 GMT (the weekday is not checked)
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = months[rfc[5..7].parse::<usize>().unwrap() - 1];
    format!("Mon, {} {month} {} {} GMT", &rfc[8..10], &rfc[..4], &rfc[11..19])
}

#[test]
fn an_unreachable_endpoint_is_a_problem() {
    let (sandbox, _sts) = healthy();
    sandbox.write_exchange_config(REGISTRY, "http://127.0.0.1:9/token", json!({}));
    let out = doctor_fails_with(&sandbox, "http://127.0.0.1:9/token");
    assert!(line_with(&out, "http://127.0.0.1:9/token").contains("not reachable"), "{out:?}");
}

#[test]
fn a_bad_config_is_a_problem() {
    let (sandbox, _sts) = healthy();
    std::fs::write(sandbox.config_path(), "{ not json").unwrap();
    doctor_fails_with(&sandbox, "config:");
}

#[test]
fn the_exchange_option_proves_each_registry_with_one_exchange() {
    let (sandbox, sts) = healthy();
    let out = sandbox.cmd(&["doctor", "--exchange"]).run().success();
    assert!(line_with(&out, "exchange:").starts_with('✓'), "{out:?}");
    assert_eq!(sts.requests(), 2, "one probe and one exchange");
}

#[test]
fn the_last_failure_of_a_get_is_shown() {
    let (sandbox, sts) = healthy();
    sts.set_fault(support::sts::Fault::InvalidGrant);
    sandbox.get(REGISTRY).failure();
    let out = sandbox.cmd(&["doctor"]).run();
    let line = line_with(&out, "last get:");
    assert!(line.starts_with('!') && line.contains("invalid_grant"), "{out:?}");
}

#[test]
fn a_shadowing_auth_in_dockers_config_is_a_problem_whose_fix_keeps_the_login() {
    let (mut sandbox, _sts) = healthy();
    let path = docker_config(&mut sandbox);
    std::fs::write(
        &path,
        r#"{"auths": {"https://registry.example.com": {"auth": "YWxpY2U6b2xk"}, "quay.io": {"auth": "eDp5"}},
            "credHelpers": {"registry.example.com": "exchange"}}"#,
    )
    .unwrap();
    let out = doctor_fails_with(&sandbox, "auths.\"https://registry.example.com\"");
    assert!(line_with(&out, "shadowing:").contains(&path.display().to_string()), "{out:?}");
    let fix = fix_after(&out, "auths.\"https://registry.example.com\"");
    assert!(
        fix.contains("configure-docker registry.example.com") && fix.contains("not `docker logout`"),
        "{out:?}"
    );
    assert!(!out.stdout.contains("quay.io"), "only registries this helper serves: {out:?}");
    assert!(!out.stdout.contains("YWxpY2U6b2xk"), "{out:?}");

    // The fix works, and keeps the login.
    sandbox.cmd(&["configure-docker", REGISTRY]).run().success();
    sandbox.cmd(&["doctor"]).run().success();
}

#[test]
fn a_shadowing_entry_in_containers_auth_json_is_a_problem() {
    let (mut sandbox, _sts) = healthy();
    let auth_file = sandbox.root().join("auth.json");
    std::fs::write(&auth_file, r#"{"auths": {"registry.example.com/team": {"auth": "YWxpY2U6b2xk"}}}"#)
        .unwrap();
    sandbox.set_env("REGISTRY_AUTH_FILE", auth_file.to_str().unwrap());
    let out = doctor_fails_with(&sandbox, "auths.\"registry.example.com/team\"");
    assert!(
        line_with(&out, "auths.\"registry.example.com/team\"").contains(&auth_file.display().to_string())
    );
}

#[test]
fn docker_sending_the_registry_to_another_helper_is_a_problem() {
    let (mut sandbox, _sts) = healthy();
    let path = docker_config(&mut sandbox);
    std::fs::write(&path, r#"{"credHelpers": {"registry.example.com": "ecr-login"}}"#).unwrap();
    let out = doctor_fails_with(&sandbox, "docker-credential-ecr-login");
    assert!(out.stdout.contains("configure-docker registry.example.com"), "{out:?}");
}

#[test]
fn the_binary_missing_from_path_is_a_problem() {
    let (mut sandbox, _sts) = healthy();
    let empty = sandbox.root().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    sandbox.set_env("PATH", empty.to_str().unwrap());
    doctor_fails_with(&sandbox, "PATH:");
}

// Unix modes.
#[cfg(unix)]
#[test]
fn a_cache_directory_others_can_read_is_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let (sandbox, _sts) = healthy();
    std::fs::create_dir_all(sandbox.cache_dir()).unwrap();
    std::fs::set_permissions(sandbox.cache_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = sandbox.cmd(&["doctor"]).run().success();
    let line = line_with(&out, "cache:");
    assert!(line.starts_with('!') && line.contains("755"), "{out:?}");
}

#[test]
fn json_gives_the_same_findings_to_scripts() {
    let (sandbox, _sts) = healthy();
    sandbox.cmd(&["logout", REGISTRY]).run().success();
    let out = sandbox.cmd(&["doctor", "--json"]).run().failure();
    let report: Value = out.json();
    assert!(report["problems"].as_u64().unwrap() >= 1, "{report:#}");
    let findings = report["findings"].as_array().unwrap();
    let login = findings.iter().find(|f| f["area"] == "login").unwrap();
    assert_eq!(login["level"], "problem");
    assert!(login["fix"].as_str().unwrap().contains("login"), "{login}");
}

#[test]
fn no_login_says_that_docker_login_is_the_wrong_door() {
    let (sandbox, _sts) = healthy();
    sandbox.cmd(&["logout", REGISTRY]).run().success();
    let out = doctor_fails_with(&sandbox, "no login token");
    let fix = fix_after(&out, "no login token");
    assert!(fix.contains(&format!("run `docker-credential-exchange login {REGISTRY}`")), "{out:?}");
    assert!(fix.contains("not `docker login`") && fix.contains("never reaches this helper"), "{out:?}");
}

#[test]
fn doctor_names_the_config_file_it_read_and_where_that_came_from() {
    let (sandbox, _sts) = healthy();
    let out = sandbox.cmd(&["doctor"]).run().success();
    let named =
        format!("{} (from $DOCKER_CREDENTIAL_EXCHANGE_CONFIG) is valid", sandbox.config_path().display());
    assert!(line_with(&out, "config:").contains(&named), "{out:?}");
    let out = sandbox.cmd(&["--config", sandbox.config_path().to_str().unwrap(), "doctor"]).run().success();
    assert!(line_with(&out, "config:").contains("(from --config)"), "{out:?}");
}

#[test]
fn a_config_variable_naming_a_missing_file_is_a_warning() {
    let (mut sandbox, _sts) = healthy();
    let missing = sandbox.root().join("no-such-config.json");
    sandbox.set_env("DOCKER_CREDENTIAL_EXCHANGE_CONFIG", missing.to_str().unwrap());
    let out = sandbox.cmd(&["doctor"]).run().success();
    let line = line_with(&out, "config:");
    assert!(line.starts_with('!') && line.contains(&missing.display().to_string()), "{out:?}");
    assert!(fix_after(&out, "config:").contains("DOCKER_CREDENTIAL_EXCHANGE_CONFIG"), "{out:?}");
}

// ---- what Docker sends here ----

#[test]
fn a_host_entry_whose_scope_needs_a_repository_is_a_problem_when_docker_sends_the_host_here() {
    let (sandbox, sts) = healthy();
    sandbox.write_exchange_config(REGISTRY, &sts.url(), json!({"scope": "repository:{repository}:pull"}));
    let out = doctor_fails_with(&sandbox, "scope:");
    let line = line_with(&out, "scope:");
    assert!(line.contains("needs {repository}") && line.contains("no repository"), "{out:?}");
    let fix = fix_after(&out, "scope:");
    assert!(
        fix.contains("give it a fixed scope") && fix.contains("\"repository:team/app:pull,push"),
        "{out:?}"
    );
}

#[test]
fn a_host_entry_whose_audience_needs_a_repository_gets_a_fixed_audience_as_its_fix() {
    let (sandbox, sts) = healthy();
    sandbox.write_exchange_config(
        REGISTRY,
        &sts.url(),
        json!({"audience": "https://{registry}/{repository}"}),
    );
    let out = doctor_fails_with(&sandbox, "scope:");
    assert!(fix_after(&out, "scope:").contains("give it a fixed audience"), "{out:?}");
}

#[test]
fn an_entry_that_needs_a_repository_is_fine_when_docker_does_not_send_its_host_here() {
    let (mut sandbox, sts) = healthy();
    sandbox.write_exchange_config(REGISTRY, &sts.url(), json!({"scope": "repository:{repository}:pull"}));
    // Only the kubelet or `token host/repo` ask for it, with a repository.
    std::fs::write(docker_config(&mut sandbox), r#"{"credHelpers": {"ghcr.io": "gcloud"}}"#).unwrap();
    let out = sandbox.cmd(&["doctor"]).run().success();
    assert!(!out.stdout.contains("scope:"), "{out:?}");
}

#[test]
fn a_misspelt_registry_name_is_named_as_one_name_on_both_sides() {
    let (mut sandbox, sts) = healthy();
    sandbox.write_exchange_config("127.0.0.1:1500", &sts.url(), json!({}));
    let docker = docker_config(&mut sandbox);
    std::fs::write(&docker, r#"{"credHelpers": {"127.0.0.1:15000": "exchange"}}"#).unwrap();
    let out = doctor_fails_with(&sandbox, "docker: Docker sends 127.0.0.1:15000 here");
    let line = line_with(&out, "docker: Docker sends 127.0.0.1:15000 here");
    assert!(line.contains("the config names 127.0.0.1:1500, not 127.0.0.1:15000"), "{out:?}");
    assert!(line.contains("spelt two ways?"), "{out:?}");
    let fix = fix_after(&out, "docker: Docker sends 127.0.0.1:15000 here");
    assert!(fix.contains("rename \"127.0.0.1:1500\" to \"127.0.0.1:15000\""), "{out:?}");
    assert!(fix.contains("remove credHelpers \"127.0.0.1:15000\""), "{out:?}");
    // The login check says so too, instead of spreading the other spelling.
    let login = fix_after(&out, "no login token");
    assert!(login.contains("Docker sends 127.0.0.1:15000 here, not 127.0.0.1:1500"), "{out:?}");
    assert!(!out.stdout.contains("does not name this helper for 127.0.0.1:1500"), "{out:?}");
}

#[test]
fn a_name_docker_sends_here_that_nothing_resembles_is_a_warning() {
    let (mut sandbox, _sts) = healthy();
    std::fs::write(
        docker_config(&mut sandbox),
        r#"{"credHelpers": {"registry.example.com": "exchange", "quay.io": "exchange"}}"#,
    )
    .unwrap();
    let out = sandbox.cmd(&["doctor"]).run().success();
    let line = line_with(&out, "sends quay.io to this helper");
    assert!(line.starts_with('!') && line.contains("neither configured"), "{out:?}");
    assert!(!line.contains("spelt two ways"), "{out:?}");
}

#[test]
fn a_stored_auth_is_not_shadowing_when_docker_sends_that_registry_to_another_helper() {
    let (mut sandbox, _sts) = healthy();
    // The helper holds plain.example.com, but Docker's credsStore is still
    // another helper: Docker never asks this one for it.
    sandbox.store("plain.example.com", "bob", "pw").quiet_success();
    std::fs::write(
        docker_config(&mut sandbox),
        r#"{"auths": {"plain.example.com": {"auth": "Ym9iOnB3"}}, "credsStore": "secretservice",
            "credHelpers": {"registry.example.com": "exchange"}}"#,
    )
    .unwrap();
    let out = sandbox.cmd(&["doctor"]).run().success();
    assert!(!out.stdout.contains("auths.\"plain.example.com\""), "{out:?}");
    assert!(line_with(&out, "shadowing:").starts_with('✓'), "{out:?}");

    // Once Docker sends it here, the same entry does stand in the way.
    std::fs::write(
        docker_config(&mut sandbox),
        r#"{"auths": {"plain.example.com": {"auth": "Ym9iOnB3"}}, "credsStore": "exchange"}"#,
    )
    .unwrap();
    doctor_fails_with(&sandbox, "auths.\"plain.example.com\"");
}

#[test]
fn a_trailing_comma_in_an_entry_is_called_a_trailing_comma() {
    let (sandbox, sts) = healthy();
    let text = format!(
        "{{\n  \"registries\": {{\n    \"{REGISTRY}\": {{\n      \"token_endpoint\": \"{}\",\n    }}\n  }}\n}}\n",
        sts.url()
    );
    std::fs::write(sandbox.config_path(), text).unwrap();
    let out = doctor_fails_with(&sandbox, "config:");
    let line = line_with(&out, "config:");
    assert!(line.contains("line 4") && line.contains("a trailing comma?"), "{out:?}");
    assert!(!line.contains("key must be a string"), "{out:?}");
}

#[test]
fn a_repository_entry_alone_for_a_host_docker_sends_here_is_a_warning() {
    let (sandbox, sts) = healthy();
    let key = format!("{REGISTRY}/team/app");
    sandbox.write_exchange_config(&key, &sts.url(), json!({"scope": "repository:{repository}:pull"}));
    sandbox.store(&key, "alice", &sts.mint_subject_token("alice", 3600)).quiet_success();
    let out = sandbox.cmd(&["doctor"]).run();
    let line = line_with(&out, "scope:");
    assert!(line.starts_with('!') && line.contains(&format!("\"{key}\" is never used")), "{out:?}");
    assert!(
        fix_after(&out, "scope:").contains(&format!("add an entry \"{REGISTRY}\" with a fixed scope")),
        "{out:?}"
    );
}

#[test]
fn a_broken_config_with_the_file_store_chosen_by_variable_names_the_file_store_not_the_keyring() {
    let (sandbox, _sts) = healthy();
    std::fs::write(sandbox.config_path(), "{\"registries\": {").unwrap();
    let out = sandbox.cmd(&["doctor"]).run();
    let store = line_with(&out, "store:");
    assert!(store.starts_with('✓') && store.contains("file store"), "{out:?}");
    assert!(!store.contains("OS keyring"), "{out:?}");
}
