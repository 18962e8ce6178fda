// Whole-network parity: the float64 CPU reference (test/ref/drdnet.ts) checked by finite
// differences and against PyTorch fixtures, then the WebGPU model (parityTensors) against both,
// in train and eval mode. Fixtures: scripts/torch_fixtures.py -> test/fixtures/parity/.
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compareParity, drdnetReference, drdStateSpec, formatReport, referenceValues, refSameConv, zeroGradInTrain, type NamedValues, type ParityReport, type RefMode, type RefWeights } from './ref/drdnet.js';
import { directionalCheck } from './ref/gradcheck.js';
import * as R from './ref/ops.js';
import { allclose, mulberry32, NET_GRAD_RELL2, NET_OUT_RELL2, randn, refTensor, relL2, uniform, type RefTensor } from './ref/tensor.js';
import { engine } from './helpers.js';
import { PReLU } from '../src/graph/layers.js';
import { makeConfig, preset, type DrdConfig } from '../src/model/config.js';
import { DrdNet } from '../src/model/drdnet.js';
import { parityTensors } from '../src/train/parity.js';
import { loadModel } from '../src/model/weights.js';
import { parseSafetensors, toFloat32, type ParsedSafetensors } from '../src/io/safetensors.js';
import type { Image } from '../src/io/image.js';
import type { Engine } from '../src/gpu/runtime.js';

const FIXTURES = 'test/fixtures/parity';
const GPU_TOL = { out: NET_OUT_RELL2, grad: NET_GRAD_RELL2, loss: 1e-4 };
/** Reference vs PyTorch: both float64 from the same float32 weights; only the F32 storage of the expected values differs. */
const TORCH_REF_RELL2 = 1e-6;

// ---- shared helpers ----------------------------------------------------------------------------

function readFixture(name: string): ParsedSafetensors {
  const path = `${FIXTURES}/${name}`;
  if (!existsSync(path)) throw new Error(`missing fixture ${path} (run: python3 scripts/torch_fixtures.py ${FIXTURES})`);
  return parseSafetensors(new Uint8Array(readFileSync(path)), path);
}

function fixtureTensors(file: ParsedSafetensors): Map<string, { shape: number[]; data: Float32Array }> {
  const out = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, e] of file.tensors) if (e.dtype === 'F32') out.set(name, { shape: e.shape, data: toFloat32(e, name) });
  return out;
}

const toImage = (t: { shape: readonly number[]; data: ArrayLike<number> }): Image => ({ width: t.shape[3], height: t.shape[2], data: Float32Array.from(t.data) });
const toRef = (img: Image): RefTensor => refTensor([1, 3, img.height, img.width], img.data);

async function modelWeights(model: DrdNet): Promise<RefWeights> {
  const w: RefWeights = new Map();
  for (const [name, t] of model.stateDict()) w.set(name, Float64Array.from(await t.read()));
  return w;
}

function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}

/** PARITY_VERBOSE=1 prints the measured errors. */
function assertReport(what: string, r: ParityReport): void {
  if (process.env.PARITY_VERBOSE) console.log(`  ${what}: ${formatReport(r)}`);
  assert.ok(r.failures.length === 0, `${what}: ${r.failures.length} mismatches:\n  ${r.failures.slice(0, 12).join('\n  ')}`);
}

// ---- reference self-checks (CPU only) -----------------------------------------------------------

test('reference: state layout matches drdStateSpec, paper preset has 5,221,766 parameters', async () => {
  const paper = drdStateSpec(preset('paper'));
  const count = paper.filter((s) => s.kind === 'param').reduce((a, s) => a + s.shape.reduce((p, q) => p * q, 1), 0);
  assert.is(count, 5221766);
  const e = await engine();
  for (const config of [preset('micro'), makeConfig(16, 2, 2), makeConfig(8, 2, 1, { se: false, dilations: [1, 2] })]) {
    const model = new DrdNet(e, config, 3);
    const want = drdStateSpec(config);
    const got = model.stateDict().map(([n, t]) => `${n}:${t.shape.join('x')}`);
    assert.equal(got, want.map((s) => `${s.name}:${s.shape.join('x')}`));
    const params = new Set(model.namedParameters().map(([n]) => n));
    assert.equal([...params], want.filter((s) => s.kind === 'param').map((s) => s.name));
    model.dispose();
  }
});

test('model: paper preset parameter count is 5,221,766', async () => {
  const model = new DrdNet(await engine(), preset('paper'), 0);
  assert.is(model.parameterCount(), 5221766);
  model.dispose();
});

