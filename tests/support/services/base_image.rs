//! A Debian bookworm base image made on this machine, since no registry
//! image can be pulled here: `debootstrap --variant=minbase` from the mirror
//! apt itself uses, packed as a tarball and `docker import`ed.
//!
//! debootstrap takes most of a minute and a download of some 40 MB, so the
//! tarball is cached in a stable place (`/var/tmp`, which survives
//! reboots), named by everything that shapes it: suite, variant, extra
//! packages, mirror, architecture and debootstrap's version. A new mirror
//! or a new debootstrap makes a new tarball; a cache hit makes none.

use std::io::Write;

use sha2::{Digest, Sha256};

use super::*;

/// The suite of the CI image's default base, `debian:bookworm-slim`.
const SUITE: &str = "bookworm";
/// What the base adds to minbase: the TLS roots the helper needs for a
/// token endpoint, so that building the image needs no package index.
const INCLUDE: &str = "ca-certificates";
/// Where cached root file systems live.
const CACHE_DIR: &str = "/var/tmp/docker-credential-exchange-tests";

/// True when the base can be made: debootstrap installed and running as
/// root (it chroots and creates device nodes). Otherwise a loud skip, a
/// failure under CI.
pub fn require_debootstrap() -> bool {
    if !require_tool("debootstrap") {
        return false;
    }
    super::super::skip::require_root("debootstrap chroots and creates device nodes for the CI image's base")
}

/// Imports the cached (or freshly made) bookworm root file system into
/// `dockerd` as `tag`.
pub fn docker_import_bookworm(dockerd: &Dockerd, tag: &str) {
    let tarball = bookworm_rootfs();
    let config = tempfile::tempdir().expect("create DOCKER_CONFIG");
    let output: Output = dockerd
        .docker()
        .env("DOCKER_CONFIG", config.path())
        .arg("import")
        .arg(&tarball)
        .arg(tag)
        .output()
        .expect("run docker import");
    assert!(
        output.status.success(),
        "docker import {} failed: {}\n--- dockerd log ---\n{}",
        tarball.display(),
        String::from_utf8_lossy(&output.stderr),
        dockerd.log()
    );
}

/// The tarball of a minimal bookworm root, made on first use.
pub fn bookworm_rootfs() -> PathBuf {
    let mirror = apt_mirror(SUITE).unwrap_or_else(|| {
        panic!("no apt source for {SUITE} in /etc/apt/sources.list or sources.list.d; debootstrap needs its mirror")
    });
    let arch = dpkg_architecture();
    let version = debootstrap_version();
    let key = Sha256::digest(format!("{SUITE}\nminbase\n{INCLUDE}\n{mirror}\n{arch}\n{version}\n"));
    let key: String = key.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let cache = Path::new(CACHE_DIR);
    let tarball = cache.join(format!("{SUITE}-minbase-{arch}-{key}.tar"));
    if tarball.is_file() {
        return tarball;
    }
    fs::create_dir_all(cache).unwrap_or_else(|e| panic!("create {CACHE_DIR}: {e}"));
    // Tests that start together make it once: the others wait here, then
    // find it made.
    let lock = File::create(cache.join(".lock")).expect("create the cache's lock file");
    lock.lock().expect("lock the rootfs cache");
    if tarball.is_file() {
        return tarball;
    }
    // Built beside the cache and renamed into it: a run killed half-way
    // leaves no tarball that a later run would trust.
    let work = tempfile::Builder::new().prefix("rootfs-").tempdir_in(cache).expect("create a work directory");
    let root = work.path().join("root");
    let log = work.path().join("debootstrap.log");
    let mut command = Command::new(tool("debootstrap"));
    command
        .args(["--variant=minbase", &format!("--include={INCLUDE}"), SUITE])
        .arg(&root)
        .arg(&mirror)
        .env_clear()
        .env("PATH", SERVICE_PATH)
        .stdin(Stdio::null());
    let (ok, out) = run_merged(command, work.path());
    let _ = fs::write(&log, &out);
    assert!(ok, "debootstrap {SUITE} from {mirror} failed:\n{out}");
    // The downloaded packages and package lists are half the size and no
    // use in an image.
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        for entry in fs::read_dir(root.join(dir)).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    let partial = work.path().join("rootfs.tar");
    let mut tar = Command::new("tar");
    tar.args(["--numeric-owner", "-C"]).arg(&root).args(["-cf"]).arg(&partial).arg(".");
    let (ok, out) = run_merged(tar, work.path());
    assert!(ok, "tar of the root file system failed:\n{out}");
    fs::rename(&partial, &tarball).unwrap_or_else(|e| panic!("move the tarball into {CACHE_DIR}: {e}"));
    let _ = writeln!(std::io::stderr(), "made {} (cached for later runs)", tarball.display());
    tarball
}

/// The mirror apt uses for `suite` itself (not `-updates` or `-security`),
/// from one-line `deb URL SUITE …` sources or deb822 `.sources` stanzas.
fn apt_mirror(suite: &str) -> Option<String> {
    let mut files = vec![PathBuf::from("/etc/apt/sources.list")];
    let mut extra: Vec<PathBuf> = fs::read_dir("/etc/apt/sources.list.d")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "list" || ext == "sources"))
        .collect();
    extra.sort();
    files.extend(extra);
    files.iter().filter_map(|path| fs::read_to_string(path).ok()).find_map(|text| mirror_in(&text, suite))
}

/// The mirror for `suite` in the text of one apt sources file.
pub fn mirror_in(text: &str, suite: &str) -> Option<String> {
    // One-line form: deb [options] URL SUITE COMPONENT…
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        if words.next() != Some("deb") {
            continue;
        }
        let words: Vec<&str> = words.skip_while(|w| w.starts_with('[')).collect();
        if let [url, s, ..] = words.as_slice()
            && *s == suite
        {
            return Some((*url).to_owned());
        }
    }
    // deb822 form: stanzas of "Field: value" separated by blank lines.
    for stanza in text.split("\n\n") {
        let field = |name: &str| {
            stanza.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
            })
        };
        let types = field("Types").unwrap_or_default();
        let suites = field("Suites").unwrap_or_default();
        if types.split_whitespace().any(|t| t == "deb") && suites.split_whitespace().any(|s| s == suite) {
            return field("URIs").and_then(|uris| uris.split_whitespace().next().map(str::to_owned));
        }
    }
    None
}

fn dpkg_architecture() -> String {
    let out =
        Command::new("dpkg").arg("--print-architecture").output().expect("run dpkg --print-architecture");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn debootstrap_version() -> String {
    let out = Command::new(tool("debootstrap")).arg("--version").output().expect("run debootstrap --version");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
