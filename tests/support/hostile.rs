//! Endpoints that misbehave on purpose, on raw TCP so that they can do what
//! no well-behaved HTTP server would: send headers and then one body byte a
//! second, accept and never answer, answer 503 late with `Retry-After`,
//! leave connections waiting in a full backlog; and an HTTP proxy that only
//! records who came through it. Each binds 127.0.0.1:0, counts what it
//! saw, and stops its threads when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// What a hostile endpoint does with each connection.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Headers announcing a 1000-byte JSON body, then one byte a second.
    SlowBody,
    /// Read the request, then say nothing, for ever.
    Hang,
    /// Wait this long, then answer 503 with `Retry-After: 10`.
    LateUnavailable { after: Duration },
    /// An HTTP proxy that answers 502 to everything: any connection to it
    /// means a request went through a proxy.
    Proxy,
    /// Answer at once with this status and JSON body (an `expires_in` no
    /// server should send, an error that echoes the request).
    Answer { status: u16, body: String },
    /// The same with these headers too (a `Retry-After` as an HTTP-date
    /// beside the answer's own `Date`).
    AnswerWithHeaders { status: u16, headers: Vec<(&'static str, String)>, body: String },
    /// The first `times` connections: read the request, then drop the
    /// connection without a byte of answer, with a reset (RST) when
    /// `reset`, else a plain close (EOF; on Windows always). Later
    /// connections get `then`.
    DropFirst { times: usize, reset: bool, then: Box<Behaviour> },
}

/// A misbehaving endpoint.
pub struct Hostile {
    port: u16,
    connections: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Hostile {
    /// Starts one.
    pub fn start(behaviour: Behaviour) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, stopped) = (Arc::clone(&connections), Arc::clone(&stop));
        let acceptor = std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let index = count.fetch_add(1, Ordering::SeqCst);
                        let (stopped, behaviour) = (Arc::clone(&stopped), behaviour.clone());
                        std::thread::spawn(move || serve(stream, behaviour, index, &stopped));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Hostile { port, connections, stop, acceptor: Some(acceptor) }
    }

    /// `http://127.0.0.1:PORT/token`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    /// `http://127.0.0.1:PORT`, as a proxy variable takes it.
    pub fn proxy_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
    }
}

/// Reads the request's head and body (by its `Content-Length`): closing a
/// socket with unread data would reset the connection under the answer.
/// Waits up to 5 s in all; a read that is only interrupted or would block
/// (Wine reports both early on a loaded machine) is tried again, so the
/// server never answers a request it has not read, which an HTTP client
/// takes for a broken connection ("unexpected message").
fn read_request_head(stream: &mut TcpStream) -> bool {
    let limit = std::time::Instant::now() + Duration::from_secs(5);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(250)));
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") && seen.len() < 64 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::Interrupted
                        | std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                ) && std::time::Instant::now() < limit => {}
            _ => return false,
        }
    }
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let head = String::from_utf8_lossy(&seen).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let _ = std::io::copy(&mut (&*stream).take(length.min(1 << 20)), &mut std::io::sink());
    true
}

/// Sleeps in slices so that a dropped endpoint ends its threads soon.
fn pause(total: Duration, stop: &AtomicBool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < total {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Drops a connection with a reset rather than a close: a linger time of
/// zero makes the kernel send RST.
fn reset(stream: TcpStream) {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let linger = libc::linger { l_onoff: 1, l_linger: 0 };
        // SAFETY: setsockopt on a socket this function owns, with a
        // `linger` of the size given.
        unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&raw const linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            );
        }
    }
    drop(stream);
}

fn serve(mut stream: TcpStream, behaviour: Behaviour, index: usize, stop: &AtomicBool) {
    if !read_request_head(&mut stream) {
        // No request came (the client gave up, or never sent one): an
        // answer now would be one the client never asked for.
        return;
    }
    match behaviour {
        Behaviour::DropFirst { times, reset: with_reset, then } => {
            if index >= times {
                return serve_read(stream, *then, stop);
            }
            if with_reset {
                reset(stream);
            }
        }
        other => serve_read(stream, other, stop),
    }
}

/// Answers a connection whose request has been read.
fn serve_read(mut stream: TcpStream, behaviour: Behaviour, stop: &AtomicBool) {
    match behaviour {
        Behaviour::DropFirst { then, .. } => serve_read(stream, *then, stop),
        Behaviour::SlowBody => {
            let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
            if stream.write_all(head.as_bytes()).is_err() {
                return;
            }
            for _ in 0..1000 {
                if !pause(Duration::from_secs(1), stop) || stream.write_all(b" ").is_err() {
                    return;
                }
            }
        }
        Behaviour::Hang => {
            pause(Duration::from_secs(600), stop);
        }
        Behaviour::LateUnavailable { after } => {
            if pause(after, stop) {
                let body = r#"{"error":"temporarily_unavailable"}"#;
                let reply = format!(
                    "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 10\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            }
        }
        Behaviour::Proxy => {
            let reply = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
            let _ = stream.write_all(reply.as_bytes());
        }
        Behaviour::Answer { status, body } => {
            serve_read(stream, Behaviour::AnswerWithHeaders { status, headers: Vec::new(), body }, stop);
        }
        Behaviour::AnswerWithHeaders { status, headers, body } => {
            let extra: String = headers.iter().map(|(name, value)| format!("{name}: {value}\r\n")).collect();
            let reply = format!(
                "HTTP/1.1 {status} Whatever\r\n{extra}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    }
}

/// A listener whose accept queue is full and is never drained: new
/// connections to it wait in SYN_SENT until the client gives up. Linux
/// only: it needs a raw socket with a backlog the kernel honours as given
/// (and `SOCK_CLOEXEC`, which macOS lacks).
#[cfg(target_os = "linux")]
pub struct FullBacklog {
    port: u16,
    _listener: std::os::fd::OwnedFd,
    _queued: Vec<TcpStream>,
}

#[cfg(target_os = "linux")]
impl FullBacklog {
    /// Listens with a backlog of one and fills it.
    pub fn start() -> FullBacklog {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        // SAFETY: plain socket calls on a socket this function owns.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
        assert!(fd >= 0, "socket");
        // SAFETY: fd was just created and is owned here from now on.
        let owned = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut addr: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::LOCALHOST).to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        // SAFETY: addr is a valid sockaddr_in of `len` bytes.
        let bound = unsafe { libc::bind(owned.as_raw_fd(), (&raw const addr).cast(), len) };
        assert_eq!(bound, 0, "bind");
        // SAFETY: listening on our bound socket.
        assert_eq!(unsafe { libc::listen(owned.as_raw_fd(), 0) }, 0, "listen");
        let mut actual: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        let mut actual_len = len;
        // SAFETY: getsockname writes at most actual_len bytes into actual.
        unsafe { libc::getsockname(owned.as_raw_fd(), (&raw mut actual).cast(), &mut actual_len) };
        let port = u16::from_be(actual.sin_port);
        // Fill the queue: these complete the handshake and sit unaccepted.
        let queued = (0..4)
            .filter_map(|_| {
                TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(300)).ok()
            })
            .collect();
        FullBacklog { port, _listener: owned, _queued: queued }
    }

    /// `http://127.0.0.1:PORT/token`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }
}
