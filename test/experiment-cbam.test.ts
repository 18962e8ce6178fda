// The researcher's-module example (experiments/cbam-gate.ts) against float64 references, DrdNet's block hooks, and the variant-module loader's errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CbamGate, channelPool, rainGate } from '../experiments/cbam-gate.js';
import { Conv2d } from '../src/graph/layers.js';
import { Tensor, tidy } from '../src/core/tensor.js';
import { preset } from '../src/model/config.js';
import { DrdNet } from '../src/model/drdnet.js';
import { loadVariantModule } from '../src/train/variant-module.js';
import { Rng } from '../src/util/rng.js';
import { assertMessage, rejectionOf } from './errors.js';
import { checkOp } from './gradcheck-gpu.js';
import { engine } from './helpers.js';
import * as R from './ref/ops.js';
import { mulberry32, randn, refTensor, type RefTensor } from './ref/tensor.js';

/** float64 channelPool: [N,C,H,W] -> [N,2,H,W] = (mean over C, max over C). */
function refChannelPool(x: RefTensor): RefTensor {
  const [n, c, h, w] = x.shape;
  const hw = h * w;
  const y = refTensor([n, 2, h, w]);
  for (let b = 0; b < n; b++) {
    for (let s = 0; s < hw; s++) {
      let total = 0;
      let best = -Infinity;
      for (let k = 0; k < c; k++) {
        const v = x.data[(b * c + k) * hw + s];
        total += v;
        best = Math.max(best, v);
      }
      y.data[2 * b * hw + s] = total / c;
      y.data[(2 * b + 1) * hw + s] = best;
    }
  }
  return y;
}

test('channelPool (custom WGSL op): forward and backward against float64 central differences', async () => {
  const e = await engine();
  // Gaussian inputs: per-pixel channel maxima are separated by far more than the difference step.
  await checkOp(e, { name: 'channelPool', inputs: [randn([2, 5, 4, 3], mulberry32(31))], gpu: ([x]) => channelPool([x], undefined)[0], ref: ([x]) => refChannelPool(x) });
});

test('CbamGate (SE, channelPool, 5x5 conv, sigmoid, broadcast multiply) matches its float64 composition, values and input gradient', async () => {
  const e = await engine();
  const C = 6;
  const gate = new CbamGate(e, new Rng(7), C, 2, 5);
  const read = async (t: Tensor) => refTensor(t.shape, await t.read());
  const [w1, w2] = [await read(gate.channel.fc1.weight), await read(gate.channel.fc2.weight)];
  const [cw, cb] = [await read(gate.spatial.weight), await gate.spatial.bias!.read()];
  const composed = (x: RefTensor) => {
    const h = R.squeezeExcite(x, w1, w2);
    return R.mul(h, R.sigmoid(R.conv2d(refChannelPool(h), cw, cb, { pad: 2 })));
  };
  await checkOp(e, { name: 'cbamGate', inputs: [randn([2, C, 7, 6], mulberry32(32))], gpu: ([x]) => gate.forward(x), ref: ([x]) => composed(x), directional: true });
  gate.dispose();
});

test('DrdNet block hooks: a rainGate factory replaces SE under its state_dict name, once per block, with the network\'s generator', async () => {
  const e = await engine();
  const config = { ...preset('micro'), rainBlocks: 2 };
  const indices: number[] = [];
  const net = new DrdNet(e, config, 3, {
    rainGate: (ctx) => {
      indices.push(ctx.index);
      return rainGate({ ...ctx, options: { kernel: 3 } });
    },
  });
  assert.equal(indices, [0, 1]);
  const names = net.stateDict().map(([n]) => n);
  assert.ok(names.includes('rain_net.0.rain_residual_blocks.1.rain_residual_block_body.spatial.weight'), names.join(' '));
  assert.ok(names.includes('rain_net.0.rain_residual_blocks.0.rain_residual_block_body.channel.0.weight'));
  // The head convs are drawn before the gate, so they match the plain network's.
  const plain = new DrdNet(e, config, 3);
  const head = 'rain_net.0.rain_residual_blocks.0.rain_residual_block_head.0.weight';
  const find = (m: DrdNet) => m.stateDict().find(([n]) => n === head)![1];
  assert.equal(await find(net).read(), await find(plain).read());
  // A whole-block replacement: detail blocks become a plain conv each.
  const swapped = new DrdNet(e, config, 3, { detailBlock: (ctx) => new Conv2d(ctx.engine, ctx.rng, ctx.channels, ctx.channels, 3, { padding: 1 }) });
  assert.ok(swapped.stateDict().some(([n]) => n === 'back_net.0.back_residual_blocks.0.weight'));
  const x = Tensor.fromData(e, new Float32Array(2 * 3 * 12 * 12).fill(0.5), [2, 3, 12, 12]);
  for (const m of [net, swapped]) assert.equal([...(await tidy(() => m.forward(x).final).read()).slice(0, 1)].length, 1);
  for (const m of [net, plain, swapped]) m.dispose();
  x.dispose();
});

test('loadVariantModule: missing file, syntax error (line and column), no factory, network with block factories', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'semi-drdnet-variant-'));
  const put = (name: string, text: string) => (writeFileSync(join(dir, name), text), join(dir, name));
  assertMessage(await rejectionOf(loadVariantModule(join(dir, 'absent.ts'))), 'absent.ts', 'no such variant module');
  assertMessage(await rejectionOf(loadVariantModule(put('broken.ts', 'export const rainGate = (ctx: {}) => {\n  return );\n};\n'))), 'broken.ts:2:', 'Unexpected');
  assertMessage(await rejectionOf(loadVariantModule(put('none.ts', 'export const gate = 1;\n'))), 'none.ts', 'exports none of the factories', 'rainGate');
  assertMessage(await rejectionOf(loadVariantModule(put('both.js', 'export const network = () => null;\nexport const rainGate = () => null;\n'))), 'both.js', "'network' together with rainGate");
  assertMessage(await rejectionOf(loadVariantModule(put('notfn.ts', 'export const detailBlock = 3;\n'))), 'notfn.ts', "'detailBlock' must be a function");
  const ok = await loadVariantModule(put('ok.ts', 'export function detailBlock(ctx: { channels: number }) { return ctx.channels; }\n'));
  assert.equal(Object.keys(ok), ['detailBlock']);
});

test.run();
