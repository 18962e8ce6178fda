#!/usr/bin/env python3
"""PyTorch (CPU) peer of `semi-drdnet bench`: the same DRD-Net (scripts/torch_fixtures.py's module
tree) timed for eval inference and one supervised training step, and exported to ONNX for the
onnxruntime-node peer (ort_peer.mjs).

    /usr/bin/python3 bench/peers/torch_peer.py <out-dir> [--quick] [--threads N]

Prints one JSON row per case (name, shape, median_ms, runs, runtime, threads), like the engine's
bench rows, and writes <out-dir>/<preset>-<h>x<w>.onnx (eval mode, opset 13)."""
import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location('torch_fixtures', os.path.join(ROOT, 'scripts', 'torch_fixtures.py'))
fixtures = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fixtures)

PRESETS = {'tiny': (16, 3, 3), 'paper': (64, 16, 16)}
# (kind, preset, batch, size): the engine's model.infer / model.train_step rows.
CASES = [('infer', 'tiny', 1, 256), ('infer', 'paper', 1, 64), ('train_step', 'tiny', 4, 96), ('train_step', 'paper', 1, 64)]


def timed(fn, quick):
    fn()  # warm-up (allocator, oneDNN primitive caches)
    times, t_end = [], time.perf_counter() + (1.0 if quick else 5.0)
    while len(times) < 3 or (time.perf_counter() < t_end and len(times) < 50):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), len(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('out')
    ap.add_argument('--quick', action='store_true')
    ap.add_argument('--threads', type=int, default=os.cpu_count())
    a = ap.parse_args()
    # Debian's build starts with one thread per physical core; the engine's lavapipe uses every
    # logical CPU, so the comparison gives PyTorch the same.
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    torch.manual_seed(1)
    for kind, preset, n, size in CASES:
        if a.quick and preset == 'paper':
            continue
        model = fixtures.DRDNetwork(*PRESETS[preset])
        x = torch.rand(n, 3, size, size)
        if kind == 'infer':
            model.eval()
            with torch.no_grad():
                ms, runs = timed(lambda: model(x), a.quick)
            path = os.path.join(a.out, f'{preset}-{size}x{size}.onnx')
            torch.onnx.export(model, x, path, opset_version=13, input_names=['rainy'], output_names=['derained', 'final'])
        else:
            model.train()
            clean = torch.rand(n, 3, size, size)
            opt = torch.optim.Adam(model.parameters(), lr=1e-4)

            def step():
                opt.zero_grad(set_to_none=True)
                out1, out = model(x)
                loss = 0.1 * F.l1_loss(out1, clean) + F.l1_loss(out, clean)
                loss.backward()
                opt.step()
            ms, runs = timed(step, a.quick)
        row = {'name': f'model.{kind}', 'shape': f'{preset} {n}x3x{size}x{size}', 'median_ms': round(ms, 3), 'runs': runs,
               'runtime': f'pytorch {torch.__version__} cpu', 'threads': torch.get_num_threads()}
        print(json.dumps(row), flush=True)


if __name__ == '__main__':
    sys.exit(main())
