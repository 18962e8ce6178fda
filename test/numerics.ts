// Shared by the numerics property tests (test/numerics.test.ts, test/slow/numerics-paper.test.ts):
// one seeded case on the GPU against the float64 reference, per-parameter errors next to PyTorch
// float32's from the fixture.
import * as assert from 'uvu/assert';
import { caseImages, caseWeights, gradErrors, type GradError, type NumericsCase } from './ref/cases.js';
import { drdnetReference } from './ref/drdnet.js';
import { refTensor, relL2 } from './ref/tensor.js';
import type { Engine } from '../src/gpu/runtime.js';
import { DrdNet } from '../src/model/drdnet.js';
import { parityStep } from '../src/train/parity.js';

export interface NumericsResult {
  errors: GradError[];
  /** Elements where the engine's float32 forward fell on the other side of a PReLU kink. */
  kinkOverrides: number;
  /** Worst error against plain float64 (no kink matching), for the report. */
  rawWorst: number;
}

/** Checks that the TypeScript mirror (weights, images, reference) builds the fixture's case. */
export function checkMirror(c: NumericsCase, refLoss: number, refGrads: Map<string, Float64Array>): void {
  const img = caseImages(c.seed, c.shape[0], c.shape[2], c.shape[3]);
  assert.ok(relL2(img.rainy, c.rainy) === 0 && relL2(img.clean, c.clean) === 0, `${c.name}: caseImages differs from the fixture's images`);
  assert.ok(Math.abs(refLoss - c.refLoss) <= 1e-6 * Math.abs(c.refLoss), `${c.name}: float64 loss ${refLoss} vs PyTorch's ${c.refLoss}`);
  for (const [n, g] of c.refGrads) {
    const e = relL2(g, refGrads.get(n)!);
    assert.ok(e <= 1e-6, `${c.name}: float64 gradient of ${n} differs from PyTorch's by ${e.toExponential(2)}`);
  }
}

export async function runNumericsCase(e: Engine, c: NumericsCase, contract: number): Promise<NumericsResult> {
  const weights = caseWeights(c.config, c.seed);
  const model = new DrdNet(e, c.config, 0);
  try {
    for (const [n, t] of model.stateDict()) t.write(Float32Array.from(weights.get(n)!));
    const step = await parityStep(model, c.rainy, c.clean, c.shape, 'train', { kinks: true });
    const got = new Map(step.tensors.map((t) => [t.name, t.data as Float32Array]));
    const rainy = refTensor(c.shape, c.rainy);
    const clean = refTensor(c.shape, c.clean);
    const plain = drdnetReference(c.config, weights, rainy, clean, 'train');
    checkMirror(c, plain.loss, plain.grads);
    const matched = drdnetReference(c.config, weights, rainy, clean, 'train', { preluPositive: step.preluPositive, kinkBand: c.kinkBand });
    const rawWorst = Math.max(...gradErrors(c, got, plain.grads, contract).map((r) => r.err));
    return { errors: gradErrors(c, got, matched.grads, contract), kinkOverrides: matched.kinkOverrides, rawWorst };
  } finally {
    model.dispose();
  }
}

export function formatNumerics(c: NumericsCase, r: NumericsResult): string {
  const worst = r.errors.reduce((a, b) => (b.err > a.err ? b : a));
  const ratio = r.errors.reduce((a, b) => (b.err / Math.max(b.torch32, 1e-12) > a.err / Math.max(a.torch32, 1e-12) ? b : a));
  const t32 = Math.max(...c.torch32);
  return (
    `${c.name} [${c.shape.join('x')}]: worst ${worst.err.toExponential(2)} (${worst.name}, torch f32 ${worst.torch32.toExponential(2)}); ` +
    `torch f32 worst ${t32.toExponential(2)}; largest ratio ${(ratio.err / ratio.torch32).toFixed(2)} (${ratio.name}: ${ratio.err.toExponential(2)} vs ${ratio.torch32.toExponential(2)}); ` +
    `kink overrides engine ${r.kinkOverrides}, torch ${c.torch32KinkOverrides}; unmatched worst engine ${r.rawWorst.toExponential(2)}, torch ${Math.max(...c.torch32Raw).toExponential(2)}`
  );
}

export function assertNumerics(c: NumericsCase, r: NumericsResult): void {
  const bad = r.errors.filter((x) => !(x.err <= x.bar));
  assert.ok(bad.length === 0, `${c.name}: ${bad.length} gradients over the bar:\n  ${bad.slice(0, 12).map((x) => `${x.name}: ${x.err.toExponential(2)} > ${x.bar.toExponential(2)} (torch f32 ${x.torch32.toExponential(2)})`).join('\n  ')}`);
  // Kink matching may only absorb float32 rounding: a handful of elements, never a broken PReLU.
  assert.ok(r.kinkOverrides <= 8, `${c.name}: ${r.kinkOverrides} PReLU elements on the other side of the kink than float64`);
}
