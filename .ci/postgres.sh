#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback, for the storage tests and the soak benchmark.
#
#   eval "$(.ci/postgres.sh start)"   # prints: export SHARESEARCH_TEST_POSTGRES=... SHARESEARCH_PG_DIR=...
#   .ci/postgres.sh stop "$SHARESEARCH_PG_DIR"
#
# start: initdb into a new temporary folder (owned by the postgres user when run as root: the
# server refuses to run as root), a free port on 127.0.0.1, pg_ctl start, a database "sharesearch"
# (trust authentication: loopback only, nothing else can reach it). stop: pg_ctl stop, folder removed.
set -euo pipefail

bin_dir() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$d" ] || [ ! -x "$d/initdb" ]; then
    echo "postgres.sh: no PostgreSQL server binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)" >&2
    exit 1
  fi
  echo "$d"
}

as_pg() {  # run a command as the postgres user when we are root, else as ourselves
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

case "${1:-}" in
  start)
    BIN=$(bin_dir)
    DIR=$(mktemp -d /tmp/sharesearch-pg.XXXXXX)
    [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR"
    PORT=$(free_port)
    as_pg "$BIN/initdb" -D "$DIR/data" -U postgres -A trust --no-sync -E UTF8 >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; exit 1; }
    # loopback only; fsync off: a throwaway server whose data need not survive a power cut
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR -c fsync=off -c max_connections=200" start >/dev/null \
      || { cat "$DIR/server.log" >&2; exit 1; }
    as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres sharesearch
    echo "export SHARESEARCH_TEST_POSTGRES=postgresql://postgres@127.0.0.1:$PORT/sharesearch SHARESEARCH_PG_DIR=$DIR"
    ;;
  stop)
    DIR=${2:?usage: postgres.sh stop DIR}
    BIN=$(bin_dir)
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
    ;;
  *)
    echo "usage: $0 start | stop DIR" >&2
    exit 2
    ;;
esac
