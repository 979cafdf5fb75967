import Glibc

/// Polling for the next request instead of sleeping, for a moment after a batch (`--busy-poll`).
///
/// At low load, each request otherwise wakes two sleeping threads: the server's connection
/// thread, then the worker. On a virtual machine whose idle cores halt (guest halt polling off),
/// each of those wake-ups waits for the host to resume the core. Polling keeps the core running,
/// as the kernel's halt polling would, but only in this process and only while it is likely to pay.
enum BusyPoll {
    /// Calls `ready` until it returns true or `nanoseconds` pass. Between calls the thread yields
    /// its core, so that a thread woken on it runs at once instead of after the poller's slice.
    static func spin(for nanoseconds: UInt64, until ready: () -> Bool) {
        let end = monotonicNanoseconds() &+ nanoseconds
        while !ready() && monotonicNanoseconds() < end { sched_yield() }
    }
}
