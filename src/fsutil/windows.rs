//! The Windows side of careful file handling, where std has no portable
//! answer: directories made private (mode 0700's counterpart), which file a
//! handle and a path name (for lock files), whether a "not found" is really
//! a file standing where a directory should be, and who may read a
//! directory (its owner and access list, for `doctor`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::windows::ffi::OsStrExt;
use std::os::windows::fs::OpenOptionsExt;
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};
use std::ptr;

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS, ERROR_PATH_NOT_FOUND, ERROR_SUCCESS, GENERIC_ALL,
    GENERIC_READ, HANDLE, LocalFree,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, GetNamedSecurityInfoW, SE_FILE_OBJECT,
};
use windows_sys::Win32::Security::{
    ACCESS_ALLOWED_ACE, ACE_HEADER, ACL, ACL_REVISION, AddAccessAllowedAceEx, CONTAINER_INHERIT_ACE,
    CreateWellKnownSid, DACL_SECURITY_INFORMATION, EqualSid, GetAce, GetLengthSid, GetTokenInformation,
    INHERIT_ONLY_ACE, InitializeAcl, InitializeSecurityDescriptor, OBJECT_INHERIT_ACE,
    OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID, SE_DACL_PROTECTED, SECURITY_ATTRIBUTES,
    SECURITY_DESCRIPTOR, SECURITY_MAX_SID_SIZE, SetSecurityDescriptorControl, SetSecurityDescriptorDacl,
    TOKEN_OWNER, TOKEN_QUERY, TOKEN_USER, TokenOwner, TokenUser, WELL_KNOWN_SID_TYPE, WinAnonymousSid,
    WinAuthenticatedUserSid, WinBuiltinGuestsSid, WinBuiltinUsersSid, WinWorldSid,
};
use windows_sys::Win32::Storage::FileSystem::{
    BY_HANDLE_FILE_INFORMATION, CreateDirectoryW, FILE_ALL_ACCESS, FILE_FLAG_BACKUP_SEMANTICS,
    FILE_FLAG_OPEN_REPARSE_POINT, FILE_LIST_DIRECTORY, GetFileInformationByHandle,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

use super::Exposure;

/// `ACCESS_ALLOWED_ACE_TYPE` and `SECURITY_DESCRIPTOR_REVISION` (winnt.h),
/// without the large module that windows-sys files them under.
const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;
const SECURITY_DESCRIPTOR_REVISION: u32 = 1;

/// Creates `dir` and whichever of its parents are missing, each with an
/// access list of its own: full control for this user, inherited by all
/// that is made in it, and nothing from the parent. What mode 0700 is on
/// Unix: a directory the helper makes under a shared parent (a cache
/// named in `C:\`, whose list lets every user read) is still private, and
/// so are the files written in it.
pub(super) fn create_private_dirs(dir: &Path) -> io::Result<()> {
    let me = current_user()?;
    // SAFETY: a valid SID of this process's user.
    let sid_len = unsafe { GetLengthSid(me.sid()) } as usize;
    // The list's header, one entry, and the entry's SID in place of its
    // `SidStart` word.
    let acl_len = size_of::<ACL>() + size_of::<ACCESS_ALLOWED_ACE>() + sid_len - size_of::<u32>();
    let mut acl = vec![0u64; acl_len.div_ceil(8)];
    let mut descriptor = SECURITY_DESCRIPTOR::default();
    let descriptor_ptr: PSECURITY_DESCRIPTOR = (&raw mut descriptor).cast();
    let acl_ptr = acl.as_mut_ptr().cast::<ACL>();
    let inherit = OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE;
    let acl_len = u32::try_from(acl_len).map_err(io::Error::other)?;
    // SAFETY: a buffer of `acl_len` bytes for the list, a SECURITY_DESCRIPTOR
    // for the descriptor, both alive until the last CreateDirectoryW below.
    let built = unsafe {
        InitializeAcl(acl_ptr, acl_len, ACL_REVISION) != 0
            && AddAccessAllowedAceEx(acl_ptr, ACL_REVISION, inherit, FILE_ALL_ACCESS, me.sid()) != 0
            && InitializeSecurityDescriptor(descriptor_ptr, SECURITY_DESCRIPTOR_REVISION) != 0
            && SetSecurityDescriptorDacl(descriptor_ptr, 1, acl_ptr, 0) != 0
            && SetSecurityDescriptorControl(descriptor_ptr, SE_DACL_PROTECTED, SE_DACL_PROTECTED) != 0
    };
    if !built {
        return Err(io::Error::last_os_error());
    }
    let attributes = SECURITY_ATTRIBUTES {
        nLength: u32::try_from(size_of::<SECURITY_ATTRIBUTES>()).unwrap_or(0),
        lpSecurityDescriptor: descriptor_ptr,
        bInheritHandle: 0,
    };
    let missing: Vec<&Path> =
        dir.ancestors().take_while(|a| !a.as_os_str().is_empty() && std::fs::metadata(a).is_err()).collect();
    for each in missing.iter().rev() {
        let wide: Vec<u16> = each.as_os_str().encode_wide().chain(Some(0)).collect();
        // SAFETY: a NUL-terminated path and the attributes built above.
        if unsafe { CreateDirectoryW(wide.as_ptr(), &raw const attributes) } == 0 {
            let e = io::Error::last_os_error();
            // Made meanwhile by another helper: as good.
            if e.raw_os_error() != i32::try_from(ERROR_ALREADY_EXISTS).ok() {
                return Err(e);
            }
        }
    }
    Ok(())
}

/// A file's identity: its volume's serial number and its index on that
/// volume, what `dev` and `ino` are on Unix.
fn identity(file: &File) -> Option<(u32, u64)> {
    let mut info = BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: a handle owned by `file`, open for the call, and a pointer to
    // a local struct of the type the call fills.
    if unsafe { GetFileInformationByHandle(file.as_raw_handle(), &raw mut info) } == 0 {
        return None;
    }
    Some((info.dwVolumeSerialNumber, (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow)))
}

/// Whether `path` still names the open `file`: not removed (a pruner may
/// have deleted it between a locker's open and its lock) and not replaced
/// by another file of the same name.
pub(super) fn still_names(path: &Path, file: &File) -> bool {
    // Access 0 reads attributes only; the reparse flag names a link itself,
    // never its target; backup semantics would open a directory too.
    let opened = OpenOptions::new()
        .access_mode(0)
        .custom_flags(FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS)
        .open(path);
    match opened {
        Ok(named) => match (identity(&named), identity(file)) {
            (Some(a), Some(b)) => a == b,
            // Cannot tell: as on Unix, take it as still ours.
            _ => true,
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        // A file removed while another handle holds it open stays until that
        // handle closes, "delete pending", and refuses every open: it is not
        // the file the path will name.
        Err(e) if e.raw_os_error() == i32::try_from(ERROR_ACCESS_DENIED).ok() => false,
        Err(_) => true,
    }
}

/// The ancestor of `path` that is not a directory, if that is why `e` (a
/// failed open of `path`) says "not found": Windows answers a path under a
/// regular file with `ERROR_PATH_NOT_FOUND`, which std maps to `NotFound`
/// like a file that is simply absent, where Unix says `ENOTDIR`.
pub(super) fn blocking_file(path: &Path, e: &io::Error) -> Option<PathBuf> {
    if e.raw_os_error() != i32::try_from(ERROR_PATH_NOT_FOUND).ok() {
        return None;
    }
    for ancestor in path.ancestors().skip(1).filter(|a| !a.as_os_str().is_empty()) {
        match std::fs::metadata(ancestor) {
            Ok(meta) if meta.is_dir() => return None,
            Ok(_) => return Some(ancestor.to_owned()),
            Err(_) => {}
        }
    }
    None
}

/// Who besides its owner may read `dir`, read from its owner and access
/// list: `None` if it is private to this user.
///
/// # Errors
/// The security information cannot be read.
pub(super) fn exposure(dir: &Path) -> io::Result<Option<Exposure>> {
    let wide: Vec<u16> = dir.as_os_str().encode_wide().chain(Some(0)).collect();
    let mut owner: PSID = ptr::null_mut();
    let mut dacl: *mut ACL = ptr::null_mut();
    let mut descriptor: PSECURITY_DESCRIPTOR = ptr::null_mut();
    // SAFETY: a NUL-terminated path; the out-pointers are locals. The owner
    // and list point into `descriptor`, which is freed (below) only after
    // their last use.
    let status = unsafe {
        GetNamedSecurityInfoW(
            wide.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &raw mut owner,
            ptr::null_mut(),
            &raw mut dacl,
            ptr::null_mut(),
            &raw mut descriptor,
        )
    };
    if status != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(i32::try_from(status).unwrap_or(i32::MAX)));
    }
    let _descriptor = LocalMemory(descriptor);
    let me = current_user()?;
    if !me.owns(owner) {
        return Ok(Some(Exposure::Owner(sid_string(owner))));
    }
    if dacl.is_null() {
        // No access list at all: everyone has every right.
        return Ok(Some(Exposure::Readers(vec!["Everyone (it has no access list)".into()])));
    }
    let broad = [
        (WinWorldSid, "Everyone"),
        (WinAuthenticatedUserSid, "Authenticated Users"),
        (WinBuiltinUsersSid, "Users"),
        (WinBuiltinGuestsSid, "Guests"),
        (WinAnonymousSid, "Anonymous"),
    ]
    .map(|(kind, name)| (well_known(kind), name));
    let mut readers = Vec::new();
    // SAFETY: `dacl` is a valid list inside the descriptor.
    let count = unsafe { (*dacl).AceCount };
    for index in 0..u32::from(count) {
        let mut ace: *mut core::ffi::c_void = ptr::null_mut();
        // SAFETY: an index below the list's count; GetAce points `ace` into
        // the list, whose entries start with an ACE_HEADER.
        if unsafe { GetAce(dacl, index, &raw mut ace) } == 0 {
            continue;
        }
        // SAFETY: as above.
        let header = unsafe { *ace.cast::<ACE_HEADER>() };
        // Only entries that grant, and that apply to the directory itself
        // (not only to what is created in it).
        if header.AceType != ACCESS_ALLOWED_ACE_TYPE || u32::from(header.AceFlags) & INHERIT_ONLY_ACE != 0 {
            continue;
        }
        let allowed = ace.cast::<ACCESS_ALLOWED_ACE>();
        // SAFETY: an access-allowed entry: its mask, then its SID in place
        // of `SidStart`.
        let (mask, sid) =
            unsafe { ((*allowed).Mask, (&raw mut (*allowed).SidStart).cast::<core::ffi::c_void>()) };
        if mask & (FILE_LIST_DIRECTORY | GENERIC_READ | GENERIC_ALL) == 0 {
            continue;
        }
        for (known, name) in &broad {
            // SAFETY: two valid SIDs.
            if let Some(known) = known
                && unsafe { EqualSid(sid, known.as_ptr().cast_mut().cast()) } != 0
                && !readers.iter().any(|r| r == name)
            {
                readers.push((*name).to_owned());
            }
        }
    }
    Ok((!readers.is_empty()).then_some(Exposure::Readers(readers)))
}