test('reference: direct same-padding conv equals ops.conv2d forward and backward', () => {
  const rng = mulberry32(11);
  for (const [cin, cout, k, d, h, w] of [
    [3, 4, 3, 1, 7, 9],
    [4, 5, 3, 3, 9, 6],
    [2, 3, 3, 5, 5, 8],
    [6, 2, 1, 1, 4, 5],
  ]) {
    const x = randn([2, cin, h, w], rng);
    const wt = randn([cout, cin, k, k], rng);
    const b = randn([cout], rng).data;
    const opts = { pad: (d * (k - 1)) / 2, dilation: d };
    const y = refSameConv.forward(x, wt, b, d);
    const yr = R.conv2d(x, wt, b, opts);
    assert.ok(allclose(y.data, yr.data, 1e-12, 1e-12).ok, `forward k${k} d${d}`);
    const dy = randn(yr.shape, rng);
    const g = refSameConv.backward(x, wt, dy, d);
    const gr = R.conv2dBackward(x, wt, dy, opts);
    assert.ok(allclose(g.dx, gr.dx.data, 1e-12, 1e-12).ok, `dx k${k} d${d}`);
    assert.ok(allclose(g.dw, gr.dw.data, 1e-12, 1e-12).ok, `dw k${k} d${d}`);
    assert.ok(allclose(g.db, gr.db, 1e-12, 1e-12).ok, `db k${k} d${d}`);
  }
});

/** Random weights for a config: uniform conv/linear weights, non-trivial BN, PReLU and running stats. */
function randomWeights(config: DrdConfig, seed: number): RefWeights {
  const rng = mulberry32(seed);
  const specs = drdStateSpec(config);
  const bns = new Set(specs.filter((s) => s.name.endsWith('.running_mean')).map((s) => s.name.slice(0, -'.running_mean'.length)));
  const w: RefWeights = new Map();
  for (const s of specs) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const prefix = s.name.slice(0, s.name.lastIndexOf('.'));
    const leaf = s.name.slice(s.name.lastIndexOf('.') + 1);
    const bound = s.shape.length > 1 ? 1 / Math.sqrt(s.shape.slice(1).reduce((a, b) => a * b, 1)) : 0.3;
    let f: () => number = () => (2 * rng() - 1) * bound;
    if (leaf === 'running_var') f = () => 0.4 + rng();
    else if (leaf === 'running_mean') f = () => 0.4 * (rng() - 0.5);
    else if (leaf === 'weight' && bns.has(prefix)) f = () => 0.6 + 0.8 * rng();
    else if (leaf === 'weight' && s.shape.length === 1) f = () => 0.05 + 0.4 * rng(); // PReLU slopes
    w.set(s.name, Float64Array.from({ length: n }, f));
  }
  return w;
}

function flatten(config: DrdConfig, w: RefWeights): { names: string[]; sizes: number[]; x: Float64Array } {
  const specs = drdStateSpec(config).filter((s) => s.kind === 'param');
  const names = specs.map((s) => s.name);
  const sizes = names.map((n) => w.get(n)!.length);
  const x = new Float64Array(sizes.reduce((a, b) => a + b, 0));
  let o = 0;
  for (const n of names) {
    x.set(w.get(n)!, o);
    o += w.get(n)!.length;
  }
  return { names, sizes, x };
}

