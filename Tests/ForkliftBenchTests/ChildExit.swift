import Foundation
@preconcurrency import Glibc

/// Waits for a child `Process` without trusting Foundation alone to notice its exit: on Linux,
/// `waitUntilExit()` was seen to hang forever beside a zombie child when many tests spawn and
/// reap processes at once. This polls the child's state and reaps a zombie itself.
enum ChildExit {
    /// The exit status (or 128 + signal), or nil if the child outlived `seconds` (it is then killed).
    @discardableResult
    static func wait(_ process: Process, seconds: Double = 120) -> Int32? {
        let pid = process.processIdentifier
        let deadline = Date().addingTimeInterval(seconds)
        var zombieSince: Date?
        while Date() < deadline {
            if !process.isRunning { return process.terminationStatus }
            if isZombie(pid) {
                // Foundation reaps its children within milliseconds; only a zombie it has left
                // alone for seconds is reaped here, so the two never race in the normal case.
                let since = zombieSince ?? Date()
                zombieSince = since
                var status: Int32 = 0
                if Date().timeIntervalSince(since) > 2, waitpid(pid, &status, WNOHANG) == pid { return decode(status) }
            }
            usleep(10_000)
        }
        kill(pid, SIGKILL)
        return nil
    }

    private static func isZombie(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).hasPrefix("Z")
    }

    private static func decode(_ status: Int32) -> Int32 {
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }
}
