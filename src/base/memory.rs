//! The allocator, told how a list server uses memory (glibc only; elsewhere these do nothing).
//!
//! A fan-out allocates many short-lived copies on every thread while long-lived data (the
//! store's page cache, pooled connections) is allocated in between. glibc keeps the freed
//! pages in the middle of its heaps, so without help the resident size creeps up post after
//! post although the live heap stays flat (heaptrack: 54 MiB peak heap, 218 MiB resident after
//! 420 posts of 1,000 members, `cargo bench --bench history`).

/// One malloc arena per core (two at least) instead of up to eight per core: for a server
/// whose threads take turns on large, short-lived batches, each extra arena multiplies peak
/// RSS (107 MiB instead of 147 to 188 MiB for a 100,000-member fan-out). Call it before any
/// other thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn tune_allocator() {
    unsafe extern "C" {
        fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
    }
    /// `M_ARENA_MAX` in glibc's malloc.h.
    const M_ARENA_MAX: std::ffi::c_int = -8;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let arenas = std::ffi::c_int::try_from(cores.max(2)).unwrap_or(2);
    // SAFETY: mallopt only adjusts allocator parameters; a refusal (return 0) leaves the
    // defaults in place.
    unsafe {
        mallopt(M_ARENA_MAX, arenas);
    }
}

/// Gives the pages of freed memory back to the system (glibc's `malloc_trim`), so resident
/// size follows what is live. It walks every arena: call it when work has just ended (the
/// delivery worker does, at most every few seconds), not per message.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn release_free_memory() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim only returns free pages to the kernel; it is thread-safe and has no
    // preconditions.
    unsafe {
        malloc_trim(0);
    }
}

/// Does nothing where the allocator is not glibc's.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune_allocator() {}

/// Does nothing where the allocator is not glibc's.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn release_free_memory() {}
