#!/usr/bin/env python3
"""PyTorch parity fixtures for the Semi-DRDNet (DRD-Net backbone) WebGPU engine.

Run (needs PyTorch; tested with Debian's python3-torch 1.13, CPU only; no other packages):

    python3 scripts/torch_fixtures.py test/fixtures/parity
    python3 scripts/torch_fixtures.py numerics test/fixtures/numerics [case...]
    python3 scripts/torch_fixtures.py optim test/fixtures/optim

The `numerics` cases are seeded paper-like networks (case_weights, case_images: mirrored bit for
bit by test/ref/cases.ts) with PyTorch float32's per-parameter gradient error against float64;
`optim` runs torch.optim (Adam, SGD) and MultiStepLR over a few steps.

(If `python3` is a pyenv shim without torch, use /usr/bin/python3.) The output is deterministic:
rerunning reproduces the committed files byte for byte.

It defines the DRD-Net module tree with the module names of the authors' PyTorch code
(syy-whu/DRD-Net networks.py), so state_dict keys equal the engine's names, builds small models,
runs one supervised step (loss = 0.1 * L1(O - R, B) + L1(O - R + D, B), mean absolute error) and
writes, per case:

    <case>.weights.safetensors    the state_dict before the step (F32; num_batches_tracked I64),
                                  with no "semi_drdnet.config" metadata: the engine's loader must
                                  infer the config from shapes and default to dilations 1,3,5,
                                  detail input O and SE on (the authors' architecture)
    <case>.expected.safetensors   input.rainy, input.clean ([1,3,H,W] F32, fed to the engine as
                                  images), output.derained, output.final, loss [1],
                                  grad.<param> for every trainable parameter and, in train mode,
                                  running.<bn>.running_mean / running_var after the step

The paper-size cases (paper-eval, paper-train) have no weights file: their weights follow the
closed-form formula in `formula_weights` (mirrored in test/slow/parity-paper.test.ts), and only
the outputs, loss and the gradients of a few parameters are stored.

Weights and inputs are float32 (as saved). The expected values are computed in float64 from those
float32 values (model.double()), then stored as F32, so they carry no float32 accumulation error.

Safetensors is written by hand (8-byte little-endian header length, JSON header with
dtype/shape/data_offsets and "__metadata__": {"format": "pt"}, raw little-endian data), so the
`safetensors` package is not needed.
"""
import copy
import json
import math
import os
import re
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ------------------------------------------------------------------------------------------------
# The module tree (names as in the authors' networks.py; widths parameterised)


def conv3(cin, cout, dilation=1):
    return nn.Conv2d(cin, cout, (3, 3), stride=(1, 1), padding=dilation, dilation=dilation)


class rain_residual_block(nn.Module):
    def __init__(self, C, hidden):
        super().__init__()
        self.rain_residual_block_head = nn.Sequential(conv3(C, C), nn.BatchNorm2d(C), nn.PReLU(C), conv3(C, C), nn.BatchNorm2d(C))
        self.rain_residual_block_body = nn.Sequential(nn.Linear(C, hidden, False), nn.ReLU(), nn.Linear(hidden, C, False), nn.Sigmoid())

    def forward(self, input):
        x1 = self.rain_residual_block_head(input)
        se = F.adaptive_avg_pool2d(x1, (1, 1))
        se = self.rain_residual_block_body(se.view(se.size(0), se.size(1) * se.size(2) * se.size(3)))
        se = se.unsqueeze(2).unsqueeze(3)
        return torch.add(torch.mul(x1, se), input)


class RainNetwork(nn.Module):
    def __init__(self, C, n_blocks, hidden):
        super().__init__()
        self.rain_net_head = nn.Sequential(conv3(3, C), nn.PReLU(C))
        self.rain_residual_blocks = nn.Sequential(*[rain_residual_block(C, hidden) for _ in range(n_blocks)])
        self.rain_net_body = nn.Sequential(conv3(C, C), nn.BatchNorm2d(C))
        self.tail = nn.Sequential(conv3(C, 3))

    def forward(self, input):
        x0 = self.rain_net_head(input)
        x = self.rain_residual_blocks(x0)
        x = torch.add(self.rain_net_body(x), x0)
        return self.tail(x)


