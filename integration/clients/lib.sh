# Shared helpers of the client scripts: sourced, not run.
# Each script: `SCRIPT /abs/path/supervisor`; exit 0 = passed, 77 = skipped
# (client not installed), anything else = failed. Every daemon is started
# here with its own temp dirs and socket, and stopped by pid on exit.
set -euo pipefail

SUPERVISOR=${1:?usage: $0 /abs/path/to/supervisor}
case $SUPERVISOR in /*) ;; *) echo "supervisor path must be absolute" >&2; exit 2 ;; esac
[ -x "$SUPERVISOR" ] || { echo "supervisor not found at $SUPERVISOR" >&2; exit 2; }
WORK=$(mktemp -d /tmp/rvclient.XXXXXX)
DAEMON_PIDS=()
CGROUP_PARENT=

skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
need() { for c in "$@"; do command -v "$c" >/dev/null 2>&1 || skip "$c not installed"; done; }

cleanup() {
  local rc=$?
  set +e
  for pid in "${DAEMON_PIDS[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${DAEMON_PIDS[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  # The cgroup parent a script gave its client (the runtime removes only
  # the container's own cgroup, as runc does).
  if [ -n "${CGROUP_PARENT:-}" ]; then
    for c in /sys/fs/cgroup/*/"$CGROUP_PARENT" /sys/fs/cgroup/"$CGROUP_PARENT"; do
      # Deepest first; rmdir only succeeds on an empty cgroup.
      [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  fi
  # Daemons leave mounts (shm, netns) under their temp roots.
  grep -o " $WORK[^ ]*" /proc/self/mounts | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -30 "$f"; }; done >&2
  fi
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
[ "$(id -u)" = 0 ] || skip "needs root"
[ -x /bin/busybox ] || skip "/bin/busybox missing (apt-get install busybox-static)"

# make_rootfs DIR: busybox-static plus applet links, /etc/passwd, /etc/group.
make_rootfs() {
  local root=$1
  mkdir -p "$root"/{bin,etc,proc,sys,dev,tmp,root}
  cp /bin/busybox "$root/bin/busybox"
  for a in sh echo true false cat ls sleep env id hostname; do ln -sf busybox "$root/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
  echo 'root:x:0:' >"$root/etc/group"
}

# wait_for PATH PID NAME: until the socket exists (or the daemon died).
wait_for() {
  for _ in $(seq 300); do
    [ -S "$1" ] && return 0
    kill -0 "$2" 2>/dev/null || fail "$3 exited early"
    sleep 0.1
  done
  fail "$3 did not create $1"
}

# expect WANT_CODE WANT_OUTPUT CMD...: runs CMD, checks status and output.
expect() {
  local want_code=$1 want_out=$2; shift 2
  local out code=0
  out=$("$@" 2>"$WORK/expect.err") || code=$?
  out=$(printf '%s' "$out" | tr -d '\r')
  if [ "$code" != "$want_code" ] || [ "$out" != "$want_out" ]; then
    fail "$* -> exit $code, output '$out' (stderr: $(cat "$WORK/expect.err")); want exit $want_code, output '$want_out'"
  fi
  echo "ok: $* -> exit $code${out:+, '$out'}"
}
