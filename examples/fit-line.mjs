// @ts-check
// Library use inside someone else's WebGPU program: bring your own device and buffers, fit
// y = a*x + b by gradient descent on the GPU, get the answer back in your own buffer.
import { Engine, SGD, Tensor, add, backward, dawnGpu, mseLoss, mul, tidy } from 'semi-drdnet';

// The host application's own device and data (in a browser: navigator.gpu). In Node, dawnGpu() is
// the package's dawn.node GPU object, held for the whole process: dawn.node destroys a device once
// the object that made it is garbage-collected (with the `webgpu` package's own `create()`, keep
// that object reachable, or pass it as `Engine.create({ device, gpu })`).
const adapter = await dawnGpu().requestAdapter();
if (!adapter) throw new Error('no WebGPU adapter: install a Vulkan driver (without a GPU: Mesa lavapipe)');
const device = await adapter.requestDevice();
const n = 256;
const xs = Float32Array.from({ length: n }, (_, i) => i / n);
const ys = xs.map((x) => 3 * x - 0.5 + 0.01 * Math.sin(97 * x)); // a = 3, b = -0.5, a little noise
const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;
const xBuf = device.createBuffer({ size: n * 4, usage });
const yBuf = device.createBuffer({ size: n * 4, usage });
const resultBuf = device.createBuffer({ size: 8, usage }); // receives [a, b]
device.queue.writeBuffer(xBuf, 0, xs);
device.queue.writeBuffer(yBuf, 0, ys);

// The engine adopts the device (and never destroys it); tensors wrap the buffers without copies.
const engine = await Engine.create({ device });
const x = Tensor.wrap(engine, xBuf, [n]);
const y = Tensor.wrap(engine, yBuf, [n]);
const a = Tensor.fromData(engine, [0], [1]);
const b = Tensor.fromData(engine, [0], [1]);
a.requiresGrad = b.requiresGrad = true;
const opt = new SGD([a, b], { lr: 0.5, momentum: 0.9 });

for (let step = 0; step < 300; step++) {
  const loss = tidy(() => mseLoss(add(mul(x, a), b), y));
  backward(loss);
  opt.step();
  opt.zeroGrad();
  if (step % 100 === 0) console.log(`step ${step}: loss ${(await loss.item()).toFixed(6)}`);
  loss.dispose();
}

// Results go back into the caller's buffer, then the caller maps it as usual.
a.copyTo(resultBuf, 0);
b.copyTo(resultBuf, 4);
const [fa, fb] = new Float32Array(await engine.read(resultBuf, 0, 8));
console.log(`fitted a = ${fa.toFixed(4)}, b = ${fb.toFixed(4)} (true 3, -0.5)`);
if (Math.abs(fa - 3) > 0.05 || Math.abs(fb + 0.5) > 0.05) process.exitCode = 1;

opt.dispose();
for (const t of [x, y, a, b]) t.dispose();
engine.destroy(); // frees the engine's pool; the device stays the caller's
console.log(`device still usable: ${device.createBuffer({ size: 4, usage }).size === 4}`);