class empty_block(nn.Module):
    """DCCL: parallel dilated 3x3 convs (dilation 1, 3, 5), concatenated, fused by a 1x1 conv."""

    def __init__(self, C):
        super().__init__()
        self.conv1 = nn.Sequential(conv3(C, C, 1))
        self.conv2 = nn.Sequential(conv3(C, C, 3))
        self.conv3 = nn.Sequential(conv3(C, C, 5))
        self.conv4 = nn.Sequential(nn.Conv2d(3 * C, C, (1, 1), stride=(1, 1), padding=0))

    def forward(self, input):
        x = torch.cat((self.conv1(input), self.conv2(input), self.conv3(input)), 1)
        return self.conv4(x)


class back_residual_block(nn.Module):
    def __init__(self, C):
        super().__init__()
        self.back_residual_block_body = nn.Sequential(empty_block(C), nn.BatchNorm2d(C), nn.PReLU(C), empty_block(C), nn.BatchNorm2d(C))

    def forward(self, input):
        return torch.add(self.back_residual_block_body(input), input)


class BackNetwork(nn.Module):
    def __init__(self, C, n_blocks):
        super().__init__()
        self.back_net_head = nn.Sequential(conv3(3, C), nn.PReLU(C))
        self.back_residual_blocks = nn.Sequential(*[back_residual_block(C) for _ in range(n_blocks)])
        self.back_net_body = nn.Sequential(conv3(C, C), nn.BatchNorm2d(C))
        self.tail = nn.Sequential(conv3(C, 3))

    def forward(self, input):
        x0 = self.back_net_head(input)
        x = self.back_residual_blocks(x0)
        x = torch.add(self.back_net_body(x), x0)
        return self.tail(x)


class DRDNetwork(nn.Module):
    def __init__(self, C=64, rain_blocks=16, back_blocks=16, hidden=None):
        super().__init__()
        hidden = hidden or max(1, C // 16)
        self.rain_net = nn.Sequential(RainNetwork(C, rain_blocks, hidden))
        self.back_net = nn.Sequential(BackNetwork(C, back_blocks))

    def forward(self, input):
        rain = self.rain_net(input)
        out1 = torch.sub(input, rain)
        back = self.back_net(input)
        return out1, torch.add(out1, back)


# ------------------------------------------------------------------------------------------------
# Safetensors writer

DTYPES = {np.dtype('<f4'): 'F32', np.dtype('<i8'): 'I64'}


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, numpy array) in file order."""
    header = {'__metadata__': dict(metadata or {'format': 'pt'})}
    blobs = []
    offset = 0
    for name, arr in tensors:
        arr = np.ascontiguousarray(arr)
        if arr.dtype == np.float32:
            arr = arr.astype('<f4')
        elif arr.dtype == np.int64:
            arr = arr.astype('<i8')
        else:
            raise ValueError(f'{name}: unsupported dtype {arr.dtype}')
        raw = arr.tobytes()
        header[name] = {'dtype': DTYPES[arr.dtype], 'shape': list(arr.shape), 'data_offsets': [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, separators=(',', ':')).encode('utf-8')
    text += b' ' * ((8 - len(text) % 8) % 8)  # keep the data 8-byte aligned, as the reference writer does
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def f32(t):
    return t.detach().to(torch.float32).cpu().numpy()


# ------------------------------------------------------------------------------------------------
# Deterministic weights, perturbations and images


def perturb(model, gen):
    """Non-default BN affine/running statistics and PReLU slopes (float32, deterministic)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                C = m.num_features
                m.weight.copy_(0.6 + 0.8 * torch.rand(C, generator=gen))
                m.bias.copy_(0.4 * (torch.rand(C, generator=gen) - 0.5))
                m.running_mean.copy_(0.6 * (torch.rand(C, generator=gen) - 0.5))
                m.running_var.copy_(0.3 + 1.2 * torch.rand(C, generator=gen))
                m.num_batches_tracked.fill_(7)
            elif isinstance(m, nn.PReLU):
                m.weight.copy_(0.05 + 0.4 * torch.rand(m.weight.shape, generator=gen))


