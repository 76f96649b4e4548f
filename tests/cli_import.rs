//! `import --from HELPER` (DESIGN.md section 5) against stand-in helpers:
//! every credential that can be read is copied even when another cannot,
//! each failure is named on one line with a redacted cause and the run
//! exits 1; one registry listed under several spellings is copied once,
//! or not at all when the spellings disagree; a helper that cannot be run
//! is named as it was given. The whole import runs by one deadline, a
//! helper that exits but leaves a child holding its output costs a short
//! grace, the other helper's own words are a short excerpt with no secret
//! line, and a helper that lists nothing says so (and why, for `pass`).
//! (Copying from the real docker-credential-secretservice is in
//! keyring.rs.)

mod support;

use serde_json::json;
use support::cmd::Sandbox;

/// A sandbox with no exchange registries, using the file store.
fn sandbox() -> Sandbox {
    let sandbox = Sandbox::new();
    sandbox.write_config(&json!({"registries": {}}));
    sandbox
}

/// A stand-in `docker-credential-other` whose `list` answers `list` and
/// whose `get` runs the `case` arms in `gets` on the server URL `$s`.
#[cfg(unix)]
fn other_helper(sandbox: &mut Sandbox, list: &serde_json::Value, gets: &str) {
    sandbox.add_script(
        "docker-credential-other",
        &format!(
            "case \"$1\" in\nlist) echo '{list}';;\nget) read s; case \"$s\" in\n{gets}\nesac;;\nesac\n"
        ),
    );
}

#[test]
fn a_helper_that_cannot_be_run_is_named_as_it_was_given() {
    let sandbox = sandbox();
    let out = sandbox.cmd(&["import", "--from", "docker-credential-nosuchhelper"]).run().failure();
    assert!(out.stderr.contains("cannot run docker-credential-nosuchhelper"), "{out:?}");
    assert!(!out.stderr.contains("[REDACTED]"), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
}

// The other helpers are sh scripts.
#[cfg(unix)]
#[test]
fn every_credential_is_copied_with_an_empty_stderr_when_all_can_be_read() {
    let mut sandbox = sandbox();
    other_helper(
        &mut sandbox,
        &json!({"a.example.com": "ua", "b.example.com": "ub"}),
        r#"a.example.com) echo '{"Username":"ua","Secret":"secret-for-a-1"}';;
b.example.com) echo '{"Username":"ub","Secret":"secret-for-b-2"}';;"#,
    );

    let out = sandbox.cmd(&["import", "--from", "other"]).run().quiet_success();

    assert_eq!(
        out.stdout,
        "copied a.example.com (user ua)\ncopied b.example.com (user ub)\n\
         copied 2 credential(s) from docker-credential-other; skipped 0; failed 0\n"
    );
    assert_eq!(sandbox.get("b.example.com").quiet_success().secret(), "secret-for-b-2");
}

#[cfg(unix)]
#[test]
fn every_other_credential_is_copied_when_one_cannot_be_read() {
    let mut sandbox = sandbox();
    other_helper(
        &mut sandbox,
        &json!({"a.example.com": "ua", "b.example.com": "ub", "c.example.com": "uc"}),
        r#"b.example.com) echo "locked item"; exit 1;;
*) echo '{"Username":"u","Secret":"readable-secret-1"}';;"#,
    );

    let out = sandbox.cmd(&["import", "--from", "other"]).run().failure();

    assert!(
        out.stdout.contains("copied 2 credential(s) from docker-credential-other; skipped 0; failed 1"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains(
            "not copied b.example.com: docker-credential-other get failed (exit status: 1): locked item"
        ),
        "{out:?}"
    );
    assert!(out.stderr.contains("1 credential(s) of docker-credential-other were not copied"), "{out:?}");
    for copied in ["a.example.com", "c.example.com"] {
        assert_eq!(sandbox.get(copied).quiet_success().secret(), "readable-secret-1");
    }
    sandbox.get("b.example.com").protocol_error("credentials not found in native keychain");
}

#[cfg(unix)]
#[test]
fn the_cause_of_a_failure_is_redacted_and_kept_to_one_line() {
    let mut sandbox = sandbox();
    let jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
    let noise = "x".repeat(5000);
    other_helper(
        &mut sandbox,
        &json!({"b.example.com": "ub"}),
        &format!("b.example.com) printf 'bad token\\n{jwt}\\n{noise}\\n'; exit 1;;"),
    );

    let out = sandbox.cmd(&["import", "--from", "other"]).run().failure();

    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("not copied b.example.com"))
        .unwrap_or_else(|| panic!("no line for b.example.com: {out:?}"));
    assert!(line.contains("bad token [REDACTED]"), "{out:?}");
    assert!(!out.stderr.contains("eyJzdWIi"), "{out:?}");
    assert!(line.chars().count() < 400, "{out:?}");
}

