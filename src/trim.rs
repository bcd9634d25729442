//! Gives freed heap memory back to the operating system after the few large,
//! short-lived jobs: a scrape of every target's series (megabytes of text and a copy
//! of each series at 5,000 targets) and a config parse.
//!
//! glibc keeps what such a job freed in the arena of the thread that ran it, so
//! without this the resident memory would stay at the peak of every worker thread
//! for ever. It must not be called on a hot path: it walks the whole heap (a few
//! milliseconds at 100 MiB). Elsewhere than glibc it does nothing.

pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns pages that no allocation uses; it has no
    // preconditions and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
