#!/usr/bin/env bash
# Everything a fresh clone needs before `npm test` or `npm run demo`:
#  - system tools the tests drive (setfacl/getfacl, setfattr/getfattr, setcap/getcap, curl, and
#    Debian's chromium for the browser test of `serve`, driven by playwright-core: no browser download),
#    installed from Debian's packages when missing and we may (root, or sudo without a password);
#  - the npm dependencies, exactly as package-lock.json pins them (native parts are compiled).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v setfacl  >/dev/null 2>&1 || need+=(acl)
command -v setfattr >/dev/null 2>&1 || need+=(attr)
command -v setcap   >/dev/null 2>&1 || need+=(libcap2-bin)
command -v curl     >/dev/null 2>&1 || need+=(curl)
[ -x /usr/bin/chromium ]            || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "setup: please install the Debian packages: ${need[*]} (the metadata tests and the browser test need them)" >&2
    exit 1
  fi
fi

npm ci --no-audit --no-fund

# npm ci built the native addon (native/build.js); the tests need it.
if [ ! -f native/build/Release/lafs.node ]; then
  echo "setup: the native addon did not build (see the node-gyp output above); it needs g++, make, python3 and Node's headers" >&2
  exit 1
fi
