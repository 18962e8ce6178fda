// A strict TypeScript consumer of the installed package (scripts/check-package.mjs copies it into a
// scratch project outside the repo, type-checks it without skipLibCheck, and runs it under Node).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Adam, DilatedContextBlock, Engine, PReLU, Rng, Sequential, SqueezeExcite, Tensor, backward, clampImage, dawnGpu, decodeImage, defineOp,
  encodeImage, l1Loss, loadDerainer, loadModule, readImage, saveModule, tidy, writeImage,
  type AdamOptions, type Image, type Layer, type Op,
} from 'semi-drdnet';

// A custom op with its own WGSL: y = 2x, dy/dx = 2.
const double: Op<undefined> = defineOp<undefined>({
  name: 'double',
  forward(_ctx, [x]) {
    const y = Tensor.empty(x.engine, x.shape);
    x.engine.dispatch({
      label: 'double',
      code: `@group(0) @binding(1) var<storage, read> x: array<f32>;
             @group(0) @binding(2) var<storage, read_write> y: array<f32>;
             @compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
               if (g.x < arrayLength(&y)) { y[g.x] = 2.0 * x[g.x]; }
             }`,
      bindings: [{ buffer: x.buffer, size: x.size * 4 }, { buffer: y.buffer, size: y.size * 4 }],
      workgroups: [Math.ceil(x.size / 64)],
    });
    return y;
  },
  backward: (_ctx, [dy]) => [dy ? double([dy], undefined)[0] : null],
});

class Double extends Sequential implements Layer {
  override forward(x: Tensor): Tensor {
    return double([super.forward(x)], undefined)[0];
  }
}

// The package's own dawn.node GPU object: one per process, so devices from it are never orphaned.
assert.equal(dawnGpu(), dawnGpu());
const engine = await Engine.create();
const rng = new Rng(7);
const C = 8;
const build = () => new Double(new DilatedContextBlock(engine, rng, C, [1, 2]), new PReLU(engine, C), new SqueezeExcite(engine, rng, C));
const net = build();
const x = Tensor.fromData(engine, Float32Array.from({ length: 2 * C * 12 * 12 }, (_, i) => Math.sin(i)), [2, C, 12, 12]);
const target = Tensor.fromData(engine, new Float32Array(2 * C * 12 * 12).fill(0.1), [2, C, 12, 12]);
const adamOpts: AdamOptions = { lr: 1e-2 };
const opt = new Adam(net.parameters(), adamOpts);
const losses: number[] = [];
for (let step = 0; step < 8; step++) {
  const loss = tidy(() => l1Loss(net.forward(x), target));
  backward(loss);
  opt.step();
  opt.zeroGrad();
  losses.push(await loss.item());
  loss.dispose();
}
assert.ok(losses[7]! < losses[0]!, `loss did not fall: ${losses.join(', ')}`);

// saveModule / loadModule round trip into a fresh module with state_dict names.
const bytes = await saveModule(net);
const copy = build();
loadModule(copy, bytes);
const [a, b] = await Promise.all([tidy(() => net.forward(x)).read(), tidy(() => copy.forward(x)).read()]);
assert.deepEqual(a, b);
assert.ok(copy.stateDict().some(([n]) => n === '0.conv1.0.weight'), 'DilatedContextBlock names as in DRD-Net');
assert.ok(copy.stateDict().some(([n]) => n === '2.0.weight'), 'SqueezeExcite names as nn.Sequential(Linear, ReLU, Linear, Sigmoid)');

// One-call inference with the bundled weights, on the engine above; module mode left alone.
const derainer = await loadDerainer({ engine });
derainer.model.train();
const dir = mkdtempSync(join(tmpdir(), 'semi-drdnet-consumer-'));
try {
  const photo: Image = { width: 40, height: 30, data: Float32Array.from({ length: 3 * 40 * 30 }, (_, i) => (i % 17) / 17) };
  await writeImage(join(dir, 'in.png'), photo);
  const read = await readImage(join(dir, 'in.png'));
  const out = await derainer.derain(read);
  assert.equal(out.width, 40);
  assert.ok(out.data.every(Number.isFinite));
  assert.equal(derainer.model.training, true, 'derain left the model in training mode');
  // A flip self-ensemble: the mean of the image's and its mirror's results, not the plain result.
  const mirrored = await derainer.derain(read, { ensemble: 2 });
  assert.ok(mirrored.data.some((v, i) => Math.abs(v - out.data[i]!) > 1e-4), 'ensemble 2 gave the plain result');
  await writeImage(join(dir, 'out.jpg'), out);
  // Bytes in, bytes out, without files.
  const again = decodeImage(encodeImage(clampImage(out), 'png'));
  assert.equal(again.height, 30);
} finally {
  rmSync(dir, { recursive: true, force: true });
  derainer.dispose();
}
opt.dispose();
net.dispose();
copy.dispose();
engine.destroy();
console.log(`consumer: ok (loss ${losses[0]!.toFixed(4)} -> ${losses[7]!.toFixed(4)})`);
