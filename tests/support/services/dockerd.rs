//! A private Docker engine (Debian's dockerd) and a tiny image to push.

use super::*;

/// A private `dockerd` (with the containerd it starts for itself) whose
/// data root, exec root, pid file and socket are all in a temporary
/// directory. No bridge, no iptables: it can pull, push, import and build
/// without touching the host's network.
pub struct Dockerd {
    daemon: Daemon,
    dir: tempfile::TempDir,
    socket: PathBuf,
}

impl Dockerd {
    /// Starts dockerd and waits until `GET /_ping` answers 200.
    pub fn start() -> Dockerd {
        let started = Instant::now();
        let dir = short_tempdir("dk");
        let socket = dir.path().join("docker.sock");
        let config = dir.path().join("daemon.json");
        // An own config file, so the host's /etc/docker/daemon.json cannot
        // change this daemon, and an own trust key: dockerd 20.10 otherwise
        // creates /etc/docker/key.json, a race between parallel daemons.
        let key = serde_json::Value::String(dir.path().join("key.json").display().to_string());
        fs::write(&config, format!("{{\"deprecated-key-path\": {key}}}\n")).expect("write daemon.json");
        let mut command = Command::new(tool("dockerd"));
        command
            .arg("--config-file")
            .arg(&config)
            .arg("--data-root")
            .arg(dir.path().join("data"))
            .arg("--exec-root")
            .arg(dir.path().join("exec"))
            .arg("--pidfile")
            .arg(dir.path().join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", socket.display()))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
                "--userland-proxy=false",
                "--log-level=warn",
            ]);
        // TMPDIR keeps containerd's stack dumps (written when dockerd's
        // health check restarts it under heavy load) out of /tmp.
        let env = [
            ("HOME".to_string(), dir.path().display().to_string()),
            ("TMPDIR".to_string(), dir.path().display().to_string()),
        ];
        let daemon = Daemon::spawn("dockerd", command, &env, dir.path().join("dockerd.log"), None);
        let mut dockerd = Dockerd { daemon, dir, socket };
        let socket = dockerd.socket.clone();
        dockerd.daemon.wait_until("GET /_ping to answer 200", || {
            UnixStream::connect(&socket).ok().and_then(|stream| http_get_status(stream, "docker", "/_ping"))
                == Some(200)
        });
        elapsed_note("Dockerd", started);
        dockerd
    }

    /// `unix:///…/docker.sock`, for `DOCKER_HOST`.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// dockerd's log (containerd's warnings included).
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// A `docker` command aimed at this daemon: `DOCKER_HOST` set,
    /// `DOCKER_CONTEXT` removed. The caller sets `DOCKER_CONFIG`.
    pub fn docker(&self) -> Command {
        let mut command = Command::new(tool("docker"));
        command
            .env("DOCKER_HOST", self.host())
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .stdin(Stdio::null());
        command
    }

    fn stop(&mut self) {
        self.daemon.stop(STOP_TIMEOUT);
        // A clean exit stops containerd and its shims; after a SIGKILL they
        // live on in their own sessions, found by the paths in their
        // command lines.
        kill_processes_mentioning(self.dir.path());
        unmount_under(self.dir.path());
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGKILLs every process whose command line mentions `dir`.
fn kill_processes_mentioning(dir: &Path) {
    let mut needle = dir.as_os_str().as_bytes().to_vec();
    needle.push(b'/');
    let Ok(entries) = fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if cmdline.windows(needle.len()).any(|window| window == needle.as_slice()) {
            signal(pid, sys::SIGKILL);
        }
    }
}

/// Detaches every mount at or below `dir` (overlay layers, network
/// namespaces, the data root's own bind mount), deepest first.
fn unmount_under(dir: &Path) {
    let Ok(mountinfo) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let prefix = dir.as_os_str().as_bytes();
    let mut points: Vec<String> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .filter(|point| {
            let bytes = point.as_bytes();
            bytes.starts_with(prefix) && (bytes.len() == prefix.len() || bytes[prefix.len()] == b'/')
        })
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.len()));
    for point in points {
        if let Ok(target) = CString::new(point) {
            // SAFETY: target is a valid NUL-terminated path.
            unsafe {
                sys::umount2(target.as_ptr(), sys::MNT_DETACH);
            }
        }
    }
}

/// /proc/self/mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let octal = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("0");
            out.push(u8::from_str_radix(octal, 8).unwrap_or(b'?'));
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Imports a one-file image (`/hello.txt`) into `dockerd` as `tag`. The
/// image has no binary, so it can be pushed, pulled and built `FROM`, but
/// not run.
pub fn docker_import_tiny_image(dockerd: &Dockerd, tag: &str) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let tar = dir.path().join("tiny.tar");
    fs::write(&tar, one_file_tar("hello.txt", b"hello from the tiny image\n")).expect("write tar");
    let config = dir.path().join("docker-config");
    fs::create_dir(&config).expect("create DOCKER_CONFIG");
    let output: Output = dockerd
        .docker()
        .env("DOCKER_CONFIG", &config)
        .arg("import")
        .arg(&tar)
        .arg(tag)
        .output()
        .expect("run docker import");
    assert!(
        output.status.success(),
        "docker import {tag} failed: {}\n--- dockerd log ---\n{}",
        String::from_utf8_lossy(&output.stderr),
        dockerd.log()
    );
}

/// A POSIX ustar archive holding one regular file.
pub fn one_file_tar(name: &str, content: &[u8]) -> Vec<u8> {
    assert!(name.len() < 100, "tar name too long");
    let mut header = [0u8; 512];
    header[..name.len()].copy_from_slice(name.as_bytes());
    let mut field = |offset: usize, value: &str| {
        header[offset..offset + value.len()].copy_from_slice(value.as_bytes());
    };
    field(100, "0000644\0"); // mode
    field(108, "0000000\0"); // uid
    field(116, "0000000\0"); // gid
    field(124, &format!("{:011o}\0", content.len())); // size
    field(136, "00000000000\0"); // mtime
    field(148, "        "); // checksum, as spaces while summing
    field(156, "0"); // regular file
    field(257, "ustar\0");
    field(263, "00");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(content);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    tar.resize(tar.len() + 1024, 0);
    tar
}
