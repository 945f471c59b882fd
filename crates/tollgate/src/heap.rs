//! The allocator every Tollgate process runs on: mimalloc, with the bytes the program
//! holds live counted (`cap`), for `tollgate_process_heap_bytes`. RSS also moves with what
//! the allocator keeps cached for reuse, so a leak is judged on the live count
//! (docs/soak.md; the cost, one atomic add per allocation, in decision 015).

/// Counts and forwards to mimalloc (measurably faster than glibc's allocator on the
/// gateway's request path). No limit is set: `cap` is here to count.
#[global_allocator]
static GLOBAL: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

/// Bytes the program holds live on the heap now (what it asked for and has not freed,
/// not what the allocator holds from the system).
pub fn live_bytes() -> usize {
    GLOBAL.allocated()
}

#[cfg(test)]
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
