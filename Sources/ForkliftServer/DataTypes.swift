import ForkliftEngine

/// The V2 protocol's tensor datatype names and Triton's model-config type names, for the dtypes
/// the engine computes with.
public enum V2DataType {
    /// "FP32", "INT64", … as the V2 protocol spells them.
    public static func name(_ dtype: DType) -> String { dtype.v2Name }

    /// The dtype of a V2 datatype name, or nil for names the engine has no dtype for
    /// (FP16, BF16, UINT16, BYTES, …).
    public static func dtype(_ name: String) -> DType? { DType.allCases.first { $0.v2Name == name } }

    /// Every datatype name of the V2 protocol, to tell a misspelling from an unsupported type.
    static let knownNames: Set<String> = [
        "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
        "FP16", "FP32", "FP64", "BF16", "BYTES",
    ]

    /// Triton's model-config `data_type` ("TYPE_FP32", …).
    public static func configName(_ dtype: DType) -> String { "TYPE_" + name(dtype) }
}
