#!/usr/bin/env bash
# Builds the `holdfast` wheel (manylinux2014 on Linux; dev profile: the tests need no optimized build, and
# password hashing is optimized in dev builds anyway), installs it into a venv under
# target/, type-checks examples/python with `mypy --strict` against the package's stubs,
# and runs the pytest suite against a real holdfast-server.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

venv="$root/target/py-venv"
wheels="$root/target/py-wheels"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet "maturin>=1.9,<2.0" "pytest>=8" "cryptography>=42" "mypy>=1.10" "ziglang>=0.13" "pyotp==2.9.0"

cargo build --locked -p holdfast-server-kit --bin holdfast-server

rm -rf "$wheels"
# On Linux the wheel links against glibc 2.17 (manylinux2014), so it installs on older
# distributions too: zig (the `ziglang` package, found by maturin on PATH) is the linker.
build=(--profile dev --out "$wheels")
if [ "$(uname -s)" = Linux ]; then
    build+=(--zig --compatibility manylinux2014)
fi
(cd bindings/python && PATH="$venv/bin:$PATH" "$venv/bin/maturin" build "${build[@]}")
if [ "$(uname -s)" = Linux ]; then
    wheel="$(basename "$wheels"/holdfast-*.whl)"
    case "$wheel" in
        *manylinux2014_*|*manylinux_2_17_*) echo "wheel: $wheel" ;;
        *) echo "error: $wheel is not a manylinux2014 wheel" >&2; exit 1 ;;
    esac
fi
"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps "$wheels"/holdfast-*.whl

# The package's stubs (holdfast/__init__.pyi, py.typed) type the examples strictly.
"$venv/bin/mypy" --strict --no-incremental examples/python

export HOLDFAST_SERVER_BIN="$root/target/debug/holdfast-server"
cd bindings/python
"$venv/bin/python" -m pytest -q "$@"
