import ArgumentParser
import ForkliftPool

/// `forklift zygote`: started by `forklift serve` through posix_spawn, never by hand. It loads
/// the models named on its control socket and forks workers on request (see ForkliftPool).
struct Zygote: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zygote",
        abstract: "Internal: the model-preloading process that forks workers for `forklift serve`.",
        shouldDisplay: false
    )

    @Option(help: "The control socket's file descriptor.")
    var controlFd: Int32 = 3

    @Option(help: "The server's pid: exit if it is already gone.")
    var parentPid: Int32

    func run() throws {
        ZygoteProcess.run(controlFD: controlFd, parentPID: parentPid)
    }
}
