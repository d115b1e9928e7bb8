#!/usr/bin/env bash
# containerd + ctr: `ctr run --runc-binary <supervisor> --rootfs DIR` (the
# runc v2 shim calls the supervisor as it would call runc).
source "$(dirname "$0")/lib.sh"
need containerd ctr containerd-shim-runc-v2

make_rootfs "$WORK/rootfs"
SOCK=$WORK/containerd.sock
cat >"$WORK/config.toml" <<TOML
version = 2
root = "$WORK/root"
state = "$WORK/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SOCK"
[ttrpc]
  address = "$SOCK.ttrpc"
TOML
containerd --config "$WORK/config.toml" >"$WORK/containerd.log" 2>&1 &
DAEMON_PIDS+=($!)
wait_for "$SOCK" $! containerd

NS=rvisor-test-$$
CGROUP_PARENT=$NS
CTR=(ctr --address "$SOCK" --namespace "$NS")
# The shim keeps runtime state in /run/containerd/runc/<namespace>; the
# cgroups go to /<namespace>/<id>.
ctr_cleanup() {
  rm -rf "/run/containerd/runc/$NS"
  cleanup
}
trap ctr_cleanup EXIT
run() { "${CTR[@]}" run --rm --runc-binary "$SUPERVISOR" --rootfs "$WORK/rootfs" "$@"; }
expect 0 hi run rv-hi /bin/busybox echo hi
expect 3 "" run rv-exit3 /bin/sh -c 'exit 3'
expect 0 "" run rv-true /bin/true
# A detached task: its cgroup holds the sandbox with ctr's limit; pause,
# resume and metrics go through the runtime and the cgroup.
"${CTR[@]}" run -d --memory-limit 104857600 --runc-binary "$SUPERVISOR" --rootfs "$WORK/rootfs" rv-bg /bin/sleep 30 >/dev/null
CG=/sys/fs/cgroup/memory/$NS/rv-bg
[ -d /sys/fs/cgroup/memory ] || CG=/sys/fs/cgroup/$NS/rv-bg
limit=$(cat "$CG/memory.limit_in_bytes" 2>/dev/null || cat "$CG/memory.max")
[ "$limit" = 104857600 ] || fail "memory limit in $CG is $limit"
pid=$("${CTR[@]}" task ls | awk '$1=="rv-bg"{print $2}')
grep -q "$pid" "$CG/cgroup.procs" || fail "task pid $pid not in $CG"
echo "ok: rv-bg pid $pid in $CG, memory limit $limit"
"${CTR[@]}" task pause rv-bg
status=$("${CTR[@]}" task ls | awk '$1=="rv-bg"{print $3}')
[ "$status" = PAUSED ] || fail "status after pause: $status"
"${CTR[@]}" task resume rv-bg
"${CTR[@]}" task metrics rv-bg >"$WORK/metrics" || fail "metrics: $(cat "$WORK/metrics")"
echo "ok: pause/resume/metrics; $(grep -i -m1 memory "$WORK/metrics" || head -1 "$WORK/metrics")"
"${CTR[@]}" task kill -s SIGKILL rv-bg
for _ in $(seq 50); do [ "$("${CTR[@]}" task ls | awk '$1=="rv-bg"{print $3}')" = STOPPED ] && break; sleep 0.1; done
"${CTR[@]}" task rm rv-bg >/dev/null
"${CTR[@]}" containers rm rv-bg
[ ! -d "$CG" ] || fail "cgroup $CG left behind"
echo "ok: killed and removed, cgroup gone"
# Nothing left behind in the runtime's state directory.
left=$("${CTR[@]}" containers ls -q)
[ -z "$left" ] || fail "containers left: $left"
echo PASS
