//! Records what `--version` shows besides the version: the commit the
//! binary was built from and the target it was built for. The commit comes
//! from `DCE_BUILD_COMMIT` (release jobs set it), else from git when the
//! source is a checkout, else "unknown" (a crates.io or vendored build).

use std::process::Command;

fn main() {
    let commit = std::env::var("DCE_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| {
            let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).output().ok()?;
            out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=DCE_BUILD_COMMIT={commit}");
    println!("cargo:rustc-env=DCE_BUILD_TARGET={target}");
    println!("cargo:rerun-if-env-changed=DCE_BUILD_COMMIT");
    // A new commit changes HEAD or the ref it points to.
    for path in [".git/HEAD", ".git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
