"""Splits each sequential pod of the pod_startup bench into steps, from three timelines.

Inputs (see BENCHMARKS.md, "Pod startup (kubelet, single node)"):
  samples   KAJI_BENCH_SAMPLES TSV (pod, create time in Unix seconds, latency in ms)
  log       the kubelet's log from a run with RUST_LOG=kubelet=debug,kube_client=debug
            (copied to KAJI_BENCH_KUBELET_LOG)
  perf      `perf script -F comm,pid,tid,time,event,trace` of
            `perf record -a -k mono -e sched:sched_process_exec -e syscalls:sys_enter_mount
             -e syscalls:sys_exit_mount -e syscalls:sys_enter_pivot_root`
  pid       the kubelet's PID (its overlay mount is the mount made by that process)
  offset    CLOCK_REALTIME - CLOCK_MONOTONIC in seconds, taken during the run
  [which]   all | first | last: all pods, or the first / last third

Usage: python3 pod_startup_perf.py SAMPLES LOG PERF PID OFFSET [all|first|last]
"""
import datetime
import re
import statistics
import sys

samples_f, log_f, perf_f, kubelet_pid, offset = (
    sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
which = sys.argv[6] if len(sys.argv) > 6 else 'all'

samples = []
for line in open(samples_f).read().splitlines()[1:]:
    name, created, latency = line.split('\t')
    samples.append((name, float(created), float(latency) / 1000))
third = len(samples) // 3
if which == 'first':
    samples = samples[:third]
elif which == 'last':
    samples = samples[-third:]

# The kubelet's API requests: (time, method, url).
requests = []
for line in open(log_f, errors='replace'):
    line = line.rstrip()
    if not line.endswith('requesting'):
        continue
    at = datetime.datetime.fromisoformat(line.split()[0].replace('Z', '+00:00')).timestamp()
    method = re.search(r'http.method=(\S+)', line)
    url = re.search(r'http.url=([^ }]+)', line)
    requests.append((at, method.group(1), url.group(1)))

# Tracepoints: (time, comm, pid, tid, event, trace).
events = []
for line in open(perf_f, errors='replace'):
    m = re.match(r'\s*(.+?)\s+(\d+)/(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)', line)
    if m:
        comm, pid, tid, at, event, trace = m.groups()
        events.append((float(at) + offset, comm, int(pid), int(tid), event, trace))
events.sort()


def first(items, pred, after):
    return next((x for x in items if x[0] >= after and pred(x)), None)


steps = {}
for name, created, latency in samples:
    end = created + latency
    reqs = [r for r in requests if created <= r[0] <= end + 0.005]
    evs = [e for e in events if created <= e[0] <= end + 0.005]
    posts = [r for r in reqs if r[1] == 'POST' and '/events' in r[2]]
    patches = [r for r in reqs if r[1] == 'PATCH' and f'/pods/{name}/status' in r[2]]
    execs = [e for e in evs if e[4] == 'sched:sched_process_exec']
    shims = [e for e in execs if 'kubelet' in e[5]]
    sleep = first(execs, lambda e: 'sleep' in e[5], created)
    mount = first(evs, lambda e: e[4] == 'syscalls:sys_enter_mount' and e[2] == kubelet_pid, created)
    mounted = first(evs, lambda e: e[4] == 'syscalls:sys_exit_mount' and e[2] == kubelet_pid, created)
    pivot = first(evs, lambda e: e[4] == 'syscalls:sys_enter_pivot_root', created)
    if len(posts) < 2 or not patches or len(shims) < 2 or not (sleep and mount and mounted and pivot):
        continue
    marks = [
        ('create', created), ('sandbox shim exec', shims[0][0]),
        ('"Pulled" event sent', posts[0][0]), ('overlay mount', mount[0]),
        ('overlay mount returned', mounted[0]), ('container shim exec', shims[1][0]),
        ('pivot_root', pivot[0]), ('sleep exec', sleep[0]), ('"Created" event sent', posts[1][0]),
        ('status PATCH sent', patches[-1][0]), ('Running seen', end),
    ]
    for (a, ta), (b, tb) in zip(marks, marks[1:]):
        steps.setdefault(f'{a} → {b}', []).append((tb - ta) * 1000)
    steps.setdefault('total', []).append(latency * 1000)

print(f"pods matched: {len(steps.get('total', []))} of {len(samples)}")
print('| step | p50 ms | p90 ms | mean ms |')
print('|---|---:|---:|---:|')
for step, values in steps.items():
    values.sort()

    def rank(q):
        return values[min(len(values) - 1, max(0, -(-int(q * len(values) * 1000) // 1000) - 1))]

    print(f'| {step} | {rank(0.5):.1f} | {rank(0.9):.1f} | {statistics.mean(values):.1f} |')
