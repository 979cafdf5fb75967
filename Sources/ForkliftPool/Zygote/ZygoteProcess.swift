import CForkliftSys
import ForkliftEngine
import ForkliftImage
import Foundation
@preconcurrency import Glibc

/// The zygote: a freshly spawned, single-threaded process that loads every model once and then
/// forks workers on request, so that the workers share the weights copy-on-write and no fork
/// ever happens in a multi-threaded process. It never starts a thread.
public enum ZygoteProcess {
    /// Runs the zygote on the control socket `controlFD`. `parentPID` is the server's pid: if the
    /// server is already gone by the time the parent-death signal is armed, exit at once.
    public static func run(controlFD: Int32, parentPID: Int32) -> Never {
        guard fl_set_parent_death_signal(SIGKILL) == 0 else {
            ZygoteLog.write("prctl(PR_SET_PDEATHSIG): \(String(cString: strerror(errno)))")
            ZygoteLog.exit(1)
        }
        guard getppid() == parentPID else { ZygoteLog.exit(1) }
        let setup: ZygoteSetup
        do throws(SocketError) {
            let (message, stray) = try ControlIO.receive(on: controlFD)
            if let stray { SocketIO.close(stray) }
            guard message.kind == .setup, let received = message.setup else {
                ZygoteLog.write("expected a setup message, got \(message.kind)")
                ZygoteLog.exit(2)
            }
            setup = received
        } catch {
            ZygoteLog.exit(error.isClosed ? 0 : 2)
        }
        var models: [ServedModel] = []
        var report: [LoadedModel] = []
        let limits = ImageLimits(maxPixels: setup.maxImagePixels)
        for entry in setup.models {
            do {
                let model = try Model(contentsOf: URL(fileURLWithPath: entry.path))
                let image = try entry.image.map { preprocessing throws(ImageFeed.Mismatch) in
                    try ImageFeed(model: model, preprocessing: preprocessing, limits: limits)
                }
                models.append(ServedModel(model: model, image: image))
                report.append(
                    LoadedModel(
                        name: entry.name, inputs: model.inputs.map(LoadedModel.Spec.init),
                        outputs: model.outputs.map(LoadedModel.Spec.init), batchable: model.isBatchable, imageInput: image?.inputName))
            } catch {
                report.append(LoadedModel(name: entry.name, error: "\(entry.path): \(error)"))
            }
        }
        // Loading frees what it no longer needs (the file's bytes, weights replaced by packed or
        // transformed copies), but glibc keeps freed pages inside its heap resident. Hand them
        // back before the first fork, so that no worker maps them (ResNet-18's workers: RSS 100 → 66 MB).
        fl_release_free_memory()
        do {
            try ControlIO.send(ControlMessage(kind: .models, models: report), on: controlFD)
        } catch {
            ZygoteLog.exit(0)
        }
        // A model failed: the server gives up on this zygote; wait for it to close the socket.
        let forker = Forker(controlFD: controlFD, models: models, threads: setup.threads, canFork: models.count == setup.models.count)
        withExtendedLifetime(models) { forker.serve() }
    }
}

/// The zygote's request loop: fork on request, reap children, leave when the server does.
final class Forker {
    let controlFD: Int32
    /// Held for the life of the zygote: the workers' copy-on-write weights live in these.
    let models: [ServedModel]
    let threads: Int
    let canFork: Bool
    var children: Set<Int32> = []

    init(controlFD: Int32, models: [ServedModel], threads: Int, canFork: Bool) {
        self.controlFD = controlFD
        self.models = models
        self.threads = threads
        self.canFork = canFork
    }

