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
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        .target(name: "CForkliftSys"),
        // Optimized in debug builds too: the test suite runs whole ResNets through these
        // kernels, and unoptimized intrinsics code is an order of magnitude slower.
        .target(name: "CForkliftKernels", cSettings: [.unsafeFlags(["-O2"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .target(
            name: "ForkliftEngine",
            dependencies: [
                "COpenBLAS",
                "CForkliftKernels",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            swiftSettings: engineSwiftSettings
        ),
        .target(name: "CJPEG", linkerSettings: [.linkedLibrary("jpeg")]),
        .target(name: "ForkliftImage", dependencies: ["CJPEG", "ForkliftEngine"], swiftSettings: engineSwiftSettings),
        .target(
            name: "ForkliftBench",
            dependencies: [
                "ForkliftEngine",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .target(
            name: "ForkliftPool",
            dependencies: [
                "ForkliftEngine",
                "ForkliftImage",
                "CForkliftSys",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "ForkliftServer",
            dependencies: [
                "ForkliftPool",
                "ForkliftEngine",
                "ForkliftImage",
                "CZlib",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(
            name: "forklift",
            dependencies: [
                "ForkliftEngine",
                "ForkliftPool",
                "ForkliftServer",
                "ForkliftImage",
                "ForkliftBench",
                "COpenBLAS",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Helpers that several test targets share; only tests depend on it.
        .target(name: "ForkliftTestSupport", path: "Tests/ForkliftTestSupport"),
        .testTarget(
            name: "ForkliftEngineTests",
            dependencies: [
                "ForkliftEngine", "ForkliftTestSupport",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .testTarget(
            name: "ForkliftImageTests", dependencies: ["ForkliftImage", "CJPEG", "ForkliftEngine", "forklift", "ForkliftTestSupport"]),
        .testTarget(
            name: "ForkliftBenchTests",
            dependencies: [
                "ForkliftBench", "forklift",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "ForkliftPoolTests",
            dependencies: ["ForkliftPool", "ForkliftEngine", "forklift"]
        ),
        .testTarget(
            name: "ForkliftServerTests",
            dependencies: [
                "ForkliftServer", "ForkliftPool", "ForkliftEngine", "forklift", "ForkliftTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ]
)
