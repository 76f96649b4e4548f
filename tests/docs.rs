//! The documents stand on their own: every file the README and docs/
//! name is in the repository (a reader of docs/platforms.md was sent to
//! "DESIGN.md section 4", a file the repository does not have), and the
//! commands they give for a fresh machine work there (docs/kubernetes.md's
//! `install` needs `-D`: the providers' directory does not exist yet).

use std::path::{Path, PathBuf};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every document in docs/.
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![repo().join("README.md")];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap().flatten() {
        if entry.path().extension().is_some_and(|e| e == "md") {
            docs.push(entry.path());
        }
    }
    docs.sort();
    docs
}

/// The top-level directories of the repository, which a path a document
/// names starts with.
const TOP: [&str; 10] =
    ["src/", "tests/", "docs/", "install/", "bench/", "fuzz/", "examples/", "crates/", ".ci/", ".github/"];

/// Files of the reader's own repository that the CI recipes tell them to
/// commit, not files of this one.
const THE_READERS: [&str; 2] =
    [".github/docker-credential-exchange.json", ".gitlab/docker-credential-exchange.json"];

/// Every repository path a document names: relative link targets, and
/// words that start with a top-level directory or end in `.md`.
fn named_paths(doc: &Path, text: &str) -> Vec<(String, PathBuf)> {
    let base = doc.parent().unwrap();
    let mut found = Vec::new();
    for (at, _) in text.match_indices("](") {
        let target: String = text[at + 2..].chars().take_while(|c| *c != ')').collect();
        let target = target.split('#').next().unwrap_or_default();
        if !target.is_empty() && !target.contains("://") && !target.starts_with("mailto:") {
            found.push((target.to_owned(), base.join(target)));
        }
    }
    for word in text.split(|c: char| c.is_whitespace() || "`()[]\"'<>,;:*".contains(c)) {
        let word = word.trim_end_matches(['.', ',']);
        let word = if word.ends_with(".md.") { &word[..word.len() - 1] } else { word };
        let repo_path = TOP.iter().any(|top| word.starts_with(top)) && !word.contains("://");
        let document = word.ends_with(".md") && !word.contains("://") && !word.contains('*');
        if (repo_path || document) && !THE_READERS.contains(&word) {
            // A path from the repository's root, or one relative to the
            // document (`../install/Dockerfile`), whichever exists.
            let from_root = repo().join(word);
            let from_doc = base.join(word);
            found.push((word.to_owned(), if from_doc.exists() { from_doc } else { from_root }));
        }
    }
    found
}

#[test]
fn every_file_a_document_names_is_in_the_repository() {
    let mut missing = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for (named, path) in named_paths(&doc, &text) {
            // Directories named with a trailing slash and paths of what a
            // command makes (target/…) are not files of the repository.
            if named.ends_with('/') && TOP.contains(&named.as_str()) {
                continue;
            }
            if !path.exists() {
                missing.push(format!("{}: {named}", doc.strip_prefix(repo()).unwrap().display()));
            }
        }
    }
    assert!(missing.is_empty(), "documents name files the repository does not have:\n{}", missing.join("\n"));
}

#[test]
fn the_kubernetes_install_command_creates_the_providers_directory() {
    let text = std::fs::read_to_string(repo().join("docs/kubernetes.md")).unwrap();
    let install = text
        .lines()
        .find(|l| l.trim_start().starts_with("install "))
        .expect("docs/kubernetes.md installs the binary");
    assert!(
        install.split_whitespace().any(|w| w == "-D"),
        "on a fresh node /usr/local/lib/kubelet/credential-providers does not exist; `install` needs -D: {install}"
    );
}

#[test]
fn placeholders_say_what_to_put_in_their_place() {
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        for (number, line) in text.lines().enumerate() {
            if line.contains("YOUR-ORG") {
                // Said on the line itself or in the few lines before it.
                let start = number.saturating_sub(5);
                let context: Vec<&str> = text.lines().skip(start).take(number - start + 1).collect();
                assert!(
                    context.iter().any(|l| l.contains("YOUR-ORG:")),
                    "{}:{}: YOUR-ORG without saying what replaces it",
                    doc.display(),
                    number + 1
                );
            }
        }
    }
}

#[test]
fn ci_doc_lists_what_a_base_image_needs_and_shows_the_base_build_arg() {
    let text = std::fs::read_to_string(repo().join("docs/ci.md")).unwrap();
    assert!(text.contains("--build-arg BASE="), "docs/ci.md shows no `--build-arg BASE=` command");
    for need in ["a shell", "libgcc_s", "glibc", "musl", "CA bundle"] {
        assert!(text.contains(need), "docs/ci.md does not say a base image needs {need}");
    }
}

#[test]
fn the_readme_gives_each_systems_config_cache_and_data_paths() {
    let text = std::fs::read_to_string(repo().join("README.md")).unwrap();
    for path in [
        "~/.config/docker-credential-exchange/config.json",
        "~/Library/Application Support/docker-credential-exchange/config.json",
        r"%APPDATA%\docker-credential-exchange\config\config.json",
        "~/.cache/docker-credential-exchange/",
        "~/Library/Caches/docker-credential-exchange/",
        r"%LOCALAPPDATA%\docker-credential-exchange\cache\",
        "~/.local/share/docker-credential-exchange/",
        r"%LOCALAPPDATA%\docker-credential-exchange\data\",
    ] {
        assert!(text.contains(path), "README does not give {path}");
    }
}

#[test]
fn the_readme_first_screen_has_the_demo_and_the_tests_and_nothing_else_to_run() {
    let text = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let first_screen = text.split("\n## ").next().unwrap();
    let block = first_screen.split("```sh\n").nth(1).and_then(|b| b.split("```").next()).unwrap();
    let commands: Vec<&str> =
        block.lines().map(|l| l.split('#').next().unwrap().trim()).filter(|l| !l.is_empty()).collect();
    assert_eq!(commands, ["cargo run --release --example demo", "cargo test"]);
}
