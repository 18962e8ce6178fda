// A 4000x3000 JPEG through the CLI with tiny weights: completes on a software GPU, and the tile
// seams are invisible (two different tilings of it agree to float precision).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeImage, readImage } from '../../src/io/image-node.js';
import { preset } from '../../src/model/config.js';
import { derainImage, planTiles } from '../../src/model/derain.js';
import { DrdNet } from '../../src/model/drdnet.js';
import { loadModel, weightsToBytes } from '../../src/model/weights.js';
import { bundledWeightsPath } from '../../src/api/node.js';
import { engine } from '../helpers.js';

test('derain of a 4000x3000 JPEG with tiny weights, seams invisible', async () => {
  const e = await engine();
  const dir = mkdtempSync(join(tmpdir(), 'semi-drdnet-large-'));
  const W = 4000;
  const H = 3000;
  const data = new Float32Array(3 * W * H);
  for (let c = 0; c < 3; c++) for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) {
    data[c * W * H + y * W + x] = 0.5 + 0.4 * Math.sin(x / (37 + 11 * c)) * Math.cos(y / 53) + ((x * 7 + y * 13) % 17 === 0 ? 0.1 : 0);
  }
  const input = join(dir, 'big.jpg');
  writeFileSync(input, encodeImage({ width: W, height: H, data }, 'jpg'));
  const model = new DrdNet(e, preset('tiny'), 4);
  const weights = join(dir, 'tiny.safetensors');
  writeFileSync(weights, await weightsToBytes(model));
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['bin/semi-drdnet.js', 'derain', input, '-o', join(dir, 'out'), '--weights', weights], { encoding: 'utf8', timeout: 1800000 });
  assert.is(r.status, 0, r.stderr);
  console.log(`  4000x3000 tiny derain: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const out = await readImage(join(dir, 'out', 'big.jpg'));
  assert.is(out.width, W);
  assert.is(out.height, H);

  // Seams: tiles carry their receptive field and the SE gates pool the whole image across tiles,
  // so two different tilings must agree everywhere (an untiled run of a crop would not: its
  // gates pool the crop). The bundled weights' gates vary with the image, unlike a random init's.
  const img = await readImage(input);
  const plan = planTiles(model, W, H);
  assert.ok(plan.tiles > 1, 'the default plan tiles a 12 MP image');
  const { model: bundled } = loadModel(e, readFileSync(bundledWeightsPath()), 'bundled');
  const a = await derainImage(bundled, img);
  const b = await derainImage(bundled, img, { tile: Math.floor(plan.core / 2) + 7 });
  let worst = 0;
  for (let i = 0; i < a.data.length; i++) worst = Math.max(worst, Math.abs(a.data[i] - b.data[i]));
  assert.ok(worst <= 1e-4, `two tilings differ by ${worst}`);
  bundled.dispose();
  model.dispose();
});

test.run();
