#!/usr/bin/env bash
# Builds the `holdfast` wheel (dev profile: the tests need no optimized build, and
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
"$venv/bin/python" -m pip install --quiet "maturin>=1.9,<2.0" "pytest>=8" "cryptography>=42" "mypy>=1.10"

cargo build --locked -p holdfast-server-kit --bin holdfast-server

rm -rf "$wheels"
(cd bindings/python && "$venv/bin/maturin" build --profile dev --out "$wheels")
"$venv/bin/python" -m pip install --quiet --force-reinstall --no-deps "$wheels"/holdfast-*.whl

# The package's stubs (holdfast/__init__.pyi, py.typed) type the examples strictly.
"$venv/bin/mypy" --strict --no-incremental examples/python

export HOLDFAST_SERVER_BIN="$root/target/debug/holdfast-server"
cd bindings/python
"$venv/bin/python" -m pytest -q "$@"
