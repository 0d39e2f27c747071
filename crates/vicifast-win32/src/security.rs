//! Token and security-descriptor queries.
#![allow(unsafe_code)] // Win32 calls; each block says why it is sound.

use std::io;
use std::os::windows::io::{AsRawHandle, BorrowedHandle};
use windows_sys::core::PWSTR;
use windows_sys::Win32::Foundation::{CloseHandle, LocalFree, ERROR_SUCCESS, HANDLE};
use windows_sys::Win32::Security::Authorization::{
    ConvertSecurityDescriptorToStringSecurityDescriptorW, ConvertSidToStringSidW, GetSecurityInfo,
    SDDL_REVISION_1, SE_KERNEL_OBJECT,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, TokenUser, DACL_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, TOKEN_QUERY,
    TOKEN_USER,
};
use windows_sys::Win32::System::Threading::{GetCurrentProcess, OpenProcessToken};

/// The SID of the user this process runs as, in its string form (`S-1-5-21-…`).
pub fn current_user_sid() -> io::Result<String> {
    let token = ProcessToken::open()?;
    let mut needed = 0u32;
    // SAFETY: a size query (null buffer, length 0); it only writes `needed`.
    unsafe { GetTokenInformation(token.0, TokenUser, std::ptr::null_mut(), 0, &mut needed) };
    if needed == 0 {
        return Err(io::Error::last_os_error());
    }
    // u64 elements: TOKEN_USER holds a pointer and must be aligned for it.
    let mut buffer = vec![0u64; (needed as usize).div_ceil(8)];
    // SAFETY: `buffer` is writable for `needed` bytes and aligned for TOKEN_USER.
    let ok = unsafe {
        GetTokenInformation(
            token.0,
            TokenUser,
            buffer.as_mut_ptr().cast(),
            needed,
            &mut needed,
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the call succeeded, so the buffer starts with a TOKEN_USER whose SID points into
    // the same buffer, which lives until the end of this function.
    let sid = unsafe { (*buffer.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    let mut text: PWSTR = std::ptr::null_mut();
    // SAFETY: `sid` is valid (above); on success `text` is a LocalAlloc'd string we free.
    if unsafe { ConvertSidToStringSidW(sid, &mut text) } == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(LocalString(text).to_string())
}

/// The access list (DACL) of the object behind `handle` as SDDL, e.g.
/// `D:P(A;;FA;;;S-1-5-21-…)`. The handle needs READ_CONTROL access (any read access has it).
pub fn dacl_sddl(handle: BorrowedHandle<'_>) -> io::Result<String> {
    let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: `handle` is open for the call's duration; the out-pointers we do not want are null
    // (allowed); on success `descriptor` is LocalAlloc'd and freed below.
    let status = unsafe {
        GetSecurityInfo(
            handle.as_raw_handle() as HANDLE,
            SE_KERNEL_OBJECT,
            DACL_SECURITY_INFORMATION,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut descriptor,
        )
    };
    if status != ERROR_SUCCESS {
        return Err(io::Error::from_raw_os_error(status as i32));
    }
    let descriptor = LocalMemory(descriptor);
    let mut text: PWSTR = std::ptr::null_mut();
    // SAFETY: `descriptor` is the valid descriptor from above; on success `text` is a
    // LocalAlloc'd string we free; the length out-pointer may be null.
    let ok = unsafe {
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            descriptor.0,
            SDDL_REVISION_1,
            DACL_SECURITY_INFORMATION,
            &mut text,
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(LocalString(text).to_string())
}

struct ProcessToken(HANDLE);

impl ProcessToken {
    fn open() -> io::Result<ProcessToken> {
        let mut token: HANDLE = std::ptr::null_mut();
        // SAFETY: GetCurrentProcess is a pseudo-handle; `token` receives a handle we close.
        if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(ProcessToken(token))
    }
}

impl Drop for ProcessToken {
    fn drop(&mut self) {
        // SAFETY: a handle this value owns, closed once.
        unsafe { CloseHandle(self.0) };
    }
}

/// Memory a Win32 call allocated with LocalAlloc, freed on drop.
struct LocalMemory(*mut core::ffi::c_void);

impl Drop for LocalMemory {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: allocated by the system with LocalAlloc, owned here, freed once.
            unsafe { LocalFree(self.0) };
        }
    }
}

/// A NUL-terminated UTF-16 string a Win32 call allocated with LocalAlloc.
struct LocalString(PWSTR);

impl std::fmt::Display for LocalString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_null() {
            return Ok(());
        }
        // SAFETY: a valid NUL-terminated string from the system; read up to its terminator.
        let units = unsafe {
            let mut len = 0;
            while *self.0.add(len) != 0 {
                len += 1;
            }
            std::slice::from_raw_parts(self.0, len)
        };
        f.write_str(&String::from_utf16_lossy(units))
    }
}

impl Drop for LocalString {
    fn drop(&mut self) {
        drop(LocalMemory(self.0.cast()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_user_has_a_sid() {
        let sid = current_user_sid();
        assert!(
            sid.as_ref().is_ok_and(|s| s.starts_with("S-1-5-")),
            "{sid:?}"
        );
    }

    #[test]
    fn a_file_has_a_readable_access_list() {
        let dir = std::env::temp_dir().join(format!("vicifast-win32-{}", std::process::id()));
        let file = std::fs::File::create(&dir);
        let dacl = file.as_ref().map_err(|e| e.to_string()).and_then(|f| {
            use std::os::windows::io::AsHandle;
            dacl_sddl(f.as_handle()).map_err(|e| e.to_string())
        });
        drop(file);
        let _ = std::fs::remove_file(&dir);
        assert!(dacl.as_ref().is_ok_and(|d| d.starts_with("D:")), "{dacl:?}");
    }
}
