//! The one bounded reader: every input the helper takes from outside (stdin,
//! the config file, subject-token files and commands, HTTP bodies, Docker's
//! config) is read through here, so nothing can make it read without limit.
//!
//! Sources that arrive in pieces (an HTTP body) feed a [`Limited`] buffer;
//! sources that are `Read` use [`read_to_end`]. Both stop one byte past the
//! limit, so "exactly at the limit" and "over it" are told apart without
//! reading more.

use std::io::Read;

/// The limit of every input but the data files the helper writes itself.
pub const ONE_MIB: u64 = 1024 * 1024;

/// Input over its limit; nothing past the limit was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("is larger than {limit} bytes")]
pub struct TooLarge {
    /// The limit in bytes.
    pub limit: u64,
}

/// Why a bounded read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Over the limit.
    #[error(transparent)]
    TooLarge(#[from] TooLarge),
    /// The reader failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A buffer that refuses to grow past its limit.
#[derive(Debug)]
pub struct Limited {
    bytes: Vec<u8>,
    limit: u64,
}

impl Limited {
    /// An empty buffer that holds at most `limit` bytes.
    pub fn new(limit: u64) -> Limited {
        Limited { bytes: Vec::new(), limit }
    }

    /// Appends `chunk`.
    ///
    /// # Errors
    /// The buffer would exceed its limit; it is left as it was.
    pub fn extend(&mut self, chunk: &[u8]) -> Result<(), TooLarge> {
        if self.bytes.len() as u64 + chunk.len() as u64 > self.limit {
            return Err(TooLarge { limit: self.limit });
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// The bytes read.
    pub fn into_inner(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads `reader` to its end, at most `limit` bytes.
///
/// # Errors
/// More than `limit` bytes, or a read error.
pub fn read_to_end(reader: impl Read, limit: u64) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::new();
    reader.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(TooLarge { limit }.into());
    }
    Ok(bytes)
}

/// Reads `reader` to its end as UTF-8 text, at most `limit` bytes.
///
/// # Errors
/// As [`read_to_end`], or the bytes are not UTF-8 (the error names no
/// content: the input may be a secret).
pub fn read_text(reader: impl Read, limit: u64) -> Result<String, ReadError> {
    let bytes = read_to_end(reader, limit)?;
    String::from_utf8(bytes).map_err(|_| {
        ReadError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, "is not valid UTF-8"))
    })
}

/// The process's stdin, read by a deadline: a caller that writes its
/// request and never closes stdin gets an error when the deadline passes,
/// not a helper waiting for ever. (Docker and the kubelet close it; a
/// script with `cmd | helper get` where `cmd` hangs does not.)
///
/// On Unix each read first waits in `poll(2)` for the time left. Windows
/// has no wait for an anonymous pipe's data (nor one that serves pipes,
/// files and consoles alike), so there stdin is read on a thread of its
/// own and each read waits for that thread's next chunk until the
/// deadline; at the deadline the thread is left blocked in its read, and
/// the process ends soon after, as with a keyring call that never returns.
#[derive(Debug)]
pub struct Stdin {
    deadline: Option<crate::deadline::Deadline>,
    #[cfg(windows)]
    feed: Option<windows_feed::Feed>,
}

impl Stdin {
    /// Stdin, given up on at `deadline` (never, with `None`).
    pub fn until(deadline: Option<crate::deadline::Deadline>) -> Stdin {
        Stdin {
            deadline,
            #[cfg(windows)]
            feed: None,
        }
    }
}

impl Read for Stdin {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        #[cfg(unix)]
        if let Some(deadline) = self.deadline {
            wait_readable(libc::STDIN_FILENO, deadline)?;
        }
        #[cfg(windows)]
        if let Some(deadline) = self.deadline {
            if self.feed.is_none() {
                self.feed = Some(windows_feed::Feed::start()?);
            }
            if let Some(feed) = &mut self.feed {
                return feed.read(buf, deadline);
            }
        }
        std::io::stdin().lock().read(buf)
    }
}

