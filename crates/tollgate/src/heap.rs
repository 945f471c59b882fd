//! The allocator every Tollgate process runs on: mimalloc, measurably faster than glibc's
//! allocator on the gateway's request path. Built with the `heap-stats` feature, it also
//! counts the bytes the program holds live (`cap`), published as
//! `tollgate_process_heap_bytes`: RSS moves with what the allocator caches for reuse, so
//! the soak judges a leak on the live count. Off by default: one shared atomic add per
//! allocation costs the gateway about 7 % more CPU per request (decision 015).

#[cfg(not(feature = "heap-stats"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Counts and forwards to mimalloc. No limit is set: `cap` is here to count.
#[cfg(feature = "heap-stats")]
#[global_allocator]
static GLOBAL: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

/// Bytes the program holds live on the heap now (what it asked for and has not freed,
/// not what the allocator holds from the system).
#[cfg(feature = "heap-stats")]
pub fn live_bytes() -> usize {
    GLOBAL.allocated()
}

#[cfg(all(test, feature = "heap-stats"))]
mod tests {
    use super::*;

    // The test binary runs on this global allocator, one test per process under nextest.
    #[test]
    fn live_bytes_follow_allocations_and_frees() {
        let before = live_bytes();
        let mut held: Vec<u8> = Vec::with_capacity(8 << 20);
        held.resize(8 << 20, 1);
        let during = live_bytes();
        assert!(during >= before + (8 << 20) - (1 << 20), "{before} then {during}");
        held.reserve_exact(16 << 20); // a realloc to 24 MiB
        let grown = live_bytes();
        assert!(grown >= before + (23 << 20), "{before} then {grown}");
        drop(held);
        let after = live_bytes();
        assert!(after + (23 << 20) <= grown, "{grown} then {after}");
        // Allocations on other threads are counted too, and frees wherever they happen.
        let other = std::thread::spawn(|| vec![7u8; 4 << 20]).join().unwrap();
        assert!(live_bytes() >= after + (3 << 20));
        drop(other);
        assert!(live_bytes() < after + (1 << 20));
    }
}
