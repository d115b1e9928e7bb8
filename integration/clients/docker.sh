#!/usr/bin/env bash
# dockerd configured by `supervisor install` (a daemon.json in a temp dir),
# an image imported from a busybox rootfs tarball (no registry), then
# `docker run --runtime=rvisor --network=none`.
source "$(dirname "$0")/lib.sh"
need dockerd containerd containerd-shim-runc-v2
# Debian's client matches its daemon; another `docker` may come first on PATH.
DOCKER_BIN=/usr/bin/docker
[ -x "$DOCKER_BIN" ] || DOCKER_BIN=$(command -v docker) || skip "docker not installed"

CGROUP_PARENT=rvisor-docker-$$
make_rootfs "$WORK/rootfs"
tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .
CONF=$WORK/daemon.json
cat >"$CONF" <<JSON
{"iptables": false, "ip6tables": false, "bridge": "none",
 "exec-opts": ["native.cgroupdriver=cgroupfs"], "storage-driver": "vfs",
 "cgroup-parent": "/$CGROUP_PARENT"}
JSON
"$SUPERVISOR" install --config "$CONF" --runtime rvisor -- --debug
grep -q '"iptables": false' "$CONF" || fail "install dropped a key: $(cat "$CONF")"
SOCK=$WORK/docker.sock
dockerd --config-file "$CONF" --data-root "$WORK/data" --exec-root "$WORK/exec" \
  --pidfile "$WORK/docker.pid" -H "unix://$SOCK" >"$WORK/dockerd.log" 2>&1 &
DAEMON_PIDS+=($!)
wait_for "$SOCK" $! dockerd
DOCKER=("$DOCKER_BIN" -H "unix://$SOCK")
for _ in $(seq 100); do "${DOCKER[@]}" info >/dev/null 2>&1 && break; sleep 0.1; done
# Not `docker info | grep -q`: under pipefail, grep leaving early can kill
# docker with SIGPIPE and fail the pipeline although the line was there.
info=$("${DOCKER[@]}" info 2>/dev/null) || true
grep -q rvisor <<<"$info" || fail "dockerd does not list the rvisor runtime"

"${DOCKER[@]}" import "$WORK/rootfs.tar" rvisor-busybox:latest >/dev/null
run() { "${DOCKER[@]}" run --rm --runtime=rvisor --network=none rvisor-busybox "$@"; }
expect 0 hi run /bin/busybox echo hi
expect 3 "" run /bin/sh -c 'exit 3'
expect 0 "" run /bin/true
# A detached container: limits from `run --memory`, pause/unpause and
# update through the runtime, stats from its cgroup, kill → 137.
id=$("${DOCKER[@]}" run -d --runtime=rvisor --network=none --memory 96m --pids-limit 40 rvisor-busybox /bin/sleep 30)
CG=/sys/fs/cgroup/memory/$CGROUP_PARENT/$id
PIDS_CG=/sys/fs/cgroup/pids/$CGROUP_PARENT/$id
[ -d /sys/fs/cgroup/memory ] || { CG=/sys/fs/cgroup/$CGROUP_PARENT/$id; PIDS_CG=$CG; }
mem() { cat "$CG/memory.limit_in_bytes" 2>/dev/null || cat "$CG/memory.max"; }
[ "$(mem)" = $((96 << 20)) ] || fail "memory limit in $CG: $(mem)"
[ "$(cat "$PIDS_CG/pids.max")" = 40 ] || fail "pids limit: $(cat "$PIDS_CG/pids.max")"
pid=$("${DOCKER[@]}" inspect -f '{{.State.Pid}}' "$id")
grep -qx "$pid" "$CG/cgroup.procs" || fail "container pid $pid not in $CG"
echo "ok: run -d --memory 96m --pids-limit 40: pid $pid in $CG with both limits"
"${DOCKER[@]}" pause "$id" >/dev/null
[ "$("${DOCKER[@]}" inspect -f '{{.State.Status}}' "$id")" = paused ] || fail "not paused"
"${DOCKER[@]}" unpause "$id" >/dev/null
[ "$("${DOCKER[@]}" inspect -f '{{.State.Status}}' "$id")" = running ] || fail "not running after unpause"
echo "ok: pause/unpause"
"${DOCKER[@]}" update --memory 64m --memory-swap 64m --pids-limit 30 "$id" >/dev/null
[ "$(mem)" = $((64 << 20)) ] || fail "memory limit after update: $(mem)"
[ "$(cat "$PIDS_CG/pids.max")" = 30 ] || fail "pids limit after update: $(cat "$PIDS_CG/pids.max")"
echo "ok: update --memory 64m --pids-limit 30"
stats=$("${DOCKER[@]}" stats --no-stream --format '{{.MemUsage}} {{.PIDs}}' "$id")
case $stats in *64MiB*) ;; *) fail "docker stats: $stats" ;; esac
echo "ok: docker stats: $stats"
"${DOCKER[@]}" kill "$id" >/dev/null
code=$("${DOCKER[@]}" wait "$id")
[ "$code" = 137 ] || fail "exit code after kill: $code"
"${DOCKER[@]}" rm "$id" >/dev/null
[ ! -d "$CG" ] || fail "cgroup $CG left behind"
echo "ok: kill -> 137, removed, cgroup gone"

left=$("${DOCKER[@]}" ps -aq)
[ -z "$left" ] || fail "containers left: $left"

# uninstall takes the entry out again, keeping the rest.
"$SUPERVISOR" uninstall --config "$CONF" --runtime rvisor
! grep -q '"rvisor"' "$CONF" || fail "uninstall left the runtime: $(cat "$CONF")"
grep -q '"iptables": false' "$CONF" || fail "uninstall dropped a key: $(cat "$CONF")"
echo PASS
