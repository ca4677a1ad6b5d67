# shellcheck shell=bash
# ensure_postgres: sets DATABASE_URL to a PostgreSQL server that answers, starting one if needed.
#   1. DATABASE_URL already set: use it as is.
#   2. A server on 127.0.0.1:5432 that accepts user postgres: use it.
#   3. The distribution's cluster is installed but down: start it with pg_ctlcluster.
#   4. initdb is installed: a throwaway cluster in a temporary directory on a free port, run as a
#      non-root user when started as root; it is stopped and removed when the shell exits.
# Fails loudly if none works: the Postgres tests must run, never be skipped.

_pg_bin() {
  local name=$1 found
  found=$(command -v "$name" 2>/dev/null || true)
  if [ -z "$found" ]; then
    found=$(ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1 || true)
  fi
  printf '%s' "$found"
}

_pg_answers() { # url
  local psql
  psql=$(_pg_bin psql)
  [ -n "$psql" ] && "$psql" "$1" -Atqc 'select 1' >/dev/null 2>&1
}

ensure_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    return 0
  fi
  local local_url="postgres://postgres@127.0.0.1:5432/postgres"
  if _pg_answers "$local_url"; then
    DATABASE_URL=$local_url
    return 0
  fi
  if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    if [ -n "$version" ] && [ -d "/etc/postgresql/$version/main" ]; then
      echo "test: starting the local PostgreSQL $version cluster" >&2
      pg_ctlcluster --skip-systemctl-redirect "$version" main start >/dev/null 2>&1 || true
      for _ in $(seq 1 30); do
        if _pg_answers "$local_url"; then
          DATABASE_URL=$local_url
          return 0
        fi
        sleep 1
      done
    fi
  fi
  start_throwaway_postgres
}

# start_throwaway_postgres: a fresh cluster in a temporary directory on a free port; sets
# DATABASE_URL, PG_THROWAWAY_DIR and PG_CTL_STOP (a command that stops it); removed at exit.
start_throwaway_postgres() {
  local initdb pg_ctl
  initdb=$(_pg_bin initdb)
  pg_ctl=$(_pg_bin pg_ctl)
  if [ -z "$initdb" ] || [ -z "$pg_ctl" ]; then
    echo "test: no PostgreSQL available: set DATABASE_URL, or install PostgreSQL (initdb)" >&2
    return 1
  fi
  local dir port runas=()
  dir=$(mktemp -d "${TMPDIR:-/tmp}/billing-pg.XXXXXX")
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 55432)
  if [ "$(id -u)" = 0 ]; then
    local user=postgres
    id "$user" >/dev/null 2>&1 || user=nobody
    chown "$user" "$dir"
    runas=(runuser -u "$user" --)
  fi
  echo "test: starting a throwaway PostgreSQL cluster in $dir on port $port" >&2
  "${runas[@]}" "$initdb" -D "$dir/data" -U postgres -A trust >/dev/null
  "${runas[@]}" "$pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
  # shellcheck disable=SC2064
  trap "${runas[*]} '$pg_ctl' -D '$dir/data' -m fast stop >/dev/null 2>&1; rm -rf '$dir'" EXIT
  DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
  PG_THROWAWAY_DIR=$dir
  PG_CTL=("${runas[@]}" "$pg_ctl" -D "$dir/data")
  _pg_answers "$DATABASE_URL" || { echo "test: the throwaway cluster does not answer" >&2; return 1; }
}

# crash_throwaway_postgres: kills the throwaway cluster of start_throwaway_postgres the hard way
# (`pg_ctl stop -m immediate`: no checkpoint, crash recovery on the next start).
crash_throwaway_postgres() {
  "${PG_CTL[@]}" -m immediate stop >/dev/null
}

# restart_throwaway_postgres: starts the throwaway cluster of start_throwaway_postgres again (after
# a crash or a stop) on the same port with the same options, and waits until it answers.
restart_throwaway_postgres() {
  local dir=$PG_THROWAWAY_DIR port=${DATABASE_URL##*:}
  port=${port%%/*}
  "${PG_CTL[@]}" -l "$dir/log" -w -t 120 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
  _pg_answers "$DATABASE_URL" || { echo "test: the restarted cluster does not answer" >&2; return 1; }
}
