//! The man page as `man` shows it: the binary's `generate man` output
//! rendered by man-db at 80 columns (`MANWIDTH=80 man -l FILE`), read the
//! way a person reads it. Checking the roff source missed a header that
//! rendered as `docker-credential-exchange(1General Commands Manu…`.
#![cfg(target_os = "linux")]

mod support;

use std::path::Path;
use std::process::Command;

use support::cmd::bin;
use support::services::require_tool;

const TITLE: &str = "docker-credential-exchange(1)";

/// The page rendered at 80 columns, or None (a loud skip) without man-db.
fn rendered() -> Option<String> {
    if !require_tool("man") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("docker-credential-exchange.1");
    let out = Command::new(bin()).args(["generate", "man"]).output().unwrap();
    assert!(out.status.success(), "generate man: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::write(&page, out.stdout).unwrap();
    let man = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("LANG", "C.UTF-8")
        .env_remove("MANROFFOPT")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&man.stderr);
    assert!(man.status.success(), "man -l failed: {stderr}");
    // troff's warnings (a bad request, a line it could not fit) go here.
    assert!(stderr.trim().is_empty(), "man -l warned:\n{stderr}");
    Some(String::from_utf8_lossy(&man.stdout).into_owned())
}

/// The text under one `SECTION` heading, up to the next heading.
fn section<'a>(page: &'a str, heading: &str) -> &'a str {
    let start =
        page.find(&format!("\n{heading}\n")).unwrap_or_else(|| panic!("no {heading} section in:\n{page}"))
            + heading.len()
            + 2;
    let rest = &page[start..];
    let end = rest
        .lines()
        .scan(0, |offset, line| {
            let at = *offset;
            *offset += line.len() + 1;
            Some((at, line))
        })
        .find(|(_, line)| line.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        .map_or(rest.len(), |(at, _)| at);
    &rest[..end]
}

#[test]
fn the_header_and_footer_fit_80_columns_whole() {
    let Some(page) = rendered() else { return };
    let header = page.lines().next().unwrap();
    let words: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(words, [TITLE, "User", "Commands", TITLE], "header: {header:?}");
    assert!(header.chars().count() <= 80, "header wider than 80 columns: {header:?}");
    let footer = page.lines().rev().find(|l| !l.trim().is_empty()).unwrap();
    let words: Vec<&str> = footer.split_whitespace().collect();
    assert_eq!(words, ["docker-credential-exchange", env!("CARGO_PKG_VERSION"), TITLE], "footer: {footer:?}");
}

#[test]
fn the_page_has_every_section_a_reader_looks_for() {
    let Some(page) = rendered() else { return };
    for heading in [
        "NAME",
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "DOCKER CREDENTIAL HELPER PROTOCOL",
        "COMMANDS",
        "CONFIGURATION",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "EXAMPLES",
    ] {
        assert!(!section(&page, heading).trim().is_empty(), "{heading} is empty");
    }
}

/// Every `DOCKER_CREDENTIAL_EXCHANGE_*` name in src/, except the test
/// suite's clock seam, which release builds do not read.
fn variables_the_binary_reads() -> Vec<String> {
    fn walk(dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for (at, _) in text.match_indices("DOCKER_CREDENTIAL_EXCHANGE_") {
                    let name: String = text[at..]
                        .chars()
                        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                        .collect();
                    let name = name.trim_end_matches('_').to_owned();
                    if name != "DOCKER_CREDENTIAL_EXCHANGE" && !found.contains(&name) {
                        found.push(name);
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    walk(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut found);
    found.retain(|name| name != "DOCKER_CREDENTIAL_EXCHANGE_TEST_CLOCK_OFFSET");
    found.sort();
    found
}

#[test]
fn environment_names_every_variable_the_binary_reads() {
    let Some(page) = rendered() else { return };
    let environment = section(&page, "ENVIRONMENT");
    let ours = variables_the_binary_reads();
    assert!(ours.len() >= 8, "the scan of src/ found too few variables: {ours:?}");
    let others = [
        "DOCKER_CONFIG",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "HTTPS_PROXY",
        "NO_PROXY",
        "XDG_CONFIG_HOME",
    ];
    for name in ours.iter().map(String::as_str).chain(others) {
        assert!(environment.contains(name), "ENVIRONMENT does not name {name}:\n{environment}");
    }
}

#[test]
fn files_gives_the_config_cache_and_data_paths_of_each_system() {
    let Some(page) = rendered() else { return };
    let files = section(&page, "FILES");
    for path in [
        "~/.config/docker-credential-exchange/config.json",
        "~/.cache/docker-credential-exchange/",
        "~/.local/share/docker-credential-exchange/",
        "~/Library/Application Support/docker-credential-exchange/config.json",
        "~/Library/Caches/docker-credential-exchange/",
        r"%APPDATA%\docker-credential-exchange\config\config.json",
        r"%LOCALAPPDATA%\docker-credential-exchange\cache\",
        r"%LOCALAPPDATA%\docker-credential-exchange\data\",
        "DOCKER_CREDENTIAL_EXCHANGE_LOG_FILE",
    ] {
        assert!(files.contains(path), "FILES does not give {path}:\n{files}");
    }
}

#[test]
fn exit_status_and_examples_say_what_a_script_and_a_newcomer_need() {
    let Some(page) = rendered() else { return };
    let status = section(&page, "EXIT STATUS");
    for code in ["0", "1", "2"] {
        assert!(status.lines().any(|l| l.trim_start().starts_with(code)), "no exit status {code}:\n{status}");
    }
    let words = status.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(words.contains("credentials not found in native keychain"), "{status}");
    let examples = section(&page, "EXAMPLES");
    for command in ["configure-docker registry.example.com", "login registry.example.com", "doctor"] {
        assert!(examples.contains(command), "EXAMPLES lacks {command}:\n{examples}");
    }
}

#[test]
fn the_config_format_is_described_with_an_example() {
    let Some(page) = rendered() else { return };
    let configuration = section(&page, "CONFIGURATION");
    for field in ["\"registries\"", "token_endpoint", "subject_token", "scope", "username"] {
        assert!(configuration.contains(field), "CONFIGURATION lacks {field}:\n{configuration}");
    }
}
