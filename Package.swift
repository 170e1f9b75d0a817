// swift-tools-version:6.0
import PackageDescription

// Opt-in CPU-specific code generation for the trainer's own kernels (GELU, LayerNorm, softmax, attention):
//   FINEGRAIN_TARGET_CPU=native swift build -c release        (or x86-64-v3, x86-64-v4, ...)
// Swift has no per-function target attributes, so the default build is the portable x86-64 baseline (SSE2)
// and this is the only way to wider vectors; the binary then needs that CPU. Unset (the default), the
// package has no unsafe flags and can be depended on by version.
// FINEGRAIN_CPU_SPECIFIC tells the code it was built this way (`Attention.preferTriangle`).
let trainerCPU: [SwiftSetting] = Context.environment["FINEGRAIN_TARGET_CPU"].map {
    [.unsafeFlags(["-target-cpu", $0]), .define("FINEGRAIN_CPU_SPECIFIC")]
} ?? []

let package = Package(
    name: "FineGrain",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "FineGrain", targets: ["FineGrain"]),
        .library(name: "FineGrainTrainer", targets: ["FineGrainTrainer"]),
        .library(name: "FineGrainServer", targets: ["FineGrainServer"]),
        .executable(name: "finegrain", targets: ["finegrain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.20.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.0.0"),
        .package(url: "https://github.com/swift-extras/swift-extras-base64", from: "1.0.0"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.0.0"),
    ],
    targets: [
        // The core library: ragged batches, estimators, losses. No heavy dependencies.
        .target(
            name: "FineGrain",
            dependencies: [.product(name: "Numerics", package: "swift-numerics")]
        ),
        // OpenBLAS (Debian's libopenblas-dev) for the trainer's matmuls.
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // The embedded trainer: a tiny GPT with forward/backward pairs, AdamW, sampling, tasks, the RL loop.
        .target(name: "FineGrainTrainer", dependencies: ["FineGrain", "CBLAS"], swiftSettings: trainerCPU),
        // The HTTP service (Hummingbird 2): the registry over JSON.
        .target(name: "FineGrainServer", dependencies: [
            "FineGrain", .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "ExtrasBase64", package: "swift-extras-base64"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
        ]),
        // Golden-file conformance runner (shared by the CLI and the test suite).
        .target(name: "FineGrainConformance", dependencies: ["FineGrain"]),
        .executableTarget(
            name: "finegrain",
            dependencies: [
                "FineGrain", "FineGrainConformance", "FineGrainTrainer", "FineGrainServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Round-trip and load measurements of the service from a real HTTP client (kept out of `finegrain`
        // so the release build of the main job does not compile BoringSSL).
        .executableTarget(
            name: "finegrain-service-bench",
            dependencies: [
                "FineGrain", "FineGrainServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(name: "FineGrainTests", dependencies: ["FineGrain", "FineGrainConformance", "FineGrainTrainer"]),
        .testTarget(name: "FineGrainTrainerTests", dependencies: ["FineGrainTrainer", "FineGrain"]),
        .testTarget(name: "FineGrainServerTests", dependencies: [
            "FineGrainServer", "FineGrain",
            .product(name: "HummingbirdTesting", package: "hummingbird"),
        ]),
    ]
)
