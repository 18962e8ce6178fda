# Where lavapipe's JIT code spends its time: runs a command (a timing loop of one kernel, e.g.
# experiments/swiftshader-tiles.ts with REPS=400), samples it with `perf record` once the kernel
# runs, copies the process's anonymous executable mappings (lavapipe's JIT code, which perf cannot
# read after the process ends) from /proc/PID/mem, and prints the hottest stretch of machine code:
# its size, the instruction mix weighted by samples, and an annotated listing.
#   python3 experiments/lavapipe-hot.py [--wait S] [--listing N] -- CMD...
# e.g. ADAPTER=lavapipe REPS=400 python3 experiments/lavapipe-hot.py -- node scripts/run-ts.mjs \
#        experiments/swiftshader-tiles.ts 1,64,128,1 fwd g:16x8:64
# Needs perf, objdump and permission to read the child's memory (root here). Not part of the
# package or the tests; see experiments/subgroup-weights.md.
import argparse, collections, os, re, subprocess, sys, tempfile, time

ap = argparse.ArgumentParser()
ap.add_argument('--wait', type=float, default=12, help='seconds before sampling (compiles done)')
ap.add_argument('--seconds', type=float, default=6, help='seconds sampled')
ap.add_argument('--listing', type=int, default=60, help='instructions listed from the hottest 1 KiB')
ap.add_argument('cmd', nargs=argparse.REMAINDER)
a = ap.parse_args()
cmd = a.cmd[1:] if a.cmd[:1] == ['--'] else a.cmd
if not cmd:
    sys.exit('usage: lavapipe-hot.py [--wait S] -- CMD...')
work = tempfile.mkdtemp(prefix='lvp-hot-')
child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    time.sleep(a.wait)
    if child.poll() is not None:
        sys.exit('the command ended before sampling: give it more repetitions or a shorter --wait')
    data = os.path.join(work, 'perf.data')
    subprocess.run(['perf', 'record', '-q', '-o', data, '-F', '4000', '-p', str(child.pid), '--', 'sleep', str(a.seconds)], check=True, capture_output=True)
    regions = []
    with open(f'/proc/{child.pid}/mem', 'rb') as mem:
        for line in open(f'/proc/{child.pid}/maps'):
            f = line.split()
            if 'x' not in f[1] or len(f) > 5:  # anonymous executable mappings only
                continue
            lo, hi = (int(x, 16) for x in f[0].split('-'))
            if hi - lo > 64 << 20:
                continue
            mem.seek(lo)
            path = os.path.join(work, f'jit_{lo:x}.bin')
            with open(path, 'wb') as out:
                out.write(mem.read(hi - lo))
            regions.append((lo, hi, path))
finally:
    child.kill()

ips = [int(x, 16) for x in subprocess.run(['perf', 'script', '-i', data, '-F', 'ip'], capture_output=True, text=True).stdout.split()]
inside = collections.Counter()
for ip in ips:
    for lo, hi, path in regions:
        if lo <= ip < hi:
            inside[(lo, path)] += 1
if not inside:
    sys.exit(f'no samples in JIT code ({len(ips)} samples in all)')
(base, path), n = inside.most_common(1)[0]
print(f'{len(ips)} samples, {n} in the busiest JIT mapping')
hot = collections.Counter(ip - base for ip in ips if base <= ip < base + os.path.getsize(path))
kib = collections.Counter(off >> 10 for off in hot.elements())
busy = sorted(k for k, v in kib.items() if v > 0.005 * n)
lo, hi = busy[0] << 10, (busy[-1] + 1) << 10
print(f'hot code: {hi - lo} bytes at +{lo:#x} ({sum(v for k, v in kib.items() if k in busy) / n:.0%} of its samples)')
dis = subprocess.run(['objdump', '-D', '-b', 'binary', '-m', 'i386:x86-64', path, f'--start-address={lo}', f'--stop-address={hi}'], capture_output=True, text=True).stdout
rows = []
for line in dis.splitlines():
    m = re.match(r'\s+([0-9a-f]+):\s+(?:[0-9a-f]{2} )+\s*(\S+)\s*(.*)', line)
    if m and m.group(2)[0].isalpha():
        rows.append((int(m.group(1), 16), m.group(2), m.group(3)))
weight = collections.Counter()
count = collections.Counter()
for off, op, _ in rows:
    weight[op] += hot.get(off, 0)
    count[op] += 1
total = sum(weight.values()) or 1
print(f'{len(rows)} instructions; by samples (count in the stretch):')
print('  ' + ', '.join(f'{op} {100 * w / total:.1f}% ({count[op]})' for op, w in weight.most_common(16)))
top = kib.most_common(1)[0][0] << 10
print(f'listing from +{top:#x} (samples, offset, instruction):')
for off, op, args in [r for r in rows if r[0] >= top][: a.listing]:
    print(f'{hot.get(off, 0):6d} {off:6x} {op} {args}')
