// Writes the weighted average (1-t)*A + t*B of two weights files of one architecture: the last step
// of the bundled recipe (scripts/train-bundled.sh) averages its two stages (WiSE-FT; t = 0.5).
//   node scripts/run-ts.mjs scripts/average-weights.ts <a.safetensors> <b.safetensors> <out.safetensors> [t]
import { STATE_PREFIXES, checkFinite } from '../src/graph/state.js';
import { readSafetensorsBytes, writeFileAtomic } from '../src/io/fs-node.js';
import { parseSafetensors, serializeSafetensors, toFloat32, type SerializableTensor } from '../src/io/safetensors.js';

const [a, b, out, tArg = '0.5'] = process.argv.slice(2);
const t = Number(tArg);
if (!a || !b || !out || !(t >= 0 && t <= 1)) {
  console.error('usage: average-weights.ts <a.safetensors> <b.safetensors> <out.safetensors> [t in 0..1, default 0.5]');
  process.exit(2);
}
const A = parseSafetensors(await readSafetensorsBytes(a), a);
const B = parseSafetensors(await readSafetensorsBytes(b), b);
// Weights only: a checkpoint's optimizer moments and step counter are not averaged.
const isWeight = (name: string) => !STATE_PREFIXES.some((p) => name.startsWith(p));
const names = [...A.tensors.keys()].filter(isWeight);
const namesB = [...B.tensors.keys()].filter(isWeight);
if (names.length !== namesB.length || names.some((n) => !B.tensors.has(n))) {
  console.error(`average-weights: '${a}' and '${b}' hold different tensors (not the same architecture)`);
  process.exit(1);
}
const averaged = new Map<string, SerializableTensor>();
for (const name of names) {
  const ea = A.tensors.get(name)!;
  const eb = B.tensors.get(name)!;
  if (ea.dtype !== eb.dtype || ea.shape.join() !== eb.shape.join()) {
    console.error(`average-weights: tensor '${name}' is ${ea.dtype} [${ea.shape}] in '${a}' but ${eb.dtype} [${eb.shape}] in '${b}'`);
    process.exit(1);
  }
  if (ea.dtype === 'F32') {
    const x = toFloat32(ea, name, a);
    const y = toFloat32(eb, name, b);
    const data = x.map((v, i) => (1 - t) * v + t * y[i]!);
    checkFinite(data, name, out);
    averaged.set(name, { dtype: 'F32', shape: ea.shape, data });
  } else if (ea.dtype === 'I64') {
    // BN's num_batches_tracked: a counter, not a weight; A's is kept.
    averaged.set(name, { dtype: 'I64', shape: ea.shape, data: new BigInt64Array(new Uint8Array(ea.data).buffer) });
  } else {
    console.error(`average-weights: tensor '${name}' has dtype ${ea.dtype} (F32 and I64 only)`);
    process.exit(1);
  }
}
await writeFileAtomic(out, serializeSafetensors(averaged, A.metadata));
console.log(`average-weights: ${(1 - t).toFixed(2)} x ${a} + ${t.toFixed(2)} x ${b} -> ${out} (${averaged.size} tensors)`);