def formula_unit(i, k):
    """Integer hash of (element index i, tensor index k) mapped to [0, 1); exact in float64 in both
    Python and JavaScript (every intermediate stays below 2^53)."""
    return ((i * i * 7 + i * 7919 + k * 104729 + 12345) % 65521) / 65521


def named_state(model):
    """BN and PReLU module names, the state_dict, and its tensor names in order (num_batches_tracked excluded)."""
    bn_names = {n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    prelu_names = {n for n, m in model.named_modules() if isinstance(m, nn.PReLU)}
    sd = model.state_dict()
    return bn_names, prelu_names, sd, [n for n in sd if not n.endswith('num_batches_tracked')]


def formula_weights(model):
    """The closed-form weights of the paper-size cases: state_dict tensor k (in state_dict order,
    num_batches_tracked excluded), element i (row-major) gets a value from formula_unit(i, k):
    conv/linear weights (2u-1)/sqrt(fan_in); conv biases (2u-1)/sqrt(fan_in of that conv);
    BN weight 0.5+u, BN bias 0.4(u-0.5), running_mean 0.4(u-0.5), running_var 0.5+u;
    PReLU slopes 0.1+0.3u. Stored as float32."""
    bn_names, prelu_names, sd, names = named_state(model)
    with torch.no_grad():
        for k, name in enumerate(names):
            t = sd[name]
            mod, leaf = name.rsplit('.', 1)
            shape = list(t.shape)
            n = t.numel()
            u = np.array([formula_unit(i, k) for i in range(n)], dtype=np.float64)
            if mod in bn_names:
                v = {'weight': 0.5 + u, 'bias': 0.4 * (u - 0.5), 'running_mean': 0.4 * (u - 0.5), 'running_var': 0.5 + u}[leaf]
            elif mod in prelu_names:
                v = 0.1 + 0.3 * u
            elif leaf == 'weight':
                v = (2 * u - 1) / math.sqrt(int(np.prod(shape[1:])))
            else:  # conv bias: the bound of its conv's weight
                w = sd[mod + '.weight']
                v = (2 * u - 1) / math.sqrt(int(np.prod(list(w.shape)[1:])))
            t.copy_(torch.from_numpy(v.astype(np.float32)).view(shape))


def formula_images(h, w):
    """Deterministic rainy/clean pair in [0, 1] (float32); stored in the fixture, so the test
    reads them rather than recomputing them."""
    c, y, x = np.meshgrid(np.arange(3), np.arange(h), np.arange(w), indexing='ij')
    clean = 0.5 + 0.3 * np.sin(0.37 * x + 0.23 * y + 1.1 * c) * np.cos(0.19 * y - 0.41 * c)
    streak = ((x * 3 + y * 5 + c) % 11 == 0).astype(np.float64) * 0.35
    rainy = np.clip(clean + streak, 0, 1)
    return rainy.astype(np.float32)[None], clean.astype(np.float32)[None]


def random_images(h, w, gen):
    clean = torch.rand(1, 3, h, w, generator=gen)
    # A smoothed background plus sparse bright streaks, kept in [0, 1].
    clean = F.avg_pool2d(F.pad(clean, (1, 1, 1, 1), mode='replicate'), 3, stride=1)
    streak = (torch.rand(1, 3, h, w, generator=gen) > 0.85).float() * 0.4
    rainy = (clean + streak).clamp(0, 1)
    return f32(rainy), f32(clean)


# ------------------------------------------------------------------------------------------------
# Seeded paper-like cases (mirrors test/ref/cases.ts bit for bit)

M32 = 0xFFFFFFFF
U64 = np.uint64


def fmix32(h):
    """murmur3's 32-bit finaliser on uint64 arrays holding 32-bit values (mirrors test/ref/cases.ts);
    every operand is uint64 so numpy never promotes to float."""
    h = np.asarray(h, dtype=U64)
    h = h ^ (h >> U64(16))
    h = (h * U64(0x85EBCA6B)) & U64(M32)
    h = h ^ (h >> U64(13))
    h = (h * U64(0xC2B2AE35)) & U64(M32)
    return h ^ (h >> U64(16))


def case_unit(seed, k, i):
    """caseUnit of test/ref/cases.ts: uniform [0, 1) with 24 bits from (seed, stream k, index i)."""
    base = fmix32(((seed * 0x9E3779B1) + (k * 0x85EBCA77)) & M32)
    i = np.asarray(i, dtype=U64)
    h = fmix32((base + ((i * U64(0xC2B2AE3D)) & U64(M32))) & U64(M32))
    return (h >> U64(8)).astype(np.float64) / 16777216.0


def case_weights(model, seed):
    """caseWeights of test/ref/cases.ts: PyTorch-init convs/linears (U(+-1/sqrt(fan_in)), biases
    too), BN weight U(0.5, 1.5), bias U(-0.2, 0.2), running_mean U(-0.3, 0.3), running_var
    U(0.3, 1.5), PReLU slopes U(0.05, 0.4); state tensor k gets stream k; float32."""
    bn_names, prelu_names, sd, names = named_state(model)
    with torch.no_grad():
        for k, name in enumerate(names):
            t = sd[name]
            mod, leaf = name.rsplit('.', 1)
            if mod in bn_names:
                lo, hi = {'weight': (0.5, 1.5), 'bias': (-0.2, 0.2), 'running_mean': (-0.3, 0.3), 'running_var': (0.3, 1.5)}[leaf]
            elif mod in prelu_names:
                lo, hi = 0.05, 0.4
            else:
                w = sd[mod + '.weight']
                b = 1 / math.sqrt(int(np.prod(list(w.shape)[1:])))
                lo, hi = -b, b
            u = case_unit(seed, k, np.arange(t.numel()))
            t.copy_(torch.from_numpy((lo + (hi - lo) * u).astype(np.float32)).view(t.shape))


def case_images(seed, n, h, w):
    """caseImages of test/ref/cases.ts: smooth 8-bit images and the same with bright diagonal
    streaks, [n, 3, h, w] float32 multiples of 1/255."""
    def u(k, i):
        return case_unit(seed, 100000 + k, i)

    def q(v):
        return np.round(255 * np.clip(v, 0, 1)) / 255  # ties never occur for these values

    rainy = np.zeros((n, 3, h, w))
    clean = np.zeros((n, 3, h, w))
    y, x = np.meshgrid(np.arange(h), np.arange(w), indexing='ij')
    for b in range(n):
        slope = 2 + int(3 * u(0, b))
        period = 6 + int(5 * u(1, b))
        offset = int(period * u(2, b))
        idx = b * h * w + y * w + x
        on = ((x * slope + y + offset) % period == 0) & (u(7, idx) > 0.25)
        streak = np.where(on, 0.3 + 0.4 * u(8, idx), 0.0)
        for c in range(3):
            j = b * 3 + c
            fx, fy = 0.1 + 0.3 * u(3, j), 0.1 + 0.3 * u(4, j)
            ph, amp = 6.283185307179586 * u(5, j), 0.15 + 0.2 * u(6, j)
            base = 0.5 + amp * np.sin(fx * x + fy * y + ph) * np.cos(0.5 * fy * y - 0.7 * fx * x)
            clean[b, c] = q(base)
            rainy[b, c] = q(base + streak)
    return rainy.astype(np.float32), clean.astype(np.float32)


# ------------------------------------------------------------------------------------------------
# One supervised step


def run_step(model32, rainy, clean, mode, grad_names=None):
    """Float64 forward/backward from the float32 weights; returns the expected tensors."""
    model = copy.deepcopy(model32).double()
    model.train(mode == 'train')
    o = torch.from_numpy(rainy).double()
    b = torch.from_numpy(clean).double()
    out1, out = model(o)
    loss = 0.1 * F.l1_loss(out1, b) + F.l1_loss(out, b)
    model.zero_grad()
    loss.backward()
    tensors = [
        ('input.rainy', rainy),
        ('input.clean', clean),
        ('output.derained', f32(out1)),
        ('output.final', f32(out)),
        ('loss', f32(loss.reshape(1))),
    ]
    for name, p in model.named_parameters():
        if grad_names is None or name in grad_names:
            tensors.append((f'grad.{name}', f32(p.grad)))
    if mode == 'train' and grad_names is None:
        for name, t in model.state_dict().items():
            if name.endswith('running_mean') or name.endswith('running_var'):
                tensors.append((f'running.{name}', f32(t)))
    return tensors, float(loss)


def state_tensors(model):
    return [(n, t.detach().cpu().numpy()) for n, t in model.state_dict().items()]


PAPER_GRADS = [
    'rain_net.0.rain_net_head.0.weight',
    'rain_net.0.rain_net_head.1.weight',
    'rain_net.0.rain_residual_blocks.0.rain_residual_block_head.1.weight',
    'rain_net.0.rain_residual_blocks.7.rain_residual_block_body.0.weight',
    'rain_net.0.rain_residual_blocks.15.rain_residual_block_head.4.bias',
    'rain_net.0.tail.0.weight',
    'rain_net.0.tail.0.bias',
    'back_net.0.back_net_head.0.weight',
    'back_net.0.back_residual_blocks.0.back_residual_block_body.2.weight',
    'back_net.0.back_residual_blocks.8.back_residual_block_body.3.conv2.0.bias',
    'back_net.0.back_residual_blocks.8.back_residual_block_body.3.conv4.0.bias',
    'back_net.0.back_residual_blocks.15.back_residual_block_body.4.weight',
    'back_net.0.back_net_body.1.bias',
    'back_net.0.tail.0.weight',
    'back_net.0.tail.0.bias',
]


# ------------------------------------------------------------------------------------------------
# Numerics cases: how far PyTorch float32 gradients are from float64 on a seeded case

ZERO_IN_TRAIN = re.compile(r'(rain_residual_block_head\.[03]\.bias|_net_body\.0\.bias|back_residual_block_body\.[03]\.conv\d+\.0\.bias)$')


def supervised(model, rainy, clean, dtype, prelu_hook=None):
    """One forward/backward in `dtype`; returns (loss, {param: grad float64}, {prelu: input})."""
    model = copy.deepcopy(model).to(dtype)
    model.train()
    inputs = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.PReLU):
            def hook(mod, inp, out, name=name):
                inputs[name] = inp[0].detach().double()
                return prelu_hook(name, mod, inp[0]) if prelu_hook else None
            m.register_forward_hook(hook)
    o = torch.from_numpy(rainy).to(dtype)
    b = torch.from_numpy(clean).to(dtype)
    out1, out = model(o)
    loss = 0.1 * F.l1_loss(out1, b) + F.l1_loss(out, b)
    loss.backward()
    return float(loss), {n: p.grad.double() for n, p in model.named_parameters()}, inputs


