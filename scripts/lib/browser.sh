# Helpers for scripts/browser-test: Debian's Chromium and the npm packages of tests/browser.
# Each function installs what is missing, or fails with a message saying what to do.

# Runs "$@" as root: directly when root, else through sudo when it is there.
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "browser-test: need root (or sudo) to run: $*" >&2
    return 1
  fi
}

# Debian's chromium at /usr/bin/chromium (never a browser downloaded by a test tool).
ensure_chromium() {
  CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
  if [ ! -x "$CHROMIUM" ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
      echo "browser-test: $CHROMIUM is missing and there is no apt-get to install Debian's chromium" >&2
      return 1
    fi
    echo "browser-test: installing Debian's chromium" >&2
    # The package lists may be missing or old on a fresh machine: update when chromium has no candidate.
    local log
    log=$(mktemp)
    if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
      if ! as_root apt-get update >"$log" 2>&1; then
        tail -n 20 "$log" >&2
        echo "browser-test: apt-get update failed" >&2
        rm -f "$log"
        return 1
      fi
    fi
    # fonts-liberation: readable text in the screenshots without the rest of the recommends.
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      chromium fonts-liberation >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      echo "browser-test: apt-get install chromium failed (see above)" >&2
      rm -f "$log"
      return 1
    fi
    rm -f "$log"
  fi
  if ! "$CHROMIUM" --version >/dev/null 2>&1; then
    echo "browser-test: $CHROMIUM does not run ($CHROMIUM --version failed)" >&2
    return 1
  fi
  export CHROMIUM
}

# node (>= 20, for node --test) and tests/browser/node_modules installed from the lock file
# (npm ci) when missing or older than package-lock.json.
ensure_node_modules() {
  local dir=$1
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "browser-test: node and npm are needed (Node.js 20 or later); install them first" >&2
    return 1
  fi
  local major
  major=$(node -p 'process.versions.node.split(".")[0]')
  if [ "$major" -lt 20 ]; then
    echo "browser-test: Node.js $(node --version) is too old; 20 or later is needed" >&2
    return 1
  fi
  local stamp="$dir/node_modules/.browser-test-lock"
  local want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -d "$dir/node_modules/playwright-core" ]; then
    echo "browser-test: npm ci in ${dir}" >&2
    # PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: playwright-core downloads nothing, but say so anyway.
    if ! (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2); then
      echo "browser-test: npm ci failed in $dir" >&2
      return 1
    fi
    echo "$want" >"$stamp"
  fi
}
