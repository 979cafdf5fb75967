import ForkliftEngine
import Foundation
import Glibc

/// A worker process: reads one batch frame at a time, runs it and replies. It has one thread
/// (plus BLAS threads when asked) and exits when its socket closes, i.e. when the server closed
/// it or died.
struct WorkerLoop {
    let models: [ServedModel]
    let fd: Int32

    func run() -> Never {
        var runners: [Int: BatchRunner] = [:]
        // Where the server puts large tensors; replaced when it sends a bigger one. Batch items
        // point into it only until the batch is answered, before the next frame is read.
        var region: SharedRegion?
        while true {
            let frame: Frame
            do throws(SocketError) {
                // Items are stacked into the batch with raw copies, so they can share the payload.
                frame = try FrameIO.read(from: fd, sharingPayload: true, region: region, receivingFDs: true)
                if frame.kind == .region {
                    guard let attached = frame.attachedFD else { throw .badFrame(FrameError("region frame without its fd")) }
                    region = nil
                    region = try SharedRegion.attach(attached, size: frame.regionSize)
                    continue
                }
            } catch .closed {
                ZygoteLog.exit(0)
            } catch {
                ZygoteLog.write("worker: dropping the connection: \(error)")
                ZygoteLog.exit(2)
            }
            let index = Int(frame.model)
            guard frame.kind == .batch, index < models.count, frame.attachedFD == nil else {
                ZygoteLog.write("worker: unexpected frame (kind \(frame.kind), model \(frame.model)); exiting")
                ZygoteLog.exit(2)
            }
            // One runner (session and image pipeline) per model, made on first use so that unused
            // models cost no buffers.
            let runner = runners[index] ?? BatchRunner(served: models[index])
            runners[index] = runner
            let reply = runner.run(frame)
            do {
                try FrameIO.write(reply, to: fd)
            } catch {
                ZygoteLog.exit(0)  // the server is gone
            }
            if frame.pollMicroseconds > 0 {
                // Readable or hung up: either way the next read has something to say.
                BusyPoll.spin(for: UInt64(frame.pollMicroseconds) * 1000) { SocketIO.hasEvent(fd) }
            }
        }
    }
}
