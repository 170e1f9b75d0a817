// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "FineGrain",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "FineGrain", targets: ["FineGrain"]),
        .executable(name: "finegrain", targets: ["finegrain"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.0.0"),
    ],
    targets: [
        // The core library: ragged batches, estimators, losses. No heavy dependencies.
        .target(
            name: "FineGrain",
            dependencies: [.product(name: "Numerics", package: "swift-numerics")]
        ),
        // Golden-file conformance runner (shared by the CLI and the test suite).
        .target(name: "FineGrainConformance", dependencies: ["FineGrain"]),
        .executableTarget(
            name: "finegrain",
            dependencies: [
                "FineGrain", "FineGrainConformance",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(name: "FineGrainTests", dependencies: ["FineGrain", "FineGrainConformance"]),
    ]
)
