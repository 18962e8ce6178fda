// Training through the CLI: bit-for-bit resume, Ctrl-C checkpoints, NaN stops, flat GPU memory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSafetensors } from '../src/io/safetensors.js';

const dir = mkdtempSync(join(tmpdir(), 'semi-drdnet-train-'));
const data = join(dir, 'pairs');
const real = join(dir, 'real');
const small = ['--preset', 'micro', '--data', data, '--real', join(real, 'rain'), '--batch', '2', '--patch', '32', '--vgg-tap', '1', '--seed', '3', '--milestones', '3,7'];

function cli(args: string[]) {
  return spawnSync(process.execPath, ['bin/semi-drdnet.js', ...args], { encoding: 'utf8', timeout: 300000 });
}

function tensors(path: string): Map<string, string> {
  const f = parseSafetensors(readFileSync(path));
  return new Map([...f.tensors].map(([k, v]) => [k, Buffer.from(v.data).toString('base64')]));
}

function log(path: string): Array<Record<string, number>> {
  return readFileSync(path, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
}

test.before(() => {
  for (const [out, rain, seed] of [[data, 'light', '1'], [real, 'real', '2']]) {
    const r = cli(['synth', '--clean', 'data/photos/heldout', '-o', out, '--rain', rain, '--seed', seed]);
    assert.is(r.status, 0, r.stderr);
  }
});

test('resume continues bit for bit: 5 + 5 steps equal 10 steps', () => {
  const a = join(dir, 'a.safetensors');
  const b = join(dir, 'b.safetensors');
  let r = cli(['train', ...small, '--steps', '5', '-o', a]);
  assert.is(r.status, 0, r.stderr);
  r = cli(['train', ...small, '--steps', '10', '--resume', a, '-o', a]);
  assert.is(r.status, 0, r.stderr);
  r = cli(['train', ...small, '--steps', '10', '-o', b, '--log', join(dir, 'b.jsonl')]);
  assert.is(r.status, 0, r.stderr);
  const ta = tensors(a);
  const tb = tensors(b);
  assert.equal([...ta.keys()], [...tb.keys()]);
  for (const [k, v] of ta) assert.is(v, tb.get(k), `tensor ${k} differs`);
  const steps = log(join(dir, 'b.jsonl'));
  assert.is(steps.length, 10);
  for (const key of ['step', 'loss', 'loss_sup', 'loss_cr_bg', 'loss_cr_rain', 'grad_norm_cr', 'lr', 'ms', 'gpu_live_bytes', 'gpu_pooled_bytes', 'gpu_buffers_created']) {
    assert.ok(key in steps[0], `log field ${key}`);
  }
  assert.ok(steps.every((s) => s.grad_norm_cr > 0), 'the contrastive terms reach the parameters');
});

test('Ctrl-C writes a checkpoint at the step reached', async () => {
  const out = join(dir, 'c.safetensors');
  const logPath = join(dir, 'c.jsonl');
  const child = spawn(process.execPath, ['bin/semi-drdnet.js', 'train', ...small, '--steps', '1000', '-o', out, '--log', logPath], { stdio: 'ignore' });
  const t0 = Date.now();
  while (!(existsSync(logPath) && readFileSync(logPath, 'utf8').split('\n').length > 3) && Date.now() - t0 < 120000) await new Promise((r) => setTimeout(r, 100));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  assert.is(code, 130);
  const steps = log(logPath).length;
  const f = parseSafetensors(readFileSync(out));
  const step = f.tensors.get('state.step')!;
  assert.is(Number(new DataView(step.data.buffer, step.data.byteOffset, 8).getBigInt64(0, true)), steps);
});

test('a non-finite loss stops training and keeps the last good checkpoint', () => {
  const out = join(dir, 'nan.safetensors');
  const r = cli(['train', ...small, '--steps', '50', '--lr', '1e30', '--checkpoint-every', '1', '-o', out]);
  assert.is(r.status, 1);
  const lines = r.stderr.split('\n').filter((l) => l.includes('semi-drdnet train:'));
  assert.is(lines.length, 1, r.stderr);
  assert.match(lines[0], /non-finite loss at step \d+/);
  assert.ok(existsSync(out), 'the last good checkpoint is kept');
  const f = parseSafetensors(readFileSync(out));
  const w = new Float32Array(f.tensors.get('rain_net.0.tail.0.weight')!.data.slice().buffer);
  assert.ok(w.every(Number.isFinite), 'the kept checkpoint is finite');
});

test('GPU memory stays flat over 100 micro steps after warm-up', () => {
  const logPath = join(dir, 'm.jsonl');
  const r = cli(['train', ...small, '--batch', '1', '--patch', '24', '--steps', '100', '-o', join(dir, 'm.safetensors'), '--log', logPath]);
  assert.is(r.status, 0, r.stderr);
  const steps = log(logPath);
  const at10 = steps[9];
  const at100 = steps[99];
  for (const k of ['gpu_live_bytes', 'gpu_pooled_bytes', 'gpu_buffers_created']) assert.is(at100[k], at10[k], k);
});

test.run();