def float32_errors(model, rainy, clean, band=1e-4):
    """Relative L2 error of every parameter gradient of PyTorch float32 against float64.

    A float32 forward puts the odd pre-activation that float64 finds within ~1e-7 of a PReLU kink
    on the other side (about one element per paper-size step), which changes some gradients by
    1e-3..1e-1 although every op is accurate. So, as test/ref/drdnet.ts does for the engine, the
    float64 run follows the float32 side for elements within band x RMS of the kink
    ('kink-matched'); 'raw' is against plain float64. Identically-zero gradients (conv biases
    before a training-mode BN, and any that is exactly zero in this case) are measured as
    ||g32 - g64|| / largest gradient norm."""
    loss64, g64, x64 = supervised(model, rainy, clean, torch.float64)
    _, g32, x32 = supervised(model, rainy, clean, torch.float32)
    sides, overrides = {}, 0
    for name, x in x64.items():
        own = x > 0
        near = x.abs() <= band * x.pow(2).mean().sqrt()
        side = torch.where(near, x32[name] > 0, own)
        overrides += int((side != own).sum())
        sides[name] = side

    def forced(name, mod, x):
        return torch.where(sides[name], x, mod.weight.view(1, -1, 1, 1) * x)

    _, g64m, _ = supervised(model, rainy, clean, torch.float64, forced)
    scale = max(float(g.norm()) for n, g in g64.items() if not ZERO_IN_TRAIN.search(n))
    names = list(g64)

    def err(ref):
        out = []
        for n in names:
            d = float((g32[n] - ref[n]).norm())
            # Also a gradient that is zero in this case (an SE hidden unit that the ReLU shuts off).
            zero = ZERO_IN_TRAIN.search(n) or float(ref[n].norm()) == 0
            out.append(d / scale if zero else d / float(ref[n].norm()))
        return np.array(out, dtype=np.float32)

    return names, err(g64m), err(g64), overrides, loss64, g64


