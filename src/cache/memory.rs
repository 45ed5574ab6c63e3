//! Handing memory a refresh freed back to the system.
//!
//! A full refresh holds JumpCloud's pages, the records read from them and the next snapshot at once, then
//! frees all but the snapshot. glibc's allocator keeps what was freed mapped for reuse, so without this
//! the process's resident size stays near the refresh's peak (about 2 KB a user more than the snapshot at
//! 100,000 users). `malloc_trim` returns the free pages, including those between live allocations.

/// Return the allocator's free pages to the system (glibc on Linux; elsewhere nothing to do). Blocking:
/// it walks the heap, some milliseconds at 100,000 users.
pub fn release_free() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns unused pages to the kernel; it takes no pointer and is safe to
    // call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
