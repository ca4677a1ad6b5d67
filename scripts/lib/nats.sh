# shellcheck shell=bash
# ensure_nats: sets NATS_URL to a NATS server with JetStream that answers, starting one if needed.
#   1. NATS_URL already set: use it as is.
#   2. A server on 127.0.0.1:4222: use it.
#   3. Otherwise start Debian's nats-server (installing the package when it is missing) with
#      JetStream on 127.0.0.1:4222, its store in a temporary directory.
# Fails loudly if none works: the JetStream tests must run, never be skipped.

_nats_answers() { # host port
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

ensure_nats() {
  if [ -n "${NATS_URL:-}" ]; then
    return 0
  fi
  if _nats_answers 127.0.0.1 4222; then
    NATS_URL=nats://127.0.0.1:4222
    return 0
  fi
  if ! command -v nats-server >/dev/null 2>&1; then
    echo "test: installing Debian's nats-server" >&2
    if ! { DEBIAN_FRONTEND=noninteractive apt-get install -y -q nats-server >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q nats-server >/dev/null 2>&1; }; }; then
      echo "test: cannot install nats-server; the JetStream tests need it" >&2
      return 1
    fi
  fi
  local dir
  dir=$(mktemp -d "${TMPDIR:-/tmp}/billing-nats.XXXXXX")
  echo "test: starting nats-server with JetStream on 127.0.0.1:4222 (store in $dir)" >&2
  nats-server -a 127.0.0.1 -p 4222 -js -sd "$dir" >"$dir/log" 2>&1 &
  for _ in $(seq 1 50); do
    if _nats_answers 127.0.0.1 4222; then
      NATS_URL=nats://127.0.0.1:4222
      return 0
    fi
    sleep 0.2
  done
  echo "test: nats-server did not start (log: $dir/log)" >&2
  return 1
}
