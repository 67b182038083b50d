#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests, on a free loopback port.
#
#   pg-server.sh start DIR [BINDIR]     initdb + start; prints the port, writes DIR/port
#   pg-server.sh stop DIR [fast|immediate]
#   pg-server.sh restart DIR
#   pg-server.sh start-again DIR        after stop: same port, same data
#   pg-server.sh destroy DIR            stop (immediate) and remove DIR
#   pg-server.sh clone DIR PRIMARY_DIR  copy a primary's files for a standby
#                                       (between pg_backup_start and _stop)
#   pg-server.sh standby DIR PRIMARY_PORT SLOT
#                                       start the clone as a streaming standby
#   pg-server.sh promote DIR
#
# BINDIR defaults to $OUTBOX_PG_BINDIR, then /usr/lib/postgresql/15/bin.
# PG_EXTRA_CONF: lines appended to postgresql.conf.
# PG_EXTRA_HBA: pg_hba.conf lines placed before the harness's trust lines
#   (the first matching line decides).
# PG_SSL_CERT, PG_SSL_KEY: a server certificate and its key; copied into DIR,
#   owned by the server user with mode 0600 (PostgreSQL refuses a key others
#   can read), and served with ssl = on.
# HARNESS_OWNER_PID: destroy the cluster once this process is gone, so a test
# binary killed by a timeout leaves no server behind.
#
# Layout: DIR/data (PGDATA), DIR/server.log, DIR/port, DIR/bindir; DIR is also
# the Unix socket directory.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
# shellcheck source=tests/harness/lib.sh
. "$HERE/lib.sh"
START_ATTEMPTS=5

die() {
  echo "pg-server.sh: $*" >&2
  exit 1
}

