//! Holding requests at a server's door, so a test decides when they go on.
//!
//! A race test (an `erase` while a `get` waits on its exchange, a signal
//! while `login` proves its token) needs the client to be inside the request
//! when the test acts. A delay only makes that likely: on a loaded machine
//! the client may not have reached the server when the delay's guess runs
//! out, and the test then passes without racing anything. A [`Hold`] makes
//! it certain: the server stops every request to the held path before it
//! reads it, tells the test it arrived, and lets it on only when the test
//! releases it.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::serve::lock;

/// How long [`Hold::wait_for_requests`] waits before it fails the test:
/// far longer than any client needs to send a request, far shorter than a
/// hung suite.
const ARRIVAL_LIMIT: Duration = Duration::from_secs(30);

/// The door of one server: which path is held, and the requests waiting.
#[derive(Default)]
pub(crate) struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    /// The path being held; `None`: every request passes.
    held_path: Option<String>,
    /// Requests that arrived at the held path since the hold began.
    arrived: usize,
}

impl Gate {
    /// Called on a request's own thread before it is handled: waits there
    /// while its path is held.
    pub(crate) fn pass(&self, path: &str) {
        let mut state = lock(&self.state);
        if state.held_path.as_deref() != Some(path) {
            return;
        }
        state.arrived += 1;
        self.changed.notify_all();
        while state.held_path.as_deref() == Some(path) {
            state = self.changed.wait(state).unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// Lets every held request on, and every later one through.
    pub(crate) fn open(&self) {
        lock(&self.state).held_path = None;
        self.changed.notify_all();
    }

    fn hold(&self, path: &str) {
        let mut state = lock(&self.state);
        assert!(state.held_path.is_none(), "requests to {path} are already held");
        *state = GateState { held_path: Some(path.to_string()), arrived: 0 };
    }
}

/// Requests to one path of a server, held until released. Dropping the
/// `Hold` releases them too, so a test that fails while holding does not
/// leave a client hanging; a server that stops releases them as well.
#[must_use = "the requests are held only while the Hold lives"]
pub struct Hold {
    gate: Arc<Gate>,
    path: String,
}

impl Hold {
    /// Starts holding every following request to `path`.
    pub(crate) fn start(gate: &Arc<Gate>, path: &str) -> Hold {
        gate.hold(path);
        Hold { gate: Arc::clone(gate), path: path.to_string() }
    }

    /// How many requests have arrived since the hold began (they are all
    /// still waiting, unless released).
    pub fn arrived(&self) -> usize {
        lock(&self.gate.state).arrived
    }

    /// Blocks until `count` requests have arrived and are waiting. Panics
    /// after 30 s: the client never got there, which is the test's failure
    /// to report, not a reason to go on without the race.
    pub fn wait_for_requests(&self, count: usize) {
        let deadline = Instant::now() + ARRIVAL_LIMIT;
        let mut state = lock(&self.gate.state);
        while state.arrived < count {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "{} of {count} requests to {} arrived within {ARRIVAL_LIMIT:?}",
                state.arrived,
                self.path
            );
            state = self.gate.changed.wait_timeout(state, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// [`Hold::wait_for_requests`] for one request.
    pub fn wait_for_request(&self) {
        self.wait_for_requests(1);
    }

    /// Lets the held requests on and stops holding.
    pub fn release(self) {
        // Drop does it.
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.gate.open();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held_request(gate: &Arc<Gate>, path: &'static str) -> std::thread::JoinHandle<()> {
        let gate = Arc::clone(gate);
        std::thread::spawn(move || gate.pass(path))
    }

    #[test]
    fn a_held_request_waits_until_the_hold_is_released() {
        let gate = Arc::new(Gate::default());
        let hold = Hold::start(&gate, "/token");
        let request = held_request(&gate, "/token");
        hold.wait_for_request();
        assert!(!request.is_finished(), "the request went on while held");
        hold.release();
        request.join().unwrap();
    }

    #[test]
    fn requests_to_other_paths_pass_while_one_is_held() {
        let gate = Arc::new(Gate::default());
        let hold = Hold::start(&gate, "/token");
        gate.pass("/stats");
        assert_eq!(hold.arrived(), 0);
    }

    #[test]
    fn dropping_the_hold_or_stopping_the_server_lets_every_request_on() {
        let gate = Arc::new(Gate::default());
        let hold = Hold::start(&gate, "/token");
        let requests = [held_request(&gate, "/token"), held_request(&gate, "/token")];
        hold.wait_for_requests(2);
        drop(hold);
        requests.into_iter().for_each(|r| r.join().unwrap());

        let _hold = Hold::start(&gate, "/token");
        let request = held_request(&gate, "/token");
        gate.open();
        request.join().unwrap();
    }
}