# (name, channels, blocks, seed, batch, height, width): sizes 17-40, batch 1 and 2.
NUMERICS_CASES = [
    ('c16-s101', 16, 2, 101, 1, 19, 23),
    ('c16-s102', 16, 2, 102, 2, 17, 20),
    ('paper-s201', 64, 16, 201, 1, 24, 24),
    ('paper-s202', 64, 16, 202, 2, 17, 29),
    ('paper-s203', 64, 16, 203, 1, 40, 31),
    ('paper-s204', 64, 16, 204, 2, 26, 21),
]
# Float64 gradients stored for checking that the TypeScript mirror builds the same case.
MIRROR_GRADS = ['rain_net.0.rain_net_head.0.weight', 'rain_net.0.rain_residual_blocks.1.rain_residual_block_body.0.weight',
                'back_net.0.back_residual_blocks.1.back_residual_block_body.1.bias', 'back_net.0.tail.0.bias']


def save_numerics(out_dir, only=None):
    for case, C, blocks, seed, n, h, w in NUMERICS_CASES:
        if only and case not in only:
            continue
        model = DRDNetwork(C, blocks, blocks)
        case_weights(model, seed)
        rainy, clean = case_images(seed, n, h, w)
        names, err, raw, overrides, loss64, g64 = float32_errors(model, rainy, clean)
        tensors = [('input.rainy', rainy), ('input.clean', clean), ('torch32.err', err), ('torch32.err_raw', raw),
                   ('ref.loss', np.array([loss64], dtype=np.float32))]
        tensors += [(f'ref.grad.{g}', f32(g64[g])) for g in MIRROR_GRADS]
        meta = {'format': 'pt', 'case': json.dumps({'channels': C, 'blocks': blocks, 'seed': seed, 'kink_band': 1e-4,
                                                    'torch32_kink_overrides': overrides, 'params': names})}
        write_safetensors(os.path.join(out_dir, f'numerics-{case}.safetensors'), tensors, meta)
        print(f'numerics-{case}: {n}x3x{h}x{w}, torch float32 worst {err.max():.2e} kink-matched '
              f'({overrides} kink overrides), {raw.max():.2e} raw')



