#!/usr/bin/env bash
# Generates the Kotlin bindings of holdfast-ffi from the unstripped dev library (library
# mode reads the UniFFI metadata its symbols carry), packages them with the native library
# under JNA's resource path into target/kotlin/holdfast-kotlin.jar, compiles the tests and
# examples/kotlin/Quickstart.kt with kotlinc (npm package `kotlin-compiler`, which also
# ships the kotlinx-coroutines JVM jar the generated suspend functions need), and runs them
# on the JVM against a real holdfast-server. JNA is Debian's libjna-java.
#
# Tools land in target/kotlin-tools; compiled jars are reused while their sources (and
# the compiler) are unchanged, so a warm run mostly costs cargo, the JVM and the tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

kotlin_version="2.3.21" # npm `kotlin-compiler`; its lib/ holds kotlinx-coroutines-core-jvm 1.8.0
tools="$root/target/kotlin-tools"
out="$root/target/kotlin"
gen="$out/generated"

# JNA from Debian (CI runs as root on Debian bookworm; elsewhere it must be installed).
jna=/usr/share/java/jna.jar
if [ ! -f "$jna" ]; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -qq libjna-java >/dev/null || { apt-get update -qq && apt-get install -y -qq libjna-java >/dev/null; }
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo apt-get install -y -qq libjna-java >/dev/null
    else
        echo "error: $jna is missing: install Debian's libjna-java" >&2
        exit 1
    fi
fi

kotlin_home="$tools/node_modules/kotlin-compiler"
if [ "$(cat "$kotlin_home/build.txt" 2>/dev/null | cut -d- -f1)" != "$kotlin_version" ]; then
    mkdir -p "$tools"
    npm install --silent --no-audit --no-fund --prefix "$tools" "kotlin-compiler@$kotlin_version"
fi
kotlinc="$kotlin_home/bin/kotlinc"
coroutines="$kotlin_home/lib/kotlinx-coroutines-core-jvm.jar"
stdlib="$kotlin_home/lib/kotlin-stdlib.jar"
for needed in "$kotlinc" "$coroutines" "$stdlib"; do
    [ -e "$needed" ] || { echo "error: $needed is missing from kotlin-compiler $kotlin_version" >&2; exit 1; }
done

cargo build --locked -p holdfast-ffi -p holdfast-uniffi-bindgen
cargo build --locked -p holdfast-server-kit --bin holdfast-server

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) prefix=linux-x86-64 library=libholdfast_ffi.so ;;
    Linux-aarch64) prefix=linux-aarch64 library=libholdfast_ffi.so ;;
    Darwin-x86_64) prefix=darwin-x86-64 library=libholdfast_ffi.dylib ;;
    Darwin-arm64) prefix=darwin-aarch64 library=libholdfast_ffi.dylib ;;
    *) echo "error: no JNA resource prefix known for $(uname -s)-$(uname -m)" >&2; exit 1 ;;
esac
unstripped="$root/target/debug/$library"

rm -rf "$gen"
mkdir -p "$out"
"$root/target/debug/uniffi-bindgen" generate "$unstripped" --language kotlin --no-format \
    --config bindings/kotlin/uniffi.toml --out-dir "$gen"

# kotlinc takes ~30 s on the 5,000 generated lines: skip it when nothing it reads changed.
compile() { # compile NAME CLASSPATH SOURCES...
    local name="$1" classpath="$2"
    shift 2
    local stamp
    stamp="$( (echo "$kotlin_version $classpath"; cat "$@"; for jar in ${classpath//:/ }; do cksum <"$jar"; done) | sha256sum | cut -d' ' -f1)"
    if [ -f "$out/$name.jar" ] && [ "$(cat "$out/$name.stamp" 2>/dev/null)" = "$stamp" ]; then
        return
    fi
    rm -f "$out/$name.jar" "$out/$name.stamp"
    "$kotlinc" -J-Xmx1g -nowarn -jvm-target 17 -cp "$classpath" -d "$out/$name.jar" "$@"
    echo "$stamp" >"$out/$name.stamp"
}

compile holdfast-classes "$jna:$coroutines" "$gen/dev/holdfast/holdfast.kt" bindings/kotlin/src/Flows.kt

# The bindings jar: classes plus the native library where JNA looks on the classpath
# (debug info stripped from the copy; the bindings were generated from the original).
native="$out/native"
rm -rf "$native" && mkdir -p "$native/$prefix"
if command -v objcopy >/dev/null; then
    objcopy --strip-debug "$unstripped" "$native/$prefix/$library"
else
    cp "$unstripped" "$native/$prefix/$library"
fi
cp "$out/holdfast-classes.jar" "$out/holdfast-kotlin.jar"
jar uf "$out/holdfast-kotlin.jar" -C "$native" "$prefix/$library"

# One kotlinc run for both (each run starts a JVM of its own: ~10 s).
compile holdfast-tests "$out/holdfast-classes.jar:$jna:$coroutines" \
    bindings/kotlin/tests/HoldfastTests.kt bindings/kotlin/tests/MfaTests.kt examples/kotlin/Quickstart.kt

# No -Djna.library.path and no LD_LIBRARY_PATH: JNA must find the library in the jar.
classpath="$out/holdfast-kotlin.jar:$jna:$coroutines:$stdlib"
export HOLDFAST_SERVER_BIN="$root/target/debug/holdfast-server"
env -u LD_LIBRARY_PATH java -cp "$classpath:$out/holdfast-tests.jar" dev.holdfast.tests.HoldfastTestsKt

# The quickstart, against a server of its own.
server_dir="$(mktemp -d)"
server_out="$server_dir/stdout"
HOLDFAST_SECRET="quickstart-secret-of-at-least-thirty-two-characters" RUST_LOG=warn \
    "$HOLDFAST_SERVER_BIN" --listen 127.0.0.1:0 --database "sqlite:$server_dir/server.db" >"$server_out" &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -rf "$server_dir"' EXIT
for _ in $(seq 100); do
    grep -q '^listening on ' "$server_out" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || { echo "error: holdfast-server did not start" >&2; exit 1; }
    sleep 0.1
done
url="$(sed -n 's/^listening on //p' "$server_out" | head -n1)"
[ -n "$url" ] || { echo "error: holdfast-server did not say where it listens" >&2; exit 1; }
mkdir -p "$server_dir/client"
env -u LD_LIBRARY_PATH java -cp "$classpath:$out/holdfast-tests.jar" dev.holdfast.examples.QuickstartKt "$url" "$server_dir/client"