usage() {
  sed -n '2,14p' "$SELF" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# initdb and postgres refuse to run as root; drop to an unprivileged user.
if [[ $EUID -eq 0 ]]; then
  if id -u postgres >/dev/null 2>&1; then
    AS=(runuser -u postgres --)
    OWNER="postgres:$(id -gn postgres)"
    SERVER_USER=postgres
  else
    AS=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
    OWNER=nobody:nogroup
    SERVER_USER=nobody
  fi
else
  AS=()
  OWNER=""
  SERVER_USER="$(id -un)"
fi

# Runs a command as the server user from inside DIR: the caller's working
# directory may not be readable by that user, and pg_ctl resolves paths
# against it.
as_server() { (cd "$DIR" && "${AS[@]}" "$@"); }

# The npm PostgreSQL lives under root's home, which the server user cannot
# enter. Such an installation is copied once to a world-readable place keyed
# by its path and version; the copy is made beside its final name and renamed,
# so concurrent starts never see half of it.
usable_bindir() {
  local bindir="$1"
  if [[ ${#AS[@]} -eq 0 ]] || "${AS[@]}" test -x "$bindir/postgres" 2>/dev/null; then
    echo "$bindir"
    return
  fi
  local install version key staged tmp
  install="$(cd "$bindir/.." && pwd -P)"
  version="$("$bindir/postgres" --version)" || die "$bindir/postgres does not run"
  key="$(echo "$install $version $(stat -c %Y "$bindir/postgres")" | sha256sum | cut -c1-16)"
  staged="${TMPDIR:-/tmp}/outbox-relay-pg-$key"
  if [[ ! -x "$staged/bin/postgres" ]]; then
    tmp="$(mktemp -d "$staged.XXXXXX")"
    cp -a "$install/." "$tmp/"
    chmod -R a+rX "$tmp"
    mv -T "$tmp" "$staged" 2>/dev/null || rm -rf "$tmp"
  fi
  "${AS[@]}" test -x "$staged/bin/postgres" ||
    die "$SERVER_USER cannot run $bindir/postgres nor its copy in $staged"
  echo "$staged/bin"
}

bindir_of() { cat "$DIR/bindir"; }

log_tail() {
  echo "--- $DIR/server.log (last 30 lines)" >&2
  tail -n 30 "$DIR/server.log" >&2 2>/dev/null || true
}

write_config() {
  local conf="$DIR/data/postgresql.conf"
  cat >>"$conf" <<EOF

# outbox-relay test harness
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR'
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
# A throwaway cluster: durability buys nothing, speed does.
fsync = off
full_page_writes = off
# Logical decoding only sees flushed WAL; latency tests depend on this.
synchronous_commit = on
wal_sender_timeout = 60s
max_prepared_transactions = 10
logical_decoding_work_mem = 64MB
log_min_messages = warning
EOF
  if [[ -n ${PG_EXTRA_CONF:-} ]]; then
    printf '%s\n' "# PG_EXTRA_CONF" "$PG_EXTRA_CONF" >>"$conf"
  fi
  if [[ -n ${PG_SSL_CERT:-} || -n ${PG_SSL_KEY:-} ]]; then
    install_ssl_files >>"$conf"
  fi
  # Last, so that the port the harness picked wins over any in PG_EXTRA_CONF.
  echo "include 'port.conf'" >>"$conf"
  : >"$DIR/data/pg_hba.conf"
  if [[ -n ${PG_EXTRA_HBA:-} ]]; then
    printf '%s\n' "# PG_EXTRA_HBA" "$PG_EXTRA_HBA" >>"$DIR/data/pg_hba.conf"
  fi
  cat >>"$DIR/data/pg_hba.conf" <<EOF
local all all trust
local replication all trust
host all all 127.0.0.1/32 trust
host replication all 127.0.0.1/32 trust
EOF
}

# Prints the postgresql.conf lines that serve the copied certificate and key.
install_ssl_files() {
  [[ -r ${PG_SSL_CERT:-} && -r ${PG_SSL_KEY:-} ]] ||
    die "PG_SSL_CERT and PG_SSL_KEY must both name readable files"
  install -m 0644 "$PG_SSL_CERT" "$DIR/server.crt"
  install -m 0600 "$PG_SSL_KEY" "$DIR/server.key"
  if [[ -n $OWNER ]]; then chown "$OWNER" "$DIR/server.crt" "$DIR/server.key"; fi
  printf '%s\n' "ssl = on" "ssl_cert_file = '$DIR/server.crt'" "ssl_key_file = '$DIR/server.key'"
}

set_port() {
  echo "port = $1" >"$DIR/data/port.conf"
  echo "$1" >"$DIR/port"
}

pg_ctl_start() {
  as_server "$(bindir_of)/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null
}

bind_failed() {
  grep -qE 'could not (bind|create any TCP/IP sockets)|Address already in use' \
    "$DIR/server.log" 2>/dev/null
}

cmd_start() {
  local bindir="${1:-${OUTBOX_PG_BINDIR:-/usr/lib/postgresql/15/bin}}"
  [[ -x "$bindir/initdb" ]] || die "no initdb in $bindir"
  [[ -e "$DIR/data" ]] && die "$DIR/data exists; use start-again or destroy"
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd -P)"
  [[ -n $OWNER ]] && chown "$OWNER" "$DIR"
  chmod 700 "$DIR"
  "${AS[@]}" test -w "$DIR" ||
    die "$SERVER_USER cannot write $DIR (every directory above it must be searchable)"
  bindir="$(usable_bindir "$bindir")"
  echo "$bindir" >"$DIR/bindir"

  as_server "$bindir/initdb" -D "$DIR/data" -U postgres --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 --no-sync >"$DIR/initdb.log" 2>&1 ||
    {
      cat "$DIR/initdb.log" >&2
      die "initdb failed"
    }
  write_config

  # The port is free when picked but may be taken before the postmaster binds
  # it; only a bind failure is worth another port.
  local attempt port
  for attempt in $(seq 1 "$START_ATTEMPTS"); do
    port="$(free_port)"
    set_port "$port"
    : >"$DIR/server.log"
    [[ -n $OWNER ]] && chown "$OWNER" "$DIR/server.log"
    if pg_ctl_start; then
      start_watchdog stop immediate
      echo "$port"
      return 0
    fi
    bind_failed || break
    echo "pg-server.sh: port $port taken, retrying ($attempt/$START_ATTEMPTS)" >&2
  done
  log_tail
  die "start failed in $DIR"
}

is_running() {
  [[ -d "$DIR/data" ]] && as_server "$(bindir_of)/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

cmd_stop() {
  local mode="${1:-fast}"
  [[ $mode == fast || $mode == immediate ]] || die "stop mode must be fast or immediate"
  is_running || return 0
  as_server "$(bindir_of)/pg_ctl" -D "$DIR/data" -m "$mode" -w -t 60 stop >/dev/null ||
    {
      log_tail
      die "stop failed"
    }
}

cmd_start_again() {
  [[ -f "$DIR/port" ]] || die "$DIR was never started"
  is_running && die "already running"
  pg_ctl_start || {
    log_tail
    die "start-again failed (port $(cat "$DIR/port"))"
  }
  cat "$DIR/port"
}

cmd_restart() {
  as_server "$(bindir_of)/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -m fast -w -t 60 \
    restart >/dev/null || {
    log_tail
    die "restart failed"
  }
  cat "$DIR/port"
}

cmd_destroy() {
  [[ -d $DIR ]] || return 0
  if [[ -f "$DIR/bindir" ]]; then cmd_stop immediate || true; fi
  local watchdog
  watchdog="$(cat "$DIR/watchdog.pid" 2>/dev/null || true)"
  rm -rf "$DIR"
  # The watchdog may be the caller; it exits on its own once DIR is gone.
  if [[ -n $watchdog && $watchdog != "$$" && $watchdog != "$PPID" ]]; then
    kill "$watchdog" 2>/dev/null || true
  fi
}

# A base backup made with the low-level API (the caller holds
# pg_backup_start() open around this), so that no pg_basebackup of the
# server's own version is needed: the npm builds ship none. What the server
# recreates or a standby must not inherit is left out: its pid file, its WAL
# (streamed again through the physical slot) and its replication slots. A
# DIR that held a cluster before keeps its port.
cmd_clone() {
  local primary
  primary="$(cd "$1" && pwd -P)"
  mkdir -p "$DIR"
  DIR="$(cd "$DIR" && pwd -P)"
  [[ -n $OWNER ]] && chown "$OWNER" "$DIR"
  chmod 700 "$DIR"
  if [[ -d "$DIR/data" ]]; then
    cmd_stop immediate || true
    rm -rf "$DIR/data"
  fi
  cp "$primary/bindir" "$DIR/bindir"
  as_server mkdir -m 0700 "$DIR/data"
  # Files the running server changes or removes while they are read are
  # what the backup's WAL replay repairs: tar's exit status 1 says only that.
  local rc=0
  as_server tar -C "$primary/data" -cf - --warning=no-file-changed \
    --warning=no-file-removed --warning=no-file-shrank --exclude=./postmaster.pid \
    --exclude=./postmaster.opts --exclude=./backup_label . |
    as_server tar -C "$DIR/data" -xf - || rc=$?
  [[ $rc -eq 0 || $rc -eq 1 ]] || die "copying $primary/data failed (tar exit $rc)"
  find "$DIR/data/pg_replslot" "$DIR/data/pg_wal" -mindepth 1 -maxdepth 1 \
    ! -name archive_status ! -name summaries -exec rm -rf {} +
  find "$DIR/data/pg_wal/archive_status" -mindepth 1 -delete 2>/dev/null || true
}

# DIR/backup_label.new is what pg_backup_stop() returned for the clone.
# primary_conninfo names a database: slot synchronization (17+) needs one.
cmd_standby() {
  local primary_port="$1" slot="$2" major conf="$DIR/data/postgresql.conf"
  [[ -f "$DIR/backup_label.new" ]] || die "no $DIR/backup_label.new"
  cp "$DIR/backup_label.new" "$DIR/data/backup_label"
  [[ -n $OWNER ]] && chown "$OWNER" "$DIR/data/backup_label"
  rm -f "$DIR/backup_label.new"
  major="$("$(bindir_of)/postgres" --version | sed -E 's/.* ([0-9]+)[.].*/\1/')"
  {
    echo ""
    echo "# outbox-relay test harness: streaming standby"
    echo "unix_socket_directories = '$DIR'"
    echo "primary_conninfo = 'host=127.0.0.1 port=$primary_port user=postgres dbname=postgres application_name=$slot'"
    echo "primary_slot_name = '$slot'"
    echo "hot_standby = on"
    echo "hot_standby_feedback = on"
    if [[ $major -ge 17 ]]; then echo "sync_replication_slots = on"; fi
  } >>"$conf"
  as_server touch "$DIR/data/standby.signal"
  local attempt port
  for attempt in $(seq 1 "$START_ATTEMPTS"); do
    port="$(cat "$DIR/port" 2>/dev/null || free_port)"
    set_port "$port"
    : >"$DIR/server.log"
    [[ -n $OWNER ]] && chown "$OWNER" "$DIR/server.log"
    if pg_ctl_start; then
      [[ -f "$DIR/watchdog.pid" ]] || start_watchdog stop immediate
      echo "$port"
      return 0
    fi
    bind_failed || break
    rm -f "$DIR/port"
    echo "pg-server.sh: port $port taken, retrying ($attempt/$START_ATTEMPTS)" >&2
  done
  log_tail
  die "standby start failed in $DIR"
}

cmd_promote() {
  as_server "$(bindir_of)/pg_ctl" -D "$DIR/data" -w -t 60 promote >/dev/null || {
    log_tail
    die "promote failed"
  }
}

[[ $# -ge 2 ]] || usage
command="$1"
DIR="$2"
shift 2
if [[ $command != start && -d $DIR ]]; then DIR="$(cd "$DIR" && pwd -P)"; fi
case "$command" in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  restart) cmd_restart ;;
  start-again) cmd_start_again ;;
  destroy) cmd_destroy ;;
  clone) cmd_clone "$@" ;;
  standby) cmd_standby "$@" ;;
  promote) cmd_promote ;;
  *) usage ;;
esac
