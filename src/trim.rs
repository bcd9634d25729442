//! Keeps the daemon's resident memory near what it uses: glibc's allocator is set up
//! for a long-running process with a few large, short-lived buffers, and freed memory
//! is given back after them (a pass's metric read of thousands of series, a config
//! parse).
//!
//! glibc keeps what such a job freed in the arena of the thread that ran it, so
//! without this the resident memory would stay at the peak of every worker thread
//! for ever. It must not be called on a hot path: it walks the whole heap (a few
//! milliseconds at 100 MiB). Elsewhere than glibc it does nothing.

/// Call once, before any thread starts.
///
/// - A fixed mmap threshold of 128 KiB: glibc otherwise raises the threshold to the
///   size of each large block freed, so after the first scrape every later scrape's
///   buffer came from the heap and stayed there, fragmented.
/// - One arena (glibc allows 8 per core): each tokio worker's arena otherwise keeps
///   the peak of whatever that thread last did, and memory one worker freed is not
///   reused by the other. Sharing one costs no measurable CPU: 1,037 ms a cycle with
///   two arenas, 1,000 with one, in the run below.
///
/// At 5,000 targets (`scripts/bench-scale.sh` shortened to 2 minutes at budget 14/s)
/// the threshold and 2 arenas took resident memory from 78.5 to 60.1 MiB. With the
/// forecast on for all of them (3 minutes), going to one arena, with three smaller
/// savings in the same change, took it from 75.1 to 66.7 MiB; the second arena had
/// held 17.6 MiB.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets allocator parameters; it is called before any other
    // thread exists, and a refused value leaves glibc's default in force.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns pages that no allocation uses; it has no
    // preconditions and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