#[cfg(unix)]
#[test]
fn one_registry_listed_under_two_names_with_one_credential_is_copied_once() {
    let mut sandbox = sandbox();
    other_helper(
        &mut sandbox,
        &json!({"https://index.docker.io/v1/": "bob", "docker.io": "bob"}),
        r#"*) echo '{"Username":"bob","Secret":"hub-secret-1"}';;"#,
    );

    let out = sandbox.cmd(&["import", "--from", "other"]).run().quiet_success();

    assert!(
        out.stdout.contains(
            "copied https://index.docker.io/v1/ (user bob; also listed as docker.io, the same registry with the same credential)"
        ),
        "{out:?}"
    );
    assert!(out.stdout.contains("copied 1 credential(s)"), "{out:?}");
    assert_eq!(sandbox.list().quiet_success().json(), json!({"https://index.docker.io/v1/": "bob"}));
}

#[cfg(unix)]
#[test]
fn one_registry_listed_under_two_names_with_different_credentials_is_not_copied() {
    let mut sandbox = sandbox();
    other_helper(
        &mut sandbox,
        &json!({"https://a.example.com": "old", "a.example.com": "new"}),
        r#"https://a.example.com) echo '{"Username":"old","Secret":"old-secret-1"}';;
a.example.com) echo '{"Username":"new","Secret":"new-secret-2"}';;"#,
    );

    let out = sandbox.cmd(&["import", "--from", "other"]).run().failure();

    assert!(
        out.stderr.contains("not copied a.example.com and https://a.example.com: docker-credential-other lists them with different credentials"),
        "{out:?}"
    );
    assert!(!out.stderr.contains("old-secret-1") && !out.stderr.contains("new-secret-2"), "{out:?}");
    sandbox.get("a.example.com").protocol_error("credentials not found in native keychain");
}

#[cfg(unix)]
#[test]
fn a_different_credential_this_helper_holds_is_not_replaced() {
    let mut sandbox = sandbox();
    sandbox.store("a.example.com", "ua", "the-newer-password-1").quiet_success();
    other_helper(
        &mut sandbox,
        &json!({"a.example.com": "ua", "b.example.com": "ub"}),
        r#"a.example.com) echo '{"Username":"ua","Secret":"a-stale-password-2"}';;
b.example.com) echo '{"Username":"ub","Secret":"secret-for-b-2"}';;"#,
    );

    let out = sandbox.cmd(&["import", "--from", "other"]).run().failure();

    assert!(out.stderr.contains("not copied a.example.com"), "{out:?}");
    assert!(out.stderr.contains("holds a different credential"), "{out:?}");
    assert_eq!(sandbox.get("a.example.com").quiet_success().secret(), "the-newer-password-1");
    assert_eq!(sandbox.get("b.example.com").quiet_success().secret(), "secret-for-b-2");
}

#[cfg(unix)]
#[test]
fn the_same_credential_this_helper_holds_is_skipped() {
    let mut sandbox = sandbox();
    sandbox.store("a.example.com", "ua", "secret-for-a-1").quiet_success();
    other_helper(
        &mut sandbox,
        &json!({"a.example.com": "ua"}),
        r#"a.example.com) echo '{"Username":"ua","Secret":"secret-for-a-1"}';;"#,
    );

    let out = sandbox.cmd(&["import", "--from", "other"]).run().quiet_success();

    assert!(
        out.stdout.contains("skipped a.example.com: docker-credential-exchange holds the same"),
        "{out:?}"
    );
    assert!(out.stdout.contains("copied 0 credential(s) from docker-credential-other; skipped 1; failed 0"));
}

#[cfg(unix)]
#[test]
fn when_one_spelling_of_a_registry_cannot_be_read_none_is_copied() {
    let mut sandbox = sandbox();
    other_helper(
        &mut sandbox,
        &json!({"https://a.example.com": "ua", "a.example.com": "ua"}),
        r#"https://a.example.com) echo "locked item"; exit 1;;
a.example.com) echo '{"Username":"ua","Secret":"maybe-stale-secret-1"}';;"#,
    );

    let out = sandbox.cmd(&["import", "--from", "other"]).run().failure();

    // Whether the two agree cannot be told, so neither is filed.
    assert!(out.stderr.contains("could not be read to compare"), "{out:?}");
    assert_eq!(sandbox.get("a.example.com").code, Some(1));
}

#[test]
fn an_unusable_config_stops_the_import_before_anything_is_copied() {
    let sandbox = sandbox();
    std::fs::write(sandbox.root().join("config.json"), "{\"registries\": {,}}").unwrap();
    let out = sandbox.cmd(&["import", "--from", "other"]).run().failure();
    assert!(out.stderr.contains("config is unusable"), "{out:?}");
    assert!(out.stderr.contains("nothing was copied"), "{out:?}");
}