/// The error of a stdin still open at the deadline: it names stdin and
/// says what the caller should do.
fn not_closed(deadline: crate::deadline::Deadline) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!(
            "stdin was not closed within {}s: write the request and close stdin \
             (e.g. `echo registry.example.com | docker-credential-exchange get`)",
            deadline.limit().as_secs_f32()
        ),
    )
}

/// Waits until `fd` is readable (or at its end), by `deadline`.
#[cfg(unix)]
fn wait_readable(fd: libc::c_int, deadline: crate::deadline::Deadline) -> std::io::Result<()> {
    loop {
        let mut pollfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        let millis = libc::c_int::try_from(deadline.remaining().as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd, for the duration of the call.
        match unsafe { libc::poll(&raw mut pollfd, 1, millis) } {
            0 => return Err(not_closed(deadline)),
            n if n > 0 => return Ok(()),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Windows: stdin read on a thread, handed over in chunks.
#[cfg(windows)]
mod windows_feed {
    use std::io::Read;
    use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};

    use crate::deadline::Deadline;

    /// The bytes of one read; the thread reads this much at a time.
    const CHUNK: usize = 64 * 1024;

    /// A chunk from the reading thread: bytes, or the end (empty), or an error.
    type Chunk = std::io::Result<Vec<u8>>;

    #[derive(Debug)]
    pub(super) struct Feed {
        chunks: Receiver<Chunk>,
        /// What is left of the last chunk.
        pending: Vec<u8>,
        /// The reading thread has reported the end or an error.
        done: bool,
    }

    impl Feed {
        pub(super) fn start() -> std::io::Result<Feed> {
            // One chunk in flight: the thread reads ahead no further than
            // that, so a caller that stops at its limit (1 MiB) leaves an
            // endless stdin unread rather than buffered.
            let (sender, chunks) = sync_channel::<Chunk>(1);
            std::thread::Builder::new().name("stdin".into()).spawn(move || {
                let mut stdin = std::io::stdin();
                loop {
                    let mut chunk = vec![0; CHUNK];
                    let read = stdin.read(&mut chunk).map(|n| {
                        chunk.truncate(n);
                        chunk
                    });
                    let last = !matches!(&read, Ok(c) if !c.is_empty());
                    if sender.send(read).is_err() || last {
                        return;
                    }
                }
            })?;
            Ok(Feed { chunks, pending: Vec::new(), done: false })
        }

        pub(super) fn read(&mut self, buf: &mut [u8], deadline: Deadline) -> std::io::Result<usize> {
            if self.pending.is_empty() && !self.done {
                match self.chunks.recv_timeout(deadline.remaining()) {
                    Ok(Ok(chunk)) if chunk.is_empty() => self.done = true,
                    Ok(Ok(chunk)) => self.pending = chunk,
                    Ok(Err(e)) => {
                        self.done = true;
                        return Err(e);
                    }
                    Err(RecvTimeoutError::Timeout) => return Err(super::not_closed(deadline)),
                    Err(RecvTimeoutError::Disconnected) => {
                        self.done = true;
                        return Err(std::io::Error::other("the thread reading stdin ended"));
                    }
                }
            }
            let n = buf.len().min(self.pending.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            Ok(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_at_the_limit_is_read_whole() {
        assert_eq!(read_to_end(&b"abcd"[..], 4).unwrap(), b"abcd");
    }

    #[test]
    fn input_over_the_limit_is_refused() {
        assert!(matches!(read_to_end(&b"abcde"[..], 4), Err(ReadError::TooLarge(TooLarge { limit: 4 }))));
    }

    #[test]
    fn an_endless_source_stops_one_byte_past_the_limit() {
        let mut zeros = std::io::repeat(0);
        assert!(read_to_end(&mut zeros, ONE_MIB).is_err());
    }

    #[test]
    fn a_limited_buffer_refuses_the_chunk_that_would_overflow_it() {
        let mut buf = Limited::new(4);
        buf.extend(b"abc").unwrap();
        assert!(buf.extend(b"de").is_err());
        assert_eq!(buf.into_inner(), b"abc");
    }

    #[test]
    fn invalid_utf8_text_is_refused_without_quoting_it() {
        let err = read_text(&b"\xff\xfe"[..], 10).unwrap_err().to_string();
        assert_eq!(err, "is not valid UTF-8");
    }
}