for (const [label, config, mode] of [
  ['micro train', preset('micro'), 'train'],
  ['micro eval', preset('micro'), 'eval'],
  ['micro train, detail input 2O-R, dilations 1,2, no SE', { ...preset('micro'), detailInput: '2O-R', dilations: [1, 2], se: false }, 'train'],
  ['6ch 2+1 blocks eval, detail input 2O-R', makeConfig(6, 2, 1, { detailInput: '2O-R' }), 'eval'],
] as Array<[string, DrdConfig, RefMode]>) {
  test(`reference: gradients of every parameter tensor pass a directional finite-difference check (${label})`, () => {
    const rng = mulberry32(23);
    const w = randomWeights(config, 5);
    const o = uniform([1, 3, 7, 9], 0, 1, rng);
    const b = uniform([1, 3, 7, 9], 0, 1, rng);
    const ref = drdnetReference(config, w, o, b, mode);
    const { names, sizes, x } = flatten(config, w);
    const lossAt = (v: Float64Array) => {
      const ww = new Map(w);
      let off = 0;
      names.forEach((n, i) => {
        ww.set(n, v.subarray(off, off + sizes[i]));
        off += sizes[i];
      });
      return drdnetReference(config, ww, o, b, mode, { backward: false }).loss;
    };
    const zero = mode === 'train' ? zeroGradInTrain(config) : new Set<string>();
    let off = 0;
    names.forEach((n, i) => {
      // The direction is random within this tensor's block only, so each tensor is checked separately.
      const sub = x.subarray(off, off + sizes[i]);
      const g = ref.grads.get(n)!;
      const f = (v: Float64Array) => {
        const full = x.slice();
        full.set(v, off);
        return lossAt(full);
      };
      // PReLU, ReLU and L1 kinks make the loss piecewise smooth: a step that straddles one spoils
      // the difference, so a smaller step (and a fresh direction) is tried before failing.
      const agrees = (r: { analytic: number; numeric: number }) => Math.abs(r.analytic - r.numeric) <= 1e-6 * Math.max(Math.abs(r.analytic), Math.abs(r.numeric)) + 1e-9;
      let r = directionalCheck(f, sub.slice(), g, rng, 1e-5);
      for (const h of [1e-6, 1e-7]) if (!agrees(r)) r = directionalCheck(f, sub.slice(), g, rng, h);
      if (zero.has(n)) {
        assert.ok(Math.abs(r.analytic) < 1e-12 && Math.abs(r.numeric) < 1e-8, `${n}: expected a zero gradient, got analytic ${r.analytic}, numeric ${r.numeric}`);
        assert.ok(norm(g) < 1e-12, `${n}: gradient norm ${norm(g)} should be 0`);
      } else {
        assert.ok(agrees(r), `${n}: analytic ${r.analytic} vs numeric ${r.numeric} (rel ${r.relErr.toExponential(2)})`);
      }
      off += sizes[i];
    });
    // And the running statistics: eval keeps them, train applies PyTorch's momentum update.
    for (const [n, v] of ref.runningStats) assert.ok(v.every(Number.isFinite), n);
  });
}

// ---- reference vs PyTorch -----------------------------------------------------------------------

/** Fixture cases written by scripts/torch_fixtures.py (weights file + expected file). */
const TORCH_CASES: Array<{ name: string; mode: RefMode }> = [
  { name: 'micro-train', mode: 'train' },
  { name: 'micro-eval', mode: 'eval' },
  { name: 'c16x2-train', mode: 'train' },
];

for (const c of TORCH_CASES) {
  test(`reference vs PyTorch fixture ${c.name}`, async () => {
    const weightsFile = readFixture(`${c.name}.weights.safetensors`);
    const expected = fixtureTensors(readFixture(`${c.name}.expected.safetensors`));
    const e = await engine();
    // The loader infers the config from a PyTorch-written file with no metadata.
    const { model } = loadModel(e, new Uint8Array(readFileSync(`${FIXTURES}/${c.name}.weights.safetensors`)), c.name);
    const config = model.config;
    model.dispose();
    // The file is a state_dict in PyTorch order: drdStateSpec order, plus I64 num_batches_tracked.
    const byOffset = [...weightsFile.tensors].sort((a, b) => a[1].data.byteOffset - b[1].data.byteOffset);
    assert.equal(
      byOffset.filter(([n]) => !n.endsWith('num_batches_tracked')).map(([n]) => n),
      drdStateSpec(config).map((s) => s.name),
    );
    assert.ok(byOffset.filter(([n]) => n.endsWith('num_batches_tracked')).every(([, e]) => e.dtype === 'I64'));
    const w: RefWeights = new Map();
    for (const [n, t] of fixtureTensors(weightsFile)) w.set(n, Float64Array.from(t.data));
    const ref = drdnetReference(config, w, refTensor(expected.get('input.rainy')!.shape, expected.get('input.rainy')!.data), refTensor(expected.get('input.clean')!.shape, expected.get('input.clean')!.data), c.mode);
    const want: NamedValues = new Map([...expected].map(([n, t]) => [n, t.data]));
    const r = compareParity(referenceValues(ref), want, config, c.mode, { out: TORCH_REF_RELL2, grad: TORCH_REF_RELL2, loss: 1e-6 });
    assertReport(`reference vs torch ${c.name}`, r);
    if (c.mode === 'train') {
      for (const [n, v] of ref.runningStats) {
        const e2 = relL2(v, want.get(`running.${n}`)!);
        assert.ok(e2 < 1e-6, `running.${n}: relative L2 ${e2}`);
      }
    }
  });
}

