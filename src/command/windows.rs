//! Windows: what a process group and `killpg` are on Unix. The program runs
//! in a Job Object that kills everything in it when its last handle closes,
//! created suspended so that it cannot start a child before it is in the
//! job; at the deadline the whole job is terminated. The helper's own
//! standard handles are made non-inheritable first: Windows gives a new
//! process every inheritable handle of its parent, so without that a
//! background child of the program would hold the pipe Docker reads the
//! helper's answer from, and Docker would wait for that child to exit.
//!
//! `argv[0]` is looked up the way Windows' shell looks up a command: a name
//! without one of `PATHEXT`'s extensions (`az`) is tried with each of them
//! (`az.cmd`) in each directory of `PATH`, where std would only try `.exe`.

use std::ffi::OsString;
use std::io;
use std::os::windows::io::AsRawHandle;
use std::os::windows::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::ptr;

use windows_sys::Win32::Foundation::{
    CloseHandle, HANDLE, HANDLE_FLAG_INHERIT, INVALID_HANDLE_VALUE, SetHandleInformation,
};
use windows_sys::Win32::System::Console::{
    GetStdHandle, STD_ERROR_HANDLE, STD_INPUT_HANDLE, STD_OUTPUT_HANDLE,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation, SetInformationJobObject,
    TerminateJobObject,
};
use windows_sys::Win32::System::Threading::{
    CREATE_SUSPENDED, OpenThread, ResumeThread, THREAD_SUSPEND_RESUME,
};

/// The extensions Windows' shell tries when `PATHEXT` is unset.
const DEFAULT_PATHEXT: &str = ".COM;.EXE;.BAT;.CMD";

/// A Job Object holding one program and everything it starts; closing it
/// (dropping this) kills whatever of them still runs.
#[derive(Debug)]
pub(super) struct Group {
    job: Option<OwnedHandle>,
}

impl Group {
    /// Starts `command` suspended, puts it in a new job, then lets it run.
    /// Without a job (the system refused one) the program still runs, and
    /// is killed alone at the deadline, as before Windows 8's nested jobs.
    pub(super) fn spawn(command: &mut Command) -> io::Result<(Child, Group)> {
        keep_own_handles();
        let job = new_job();
        command.creation_flags(CREATE_SUSPENDED);
        let mut child = command.spawn()?;
        let job = job.filter(|job| {
            // SAFETY: a job handle we own and the child's process handle,
            // both open.
            let assigned = unsafe { AssignProcessToJobObject(job.0, child.as_raw_handle()) } != 0;
            if !assigned {
                crate::log::debug!("cannot put {} in a job: {}", child.id(), io::Error::last_os_error());
            }
            assigned
        });
        if let Err(e) = resume(child.id()) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(e);
        }
        Ok((child, Group { job }))
    }

    /// Ends the program and everything it started.
    pub(super) fn kill(&self, child: &mut Child) {
        if let Some(job) = &self.job {
            // SAFETY: a job handle we own.
            unsafe { TerminateJobObject(job.0, 1) };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A handle closed on drop.
#[derive(Debug)]
struct OwnedHandle(HANDLE);

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        // SAFETY: a handle we own, closed once.
        unsafe { CloseHandle(self.0) };
    }
}

/// A new job that kills its processes when its last handle closes.
fn new_job() -> Option<OwnedHandle> {
    // SAFETY: no security attributes and no name: a private job.
    let job = unsafe { CreateJobObjectW(ptr::null(), ptr::null()) };
    if job.is_null() {
        crate::log::debug!("cannot create a job object: {}", io::Error::last_os_error());
        return None;
    }
    let job = OwnedHandle(job);
    let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
    let size = u32::try_from(size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>()).ok()?;
    // SAFETY: our job, and a struct of the class and size named.
    let set = unsafe {
        SetInformationJobObject(job.0, JobObjectExtendedLimitInformation, (&raw const limits).cast(), size)
    };
    if set == 0 {
        crate::log::debug!("cannot set the job's limits: {}", io::Error::last_os_error());
        return None;
    }
    Some(job)
}