/// Memory the system allocated with `LocalAlloc`, freed on drop.
struct LocalMemory(*mut core::ffi::c_void);

impl Drop for LocalMemory {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: allocated by the system for us, freed once.
            unsafe { LocalFree(self.0) };
        }
    }
}

/// This process's user, and the owner its new files get: the user, or
/// for an elevated administrator the Administrators group (Windows
/// Server's default, and so GitHub's runners'). Each is a TOKEN_USER or
/// TOKEN_OWNER in a buffer of its own.
struct CurrentUser {
    user: Vec<u64>,
    owner: Vec<u64>,
}

impl CurrentUser {
    fn sid(&self) -> PSID {
        // SAFETY: the buffer holds a TOKEN_USER written by GetTokenInformation.
        unsafe { (*self.user.as_ptr().cast::<TOKEN_USER>()).User.Sid }
    }

    fn default_owner(&self) -> PSID {
        // SAFETY: the buffer holds a TOKEN_OWNER written by GetTokenInformation.
        unsafe { (*self.owner.as_ptr().cast::<TOKEN_OWNER>()).Owner }
    }

    /// Whether `owner` is this user, or the owner this user's new files get.
    fn owns(&self, owner: PSID) -> bool {
        // SAFETY: three valid SIDs.
        unsafe { EqualSid(owner, self.sid()) != 0 || EqualSid(owner, self.default_owner()) != 0 }
    }
}

