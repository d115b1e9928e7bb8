#!/usr/bin/env bash
# podman (+ conmon): `podman --runtime <supervisor> run --rootfs DIR`, with
# its own storage, run root and containers.conf in a temp dir.
source "$(dirname "$0")/lib.sh"
need podman conmon

make_rootfs "$WORK/rootfs"
# What CLIENTS.md says podman needs here: cgroupfs, file events, and
# ulimits below the hard limits (no CAP_SYS_RESOURCE).
cat >"$WORK/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$WORK/events.log"
CONF
export CONTAINERS_CONF=$WORK/containers.conf
export XDG_RUNTIME_DIR=$WORK/xdg
mkdir -p "$XDG_RUNTIME_DIR"
PODMAN=(podman --root "$WORK/storage" --runroot "$WORK/runroot" --tmpdir "$WORK/tmp"
  --storage-driver vfs --cgroup-manager cgroupfs --events-backend file
  --runtime "$SUPERVISOR")
podman_cleanup() {
  # podman is no daemon, but leaves its storage mounts behind.
  "${PODMAN[@]}" rm -af >/dev/null 2>&1 || true
  cleanup
}
trap podman_cleanup EXIT

CGROUP_PARENT=rvisor-podman-$$
run() { "${PODMAN[@]}" run --rm --network none --cgroup-parent "/$CGROUP_PARENT" --rootfs "$WORK/rootfs" "$@"; }
expect 0 hi run /bin/busybox echo hi
expect 3 "" run /bin/sh -c 'exit 3'
expect 0 "" run /bin/true
# Detached: the limit from --memory in the container's cgroup, pause and
# unpause through the runtime, kill → 137.
id=$("${PODMAN[@]}" run -d --network none --cgroup-parent "/$CGROUP_PARENT" --memory 80m \
  --rootfs "$WORK/rootfs" /bin/sleep 30)
pid=$("${PODMAN[@]}" inspect -f '{{.State.Pid}}' "$id")
cg=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ || $2 == "" {print $3; exit}' "/proc/$pid/cgroup")
CG=/sys/fs/cgroup/memory$cg
[ -d /sys/fs/cgroup/memory ] || CG=/sys/fs/cgroup$cg
case $cg in /$CGROUP_PARENT/*) ;; *) fail "container pid $pid is in cgroup $cg" ;; esac
limit=$(cat "$CG/memory.limit_in_bytes" 2>/dev/null || cat "$CG/memory.max")
[ "$limit" = $((80 << 20)) ] || fail "memory limit in $CG: $limit"
echo "ok: run -d --memory 80m: pid $pid in $cg, limit $limit"
"${PODMAN[@]}" pause "$id" >/dev/null
[ "$("${PODMAN[@]}" inspect -f '{{.State.Status}}' "$id")" = paused ] || fail "not paused"
"${PODMAN[@]}" unpause "$id" >/dev/null
[ "$("${PODMAN[@]}" inspect -f '{{.State.Status}}' "$id")" = running ] || fail "not running after unpause"
echo "ok: pause/unpause"
"${PODMAN[@]}" kill "$id" >/dev/null
code=$("${PODMAN[@]}" wait "$id")
[ "$code" = 137 ] || fail "exit code after kill: $code"
"${PODMAN[@]}" rm "$id" >/dev/null
[ ! -d "$CG" ] || fail "cgroup $CG left behind"
echo "ok: kill -> 137, removed, cgroup gone"

left=$("${PODMAN[@]}" ps -aq)
[ -z "$left" ] || fail "containers left: $left"
echo PASS
