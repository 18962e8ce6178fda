// `npm run bench:peers`: the engine next to its peers on this machine, in one run: PyTorch and
// onnxruntime-node on the CPU cores, tfjs-backend-webgpu on the same WebGPU adapter.
//   node bench/peers/run.mjs [--quick] [--swiftshader] [-o rows.jsonl]
// Writes one JSON row per comparison (name, shape, engine_ms, peer, peer_ms, ratio = peer/engine,
// so > 1 means the engine is faster) and prints them as a table. Peers are installed into
// bench/peers/node_modules (onnxruntime-node without its install script: its CPU binaries ship
// in the package); PyTorch is Debian's python3-torch (/usr/bin/python3).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '../..');
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const outIdx = args.indexOf('-o');
const outFile = outIdx >= 0 ? args[outIdx + 1] : null;
const env = { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' };
if (args.includes('--swiftshader')) env.VK_ICD_FILENAMES = '/usr/lib/chromium/vk_swiftshader_icd.json';
const q = quick ? ['--quick'] : [];

const rows = (text) => text.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
const run = (cmd, argv, opts = {}) => execFileSync(cmd, argv, { cwd: root, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 26, ...opts });

if (!existsSync(join(here, 'node_modules/onnxruntime-node'))) {
  run('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: here });
}
// One peer at a time, the engine last, so nothing runs beside anything else.
const peerRows = [];
const convOnly = env.VK_ICD_FILENAMES !== undefined; // SwiftShader: the CPU peers would be the same
if (!convOnly) {
  const onnxDir = mkdtempSync(join(tmpdir(), 'semi-drdnet-peers-'));
  try {
    peerRows.push(...rows(run('/usr/bin/python3', [join(here, 'torch_peer.py'), onnxDir, ...q])));
    peerRows.push(...rows(run('node', [join(here, 'ort_peer.mjs'), onnxDir, ...q])));
  } finally {
    rmSync(onnxDir, { recursive: true, force: true });
  }
}
peerRows.push(...rows(run('node', [join(here, 'tfjs_peer.mjs'), ...q])));
const engineRows = [
  ...rows(run('node', ['scripts/bench.mjs', '--json', '--filter', '1x64x128x128 64->64 k3'])),
  ...(convOnly ? [] : ['model.infer', 'model.train_step'].flatMap((f) => rows(run('node', ['scripts/bench.mjs', '--json', '--filter', f])))),
];

const out = [];
for (const p of peerRows) {
  const ours = engineRows.find((r) => r.name === p.name && r.shape === p.shape);
  if (!ours) continue;
  out.push({ name: p.name, shape: p.shape, engine_ms: ours.median_ms, peer: p.runtime, peer_ms: p.median_ms, ratio: +(p.median_ms / ours.median_ms).toFixed(3), adapter: ours.adapter, engine_config: ours.config });
}
const lines = out.map((r) => JSON.stringify(r)).join('\n') + '\n';
if (outFile) writeFileSync(outFile, lines);
console.log(`| case | engine ms | peer | peer ms | peer/engine |\n|---|---|---|---|---|`);
for (const r of out) console.log(`| ${r.name} ${r.shape} | ${r.engine_ms.toFixed(1)} | ${r.peer} | ${r.peer_ms.toFixed(1)} | ${r.ratio.toFixed(2)} |`);
