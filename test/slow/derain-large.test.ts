// A 4000x3000 JPEG through the CLI with tiny weights: completes on a software GPU, and the tile
// seams are invisible (pixels near a seam equal an untiled run of a crop around it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeImage, readImage } from '../../src/io/image-node.js';
import { preset } from '../../src/model/config.js';
import { derainImage, planTiles } from '../../src/model/derain.js';
import { DrdNet } from '../../src/model/drdnet.js';
import { weightsToBytes } from '../../src/model/weights.js';
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

  // Seams: the first vertical tile boundary, checked against a single-tile run of a crop around it.
  const img = await readImage(input);
  const plan = planTiles(model, W, H);
  const full = await derainImage(model, img);
  const x0 = plan.core - 2 * plan.halo;
  const y0 = 1000;
  const cw = 4 * plan.halo;
  const ch = 4 * plan.halo;
  const crop = new Float32Array(3 * cw * ch);
  for (let c = 0; c < 3; c++) for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) {
    crop[c * cw * ch + y * cw + x] = img.data[c * W * H + (y0 + y) * W + x0 + x];
  }
  const local = await derainImage(model, { width: cw, height: ch, data: crop });
  let worst = 0;
  for (let c = 0; c < 3; c++) for (let y = plan.halo; y < ch - plan.halo; y++) for (let x = plan.halo; x < cw - plan.halo; x++) {
    worst = Math.max(worst, Math.abs(local.data[c * cw * ch + y * cw + x] - full.data[c * W * H + (y0 + y) * W + x0 + x]));
  }
  assert.ok(worst <= 1e-4, `seam region differs from an untiled run by ${worst}`);
  model.dispose();
});

test.run();
