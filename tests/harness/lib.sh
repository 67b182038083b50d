# Sourced by the harness's scripts (pg-server.sh, kafka-broker.sh) and the
# deployment tests: what they share. Callers set DIR and SELF before
# start_watchdog.

# A loopback TCP port nothing listens on: bound to port 0, then released.
# Without python3, a random port that refuses a connection.
free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
    return
  fi
  local p
  for _ in $(seq 1 100); do
    p=$((20000 + RANDOM % 30000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "no free port found" >&2
  return 1
}

# With HARNESS_OWNER_PID set, runs "$SELF destroy $DIR" once that process is
# gone, so a test binary killed by a timeout leaves no server behind. With
# OUTBOX_KEEP_TEST_DIRS the owner keeps DIR for a post-mortem: only the
# server goes, by "$SELF KEEP_ACTION... $DIR".
start_watchdog() {
  [[ -n ${HARNESS_OWNER_PID:-} ]] || return 0
  local action=(destroy)
  if [[ -n ${OUTBOX_KEEP_TEST_DIRS:-} && $OUTBOX_KEEP_TEST_DIRS != 0 ]]; then
    action=("$@")
  fi
  setsid bash -c '
    while kill -0 "$1" 2>/dev/null && [[ -d "$2" ]]; do sleep 1; done
    [[ -d "$2" ]] && "$3" "$4" "$2" ${5:+"$5"}' watchdog "$HARNESS_OWNER_PID" "$DIR" "$SELF" \
    "${action[@]}" </dev/null >/dev/null 2>&1 &
  echo $! >"$DIR/watchdog.pid"
}
