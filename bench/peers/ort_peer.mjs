// onnxruntime-node (CPU) peer of `semi-drdnet bench`: times the ONNX files torch_peer.py exported.
//   node bench/peers/ort_peer.mjs <dir-with-onnx> [--quick]
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import ort from 'onnxruntime-node';

const [dir, ...flags] = process.argv.slice(2);
const quick = flags.includes('--quick');
const threads = cpus().length;
for (const file of readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort()) {
  const [preset, size] = file.replace(/\.onnx$/, '').split('-');
  const [h, w] = size.split('x').map(Number);
  const session = await ort.InferenceSession.create(join(dir, file), { intraOpNumThreads: threads, graphOptimizationLevel: 'all' });
  const data = Float32Array.from({ length: 3 * h * w }, (_, i) => ((i * 2654435761) % 1000) / 1000);
  const feeds = { rainy: new ort.Tensor('float32', data, [1, 3, h, w]) };
  await session.run(feeds); // warm-up
  const times = [];
  const end = performance.now() + (quick ? 1000 : 5000);
  while (times.length < 3 || (performance.now() < end && times.length < 50)) {
    const t0 = performance.now();
    await session.run(feeds);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const median = times[times.length >> 1];
  console.log(JSON.stringify({ name: 'model.infer', shape: `${preset} 1x3x${h}x${w}`, median_ms: +median.toFixed(3), runs: times.length, runtime: `onnxruntime-node ${ort.env.versions.common} cpu`, threads }));
  await session.release();
}
