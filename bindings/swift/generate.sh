#!/usr/bin/env bash
# Generates the Swift bindings (Sources/Holdfast/holdfast.swift, and the C header and
# module map the XCFramework carries) from the unstripped holdfast-ffi library, with the
# workspace's own uniffi-bindgen (the same UniFFI version as the library).
#
#   bash bindings/swift/generate.sh          # regenerate the committed files
#   bash bindings/swift/generate.sh --check  # fail if the committed files are stale (CI)
#
# Runs anywhere (no Swift toolchain needed); the library's symbols are what matter, so a
# debug build of the host's cdylib gives the same bindings as the iOS builds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"

cargo build --locked -q -p holdfast-ffi -p holdfast-uniffi-bindgen
case "$(uname -s)" in
    Darwin) library="target/debug/libholdfast_ffi.dylib" ;;
    *) library="target/debug/libholdfast_ffi.so" ;;
esac

out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
# --no-format: swift-format is not on every machine, and formatted or not the bindings must
# come out byte for byte the same everywhere.
target/debug/uniffi-bindgen generate "$library" --language swift --no-format --out-dir "$out" >/dev/null

# holdfastFFI.modulemap is the XCFramework's module.modulemap.
declare -A files=(
    ["holdfast.swift"]="Sources/Holdfast/holdfast.swift"
    ["holdfastFFI.h"]="Headers/holdfastFFI.h"
    ["holdfastFFI.modulemap"]="Headers/module.modulemap"
)
status=0
for generated in "${!files[@]}"; do
    committed="$here/${files[$generated]}"
    if [ "${1:-}" = "--check" ]; then
        if ! cmp -s "$out/$generated" "$committed"; then
            echo "stale: bindings/swift/${files[$generated]} (run bash bindings/swift/generate.sh)" >&2
            status=1
        fi
    else
        mkdir -p "$(dirname "$committed")"
        cp "$out/$generated" "$committed"
    fi
done
# The hand-written Events.swift calls these generated declarations: they must still exist.
for declaration in \
    "open func subscribe(listener: AuthEventListener) -> SubscriptionHandle" \
    "public protocol AuthEventListener: AnyObject, Sendable" \
    "func onEvent(event: AuthEvent) throws" \
    "open func cancel()"; do
    if ! grep -qF "$declaration" "$out/holdfast.swift"; then
        echo "Sources/Holdfast/Events.swift relies on \"$declaration\", which holdfast-ffi no longer generates" >&2
        status=1
    fi
done
if [ "${1:-}" = "--check" ] && [ "$status" -eq 0 ]; then
    echo "Swift bindings are current"
fi
exit "$status"
