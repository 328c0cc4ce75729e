#!/bin/sh
# Installs, on Debian 12 as root, the packages mwl needs that are missing.
# Idempotent: packages already installed are not touched, and nothing runs
# apt-get when nothing is missing.
#   scripts/deps.sh          build and run dependencies
#   scripts/deps.sh --test   also what the test suite needs (DCMTK peers, jq, curl, clang,
#                            the openssl command for the TLS tests' certificates,
#                            Node.js and npm for the Node.js peers, Chromium and a
#                            font for the web page's browser test)
#   scripts/deps.sh --bench  the test suite's packages and what bench/ adds (wrk)
set -eu

pkgs="build-essential cmake pkg-config python3 zlib1g-dev libsqlite3-dev libssl-dev libjansson-dev libmicrohttpd-dev libgnutls28-dev"
if [ "${1:-}" = "--test" ] || [ "${1:-}" = "--bench" ]; then
  pkgs="$pkgs dcmtk jq curl openssl clang libclang-rt-14-dev clang-format groff-base"
  # Debian's Chromium, which web_ui.py drives headless through playwright-core
  # (npm): Playwright's own browser download would need the network at test time.
  # Its font is only a recommendation, which --no-install-recommends skips;
  # the IPA Gothic font draws the test's Japanese name in the screenshot
  # (3.5 MB, against 56 MB for Noto CJK).
  pkgs="$pkgs chromium fonts-liberation fonts-ipafont-gothic"
  # Debian's nodejs and npm, unless a Node.js with its npm is already there
  # (NodeSource's nodejs package brings npm and conflicts with Debian's).
  command -v node >/dev/null 2>&1 || pkgs="$pkgs nodejs"
  command -v npm >/dev/null 2>&1 || pkgs="$pkgs npm"
fi
# The HTTP load tool of bench/rest_bench.sh.
if [ "${1:-}" = "--bench" ]; then
  pkgs="$pkgs wrk"
fi

missing=""
for p in $pkgs; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

echo "deps: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "deps: not root and no sudo; install these packages:$missing" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
