/// A tensor's dtype and concrete shape, the unit of shape inference.
public struct TensorType: Sendable, Equatable, CustomStringConvertible {
    public var dtype: DType
    public var shape: [Int]

    public init(_ dtype: DType, _ shape: [Int]) {
        self.dtype = dtype
        self.shape = shape
    }

    /// The placeholder for an optional input that the node leaves out.
    public static let absent = TensorType(.float32, [-1])
    public var isAbsent: Bool { shape == [-1] }

    public var description: String { "\(dtype)\(Shape.describe(shape))" }
}

extension Tensor {
    /// The placeholder that kernels receive for an optional input that the node leaves out.
    public static let absent = Tensor(dtype: .float32, shape: [-1], count: 0, storage: TensorStorage.allocateOrDie(0))
    public var isAbsent: Bool { shape == [-1] }
    public var type: TensorType { TensorType(dtype, shape) }
}

/// An operator prepared for one node: attributes resolved and constant weights packed at load.
/// Kernels are immutable, so every session (and every forked worker) shares them.
public protocol Kernel: Sendable {
    /// Output types for the given input types. `values` holds the data of inputs whose value is
    /// known: all of them at run time, only constants at load time. A kernel whose output shape
    /// depends on an unknown value throws `KernelError.shapeNeedsValue`.
    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType]

    /// Computes into preallocated outputs of the types that `outputTypes` gave.
    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError)

    /// True when output 0 is input 0 under a new shape (Reshape, Flatten, Squeeze, Identity…):
    /// the session then shares the storage and does not call `run`.
    var aliasesInput: Bool { get }

    /// Inputs whose constant value the kernel copied into its own packed form at load and never
    /// reads again: the model then keeps only their shape, not a second copy of the weights.
    var absorbedInputs: [Int] { get }

    /// Output values that follow from the input types alone (Shape), or nil.
    func valuesFromTypes(_ inputs: [TensorType]) -> [Tensor]?

    /// Floating-point operations for one run with these input types, for `inspect` and `profile`.
    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int
}

extension Kernel {
    public var aliasesInput: Bool { false }
    public var absorbedInputs: [Int] { [] }
    public func valuesFromTypes(_ inputs: [TensorType]) -> [Tensor]? { nil }
    public func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int { outputs.reduce(0) { $0 + ($1.shape.reduce(1, *)) } }
}

/// Builds the kernel for one node.
typealias KernelFactory = @Sendable (NodeContext) throws(KernelError) -> any Kernel
