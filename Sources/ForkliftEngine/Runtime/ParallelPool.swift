import COpenBLAS
import Foundation
import Synchronization

/// A small persistent pool of compute threads for the engine's own kernels (packed GEMM, conv).
///
/// `run(parts:)` hands parts 1..<parts to pool threads and runs part 0 on the caller, then waits
/// for all of them. Threads are started on the first parallel call only, never before: the
/// zygote must stay single-threaded to fork safely, and it never asks for more than one thread.
/// A thread spins briefly after each job, so that the next op's dispatch does not pay a futex
/// wake-up, then sleeps on a condition variable.
final class ParallelPool: @unchecked Sendable {
    /// Starts with OpenBLAS's count, which follows `OPENBLAS_NUM_THREADS` (1 in the zygote).
    static let shared = ParallelPool(threads: Int(openblas_get_num_threads()))

    /// How long an idle thread polls for the next job before it sleeps.
    private static let spinSeconds = 0.0002

    /// Threads that kernels may use, the caller included (set with `BLAS.setThreads`).
    var threads: Int {
        get { wanted.load(ordering: .relaxed) }
        set { wanted.store(max(1, newValue), ordering: .relaxed) }
    }

    private let wanted = Atomic<Int>(1)
    private let busy = Atomic<Bool>(false)
    /// Bumped once per job; a thread whose last seen generation differs has work.
    private let generation = Atomic<Int>(0)
    /// Pool threads still working on the current job.
    private let pending = Atomic<Int>(0)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    /// The current job and its part count; written before `generation` is bumped (releasing)
    /// and read after it is seen (acquiring), so a plain stored property is enough.
    private var job: ((Int) -> Void)?
    private var parts = 0
    /// Pool threads started so far (the caller is not counted). Changed only by the dispatcher
    /// that holds `busy`.
    private var started = 0

    private init(threads: Int) {
        wanted.store(max(1, threads), ordering: .relaxed)
        mutex = .allocate(capacity: 1)
        wake = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(wake, nil)
    }

    /// Runs `body(part)` for every part in 0..<parts, in parallel, and returns when all are done.
    /// Callers choose `parts` from `threads`. With one part, or while another dispatch holds the
    /// pool, the parts run one after another on the caller.
    func run(parts: Int, _ body: @escaping (Int) -> Void) {
        // One dispatcher at a time: a second session on another thread (or a nested call) runs
        // its parts itself rather than wait for the pool.
        guard parts > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for part in 0..<parts { body(part) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        while started < parts - 1 { startThread(index: started + 1) }
        job = body
        self.parts = parts
        // Every pool thread wakes for a job and reports back, including those past `parts`.
        pending.store(started, ordering: .relaxed)
        generation.add(1, ordering: .releasing)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        body(0)
        var spins = 0
        while pending.load(ordering: .acquiring) > 0 {
            spins += 1
            if spins > 1000 { sched_yield() }
        }
        job = nil
    }

    private func startThread(index: Int) {
        started += 1
        // The generation before this job's: a thread that starts late must still see the job.
        let initial = generation.load(ordering: .acquiring)
        let thread = Thread { [self] in workerLoop(index: index, seen: initial) }
        thread.stackSize = 1 << 20
        thread.start()
    }

    private func workerLoop(index: Int, seen initial: Int) {
        var seen = initial
        while true {
            seen = waitForJob(after: seen)
            if index < parts, let job { job(index) }
            pending.subtract(1, ordering: .releasing)
        }
    }

    /// Polls for a new generation for a short while, then sleeps until one is published.
    private func waitForJob(after seen: Int) -> Int {
        let deadline = Self.now() + Self.spinSeconds
        var polls = 0
        while true {
            let current = generation.load(ordering: .acquiring)
            if current != seen { return current }
            polls += 1
            if polls & 255 == 0, Self.now() > deadline { break }
        }
        pthread_mutex_lock(mutex)
        var current = generation.load(ordering: .acquiring)
        while current == seen {
            pthread_cond_wait(wake, mutex)
            current = generation.load(ordering: .acquiring)
        }
        pthread_mutex_unlock(mutex)
        return current
    }

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// Splits 0..<count into `parts` contiguous ranges whose sizes differ by at most one.
    static func slice(_ count: Int, parts: Int, part: Int) -> Range<Int> {
        let base = count / parts
        let extra = count % parts
        let lower = part * base + min(part, extra)
        return lower..<(lower + base + (part < extra ? 1 : 0))
    }
}
