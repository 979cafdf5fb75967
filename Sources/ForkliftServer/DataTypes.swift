import ForkliftEngine

/// The V2 protocol's tensor datatype names and Triton's model-config type names, for the dtypes
/// the engine computes with.
public enum V2DataType {
    /// "FP32", "INT64", … as the V2 protocol spells them.
    public static func name(_ dtype: DType) -> String {
        switch dtype {
        case .float32: "FP32"
        case .float64: "FP64"
        case .int64: "INT64"
        case .int32: "INT32"
        case .int8: "INT8"
        case .uint8: "UINT8"
        case .bool: "BOOL"
        }
    }

    /// The dtype of a V2 datatype name, or nil for names the engine has no dtype for
    /// (FP16, BF16, UINT16, BYTES, …).
    public static func dtype(_ name: String) -> DType? {
        switch name {
        case "FP32": .float32
        case "FP64": .float64
        case "INT64": .int64
        case "INT32": .int32
        case "INT8": .int8
        case "UINT8": .uint8
        case "BOOL": .bool
        default: nil
        }
    }

    /// Every datatype name of the V2 protocol, to tell a misspelling from an unsupported type.
    static let knownNames: Set<String> = [
        "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
        "FP16", "FP32", "FP64", "BF16", "BYTES",
    ]

    /// Triton's model-config `data_type` ("TYPE_FP32", …).
    public static func configName(_ dtype: DType) -> String { "TYPE_" + name(dtype) }
}