fn current_user() -> io::Result<CurrentUser> {
    let mut token: HANDLE = ptr::null_mut();
    // SAFETY: the pseudo-handle of this process and a local out-pointer.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &raw mut token) } == 0 {
        return Err(io::Error::last_os_error());
    }
    let read = |class| {
        // A TOKEN_USER or TOKEN_OWNER and its SID; u64 words keep it aligned.
        let mut buffer = vec![0u64; 64];
        let mut needed = 0u32;
        let size = u32::try_from(buffer.len() * 8).unwrap_or(0);
        // SAFETY: a token opened for query, a buffer of `size` bytes.
        let ok =
            unsafe { GetTokenInformation(token, class, buffer.as_mut_ptr().cast(), size, &raw mut needed) };
        if ok == 0 { Err(io::Error::last_os_error()) } else { Ok(buffer) }
    };
    let user = read(TokenUser);
    let owner = read(TokenOwner);
    // SAFETY: the handle opened above, closed once.
    unsafe { CloseHandle(token) };
    Ok(CurrentUser { user: user?, owner: owner? })
}

/// A well-known SID (Everyone, Users, …), if the system can make it.
fn well_known(kind: WELL_KNOWN_SID_TYPE) -> Option<Vec<u8>> {
    let mut sid = vec![0u8; SECURITY_MAX_SID_SIZE as usize];
    let mut size = SECURITY_MAX_SID_SIZE;
    // SAFETY: a buffer of `size` bytes, the largest a SID can be.
    let ok = unsafe { CreateWellKnownSid(kind, ptr::null_mut(), sid.as_mut_ptr().cast(), &raw mut size) };
    (ok != 0).then_some(sid)
}

