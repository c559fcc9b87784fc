//! Runs each synthesis in a child process forked from the initialised helper.
//!
//! eSpeak NG keeps state across syntheses that changes the sound (the pitch "flutter" phase in
//! its wave generator is a function-static counter that only ever advances, and the Klatt
//! voices draw noise from `rand()`), so the same request spoken twice by one process gives
//! slightly different audio and phoneme times. A child forked from the freshly initialised
//! process starts from exactly the same state every time, so a request always gives the same
//! answer whichever helper serves it and whatever it served before. It also means a crash or a
//! leak inside the library costs one request, not the helper.
//!
//! Linux only (the raw `wait` status decoding below is Linux's); elsewhere the helper speaks
//! in-process.

use std::ffi::c_int;

// libc, which the Rust standard library already links; `pid_t` is `int` on Linux.
unsafe extern "C" {
    fn fork() -> c_int;
    fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    fn _exit(status: c_int) -> !;
}

/// Which side of a fork this is.
pub enum Forked {
    /// The new process.
    Child,
    /// The original process, with the child's pid.
    Parent(c_int),
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// `_exit(code)`.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

/// Forks the process.
///
/// # Safety
///
/// The child gets only the calling thread. The caller must make sure the child touches no lock
/// another thread could have held at the time of the fork (glibc's `malloc` and stdio are made
/// safe by glibc itself), and that the child leaves through [`exit_child`], never by returning
/// into code that would act as the parent.
pub unsafe fn fork_process() -> std::io::Result<Forked> {
    // SAFETY: `fork` has no preconditions of its own; what the child may do afterwards is the
    // caller's contract (see above).
    let pid = unsafe { fork() };
    match pid {
        -1 => Err(std::io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        pid => Ok(Forked::Parent(pid)),
    }
}

/// Ends the child at once: no destructors, no `atexit` handlers, no flushing of buffers that
/// belong to the parent.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and always allowed; it does not return.
    unsafe { _exit(code) }
}

/// Waits for the child `pid` to end.
pub fn wait_child(pid: c_int) -> std::io::Result<Ended> {
    let mut status: c_int = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer; `pid` is a child of this process that has not
        // been waited for.
        let rc = unsafe { waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    // WIFEXITED / WEXITSTATUS / WTERMSIG as Linux defines them.
    let signal = status & 0x7f;
    Ok(if signal == 0 {
        Ended::Exited((status >> 8) & 0xff)
    } else {
        Ended::Signaled(signal)
    })
}