    func serve() -> Never {
        while true {
            reap()
            do {
                // Wake every half second to reap workers that exited.
                var entry = pollfd(fd: controlFD, events: Int16(POLLIN), revents: 0)
                let ready = poll(&entry, 1, 500)
                if ready < 0 && errno != EINTR { throw SocketError.failed("poll", errno) }
                guard ready > 0 else { continue }
                let (message, stray) = try ControlIO.receive(on: controlFD)
                if let stray { SocketIO.close(stray) }
                guard message.kind == .fork else {
                    ZygoteLog.write("unexpected control message \(message.kind)")
                    continue
                }
                try forkWorker()
            } catch let error as SocketError {
                if !error.isClosed { ZygoteLog.write("control socket: \(error)") }
                stopChildren()
                ZygoteLog.exit(0)
            } catch {
                ZygoteLog.exit(2)
            }
        }
    }

    private func refuse(_ why: String) throws(SocketError) {
        ZygoteLog.write("refusing to fork: \(why)")
        try ControlIO.send(ControlMessage(kind: .refused, error: why), on: controlFD)
    }

    private func forkWorker() throws(SocketError) {
        guard canFork else { return try refuse("a model failed to load") }
        // fork() copies only the calling thread: with another thread alive, a lock it held
        // (malloc's, OpenBLAS's) would stay locked forever in the child.
        let threadCount = fl_thread_count()
        guard threadCount == 1 else {
            return try refuse("the zygote has \(threadCount) threads (/proc/self/task); forking now could deadlock the worker")
        }
        let (mine, theirs) = try SocketIO.socketPair()
        // Large inputs travel in the worker's shared region, but large outputs, and inputs past the
        // region's limit, still cross the socket in one write rather than in 208 KB turns.
        SocketIO.enlargeSendBuffers(mine, theirs, bytes: 4 << 20)
        fflush(nil)
        let pid = fl_fork()
        if pid < 0 {
            let code = errno
            SocketIO.close(mine)
            SocketIO.close(theirs)
            return try refuse("fork: \(String(cString: strerror(code)))")
        }
        if pid == 0 {
            SocketIO.close(controlFD)
            SocketIO.close(mine)
            BLAS.setThreads(threads)
            ServingMemory.reuseLargeAllocations()
            WorkerLoop(models: models, fd: theirs).run()
        }
        SocketIO.close(theirs)
        children.insert(pid)
        defer { SocketIO.close(mine) }
        try ControlIO.send(ControlMessage(kind: .worker, pid: pid), on: controlFD, attaching: mine)
    }

    /// Collects exited workers so that none stays a zombie.
    private func reap() {
        while true {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, WNOHANG)
            if pid < 0 && errno == EINTR { continue }
            guard pid > 0 else { return }
            children.remove(pid)
            if fl_wifsignaled(status) != 0 {
                ZygoteLog.write("worker \(pid) was killed by signal \(fl_wtermsig(status))")
            } else if fl_wifexited(status) != 0 && fl_wexitstatus(status) != 0 {
                ZygoteLog.write("worker \(pid) exited with status \(fl_wexitstatus(status))")
            }
        }
    }

    /// The server is gone or shutting down: its ends of the worker sockets are closed, so the
    /// workers are exiting. Give them two seconds to finish a batch, then kill the rest.
    private func stopChildren() {
        let deadline = monotonicNanoseconds() + 2_000_000_000
        while !children.isEmpty && monotonicNanoseconds() < deadline {
            reap()
            if !children.isEmpty { usleep(10_000) }
        }
        for pid in children { kill(pid, SIGKILL) }
        while !children.isEmpty {
            var status: Int32 = 0
            let pid = waitpid(-1, &status, 0)
            if pid < 0 && errno == EINTR { continue }
            if pid < 0 { return }
            children.remove(pid)
        }
    }
}

extension SocketError {
    var isClosed: Bool { if case .closed = self { true } else { false } }
}

/// The zygote's and workers' log: plain stderr lines, since swift-log's handlers may start
/// threads or take locks that a fork could leave held.
enum ZygoteLog {
    static func write(_ message: String) {
        let line = "forklift zygote[\(getpid())]: \(message)\n"
        // write(2) directly: unbuffered, so nothing is left in a stdio buffer across fork.
        _ = line.withCString { Glibc.write(2, $0, strlen($0)) }
    }

    static func exit(_ code: Int32) -> Never {
        fflush(nil)
        _exit(code)
    }
}
