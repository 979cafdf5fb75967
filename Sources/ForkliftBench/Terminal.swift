import Dispatch
import Foundation
@preconcurrency import Glibc
import NIOCore
import NIOPosix

/// One event-loop thread for the one-off requests made before the load starts.
public final class MultiThreadedProbe: Sendable {
    public let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    public init() {}
    public func shutdown() { try? group.syncShutdownGracefully() }
}

/// The live progress line on stderr: rewritten in place on a terminal, plain lines every few
/// seconds otherwise (logs and pipes get no carriage returns).
public final class ProgressLine {
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private var lastPlain = -1.0
    private var shown = false

    public init() {}

    public func show(_ snapshot: ProgressSnapshot) {
        let text = String(
            format: "%@ %@ %5.1f s  %@ req/s now  %d ok  %d errors", snapshot.step, snapshot.phase, snapshot.elapsed,
            BenchReport.grouped(snapshot.currentRate), snapshot.succeeded, snapshot.failed)
        if isTerminal {
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + text).utf8))
            shown = true
        } else if snapshot.elapsed - lastPlain >= 5 || lastPlain < 0 || snapshot.elapsed < lastPlain {
            FileHandle.standardError.write(Data((text + "\n").utf8))
            lastPlain = snapshot.elapsed
        }
    }

    /// Clears the line before a table row is printed.
    public func clear() {
        if isTerminal && shown { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        shown = false
        lastPlain = -1
    }
}

/// Turns SIGINT (Ctrl-C) into an `Interruption` request instead of killing the process, so that
/// the steps done so far are still printed. A second Ctrl-C ends the process at once.
public final class InterruptWatcher: @unchecked Sendable {
    private let source: any DispatchSourceSignal

    public init(_ interruption: Interruption) {
        signal(SIGINT, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
        source.setEventHandler {
            if interruption.isRequested { _exit(130) }
            interruption.request()
        }
        source.resume()
    }

    public func stop() {
        source.cancel()
        signal(SIGINT, SIG_DFL)
    }
}
