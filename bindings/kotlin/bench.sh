#!/usr/bin/env bash
# The accessToken() figure from Kotlin (docs/PERFORMANCE.md), with the release library an
# app ships: builds the `mobile` profile's cdylib and points JNA at it, so the jar's debug
# library is not the one measured. Run bindings/kotlin/run_tests.sh first (it builds the
# jars and the kotlin compiler); this compiles only the benchmark.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

out="$root/target/kotlin"
kotlin_home="$root/target/kotlin-tools/node_modules/kotlin-compiler"
jna=/usr/share/java/jna.jar
coroutines="$kotlin_home/lib/kotlinx-coroutines-core-jvm.jar"
stdlib="$kotlin_home/lib/kotlin-stdlib.jar"
for needed in "$out/holdfast-kotlin.jar" "$out/holdfast-tests.jar" "$kotlin_home/bin/kotlinc" "$jna"; do
    [ -e "$needed" ] || { echo "error: $needed is missing: run bindings/kotlin/run_tests.sh first" >&2; exit 1; }
done

cargo rustc --locked --profile mobile -p holdfast-ffi --crate-type cdylib
cargo build --locked --release -p holdfast-server-kit --bin holdfast-server

classpath="$out/holdfast-kotlin.jar:$out/holdfast-tests.jar:$jna:$coroutines:$stdlib"
"$kotlin_home/bin/kotlinc" -J-Xmx1g -nowarn -jvm-target 17 -cp "$classpath" \
    -d "$out/holdfast-bench.jar" bindings/kotlin/bench/AccessTokenBench.kt

export HOLDFAST_SERVER_BIN="$root/target/release/holdfast-server"
env -u LD_LIBRARY_PATH java -Djna.library.path="$root/target/mobile" \
    -cp "$classpath:$out/holdfast-bench.jar" dev.holdfast.bench.AccessTokenBenchKt
