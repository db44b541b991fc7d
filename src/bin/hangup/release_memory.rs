//! Gives memory back to the system after a burst (glibc only).
//!
//! glibc's malloc keeps what a burst freed: a flood of 3,000 connections
//! that send large unfinished heads took `hangup serve` from 6.5 MiB to
//! 101 MiB of RSS, and it stayed there after they closed
//! (bench/RESULTS.md, 2026-12-06), because free chunks in the middle of a
//! heap go back only through `malloc_trim`. With this, 7 MiB a second or
//! two after the close. A thread checks once a second and trims after a burst:
//! when the bytes free in the heaps grew by [`STEP`] since their lowest
//! point (memory was used and given back), or the RSS grew by [`STEP`]
//! since the last trim while that much is free (a burst shorter than a
//! second). A steady server never trims; the check costs one
//! `mallinfo2` and one read of `/proc/self/statm` a second.
//!
//! This is the binary's choice: the library leaves the allocator, and
//! what it does with freed memory, to the application.

use std::time::Duration;

/// How much freed memory is worth a trim.
const STEP: usize = 8 << 20;

/// How often the heaps are checked.
const PERIOD: Duration = Duration::from_secs(1);

/// Starts the checking thread (once, at start; it runs until exit). Does
/// nothing on a glibc older than 2.33, which has no `mallinfo2`.
pub(crate) fn start() {
    let Some(mallinfo2) = find_mallinfo2() else {
        return;
    };
    let spawned = std::thread::Builder::new()
        .name("release-memory".into())
        .spawn(move || run(mallinfo2));
    if let Err(err) = spawned {
        eprintln!("hangup: memory will not be trimmed after bursts: {err}");
    }
}

fn run(mallinfo2: Mallinfo2) {
    let free_bytes = || free_bytes(mallinfo2);
    let mut trimmer = Trimmer::new(free_bytes(), resident_bytes());
    loop {
        std::thread::sleep(PERIOD);
        if trimmer.should_trim(free_bytes(), resident_bytes()) {
            // SAFETY: malloc_trim has no preconditions; it takes each
            // arena's lock in turn.
            unsafe { libc::malloc_trim(0) };
            trimmer.trimmed(free_bytes(), resident_bytes());
        }
    }
}

/// When to trim, from samples of the free heap bytes and the RSS.
#[derive(Debug)]
struct Trimmer {
    /// The lowest free byte count since the last trim.
    free_floor: usize,
    /// The RSS right after the last trim (or at start).
    resident_after_trim: usize,
}

impl Trimmer {
    fn new(free: usize, resident: usize) -> Self {
        Trimmer {
            free_floor: free,
            resident_after_trim: resident,
        }
    }

    fn should_trim(&mut self, free: usize, resident: usize) -> bool {
        self.free_floor = self.free_floor.min(free);
        free >= STEP
            && (free - self.free_floor >= STEP
                || resident.saturating_sub(self.resident_after_trim) >= STEP)
    }

    fn trimmed(&mut self, free: usize, resident: usize) {
        self.free_floor = free;
        self.resident_after_trim = resident;
    }
}

/// Bytes in free chunks of every malloc arena (resident or not).
fn free_bytes(mallinfo2: Mallinfo2) -> usize {
    // SAFETY: mallinfo2 has no preconditions.
    let info = unsafe { mallinfo2() };
    info.fordblks
}

/// glibc's `mallinfo2`.
type Mallinfo2 = unsafe extern "C" fn() -> libc::mallinfo2;

/// `mallinfo2`, looked up at run time: linked by name, it would keep the
/// binary from starting on a glibc older than 2.33 (Ubuntu 20.04, RHEL 8).
fn find_mallinfo2() -> Option<Mallinfo2> {
    // SAFETY: dlsym gets the default handle and a NUL-terminated name; a
    // non-null result is glibc's `mallinfo2`, whose signature `Mallinfo2`
    // is (the libc crate declares the same).
    unsafe {
        let symbol = libc::dlsym(libc::RTLD_DEFAULT, c"mallinfo2".as_ptr());
        (!symbol.is_null()).then(|| std::mem::transmute::<*mut libc::c_void, Mallinfo2>(symbol))
    }
}

/// The process's resident set, in bytes (0 if unreadable).
fn resident_bytes() -> usize {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * usize::try_from(page).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mallinfo2_is_found_on_a_glibc_that_has_it() {
        // SAFETY: gnu_get_libc_version returns a static NUL-terminated string.
        let version = unsafe { std::ffi::CStr::from_ptr(libc::gnu_get_libc_version()) };
        let version = version.to_str().unwrap();
        let minor: u32 = version
            .split('.')
            .nth(1)
            .and_then(|minor| minor.parse().ok())
            .unwrap();
        let found = find_mallinfo2();
        assert_eq!(found.is_some(), minor >= 33, "glibc {version}");
        if let Some(mallinfo2) = found {
            // Something was allocated and freed by now.
            drop(vec![0u8; 1 << 16]);
            let _ = free_bytes(mallinfo2);
        }
    }

    const MIB: usize = 1 << 20;

    #[test]
    fn a_steady_server_never_trims() {
        let mut t = Trimmer::new(MIB, 10 * MIB);
        for _ in 0..100 {
            assert!(!t.should_trim(2 * MIB, 11 * MIB));
        }
    }

    #[test]
    fn memory_used_then_freed_is_trimmed_once() {
        let mut t = Trimmer::new(MIB, 10 * MIB);
        // The burst: memory in use, nothing free.
        assert!(!t.should_trim(0, 100 * MIB));
        // Over: 90 MiB free in the heap.
        assert!(t.should_trim(90 * MIB, 100 * MIB));
        // The middle of the heap stays free (released) after the trim.
        t.trimmed(80 * MIB, 12 * MIB);
        for _ in 0..10 {
            assert!(!t.should_trim(80 * MIB, 12 * MIB));
        }
        // The next burst reuses it and frees it again.
        assert!(!t.should_trim(4 * MIB, 90 * MIB));
        assert!(t.should_trim(80 * MIB, 90 * MIB));
    }

    #[test]
    fn a_burst_between_two_checks_is_seen_in_the_rss() {
        // As much free before and after: the burst's pages came back.
        let mut t = Trimmer::new(STEP + MIB, 10 * MIB);
        assert!(!t.should_trim(STEP + MIB, 10 * MIB + MIB));
        assert!(t.should_trim(STEP + MIB, 10 * MIB + STEP));
    }

    #[test]
    fn live_memory_growing_is_not_trimmed() {
        let mut t = Trimmer::new(MIB, 10 * MIB);
        assert!(!t.should_trim(MIB, 200 * MIB));
    }

    #[test]
    fn growing_beside_free_memory_trims_once_per_step() {
        let mut t = Trimmer::new(10 * MIB, 10 * MIB);
        assert!(t.should_trim(10 * MIB, 30 * MIB));
        t.trimmed(10 * MIB, 30 * MIB);
        assert!(!t.should_trim(10 * MIB, 30 * MIB + STEP - 1));
        assert!(t.should_trim(10 * MIB, 30 * MIB + STEP));
    }
}