#[cfg(unix)]
#[test]
fn a_closed_stdout_neither_stops_the_import_nor_hides_its_failures() {
    let mut sandbox = sandbox();
    other_helper(
        &mut sandbox,
        &json!({"a.example.com": "ua", "b.example.com": "ub", "c.example.com": "uc"}),
        r#"b.example.com) echo "locked item"; exit 1;;
*) echo '{"Username":"u","Secret":"readable-secret-1"}';;"#,
    );
    // `import --from other | head -0`: the reader is gone before the
    // first line.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let (mut command, _) = sandbox.cmd(&["import", "--from", "other"]).into_command();
    let status = command.stdin(std::process::Stdio::null()).stdout(writer).status().unwrap();

    assert_eq!(status.code(), Some(1), "a failure must still fail the run");
    assert_eq!(sandbox.get("c.example.com").quiet_success().secret(), "readable-secret-1");
}

// ---------------------------------------------------------------------------
// One deadline, and the other helper's words kept short and secret-free

#[cfg(unix)]
#[test]
fn a_source_whose_get_hangs_costs_one_deadline_for_the_whole_import() {
    let mut sandbox = sandbox();
    other_helper(
        &mut sandbox,
        &json!({"a.example.com": "ua", "b.example.com": "ub", "c.example.com": "uc"}),
        "*) sleep 60;;",
    );
    let started = std::time::Instant::now();

    let out = sandbox
        .cmd(&["import", "--from", "other"])
        .env("DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS", "2")
        .kill_after(std::time::Duration::from_secs(40))
        .run()
        .failure();

    assert!(started.elapsed() < std::time::Duration::from_secs(20), "{:?}", started.elapsed());
    assert!(
        out.stderr
            .contains("not copied a.example.com: get: docker-credential-other did not finish within 2s"),
        "{out:?}"
    );
    for later in ["b.example.com", "c.example.com"] {
        assert!(
            out.stderr.contains(&format!("not copied {later}: not tried: the import ran out of time\n")),
            "{out:?}"
        );
    }
    assert!(
        out.stderr
            .contains("the whole import may take 2s (DOCKER_CREDENTIAL_EXCHANGE_TIMEOUT_SECONDS sets it)"),
        "{out:?}"
    );
}

#[cfg(unix)]
#[test]
fn a_source_that_leaves_a_child_holding_its_output_costs_a_short_grace_not_the_deadline() {
    let mut sandbox = sandbox();
    sandbox.add_script(
        "docker-credential-other",
        r#"case "$1" in
list) echo '{"a.example.com":"ua"}'; sleep 60 & ;;
get) read s; echo '{"Username":"ua","Secret":"secret-for-a-1"}'; sleep 60 & ;;
esac
"#,
    );
    let started = std::time::Instant::now();

    let out =
        sandbox.cmd(&["import", "--from", "other"]).kill_after(std::time::Duration::from_secs(40)).run();

    assert!(started.elapsed() < std::time::Duration::from_secs(15), "{:?}: {out:?}", started.elapsed());
    out.quiet_success();
    assert_eq!(sandbox.get("a.example.com").quiet_success().secret(), "secret-for-a-1");
}

#[cfg(unix)]
#[test]
fn a_failing_sources_words_are_a_short_excerpt_without_its_secrets() {
    let mut sandbox = sandbox();
    let token = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
    other_helper(
        &mut sandbox,
        &json!({"b.example.com": "ub"}),
        &format!(
            "b.example.com) printf 'login failed\\nuser=bob password=PlainPw999\\n{token}\\n'; exit 1;;"
        ),
    );

    let out = sandbox.cmd(&["import", "--from", "other"]).run().failure();

    let line = out.stderr.lines().find(|l| l.contains("not copied b.example.com")).unwrap_or_default();
    assert!(line.contains("failed (exit status: 1): login failed [REDACTED]"), "{out:?}");
    for secret in ["PlainPw999", "password=", &token[..12], &token[8..24]] {
        assert!(!out.stderr.contains(secret) && !out.stdout.contains(secret), "{secret} is shown: {out:?}");
    }
}

#[cfg(unix)]
#[test]
fn a_source_that_lists_nothing_says_so() {
    let mut sandbox = sandbox();
    other_helper(&mut sandbox, &json!({}), "");

    let out = sandbox.cmd(&["import", "--from", "other"]).run().quiet_success();

    assert_eq!(out.stdout, "docker-credential-other lists no credentials; nothing to copy\n");
}

#[cfg(unix)]
#[test]
fn import_from_pass_without_pass_on_path_is_an_error_that_says_why() {
    let mut sandbox = sandbox();
    // docker-credential-pass answers an empty list, successfully, when
    // `pass` itself is missing.
    let script = sandbox.add_script("docker-credential-pass", "[ \"$1\" = list ] && echo '{}'\n");
    sandbox.set_env("PATH", script.parent().unwrap().to_str().unwrap());

    let out = sandbox.cmd(&["import", "--from", "pass"]).run().failure();

    assert!(
        out.stderr.contains(
            "docker-credential-pass lists no credentials: it keeps them with `pass` (the password store), which is \
             not on PATH"
        ),
        "{out:?}"
    );
    assert!(out.stderr.contains("nothing was copied") && out.stderr.lines().count() == 1, "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
}
