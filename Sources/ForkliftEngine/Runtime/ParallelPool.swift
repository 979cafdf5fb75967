import COpenBLAS
import Foundation
import Synchronization

/// A small persistent pool of compute threads for the engine's own kernels.
///
/// `run(parts:)` publishes a job and then claims parts itself, as the pool threads do, until
/// none is left; it returns once every claimed part has finished. Parts are claimed, not
/// assigned: on a shared machine a pool thread may not get a core for milliseconds, and with
/// fixed shares the caller would wait for it (a 10× slowdown of small products was measured
/// so). Here a thread that wakes late finds the parts taken and goes back to waiting.
///
/// Threads start on the first parallel call only: the zygote must stay single-threaded to
/// fork safely, and it never asks for more than one thread. A thread polls for a while after
/// each job, so that the next op's dispatch does not pay a futex wake-up, then sleeps.
final class ParallelPool: @unchecked Sendable {
    /// Starts with OpenBLAS's count, which follows `OPENBLAS_NUM_THREADS` (1 in the zygote), and
    /// then leaves OpenBLAS one thread (see `BLAS`).
    static let shared = ParallelPool(threads: Int(openblas_get_num_threads()))

    /// How long an idle thread polls for the next job before it sleeps.
    private static let spinSeconds = 0.0002
    /// Most parts one job may have (they are counted in 16 bits of the ticket).
    static let maxParts = 1 << 15

    /// Threads that kernels may use, the caller included (set with `BLAS.setThreads`).
    var threads: Int {
        get { wanted.load(ordering: .relaxed) }
        set { wanted.store(max(1, newValue), ordering: .relaxed) }
    }

    private let wanted = Atomic<Int>(1)
    private let busy = Atomic<Bool>(false)
    /// The current job's generation (bits 32…), part count (bits 16..<32) and next unclaimed
    /// part (bits 0..<16), in one word, so that a claim can never mix two jobs.
    private let ticket = Atomic<Int>(0)
    /// Parts of the current job finished so far.
    private let finished = Atomic<Int>(0)
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wake: UnsafeMutablePointer<pthread_cond_t>
    /// The current job; written before the ticket is published (releasing) and read only after
    /// a part was claimed (acquiring), while the caller still waits for that part.
    private var job: ((Int) -> Void)?
    /// Pool threads started so far (the caller is not counted). Changed only by the dispatcher
    /// that holds `busy`.
    private var started = 0

    private init(threads: Int) {
        wanted.store(max(1, threads), ordering: .relaxed)
        openblas_set_num_threads(1)
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
        guard parts > 1, parts <= Self.maxParts,
            busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged
        else {
            for part in 0..<parts { body(part) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        while started < min(threads, parts) - 1 { startThread() }
        job = body
        finished.store(0, ordering: .relaxed)
        // 31 bits, so that the shifted generation never reaches the sign bit.
        let generation = ((ticket.load(ordering: .relaxed) >> 32) &+ 1) & 0x7FFF_FFFF
        ticket.store(generation << 32 | parts << 16, ordering: .releasing)
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(wake)
        pthread_mutex_unlock(mutex)
        work(generation: generation)
        var spins = 0
        while finished.load(ordering: .acquiring) < parts {
            spins += 1
            if spins > 1000 { sched_yield() }
        }
        job = nil
    }

    /// Claims and runs parts of job `generation` until none is left (or the job is gone).
    private func work(generation: Int) {
        var current = ticket.load(ordering: .acquiring)
        while current >> 32 == generation {
            let parts = (current >> 16) & 0xFFFF
            let part = current & 0xFFFF
            guard part < parts else { return }
            let (exchanged, seen) = ticket.compareExchange(expected: current, desired: current + 1, ordering: .acquiring)
            if exchanged {
                job?(part)
                finished.add(1, ordering: .releasing)
                current = ticket.load(ordering: .acquiring)
            } else {
                current = seen
            }
        }
    }

    private func startThread() {
        started += 1
        // The generation before this job's: a thread that starts late must still see the job.
        let initial = ticket.load(ordering: .acquiring) >> 32
        let thread = Thread { [self] in workerLoop(seen: initial) }
        thread.stackSize = 1 << 20
        thread.start()
    }

    private func workerLoop(seen initial: Int) {
        var seen = initial
        while true {
            seen = waitForJob(after: seen)
            work(generation: seen)
        }
    }

    /// Polls for a new generation for a short while, then sleeps until one is published.
    private func waitForJob(after seen: Int) -> Int {
        let deadline = Self.now() + Self.spinSeconds
        var polls = 0
        while true {
            let current = ticket.load(ordering: .acquiring) >> 32
            if current != seen { return current }
            polls += 1
            if polls & 255 == 0, Self.now() > deadline { break }
        }
        pthread_mutex_lock(mutex)
        var current = ticket.load(ordering: .acquiring) >> 32
        while current == seen {
            pthread_cond_wait(wake, mutex)
            current = ticket.load(ordering: .acquiring) >> 32
        }
        pthread_mutex_unlock(mutex)
        return current
    }

    private static func now() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
    }

    /// Runs `body` on the `parts` contiguous chunks of 0..<count that `slice` cuts, in parallel
    /// when there is more than one, and returns when all are done.
    func forEachChunk(count: Int, parts: Int, _ body: (Range<Int>) -> Void) {
        guard parts > 1 else {
            body(0..<count)
            return
        }
        // `run` returns only when every chunk is done, so the body never outlives this call.
        withoutActuallyEscaping(body) { body in
            run(parts: parts) { part in body(Self.slice(count, parts: parts, part: part)) }
        }
    }

    /// Splits 0..<count into `parts` contiguous ranges whose sizes differ by at most one.
    static func slice(_ count: Int, parts: Int, part: Int) -> Range<Int> {
        let base = count / parts
        let extra = count % parts
        let lower = part * base + min(part, extra)
        return lower..<(lower + base + (part < extra ? 1 : 0))
    }
}

/// Splits independent work across the engine's threads, when it is large enough to pay off.
enum Parallel {
    /// Calls `body` on contiguous chunks of `0..<count`; `work` estimates the total cost in flops.
    /// The chunks go to `ParallelPool`, the same threads as the GEMM kernels: Dispatch's threads
    /// would contend with the pool's, which poll for a while after each job, on the same cores.
    static func forEachChunk(count: Int, work: Int, _ body: (Range<Int>) -> Void) {
        let threads = min(BLAS.threads, count)
        // A few chunks per thread, so that a thread that gets its core late leaves less behind.
        let parts = threads <= 1 || work < 1 << 16 ? 1 : min(count, 4 * threads)
        ParallelPool.shared.forEachChunk(count: count, parts: parts, body)
    }
}