/// Resumes the one thread of the suspended process `pid`.
fn resume(pid: u32) -> io::Result<()> {
    // SAFETY: a snapshot of the system's threads, closed below.
    let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
    if snapshot == INVALID_HANDLE_VALUE {
        return Err(io::Error::last_os_error());
    }
    let snapshot = OwnedHandle(snapshot);
    let mut entry = THREADENTRY32 {
        dwSize: u32::try_from(size_of::<THREADENTRY32>()).unwrap_or(0),
        ..Default::default()
    };
    let mut resumed = false;
    // SAFETY: an open snapshot and an entry whose size field is set.
    let mut more = unsafe { Thread32First(snapshot.0, &raw mut entry) } != 0;
    while more {
        if entry.th32OwnerProcessID == pid {
            // SAFETY: a thread id from the snapshot; the handle is closed at once.
            let thread = unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID) };
            if !thread.is_null() {
                let thread = OwnedHandle(thread);
                // SAFETY: a thread handle opened for resuming.
                resumed |= unsafe { ResumeThread(thread.0) } != u32::MAX;
            }
        }
        // SAFETY: as for Thread32First.
        more = unsafe { Thread32Next(snapshot.0, &raw mut entry) } != 0;
    }
    if resumed { Ok(()) } else { Err(io::Error::other("cannot resume the program's first thread")) }
}

/// Makes this process's standard handles non-inheritable, so that no
/// program it starts (nor any child of that program) holds them; the
/// pipes given to a program are made inheritable by std for that program
/// alone.
fn keep_own_handles() {
    for which in [STD_INPUT_HANDLE, STD_OUTPUT_HANDLE, STD_ERROR_HANDLE] {
        // SAFETY: GetStdHandle has no preconditions; a null or invalid
        // handle (no such stream) is skipped, and a console handle that
        // refuses the change is left as it is.
        unsafe {
            let handle = GetStdHandle(which);
            if !handle.is_null() && handle != INVALID_HANDLE_VALUE {
                SetHandleInformation(handle, HANDLE_FLAG_INHERIT, 0);
            }
        }
    }
}

/// `program` as Windows' shell finds it: with one of `PATHEXT`'s
/// extensions already, as it is; otherwise with the first extension that
/// names a file, in the directory given or else in each directory of
/// `PATH` in turn. Nothing found: as it is, for std to report.
pub(super) fn resolve(program: &str) -> PathBuf {
    let path = Path::new(program);
    let pathext =
        std::env::var("PATHEXT").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| DEFAULT_PATHEXT.into());
    let extensions: Vec<&str> = pathext.split(';').filter(|e| e.starts_with('.') && e.len() > 1).collect();
    let has_one = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| extensions.iter().any(|x| x[1..].eq_ignore_ascii_case(e)));
    if has_one || program.is_empty() {
        return path.to_owned();
    }
    let with = |base: &Path, ext: &str| {
        let mut name = OsString::from(base.as_os_str());
        name.push(ext);
        PathBuf::from(name)
    };
    let bare = path.parent().is_none_or(|p| p.as_os_str().is_empty());
    let dirs: Vec<PathBuf> = if bare {
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default()
    } else {
        vec![PathBuf::new()]
    };
    dirs.iter()
        .flat_map(|dir| extensions.iter().map(move |ext| with(&dir.join(path), ext)))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_without_an_extension_is_found_with_one_from_pathext() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("az.cmd");
        std::fs::write(&script, "@echo token\r\n").unwrap();
        let named = dir.path().join("az");
        assert_eq!(resolve(named.to_str().unwrap()), script);
    }

    #[test]
    fn a_name_with_an_extension_or_nothing_to_find_is_left_as_it_is() {
        assert_eq!(resolve("az.cmd"), PathBuf::from("az.cmd"));
        assert_eq!(
            resolve("docker-credential-exchange-no-such-program"),
            PathBuf::from("docker-credential-exchange-no-such-program")
        );
    }
}
