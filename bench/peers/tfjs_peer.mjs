// tfjs-backend-webgpu peer of `semi-drdnet bench`: the conv rows (fwd, d3 fwd, dgrad, wgrad) on the
// same Dawn adapter the engine uses (lavapipe, or SwiftShader through VK_ICD_FILENAMES).
//   node bench/peers/tfjs_peer.mjs [--quick]
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
Object.defineProperty(globalThis, 'navigator', { value: { gpu: create([]) }, configurable: true });
const tf = await import('@tensorflow/tfjs-core');
await import('@tensorflow/tfjs-backend-webgpu');
await tf.setBackend('webgpu');
await tf.ready();
const quick = process.argv.includes('--quick');
const adapter = await navigator.gpu.requestAdapter();
const adapterName = `${adapter.info.description || adapter.info.vendor}`.trim();

const [N, C, H, W] = [1, 64, 128, 128];
const flops = 2 * N * C * C * 9 * H * W;
const x = tf.randomUniform([N, H, W, C]); // tfjs is NHWC
const w = tf.randomUniform([3, 3, C, C]);
const dy = tf.randomUniform([N, H, W, C]);
const cases = [
  ['conv2d.fwd', '', () => tf.conv2d(x, w, 1, 'same')],
  ['conv2d.fwd', ' d3', () => tf.conv2d(x, w, 1, 'same', 'NHWC', 3)],
  ['conv2d.dgrad', '', () => tf.conv2dTranspose(dy, w, [N, H, W, C], 1, 'same')],
  // The kernel tf.conv2d's gradient calls for the filter (tfjs-core alone registers no gradients).
  ['conv2d.wgrad', '', () => tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, { strides: 1, pad: 'same', dataFormat: 'NHWC', filterShape: [3, 3, C, C] })],
];
for (const [name, suffix, op] of cases) {
  // Batches of launches with one readback each, so the readback is amortised like the engine's timing.
  const batch = async (reps) => {
    const t0 = performance.now();
    let y = null;
    for (let i = 0; i < reps; i++) {
      y?.dispose();
      y = op();
    }
    await y.data();
    y.dispose();
    return (performance.now() - t0) / reps;
  };
  await batch(2);
  const times = [];
  const end = performance.now() + (quick ? 2000 : 8000);
  while (times.length < 3 || (performance.now() < end && times.length < 20)) times.push(await batch(3));
  times.sort((a, b) => a - b);
  const median = times[times.length >> 1];
  console.log(JSON.stringify({ name, shape: `1x64x128x128 64->64 k3${suffix}`, median_ms: +median.toFixed(3), gflops: +(flops / median / 1e6).toFixed(3), runs: times.length, runtime: `tfjs-backend-webgpu ${tf.version_core}`, adapter: adapterName }));
}
process.exit(0);
