// Numerics property test at small size (16 channels, 2+2 blocks; the paper-size version is
// test/slow/numerics-paper.test.ts): seeded paper-like cases (random BN affine and running stats,
// PReLU slopes, streaky 8-bit images, batch 1 and 2, training mode), every parameter gradient
// against float64 within 2x of PyTorch float32's error (fixtures) and under 2e-3, on the
// adapter's own kernel choices, the real-GPU choices and forced split reductions.
import { test } from 'uvu';
import { engine, engineWith } from './helpers.js';
import { assertNumerics, formatNumerics, runNumericsCase } from './numerics.js';
import { loadNumericsCase } from './ref/cases.js';
import { NET_GRAD_RELL2 } from './ref/tensor.js';
import type { AdapterSummary, Engine } from '../src/gpu/runtime.js';
import { channelTuning } from '../src/kernels/batchnorm.js';

const CASES = ['numerics-c16-s101', 'numerics-c16-s102'].map((n) => loadNumericsCase(`test/fixtures/numerics/${n}.safetensors`));

async function check(e: Engine, path: string): Promise<void> {
  for (const c of CASES) {
    const r = await runNumericsCase(e, c, NET_GRAD_RELL2);
    if (process.env.NUMERICS_VERBOSE) console.log(`  ${path}: ${formatNumerics(c, r)}`);
    assertNumerics(c, r);
  }
}

test('numerics: every gradient within 2x of PyTorch float32 and 2e-3 (adapter defaults)', async () => {
  await check(await engine(), 'defaults');
});

test('numerics: the same on the real-GPU kernel choices (workgroup-memory tiles, tree merges)', async () => {
  const e = await engineWith({});
  // Only the kernel choices read this; the device is still the one this machine has.
  (e as unknown as { adapter: AdapterSummary }).adapter = { ...e.adapter, software: false };
  try {
    await check(e, 'gpu-choices');
  } finally {
    e.destroy();
  }
});

test('numerics: the same with every channel reduction split over workgroups', async () => {
  const e = await engine();
  Object.assign(channelTuning(e), { chunk: 97, wg: 32, serial: false });
  try {
    await check(e, 'split');
  } finally {
    Object.assign(channelTuning(e), { chunk: 0, wg: 0, serial: undefined });
  }
});

test.run();
