// Paper-size parity (64 channels, 16 + 16 blocks, 5.2 M parameters): the WebGPU model against the
// float64 CPU reference (every parameter gradient) and against PyTorch (outputs, loss and the
// gradients of a few parameters), in eval mode at 32x32 and train mode at 24x24. Both sides use
// the closed-form weights of formulaWeights (mirrored in scripts/torch_fixtures.py), so no 21 MB
// weights file is committed. Runs with TEST_SLOW=1 node scripts/test.mjs.
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { compareParity, drdnetReference, formatReport, formulaWeights, referenceValues, type NamedValues, type ParityReport, type RefMode } from '../ref/drdnet.js';
import { NET_GRAD_RELL2, NET_OUT_RELL2, refTensor } from '../ref/tensor.js';
import { engine } from '../helpers.js';
import { preset } from '../../src/model/config.js';
import { DrdNet } from '../../src/model/drdnet.js';
import { parityTensors } from '../../src/train/parity.js';
import { parseSafetensors, toFloat32 } from '../../src/io/safetensors.js';
import type { Image } from '../../src/io/image.js';

const FIXTURES = 'test/fixtures/parity';
const GPU_TOL = { out: NET_OUT_RELL2, grad: NET_GRAD_RELL2, loss: 1e-4 };
/** Reference vs PyTorch: both float64 from the same float32 weights; only the F32 storage differs. */
const TORCH_REF_TOL = { out: 1e-6, grad: 1e-6, loss: 1e-6 };

const config = preset('paper');
const weights = formulaWeights(config);

function report(what: string, r: ParityReport): void {
  console.log(`  ${what}: ${formatReport(r)}`);
  assert.ok(r.failures.length === 0, `${what}: ${r.failures.length} mismatches:\n  ${r.failures.slice(0, 12).join('\n  ')}`);
}

for (const c of [
  { name: 'paper-eval', mode: 'eval' as RefMode },
  { name: 'paper-train', mode: 'train' as RefMode },
]) {
  test(`paper preset ${c.mode}: WebGPU vs float64 reference vs PyTorch (${c.name})`, async () => {
    const path = `${FIXTURES}/${c.name}.expected.safetensors`;
    if (!existsSync(path)) throw new Error(`missing fixture ${path} (run: python3 scripts/torch_fixtures.py ${FIXTURES})`);
    const file = parseSafetensors(new Uint8Array(readFileSync(path)), path);
    assert.is(file.metadata.weights, 'formula');
    const want: NamedValues = new Map();
    const shapes = new Map<string, number[]>();
    for (const [n, e] of file.tensors) {
      want.set(n, toFloat32(e, n, path));
      shapes.set(n, e.shape);
    }
    const shape = shapes.get('input.rainy')!;
    const rainy: Image = { width: shape[3], height: shape[2], data: want.get('input.rainy') as Float32Array };
    const clean: Image = { width: shape[3], height: shape[2], data: want.get('input.clean') as Float32Array };

    let t0 = performance.now();
    const ref = drdnetReference(config, weights, refTensor(shape, rainy.data), refTensor(shape, clean.data), c.mode);
    const cpuMs = performance.now() - t0;
    report(`reference vs torch ${c.name}`, compareParity(referenceValues(ref), want, config, c.mode, TORCH_REF_TOL));

    const model = new DrdNet(await engine(), config, 0);
    try {
      for (const [n, t] of model.stateDict()) t.write(Float32Array.from(weights.get(n)!));
      t0 = performance.now();
      const got: NamedValues = new Map((await parityTensors(model, rainy, clean, c.mode)).map((t) => [t.name, t.data as Float32Array]));
      const gpuMs = performance.now() - t0;
      console.log(`  ${c.name} ${shape[3]}x${shape[2]}: float64 reference ${(cpuMs / 1000).toFixed(1)} s, WebGPU step ${(gpuMs / 1000).toFixed(1)} s`);
      report(`gpu vs reference ${c.name}`, compareParity(got, referenceValues(ref), config, c.mode, GPU_TOL));
      report(`gpu vs torch ${c.name}`, compareParity(got, want, config, c.mode, GPU_TOL));
    } finally {
      model.dispose();
    }
  });
}

test.run();
