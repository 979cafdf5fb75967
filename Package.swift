// swift-tools-version:6.1
import PackageDescription

// AVX2/FMA code generation for the engine's own loops (pooling, im2col, epilogues, elementwise).
#if arch(x86_64)
let engineSwiftSettings: [SwiftSetting] = [.unsafeFlags(["-target-cpu", "haswell"])]
#else
let engineSwiftSettings: [SwiftSetting] = []
#endif

let package = Package(
    name: "Forklift",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "forklift", targets: ["forklift"]),
        .library(name: "ForkliftEngine", targets: ["ForkliftEngine"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .target(
            name: "ForkliftEngine",
            dependencies: [
                "COpenBLAS",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: engineSwiftSettings
        ),
        .executableTarget(
            name: "forklift",
            dependencies: [
                "ForkliftEngine",
                "COpenBLAS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "ForkliftEngineTests",
            dependencies: [
                "ForkliftEngine",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
    ]
)
