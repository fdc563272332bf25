#!/usr/bin/env bash
# Installs what dpsd needs to build and test, and only what is missing:
# Debian packages (apt-get when run as root, otherwise the exact command to
# run is printed) and the npm packages of tests/package.json.
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
      libssl-dev openssl libevent-dev libjansson-dev libsqlite3-dev sqlite3 libpq-dev
      libhttp-parser-dev libwslay-dev libcmocka-dev
      postgresql python3 nodejs npm chromium curl ca-certificates)

missing=()
for p in "${debs[@]}"; do
    # nodejs/npm may come from elsewhere than Debian; a working binary is enough.
    case "$p" in
    nodejs) command -v node >/dev/null && continue ;;
    npm) command -v npm >/dev/null && continue ;;
    esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "deps: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
    else
        echo "deps: missing Debian packages; run as root:" >&2
        echo "  apt-get update && apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
fi

# npm packages for the interop and browser tests, pinned by tests/package-lock.json.
if [ ! -f tests/node_modules/.package-lock.json ] ||
    ! cmp -s tests/package-lock.json tests/node_modules/.dps-installed-lock; then
    echo "deps: installing npm packages for tests/"
    (cd tests && npm ci --no-audit --no-fund --loglevel=error)
    cp tests/package-lock.json tests/node_modules/.dps-installed-lock
fi