/// A SID as text (`S-1-5-21-…`), for messages.
fn sid_string(sid: PSID) -> String {
    let mut text: windows_sys::core::PWSTR = ptr::null_mut();
    // SAFETY: a valid SID; the string is allocated by the system and freed
    // below.
    if unsafe { ConvertSidToStringSidW(sid, &raw mut text) } == 0 || text.is_null() {
        return "another account".into();
    }
    let _text = LocalMemory(text.cast());
    // SAFETY: a NUL-terminated string written by the call above.
    let len = (0..).take_while(|&i| unsafe { *text.add(i) } != 0).count();
    // SAFETY: `len` characters of that string.
    let chars = unsafe { std::slice::from_raw_parts(text, len) };
    String::from_utf16_lossy(chars)
}

/// Whether this is Wine rather than Windows (Wine's ntdll exports
/// `wine_get_version`), for the tests that Wine cannot pass as Windows
/// would: they say so and check what Wine does instead.
#[cfg(test)]
pub(crate) fn under_wine() -> bool {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    let ntdll: Vec<u16> = "ntdll.dll".encode_utf16().chain(Some(0)).collect();
    // SAFETY: NUL-terminated names; ntdll is loaded in every process.
    unsafe {
        let module = GetModuleHandleW(ntdll.as_ptr());
        !module.is_null() && GetProcAddress(module, c"wine_get_version".as_ptr().cast()).is_some()
    }
}
