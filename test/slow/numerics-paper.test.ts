// Numerics property test at paper size (64 channels, 16+16 blocks): seeded paper-like cases
// (random BN affine and running stats, PReLU slopes, streaky 8-bit images, 17-40 px, batch 1 and
// 2, training mode); every parameter gradient against float64 within 2x of PyTorch float32's error
// on the same case (test/fixtures/numerics) and under the contract's 2e-3. Elements whose float64
// pre-activation is within 1e-4 x RMS of a PReLU kink follow the float32 forward's side on both
// sides of the comparison (see test/ref/drdnet.ts). Runs with TEST_SLOW=1 node scripts/test.mjs.
import { test } from 'uvu';
import { engine } from '../helpers.js';
import { assertNumerics, formatNumerics, runNumericsCase } from '../numerics.js';
import { loadNumericsCase } from '../ref/cases.js';
import { NET_GRAD_RELL2 } from '../ref/tensor.js';

for (const name of ['paper-s201', 'paper-s202', 'paper-s203', 'paper-s204']) {
  test(`numerics at paper size: ${name}`, async () => {
    const c = loadNumericsCase(`test/fixtures/numerics/numerics-${name}.safetensors`);
    const r = await runNumericsCase(await engine(), c, NET_GRAD_RELL2);
    console.log(`  ${formatNumerics(c, r)}`);
    assertNumerics(c, r);
  });
}

test.run();
