import CForkliftSys
import Foundation
import Glibc

/// What a zygote's control thread reports. Called on that thread.
protocol ZygoteDelegate: AnyObject, Sendable {
    func zygoteSpawned(_ link: ZygoteLink)
    func zygoteFailedToSpawn(generation: Int, _ why: String)
    func zygoteLoaded(_ link: ZygoteLink, models: [LoadedModel])
    func zygoteForked(_ link: ZygoteLink, pid: Int32, fd: Int32)
    func zygoteRefused(_ link: ZygoteLink, _ why: String)
    func zygoteExited(_ link: ZygoteLink, _ how: String)
}

/// One zygote process and its control socket, served by a dedicated thread. That thread also
/// spawns the zygote: the zygote's parent-death signal fires when the thread that spawned it
/// exits, so it must be a thread that lives exactly as long as the zygote's link.
final class ZygoteLink: @unchecked Sendable {
    let generation: Int
    let pid: Int32
    let spawnedAt = monotonicNanoseconds()
    private let fd: Int32
    private let writeLock = NSLock()
    /// Guarded by `writeLock`: set once the fd is closed, so `close()` never hits a reused fd.
    private var closed = false

    private init(generation: Int, pid: Int32, fd: Int32) {
        self.generation = generation
        self.pid = pid
        self.fd = fd
    }

    /// Starts a thread that spawns `executable zygote` and serves its control socket.
    static func launch(executable: String, generation: Int, setup: ZygoteSetup, delegate: any ZygoteDelegate) {
        let thread = Thread {
            fl_name_current_thread("pool-zygote-\(generation)")
            let link: ZygoteLink
            do {
                link = try spawn(executable: executable, generation: generation)
            } catch {
                delegate.zygoteFailedToSpawn(generation: generation, "\(error)")
                return
            }
            delegate.zygoteSpawned(link)
            link.serve(setup: setup, delegate: delegate)
        }
        thread.start()
    }

    private static func spawn(executable: String, generation: Int) throws(SocketError) -> ZygoteLink {
        let (serverEnd, zygoteEnd) = try SocketIO.socketPair()
        defer { SocketIO.close(zygoteEnd) }
        let arguments = [executable, "zygote", "--control-fd", "3", "--parent-pid", String(getpid())]
        var environment = ProcessInfo.processInfo.environment
        // OpenBLAS starts a thread in its constructor unless told otherwise; the zygote must stay
        // single-threaded to fork safely.
        environment["OPENBLAS_NUM_THREADS"] = "1"
        environment["OMP_NUM_THREADS"] = "1"
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let rc = fl_spawn(executable, argv, envp, zygoteEnd, 3, &pid)
        guard rc == 0 else {
            SocketIO.close(serverEnd)
            throw .failed("posix_spawn \(executable)", rc)
        }
        return ZygoteLink(generation: generation, pid: pid, fd: serverEnd)
    }

    private func serve(setup: ZygoteSetup, delegate: any ZygoteDelegate) {
        do {
            try send(ControlMessage(kind: .setup, setup: setup))
            while true {
                let (message, attached) = try ControlIO.receive(on: fd)
                switch message.kind {
                case .models:
                    delegate.zygoteLoaded(self, models: message.models ?? [])
                case .worker:
                    guard let attached, let pid = message.pid, pid > 0 else {
                        if let attached { SocketIO.close(attached) }
                        delegate.zygoteRefused(self, "worker message without a socket or pid")
                        continue
                    }
                    delegate.zygoteForked(self, pid: pid, fd: attached)
                case .refused:
                    if let attached { SocketIO.close(attached) }
                    delegate.zygoteRefused(self, message.error ?? "no reason given")
                case .setup, .fork:
                    if let attached { SocketIO.close(attached) }
                    throw SocketError.badFrame(FrameError("unexpected control message \(message.kind) from the zygote"))
                }
            }
        } catch {
            // Closed (the zygote died or the server closed the link) or a broken message: either
            // way this zygote is finished. Make sure, then collect it.
            if (error as? SocketError)?.isClosed != true { _ = Glibc.kill(pid, SIGKILL) }
        }
        writeLock.lock()
        closed = true
        SocketIO.close(fd)
        writeLock.unlock()
        delegate.zygoteExited(self, Self.reap(pid))
    }

    /// Asks for one more worker. Fails when the zygote is gone; its thread then reports the exit.
    func requestFork() -> Bool {
        (try? send(ControlMessage(kind: .fork))) != nil
    }

    /// Closes the link: the zygote sees EOF, stops its workers and exits; the thread reaps it.
    func close() {
        writeLock.lock()
        defer { writeLock.unlock() }
        if !closed { _ = shutdown(fd, Int32(SHUT_RDWR)) }
    }

    func kill(signal: Int32 = SIGKILL) { _ = Glibc.kill(pid, signal) }

    private func send(_ message: ControlMessage) throws(SocketError) {
        writeLock.lock()
        defer { writeLock.unlock() }
        guard !closed else { throw .closed }
        try ControlIO.send(message, on: fd)
    }

    /// Waits for the zygote and describes how it ended.
    private static func reap(_ pid: Int32) -> String {
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, 0)
            if result == pid { break }
            if result < 0 && errno == EINTR { continue }
            return "not reaped: \(String(cString: strerror(errno)))"
        }
        if fl_wifsignaled(status) != 0 { return "killed by signal \(fl_wtermsig(status))" }
        return "exited with status \(fl_wexitstatus(status))"
    }
}

/// Collects workers whose zygote died. The server is a child subreaper, so such orphans become
/// its children; without this they would stay zombies (PID 1 here does not reap).
enum OrphanReaper {
    /// Reaps `pid` if it is our child, waiting at most `limit` seconds for it to exit before
    /// killing it. Returns at once when it is not our child (its zygote reaped it).
    static func reap(_ pid: Int32, limit: Double) {
        let deadline = monotonicNanoseconds() &+ UInt64(limit * 1e9)
        var status: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid { return }
            if result < 0 {
                if errno == EINTR { continue }
                return  // ECHILD: not ours
            }
            if monotonicNanoseconds() >= deadline {
                _ = kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                return
            }
            usleep(5_000)
        }
    }
}
