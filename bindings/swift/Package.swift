// swift-tools-version:5.9
// The Holdfast client for Swift: the generated UniFFI bindings (Sources/Holdfast) over
// HoldfastFFI.xcframework, which build-xcframework.sh builds from holdfast-ffi on macOS.
import PackageDescription

let package = Package(
    name: "Holdfast",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Holdfast", targets: ["Holdfast"]),
    ],
    targets: [
        .binaryTarget(name: "holdfastFFI", path: "HoldfastFFI.xcframework"),
        .target(
            name: "Holdfast",
            dependencies: ["holdfastFFI"],
            path: "Sources/Holdfast"
        ),
    ]
)
