#!/usr/bin/env python3
"""What one `iptables-restore --noflush` costs the kernel at N services, by nat-table layout.

Run as root: `python3 proxy/benches/iptables_floor.py [N]` (default 10000). Needs iptables-nft
and iproute2. For each layout it loads N ClusterIP services with 2 endpoints each into a fresh
network namespace, then restores a one-rule change 21 times and prints the median wall time
and the median kernel (system) time of `iptables-restore`.

The change is a new chain holding `-j RETURN`: any rule with a verdict, a jump, a NAT target
or an xt match makes the kernel re-validate the whole nat table at commit, walking every rule
reachable from each nat base chain (`nft_table_validate`), so this is the floor under every
incremental sync of kube-proxy's iptables mode. "no verdict" adds a rule with neither, which
skips the walk: the difference is the walk.

Layouts (kube-proxy's own, `rules.rs`, is "large cluster mode"):
- every rule commented: upstream's rules below 1000 endpoints (each comment is an xt match);
- large cluster mode: endpoint chains and the jumps into them without comments (upstream's
  and ours above 1000 endpoints);
- no comments at all;
- one hook: as large cluster mode but only PREROUTING jumps to KUBE-SERVICES (not OUTPUT);
- no endpoint chains: DNAT in the service chain itself.
The last two are not layouts kube-proxy can use (OUTPUT is needed for node-local clients, and
the endpoint chains are upstream's structure); they show what the walk is made of.
"""

import resource
import statistics
import subprocess
import sys
import time

LAYOUTS = [
    ("every rule commented", "all"),
    ("large cluster mode", "large"),
    ("no comments at all", "none"),
    ("one hook (PREROUTING only)", "onehook"),
    ("no endpoint chains", "nosep"),
]


def ruleset(n, layout):
    shards = [f"KUBE-SVCS-{i:02X}" for i in range(256)]
    out = ["*nat", ":KUBE-SERVICES - [0:0]", ":KUBE-MARK-MASQ - [0:0]"]
    out += [f":{s} - [0:0]" for s in shards]
    sep = layout != "nosep"
    for i in range(n):
        out.append(f":KUBE-SVC-{i:016X} - [0:0]")
        if sep:
            out += [f":KUBE-SEP-{i:08X}{k:08X} - [0:0]" for k in range(2)]
    out.append("-A PREROUTING -j KUBE-SERVICES")
    if layout != "onehook":
        out.append("-A OUTPUT -j KUBE-SERVICES")
    out.append("-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000")
    out += [f"-A KUBE-SERVICES -d 0.0.0.{j}/0.0.0.255 -j {s}" for j, s in enumerate(shards)]
    for i in range(n):
        ip = f"10.{96 + i // 65536}.{(i // 256) % 256}.{i % 256}"
        svc = f"KUBE-SVC-{i:016X}"
        name = f"bench/svc-{i}:http"
        c = "" if layout == "none" else f'-m comment --comment "{name} cluster IP" '
        ce = f'-m comment --comment "{name}" ' if layout == "all" else ""
        eps = [f"10.{128 + (2 * i + k) // 65536}.{((2 * i + k) // 256) % 256}.{(2 * i + k) % 256}" for k in range(2)]
        out.append(f"-A {shards[i % 256]} {c}-d {ip}/32 -p tcp -m tcp --dport 80 -j {svc}")
        out.append(f"-A {svc} {c}-d {ip}/32 -p tcp -m tcp --dport 80 ! -s 10.128.0.0/9 -j KUBE-MARK-MASQ")
        if sep:
            chains = [f"KUBE-SEP-{i:08X}{k:08X}" for k in range(2)]
            out.append(f"-A {svc} {ce}-m statistic --mode random --probability 0.5000000000 -j {chains[0]}")
            out.append(f"-A {svc} {ce}-j {chains[1]}")
            for k in range(2):
                out.append(f"-A {chains[k]} {ce}-s {eps[k]}/32 -j KUBE-MARK-MASQ")
                out.append(f"-A {chains[k]} {ce}-p tcp -m tcp -j DNAT --to-destination {eps[k]}:8080")
        else:
            out += [f"-A {svc} -s {ep}/32 -j KUBE-MARK-MASQ" for ep in eps]
            out.append(f"-A {svc} -m statistic --mode random --probability 0.5000000000 -p tcp -m tcp -j DNAT --to-destination {eps[0]}:8080")
            out.append(f"-A {svc} -p tcp -m tcp -j DNAT --to-destination {eps[1]}:8080")
    out.append("COMMIT\n")
    return "\n".join(out).encode()


def measure(netns, change, reps=21):
    walls, kernel = [], []
    for _ in range(reps):
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime
        start = time.perf_counter()
        subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "iptables-restore", "--noflush"], input=change, check=True)
        walls.append((time.perf_counter() - start) * 1000)
        kernel.append((resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime - before) * 1000)
    return statistics.median(walls), statistics.median(kernel)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    verdict = b"*nat\n:KUBE-PROBE - [0:0]\n-A KUBE-PROBE -j RETURN\nCOMMIT\n"
    no_verdict = b"*nat\n:KUBE-PROBE - [0:0]\n-A KUBE-PROBE -s 10.1.1.1/32\nCOMMIT\n"
    print(f"{n} services x 2 endpoints; medians of 21 restores, ms")
    print(f"{'layout':30} {'rules':>7} {'wall':>7} {'kernel':>7} | {'no verdict: wall':>16} {'kernel':>7}")
    for title, layout in LAYOUTS:
        netns = f"kproxy-floor-{layout}-{subprocess.os.getpid()}"
        subprocess.run(["ip", "netns", "add", netns], check=True)
        try:
            rules = ruleset(n, layout)
            subprocess.run(["nsenter", f"--net=/run/netns/{netns}", "iptables-restore"], input=rules, check=True)
            count = rules.count(b"\n-A ")
            wall, kernel = measure(netns, verdict)
            wall_nv, kernel_nv = measure(netns, no_verdict)
            print(f"{title:30} {count:>7} {wall:>7.1f} {kernel:>7.1f} | {wall_nv:>16.1f} {kernel_nv:>7.1f}", flush=True)
        finally:
            subprocess.run(["ip", "netns", "del", netns], check=False)


if __name__ == "__main__":
    main()