# ------------------------------------------------------------------------------------------------
# Optimizers and the learning-rate schedule


def save_optim(out_dir):
    """Adam and SGD (torch.optim) over 6 steps on fixed parameters and a fixed gradient sequence;
    MultiStepLR's lr at every step of a 12-step run. Float64 (the engine's kernels are float32)."""
    gen = torch.Generator().manual_seed(77)
    p0 = (torch.rand(37, generator=gen, dtype=torch.float64) - 0.5) * 2
    grads = [(torch.rand(37, generator=gen, dtype=torch.float64) - 0.5) * 10 ** (torch.rand(37, generator=gen, dtype=torch.float64) * 4 - 3) for _ in range(6)]
    cases = {
        'adam': (torch.optim.Adam, dict(lr=1e-2, betas=(0.9, 0.999), eps=1e-8)),
        'adam_wd_eps': (torch.optim.Adam, dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.1)),
        'sgd': (torch.optim.SGD, dict(lr=0.1)),
        'sgd_momentum': (torch.optim.SGD, dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    }
    tensors = [('p0', f32(p0))] + [(f'grad.{i}', f32(g)) for i, g in enumerate(grads)]
    # The engine reads the float32 values back, so the reference starts from them too.
    p0 = torch.from_numpy(f32(p0)).double()
    grads = [torch.from_numpy(f32(g)).double() for g in grads]
    meta = {}
    for name, (cls, kw) in cases.items():
        p = p0.clone().requires_grad_(True)
        opt = cls([p], **kw)
        for i, g in enumerate(grads):
            p.grad = g.clone()
            opt.step()
            tensors.append((f'{name}.step{i + 1}', f32(p.detach())))
        meta[name] = {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[3, 7, 8], gamma=0.5)
    lrs = []
    for _ in range(12):
        lrs.append(opt.param_groups[0]['lr'])
        opt.step()
        sched.step()
    tensors.append(('multistep.lr', np.array(lrs, dtype=np.float32)))
    meta['multistep'] = {'base': 0.4, 'milestones': [3, 7, 8], 'gamma': 0.5}
    write_safetensors(os.path.join(out_dir, 'optim.safetensors'), tensors, {'format': 'pt', 'cases': json.dumps(meta)})
    print(f'optim: {len(cases)} optimizers x {len(grads)} steps, MultiStepLR over {len(lrs)} steps')


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == 'numerics':
        os.makedirs(sys.argv[2], exist_ok=True)
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        save_numerics(sys.argv[2], sys.argv[3:])
        return
    if len(sys.argv) == 3 and sys.argv[1] == 'optim':
        os.makedirs(sys.argv[2], exist_ok=True)
        save_optim(sys.argv[2])
        return
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    torch.set_num_threads(max(1, os.cpu_count() or 1))

    def save(case, model, mode, h, w, seed):
        gen = torch.Generator().manual_seed(seed)
        perturb(model, gen)
        rainy, clean = random_images(h, w, gen)
        write_safetensors(os.path.join(out_dir, f'{case}.weights.safetensors'), state_tensors(model))
        tensors, loss = run_step(model, rainy, clean, mode)
        write_safetensors(os.path.join(out_dir, f'{case}.expected.safetensors'), tensors)
        print(f'{case}: {mode} {h}x{w} loss {loss:.6f}, {sum(p.numel() for p in model.parameters())} params')

    torch.manual_seed(20240601)
    save('micro-train', DRDNetwork(4, 1, 1), 'train', 19, 23, 1)
    torch.manual_seed(20240602)
    save('micro-eval', DRDNetwork(4, 1, 1), 'eval', 17, 21, 2)
    torch.manual_seed(20240603)
    save('c16x2-train', DRDNetwork(16, 2, 2), 'train', 20, 24, 3)

    paper = DRDNetwork(64, 16, 16)
    formula_weights(paper)
    for case, mode, h, w in (('paper-eval', 'eval', 32, 32), ('paper-train', 'train', 24, 24)):
        rainy, clean = formula_images(h, w)
        tensors, loss = run_step(paper, rainy, clean, mode, set(PAPER_GRADS))
        write_safetensors(os.path.join(out_dir, f'{case}.expected.safetensors'), tensors, {'format': 'pt', 'weights': 'formula'})
        print(f'{case}: {mode} {h}x{w} loss {loss:.6f}')


if __name__ == '__main__':
    main()
