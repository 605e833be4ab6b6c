#!/usr/bin/env bash
# Builds HoldfastFFI.xcframework (static libraries for iOS devices, the iOS simulator and
# macOS, with the C header and module map) on macOS with Xcode and rustup. The Swift
# package in this folder links it.
#
#   bash bindings/swift/build-xcframework.sh
#
# Each library is built with `cargo rustc --crate-type staticlib`: holdfast-ffi's
# Cargo.toml lists `lib` and `cdylib`, and Cargo ignores LTO when `lib` is among the crate
# types, so release artifacts are built one crate type at a time. Debug symbols are
# stripped after building (bindings are generated from the unstripped library by
# generate.sh, never from these).
set -euo pipefail
if [ "$(uname -s)" != "Darwin" ]; then
    echo "error: building an XCFramework needs macOS with Xcode (xcodebuild, lipo)" >&2
    exit 1
fi
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

bash "$here/generate.sh" --check

targets=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios aarch64-apple-darwin x86_64-apple-darwin)
rustup target add "${targets[@]}"
for target in "${targets[@]}"; do
    cargo rustc --locked --release -p holdfast-ffi --target "$target" --crate-type staticlib \
        -- -C lto=fat -C codegen-units=1 -C strip=debuginfo
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
lib=libholdfast_ffi.a
mkdir -p "$work/ios" "$work/ios-sim" "$work/macos" "$work/headers"
cp "target/aarch64-apple-ios/release/$lib" "$work/ios/$lib"
lipo -create "target/aarch64-apple-ios-sim/release/$lib" "target/x86_64-apple-ios/release/$lib" \
    -output "$work/ios-sim/$lib"
lipo -create "target/aarch64-apple-darwin/release/$lib" "target/x86_64-apple-darwin/release/$lib" \
    -output "$work/macos/$lib"
cp "$here/Headers/holdfastFFI.h" "$here/Headers/module.modulemap" "$work/headers/"

rm -rf "$here/HoldfastFFI.xcframework"
xcodebuild -create-xcframework \
    -library "$work/ios/$lib" -headers "$work/headers" \
    -library "$work/ios-sim/$lib" -headers "$work/headers" \
    -library "$work/macos/$lib" -headers "$work/headers" \
    -output "$here/HoldfastFFI.xcframework"
echo "built bindings/swift/HoldfastFFI.xcframework"
