//! Sleep and resume: Windows broadcasts WM_POWERBROADCAST to every top-level window; a hidden one
//! of ours (never shown, not in the taskbar) hears PBT_APMRESUMEAUTOMATIC, sent whenever the
//! computer wakes, with or without a user.
#![allow(unsafe_code)] // Win32 calls; each block says why it is sound.

use std::io;
use windows_sys::Win32::Foundation::{HWND, LPARAM, LRESULT, WPARAM};
use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
use windows_sys::Win32::UI::WindowsAndMessaging::{
    CreateWindowExW, DefWindowProcW, DestroyWindow, FindWindowW, GetWindowLongPtrW,
    RegisterClassExW, SendMessageW, SetWindowLongPtrW, GWLP_USERDATA, PBT_APMRESUMEAUTOMATIC,
    WM_POWERBROADCAST, WNDCLASSEXW, WS_EX_NOACTIVATE, WS_EX_TOOLWINDOW, WS_OVERLAPPED,
};

/// The hidden window's class name (tests find the window by it to send it a resume).
pub const POWER_WINDOW_CLASS: &str = "VICIfastPowerWindow";

type OnResume = Box<dyn Fn()>;

/// The hidden window; it hears power messages while the thread that made it pumps messages
/// (the tray's event loop does). Destroyed on drop, on that same thread.
pub struct PowerWindow {
    hwnd: HWND,
    /// Owned here; the window procedure borrows it through GWLP_USERDATA until DestroyWindow.
    on_resume: *mut OnResume,
}

impl PowerWindow {
    /// Creates the window on the calling thread; `on_resume` runs on that thread when the
    /// computer wakes from sleep.
    pub fn new(on_resume: impl Fn() + 'static) -> io::Result<PowerWindow> {
        let class = wide(POWER_WINDOW_CLASS);
        // SAFETY: a null name asks for this process's own module handle.
        let instance = unsafe { GetModuleHandleW(std::ptr::null()) };
        let class_info = WNDCLASSEXW {
            cbSize: std::mem::size_of::<WNDCLASSEXW>() as u32,
            style: 0,
            lpfnWndProc: Some(window_procedure),
            cbClsExtra: 0,
            cbWndExtra: 0,
            hInstance: instance,
            hIcon: std::ptr::null_mut(),
            hCursor: std::ptr::null_mut(),
            hbrBackground: std::ptr::null_mut(),
            lpszMenuName: std::ptr::null(),
            lpszClassName: class.as_ptr(),
            hIconSm: std::ptr::null_mut(),
        };
        // SAFETY: `class_info` is fully initialised and `class` outlives the call. Registering
        // a second time fails harmlessly (the class exists), so the result is not checked.
        unsafe { RegisterClassExW(&class_info) };
        // SAFETY: the class is registered; no parent (a top-level window, which broadcasts
        // reach; a message-only window would not hear them); never shown.
        let hwnd = unsafe {
            CreateWindowExW(
                WS_EX_NOACTIVATE | WS_EX_TOOLWINDOW,
                class.as_ptr(),
                class.as_ptr(),
                WS_OVERLAPPED,
                0,
                0,
                0,
                0,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                instance,
                std::ptr::null(),
            )
        };
        if hwnd.is_null() {
            return Err(io::Error::last_os_error());
        }
        let on_resume: *mut OnResume = Box::into_raw(Box::new(Box::new(on_resume)));
        // SAFETY: `hwnd` is our live window; the pointer stays valid until drop, which
        // destroys the window before freeing it.
        unsafe { SetWindowLongPtrW(hwnd, GWLP_USERDATA, on_resume as isize) };
        Ok(PowerWindow { hwnd, on_resume })
    }
}

impl Drop for PowerWindow {
    fn drop(&mut self) {
        // SAFETY: our window, destroyed once, then nothing reads the callback any more.
        unsafe {
            SetWindowLongPtrW(self.hwnd, GWLP_USERDATA, 0);
            DestroyWindow(self.hwnd);
            drop(Box::from_raw(self.on_resume));
        }
    }
}

unsafe extern "system" fn window_procedure(
    hwnd: HWND,
    message: u32,
    wparam: WPARAM,
    lparam: LPARAM,
) -> LRESULT {
    if message == WM_POWERBROADCAST && wparam == PBT_APMRESUMEAUTOMATIC as usize {
        // SAFETY: the pointer was set by `PowerWindow::new` and is cleared before it is freed;
        // messages arrive on the window's own thread, the one that owns the callback.
        let on_resume = unsafe { GetWindowLongPtrW(hwnd, GWLP_USERDATA) } as *const OnResume;
        // SAFETY: null (not set yet, or cleared) or the live callback, as above.
        if let Some(on_resume) = unsafe { on_resume.as_ref() } {
            on_resume();
        }
        return 1;
    }
    // SAFETY: the arguments are the ones the system passed in.
    unsafe { DefWindowProcW(hwnd, message, wparam, lparam) }
}

/// Sends the resume notice Windows broadcasts on waking to this user's VICIfast power window,
/// as the tests do under Wine, which never sleeps. Fails when no such window exists.
pub fn send_resume() -> io::Result<()> {
    let class = wide(POWER_WINDOW_CLASS);
    // SAFETY: `class` is a NUL-terminated string that outlives the call; no title filter.
    let hwnd = unsafe { FindWindowW(class.as_ptr(), std::ptr::null()) };
    if hwnd.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "no VICIfast power window",
        ));
    }
    // SAFETY: a message with no pointers in it, to a window that existed a moment ago (a gone
    // window makes SendMessageW return 0, nothing worse).
    unsafe { SendMessageW(hwnd, WM_POWERBROADCAST, PBT_APMRESUMEAUTOMATIC as usize, 0) };
    Ok(())
}

fn wide(text: &str) -> Vec<u16> {
    text.encode_utf16().chain(std::iter::once(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    #[test]
    fn the_resume_notice_reaches_the_callback() {
        let heard = Rc::new(Cell::new(0));
        let counter = Rc::clone(&heard);
        let window = PowerWindow::new(move || counter.set(counter.get() + 1));
        assert!(window.is_ok(), "{:?}", window.as_ref().err());
        // Sent on the window's own thread: the window procedure runs before this returns.
        assert!(send_resume().is_ok());
        assert_eq!(heard.get(), 1);
        drop(window);
        assert!(send_resume().is_err(), "the window is gone");
    }
}
