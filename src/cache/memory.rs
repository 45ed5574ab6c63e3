//! The allocator the binaries use, and handing memory a refresh freed back to the system.
//!
//! The binaries allocate with jemalloc ([`Allocator`], declared `#[global_allocator]` by each binary, not
//! by this library, so tests and embedders keep their own): a request's allocations are often freed on
//! another async worker than the one that made them, and glibc's arenas take a lock for each such free,
//! contended under load, where jemalloc's thread caches do not.
//!
//! A full refresh holds JumpCloud's pages, the records read from them and the next snapshot at once, then
//! frees all but the snapshot. An allocator keeps what was freed mapped for reuse, so without
//! [`release_free`] the process's resident size stays near the refresh's peak (about 2 KB a user more than
//! the snapshot at 100,000 users).

/// The binaries' global allocator.
pub type Allocator = tikv_jemallocator::Jemalloc;

/// Return the allocators' free pages to the system: jemalloc's arenas are purged, and glibc's heap (in a
/// process that allocates with it) trimmed. Blocking: it walks the heap, some milliseconds at 100,000 users.
pub fn release_free() {
    // SAFETY: `arena.<MALLCTL_ARENAS_ALL>.purge` takes no input or output; the name is NUL-terminated.
    unsafe {
        let name = c"arena.4096.purge";
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        );
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns unused pages to the kernel; it takes no pointer and is safe to
    // call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