// ---- WebGPU model vs the reference and PyTorch --------------------------------------------------

async function gpuResults(model: DrdNet, rainy: Image, clean: Image, mode: RefMode): Promise<NamedValues> {
  const res = await parityTensors(model, rainy, clean, mode);
  return new Map(res.map((t) => [t.name, t.data as Float32Array]));
}

/** Non-default BN affine parameters and running statistics, and PReLU slopes, written to the GPU. */
function perturb(model: DrdNet, seed: number): void {
  const rng = mulberry32(seed);
  const vec = (n: number, lo: number, hi: number) => Float32Array.from({ length: n }, () => lo + (hi - lo) * rng());
  for (const [, bn] of model.batchNorms()) {
    const c = bn.weight.size;
    bn.weight.write(vec(c, 0.6, 1.4));
    bn.bias.write(vec(c, -0.2, 0.2));
    bn.runningMean.write(vec(c, -0.3, 0.3));
    bn.runningVar.write(vec(c, 0.3, 1.5));
  }
  for (const [, m] of model.namedModules()) if (m instanceof PReLU) m.weight.write(vec(m.weight.size, 0.05, 0.45));
}

function randomPair(h: number, w: number, seed: number): { rainy: Image; clean: Image } {
  const rng = mulberry32(seed);
  const img = () => ({ width: w, height: h, data: Float32Array.from({ length: 3 * h * w }, () => rng()) });
  return { rainy: img(), clean: img() };
}

const GPU_CASES: Array<{ label: string; config: DrdConfig; mode: RefMode; h: number; w: number }> = [
  { label: '(a) micro, train, 20x24', config: preset('micro'), mode: 'train', h: 20, w: 24 },
  { label: '(b) 16ch 2+2 blocks, train, 19x23', config: makeConfig(16, 2, 2), mode: 'train', h: 19, w: 23 },
  { label: '(c) micro, eval with perturbed running stats, 21x17', config: preset('micro'), mode: 'eval', h: 21, w: 17 },
];

for (const c of GPU_CASES) {
  test(`WebGPU vs float64 reference ${c.label}`, async () => {
    const e: Engine = await engine();
    const model = new DrdNet(e, c.config, 1234);
    try {
      perturb(model, 99);
      const w = await modelWeights(model);
      const { rainy, clean } = randomPair(c.h, c.w, 77);
      const got = await gpuResults(model, rainy, clean, c.mode);
      const ref = drdnetReference(c.config, w, toRef(rainy), toRef(clean), c.mode);
      assertReport(`gpu vs reference ${c.label}`, compareParity(got, referenceValues(ref), c.config, c.mode, GPU_TOL));
      // parityTensors updates the running statistics in train mode (and keeps them in eval mode).
      const state = new Map(model.stateDict());
      for (const [n, v] of ref.runningStats) {
        const err = relL2(await state.get(n)!.read(), v);
        assert.ok(err <= NET_OUT_RELL2, `${n} after the step: relative L2 ${err.toExponential(3)}`);
      }
    } finally {
      model.dispose();
    }
  });
}

for (const c of TORCH_CASES) {
  test(`WebGPU vs PyTorch fixture ${c.name} (weights loaded from the torch-written file)`, async () => {
    const e = await engine();
    const { model } = loadModel(e, new Uint8Array(readFileSync(`${FIXTURES}/${c.name}.weights.safetensors`)), c.name);
    try {
      assert.equal(model.config.dilations, [1, 3, 5]);
      assert.is(model.config.detailInput, 'O');
      assert.ok(model.config.se);
      const expected = fixtureTensors(readFixture(`${c.name}.expected.safetensors`));
      const got = await gpuResults(model, toImage(expected.get('input.rainy')!), toImage(expected.get('input.clean')!), c.mode);
      const want: NamedValues = new Map([...expected].map(([n, t]) => [n, t.data]));
      assertReport(`gpu vs torch ${c.name}`, compareParity(got, want, model.config, c.mode, GPU_TOL));
      if (c.mode === 'train') {
        for (const [n, t] of model.stateDict()) {
          if (!/running_(mean|var)$/.test(n)) continue;
          const err = relL2(await t.read(), want.get(`running.${n}`)!);
          assert.ok(err <= NET_OUT_RELL2, `${n} after the step: relative L2 ${err.toExponential(3)} vs torch`);
        }
      }
    } finally {
      model.dispose();
    }
  });
}

test.run();
