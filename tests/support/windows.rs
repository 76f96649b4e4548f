//! Windows only: what the Windows suite needs of the system that std does
//! not offer: holding a file open the way a scanner does, whether a
//! process still runs, and giving a directory an access list.

use std::fs::File;
use std::path::Path;
use std::ptr;

use windows_sys::Win32::Foundation::{CloseHandle, HANDLE, WAIT_OBJECT_0};
use windows_sys::Win32::Security::Authorization::{SE_FILE_OBJECT, SetNamedSecurityInfoW};
use windows_sys::Win32::Security::{
    ACL, ACL_REVISION, AddAccessAllowedAceEx, CONTAINER_INHERIT_ACE, CreateWellKnownSid,
    DACL_SECURITY_INFORMATION, GetTokenInformation, InitializeAcl, OBJECT_INHERIT_ACE,
    PROTECTED_DACL_SECURITY_INFORMATION, SECURITY_MAX_SID_SIZE, TOKEN_QUERY, TOKEN_USER, TokenUser,
    WinWorldSid,
};
use windows_sys::Win32::Storage::FileSystem::{FILE_ALL_ACCESS, FILE_GENERIC_READ, FILE_SHARE_READ};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcess, OpenProcess, OpenProcessToken, PROCESS_SYNCHRONIZE, WaitForSingleObject,
};

/// Opens `path` for reading as Docker Desktop, a virus scanner or the
/// search indexer may: sharing reads only, so that until it is closed no
/// one can delete or replace the file.
pub fn hold_without_share_delete(path: &Path) -> File {
    use std::os::windows::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .share_mode(FILE_SHARE_READ)
        .open(path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", path.display()))
}

/// Whether process `pid` ends within `limit` (or is gone already).
pub fn ends_within(pid: u32, limit: std::time::Duration) -> bool {
    // SAFETY: opening a process by id for waiting only; the handle is
    // closed below.
    let process = unsafe { OpenProcess(PROCESS_SYNCHRONIZE, 0, pid) };
    if process.is_null() {
        return true;
    }
    let millis = u32::try_from(limit.as_millis()).unwrap_or(u32::MAX);
    // SAFETY: the handle opened above, waited on, then closed once.
    unsafe {
        let ended = WaitForSingleObject(process, millis) == WAIT_OBJECT_0;
        CloseHandle(process);
        ended
    }
}

/// Gives `dir` an access list of its own (nothing inherited): full control
/// for this user and read access for Everyone, as a shared directory has.
/// (Wine accepts the call but ignores it for a directory, whose list it
/// derives from the Unix mode; a directory made by std there is 0755 or
/// 0775, which reads as Everyone may read it, so the test holds there too.)
pub fn let_everyone_read(dir: &Path) {
    let mut user = vec![0u64; 64];
    let mut world = vec![0u8; SECURITY_MAX_SID_SIZE as usize];
    let mut acl = vec![0u64; 128];
    let wide: Vec<u16> = dir.as_os_str().to_string_lossy().encode_utf16().chain(Some(0)).collect();
    // SAFETY: local buffers of the sizes passed; the token is closed once;
    // the ACL buffer outlives SetNamedSecurityInfoW, which copies it.
    unsafe {
        let mut token: HANDLE = ptr::null_mut();
        assert!(OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &raw mut token) != 0);
        let mut needed = 0;
        let got = GetTokenInformation(token, TokenUser, user.as_mut_ptr().cast(), 512, &raw mut needed);
        CloseHandle(token);
        assert!(got != 0, "GetTokenInformation: {}", std::io::Error::last_os_error());
        let me = (*user.as_ptr().cast::<TOKEN_USER>()).User.Sid;
        let mut size = SECURITY_MAX_SID_SIZE;
        assert!(
            CreateWellKnownSid(WinWorldSid, ptr::null_mut(), world.as_mut_ptr().cast(), &raw mut size) != 0
        );
        let acl_ptr = acl.as_mut_ptr().cast::<ACL>();
        assert!(InitializeAcl(acl_ptr, 1024, ACL_REVISION) != 0);
        let inherit = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE;
        assert!(AddAccessAllowedAceEx(acl_ptr, ACL_REVISION, inherit, FILE_ALL_ACCESS, me) != 0);
        let world_sid = world.as_mut_ptr().cast();
        assert!(AddAccessAllowedAceEx(acl_ptr, ACL_REVISION, inherit, FILE_GENERIC_READ, world_sid) != 0);
        let status = SetNamedSecurityInfoW(
            wide.as_ptr(),
            SE_FILE_OBJECT,
            DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
            ptr::null_mut(),
            ptr::null_mut(),
            acl_ptr,
            ptr::null(),
        );
        assert_eq!(status, 0, "SetNamedSecurityInfoW on {}", dir.display());
    }
}
