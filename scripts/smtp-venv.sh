#!/usr/bin/env bash
# Makes (once) a Python virtual environment with aiosmtpd, the SMTP server the mail tests
# send to (holdfast_testing::SmtpSink), and prints its interpreter on stdout:
#
#     HOLDFAST_TEST_SMTP_PYTHON=$(scripts/smtp-venv.sh) cargo test -p holdfast-server-kit --test smtp
#
# The venv is target/smtp-venv (under $CARGO_TARGET_DIR when that is set). PYTHON chooses
# the interpreter it is made from (default python3). Everything else goes to stderr.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

aiosmtpd_version="1.4.6"
target="${CARGO_TARGET_DIR:-$root/target}"
case "$target" in
    /*) ;;
    *) target="$root/$target" ;;
esac
venv="$target/smtp-venv"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$target"
    "$python" -m venv "$venv" >&2
fi
installed="$("$venv/bin/python" -c 'import aiosmtpd; print(aiosmtpd.__version__)' 2>/dev/null || true)"
if [ "$installed" != "$aiosmtpd_version" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "aiosmtpd==$aiosmtpd_version" >&2
fi
echo "$venv/bin/python"
