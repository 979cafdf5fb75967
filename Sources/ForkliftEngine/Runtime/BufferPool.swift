import Foundation
import Synchronization

/// Recycles a session's intermediate buffers. Liveness is known at load time, so each buffer goes
/// back here right after its last reader; the next allocation takes the smallest free buffer that
/// fits. After the first run with a given input shape, runs allocate nothing.
public final class BufferPool: Sendable {
    /// Addresses are stored as integers so that the free list is Sendable.
    private struct FreeBuffer: Sendable {
        let address: UInt
        let capacity: Int

        var data: UnsafeMutableRawPointer? { UnsafeMutableRawPointer(bitPattern: address) }
    }

    // Outputs handed to callers hold storage from the pool and may be released on another thread.
    private let free = Mutex<[FreeBuffer]>([])

    private let freshAllocations = Mutex(0)

    public init() {}

    /// How many buffers the pool has allocated rather than reused.
    public var allocations: Int { freshAllocations.withLock { $0 } }

    func tensor(dtype: DType, shape: [Int], count: Int) throws(KernelError) -> Tensor {
        let bytes = count * dtype.byteSize
        let reused: FreeBuffer? = free.withLock { buffers in
            var best: Int?
            for (index, buffer) in buffers.enumerated() where buffer.capacity >= bytes {
                if best.map({ buffers[$0].capacity > buffer.capacity }) ?? true { best = index }
            }
            return best.map { buffers.remove(at: $0) }
        }
        if let reused, let data = reused.data {
            let storage = TensorStorage(data: data, capacity: reused.capacity, pool: self)
            return Tensor(dtype: dtype, shape: shape, count: count, storage: storage)
        }
        freshAllocations.withLock { $0 += 1 }
        guard let storage = TensorStorage.allocate(bytes, pool: self) else {
            throw .invalid("cannot allocate \(bytes) bytes for a \(dtype) tensor of shape \(Shape.describe(shape))")
        }
        return Tensor(dtype: dtype, shape: shape, count: count, storage: storage)
    }

    func recycle(_ data: UnsafeMutableRawPointer, capacity: Int) {
        let buffer = FreeBuffer(address: UInt(bitPattern: data), capacity: capacity)
        free.withLock { $0.append(buffer) }
    }

    /// Bytes held by free buffers, for tests of reuse.
    public var freeBytes: Int { free.withLock { $0.reduce(0) { $0 + $1.capacity } } }

    deinit {
        free.withLock { buffers in
            for buffer in buffers { Foundation.free(buffer.data) }
        }
    }
}
