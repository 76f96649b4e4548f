//! Writing for people: stdout that ends quietly when the reader goes away
//! (`doctor | head -2`), tables that fit a terminal (and stay whole in a
//! pipe), and a note on stderr
//! while something slow is awaited, on a terminal only.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Writes `text` to stdout as it is.
///
/// # Errors
/// stdout is closed or failing; a closed pipe is recognised by
/// [`is_closed_pipe`] and ends the program quietly.
pub fn print(text: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()
}

/// Writes `line` and a newline to stdout.
///
/// # Errors
/// As [`print`].
pub fn line(line: &str) -> std::io::Result<()> {
    print(&format!("{line}\n"))
}

/// Progress for the person running a command that changes several
/// things (`configure-docker`, `import`). Best effort: a closed stdout
/// (`| head`) must not stop the work halfway, nor hide its failures from
/// the exit status.
pub fn say(line: &str) {
    let _ = self::line(line);
}

/// Whether `e` comes from writing to a pipe nobody reads any more.
pub fn is_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain()
        .filter_map(|c| c.downcast_ref::<std::io::Error>())
        .any(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

/// The width tables are fitted to, when they are fitted at all: only when
/// stdout is a terminal whose width is known (its window size, else
/// `$COLUMNS`). A pipe, a file or a script gets `None`, and so whole cells:
/// a cut cell (`ABSENT (env:REGISTR…`) is a fact lost to whoever reads it.
pub fn width() -> Option<usize> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let columns = || std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse::<usize>().ok());
    terminal_columns().or_else(columns).filter(|&w| w > 0).map(|w| w.max(40))
}

/// The terminal's width in columns, as the window size says.
#[cfg(unix)]
fn terminal_columns() -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills a plain-data winsize for an open fd; a
    // failure (not a terminal) leaves it zeroed and returns -1.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(usize::from(size.ws_col))
}

/// Elsewhere only `$COLUMNS` tells the width.
#[cfg(not(unix))]
fn terminal_columns() -> Option<usize> {
    None
}

/// A table with a header, columns two spaces apart, fitted to `max_width`
/// by shortening cells (with `…`), never the header: `shrinkable` lists
/// groups of columns, and the widest column of a group shrinks first, the
/// next group only once the first is as narrow as it goes (so the column a
/// reader scans by, the registry, stays whole the longest).
pub fn table(header: &[&str], rows: &[Vec<String>], shrinkable: &[&[usize]], max_width: usize) -> String {
    let count = |s: &str| s.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| count(h)).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(count(cell));
        }
    }
    let total = |w: &[usize]| w.iter().sum::<usize>() + 2 * w.len().saturating_sub(1);
    for group in shrinkable {
        while total(&widths) > max_width {
            let Some(&widest) =
                group.iter().filter(|&&i| widths[i] > count(header[i]).max(8)).max_by_key(|&&i| widths[i])
            else {
                break;
            };
            widths[widest] -= 1;
        }
    }
    let render = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            let cell = crate::redact::truncate(cell, *w);
            out.push_str(&cell);
            if i + 1 < widths.len() {
                out.push_str(&" ".repeat(w - count(&cell) + 2));
            }
        }
        out.trim_end().to_owned() + "\n"
    };
    let mut out = render(&mut header.iter().copied());
    for row in rows {
        out.push_str(&render(&mut row.iter().map(String::as_str)));
    }
    out
}

/// A note on stderr, shown only on a terminal and only once `after` has
/// passed, saying what is awaited and for how long; cleared when dropped.
pub struct Waiting {
    done: Arc<AtomicBool>,
    shown: Arc<Mutex<bool>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Waiting {
    /// Starts the note for `what` ("the token endpoint https://…").
    pub fn start(what: String, after: Duration) -> Waiting {
        let done = Arc::new(AtomicBool::new(false));
        let shown = Arc::new(Mutex::new(false));
        if !std::io::stderr().is_terminal() {
            return Waiting { done, shown, thread: None };
        }
        let (d, s) = (Arc::clone(&done), Arc::clone(&shown));
        let thread = std::thread::spawn(move || {
            let start = Instant::now();
            while !d.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                if start.elapsed() >= after && !d.load(Ordering::Relaxed) {
                    let mut shown = s.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let text = format!("\r\x1b[Kwaiting for {what} ({}s)…", start.elapsed().as_secs());
                    let _ = std::io::stderr().write_all(text.as_bytes());
                    *shown = true;
                }
            }
        });
        Waiting { done, shown, thread: Some(thread) }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if *self.shown.lock().unwrap_or_else(std::sync::PoisonError::into_inner) {
            let _ = std::io::stderr().write_all(b"\r\x1b[K");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(cells: &[&[&str]]) -> Vec<Vec<String>> {
        cells.iter().map(|r| r.iter().map(|c| (*c).to_owned()).collect()).collect()
    }

    #[test]
    fn columns_are_aligned_two_spaces_apart() {
        let out = table(&["A", "BB"], &rows(&[&["xyz", "1"]]), &[], 80);
        assert_eq!(out, "A    BB\nxyz  1\n");
    }

    #[test]
    fn a_wide_table_is_fitted_by_shortening_the_widest_shrinkable_column() {
        let long = "a-very-long-registry-name.example.com/with/a/deep/repository/path";
        let out = table(&["REGISTRY", "KIND"], &rows(&[&[long, "exchange"]]), &[&[0]], 40);
        assert!(out.lines().all(|l| l.chars().count() <= 40), "{out}");
        assert!(out.contains('…'));
    }

    #[test]
    fn a_later_group_of_columns_shrinks_only_once_the_earlier_ones_cannot() {
        let row = ["registry.example.com", "exchange", "oauth2accesstoken", "valid 23h 59m (file store)"];
        let out =
            table(&["REGISTRY", "KIND", "USERNAME", "LOGIN TOKEN"], &rows(&[&row]), &[&[2, 3], &[0]], 70);
        assert!(out.lines().all(|l| l.chars().count() <= 70), "{out}");
        assert!(out.contains("registry.example.com "), "the registry was cut first: {out}");
        assert!(out.contains("valid 23h"), "{out}");
    }
}
