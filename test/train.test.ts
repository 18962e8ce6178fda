// Training through the CLI: bit-for-bit resume, Ctrl-C/SIGTERM checkpoints, broken steps never saved,
// stored milestones, resumed logs, usage errors, flat GPU memory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSafetensors } from '../src/io/safetensors.js';
import { assertCliError, runCli } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'semi-drdnet-train-'));
const data = join(dir, 'pairs');
const real = join(dir, 'real');
const small = ['--preset', 'micro', '--data', data, '--real', join(real, 'rain'), '--batch', '2', '--patch', '32', '--vgg-tap', '1', '--seed', '3', '--milestones', '3,7'];

const cli = (args: string[]) => runCli(args);
/** Without --vgg, train notes on stderr that its VGG is random; that line is no error. */
const withoutVggNote = (r: ReturnType<typeof cli>) => ({ ...r, errLines: r.errLines.filter((l) => !l.startsWith('train: no --vgg given')) });

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
  // The saved data order belongs to the run's data: another dataset is refused, naming both.
  const fewer = join(dir, 'fewer');
  for (const sub of ['rain', 'norain']) {
    mkdirSync(join(fewer, sub), { recursive: true });
    for (const f of ['clock.png', 'coins.png']) copyFileSync(join(data, sub, f), join(fewer, sub, f));
  }
  const other = small.map((x) => (x === data ? fewer : x));
  assertCliError(withoutVggNote(cli(['train', ...other, '--steps', '12', '--resume', a, '-o', join(dir, 'a2.safetensors')])), 2, /--resume '.*a\.safetensors' was trained on other data than --data '.*fewer'/);
});

function stepOf(path: string): number {
  const step = parseSafetensors(readFileSync(path)).tensors.get('state.step')!;
  return Number(new DataView(step.data.buffer, step.data.byteOffset, 8).getBigInt64(0, true));
}

/**
 * Starts a long run, sends `signal` once a few steps are logged, returns the exit code. Ctrl-C
 * reaches a terminal's whole process group, so SIGINT goes to the group; SIGTERM, like `kill PID`,
 * to the launched process only.
 */
async function interrupt(signal: NodeJS.Signals, out: string, logPath: string): Promise<number | null> {
  const child = spawn(process.execPath, ['bin/semi-drdnet.js', 'train', ...small, '--steps', '1000', '-o', out, '--log', logPath], { stdio: 'ignore', detached: true });
  const t0 = Date.now();
  while (!(existsSync(logPath) && readFileSync(logPath, 'utf8').split('\n').length > 3) && Date.now() - t0 < 120000) await new Promise((r) => setTimeout(r, 100));
  const exited = new Promise<number | null>((r) => child.on('exit', r));
  process.kill(signal === 'SIGINT' ? -child.pid! : child.pid!, signal);
  return exited;
}

test('Ctrl-C writes a checkpoint at the step reached', async () => {
  const [out, logPath] = [join(dir, 'c.safetensors'), join(dir, 'c.jsonl')];
  assert.is(await interrupt('SIGINT', out, logPath), 130);
  assert.is(stepOf(out), log(logPath).length);
});

test('SIGTERM writes a checkpoint at the step reached, like Ctrl-C', async () => {
  const [out, logPath] = [join(dir, 't.safetensors'), join(dir, 't.jsonl')];
  assert.is(await interrupt('SIGTERM', out, logPath), 143);
  assert.is(stepOf(out), log(logPath).length);
});

test('a step that breaks the model is never saved: the last good checkpoint stays', () => {
  const out = join(dir, 'nan.safetensors');
  let r = cli(['train', ...small, '--steps', '1', '-o', out]);
  assert.is(r.status, 0, r.stderr);
  const good = readFileSync(out);
  // lr 1e30: the first update leaves weights near 1e30 (finite, but every later forward overflows).
  r = cli(['train', ...small, '--steps', '50', '--lr', '1e30', '--checkpoint-every', '1', '--resume', out, '-o', out]);
  assert.is(r.status, 1);
  const lines = r.stderr.split('\n').filter((l) => l.includes('semi-drdnet train:'));
  assert.is(lines.length, 1, r.stderr);
  assert.match(lines[0], /step 2 broke the model .*tensor '[^']+' holds .*last good checkpoint .*nan\.safetensors/);
  assert.ok(readFileSync(out).equals(good), 'the checkpoint of step 1 is kept as it was');
});

test('a checkpoint with a negative Adam second moment is refused on resume, naming the tensor', () => {
  const out = join(dir, 'negv.safetensors');
  let r = cli(['train', ...small, '--steps', '1', '-o', out]);
  assert.is(r.status, 0, r.stderr);
  const bytes = new Uint8Array(readFileSync(out));
  const f = parseSafetensors(bytes);
  const v = f.tensors.get('optim.rain_net.0.tail.0.weight.v')!;
  new DataView(v.data.buffer, v.data.byteOffset).setFloat32(0, -1, true);
  writeFileSync(out, bytes);
  r = cli(['train', ...small, '--steps', '3', '--checkpoint-every', '1', '--resume', out, '-o', out]);
  assertCliError(withoutVggNote(r), 1, /negv\.safetensors: tensor 'optim\.rain_net\.0\.tail\.0\.weight\.v' holds the negative value -1/);
});

test('resume keeps the stored milestones and cuts the log back to the checkpoint step', () => {
  const out = join(dir, 'ms.safetensors');
  const logPath = join(dir, 'ms.jsonl');
  const base = small.filter((x, i) => x !== '--milestones' && small[i - 1] !== '--milestones');
  let r = cli(['train', ...base, '--milestones', '1,2', '--steps', '3', '-o', out, '--log', logPath]);
  assert.is(r.status, 0, r.stderr);
  // A crash after step 3's checkpoint: steps logged past it, and a half-written line.
  writeFileSync(logPath, readFileSync(logPath, 'utf8') + '{"step":4,"loss":1}\n{"step":5,"lo');
  r = cli(['train', ...base, '--steps', '5', '--resume', out, '-o', out, '--log', logPath]);
  assert.is(r.status, 0, r.stderr);
  const steps = log(logPath);
  assert.equal(steps.map((s) => s.step), [1, 2, 3, 4, 5]);
  // Stored milestones 1,2: lr 1e-3 * 0.2^2 from step 3 on. The default for 5 steps (1,2,3) would give 0.2^3.
  for (const s of steps.slice(2)) assert.ok(Math.abs(s.lr - 4e-5) < 1e-12, `lr at step ${s.step}: ${s.lr}`);
  assert.is(parseSafetensors(readFileSync(out)).tensors.get('state.milestones')!.shape[0], 2);
});

test('--init starts a new run from weights: their values, a fresh optimizer at step 1, the checkpoint loadable', () => {
  const w = join(dir, 'init-w.safetensors');
  const ck = join(dir, 'init.safetensors');
  const w2 = join(dir, 'init-w2.safetensors');
  let r = cli(['train', ...small, '--steps', '3', '-o', join(dir, 'init-src.safetensors'), '--export', w]);
  assert.is(r.status, 0, r.stderr);
  // One step at lr 1e-12 moves no weight by more than ~1e-12, so the result keeps --init's values;
  // a run that ignored --init would start from seeded random weights (seed 7 here, 3 before).
  const other = small.map((x, i) => (small[i - 1] === '--seed' ? '7' : x)).filter((x, i, all) => x !== '--preset' && all[i - 1] !== '--preset');
  r = cli(['train', ...other, '--init', w, '--steps', '1', '--lr', '1e-12', '-o', ck, '--export', w2]);
  assert.is(r.status, 0, r.stderr);
  const before = parseSafetensors(readFileSync(w)).tensors;
  const after = parseSafetensors(readFileSync(w2)).tensors;
  assert.equal([...after.keys()].sort(), [...before.keys()].sort());
  let convs = 0;
  for (const [k, t] of before) {
    if (!k.endsWith('.weight') || t.shape.length !== 4) continue;
    const a = new Float32Array(new Uint8Array(t.data).buffer);
    const b = new Float32Array(new Uint8Array(after.get(k)!.data).buffer);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-6, `${k}[${i}]: ${a[i]} -> ${b[i]}`);
    convs++;
  }
  assert.ok(convs > 5, `conv weights compared: ${convs}`);
  assert.is(stepOf(ck), 1);
  // --init takes a checkpoint too (its optimizer state is ignored) and the run can be resumed.
  r = cli(['train', ...other, '--init', ck, '--steps', '1', '-o', join(dir, 'init2.safetensors')]);
  assert.is(r.status, 0, r.stderr);
  r = cli(['train', ...other, '--steps', '2', '--resume', ck, '-o', ck]);
  assert.is(r.status, 0, r.stderr);
  assert.is(stepOf(ck), 2);
  assertCliError(cli(['train', ...small, '--init', w, '--resume', ck, '-o', join(dir, 'x.safetensors')]), 2, /--resume and --init exclude each other/);
  assertCliError(cli(['train', ...small, '--init', w, '-o', w]), 2, /-o '.*init-w\.safetensors' is the same file as --init/);
  assertCliError(withoutVggNote(cli(['train', ...small.map((x) => (x === 'micro' ? 'tiny' : x)), '--init', w, '--steps', '1', '-o', join(dir, 'x.safetensors')])), 2, /--preset tiny does not match the \d+-channel model in '.*init-w\.safetensors'/);
});

test('nonsense options are usage errors and unusable outputs are refused before training', () => {
  const out = join(dir, 'same.safetensors');
  const usage: Array<[string[], RegExp]> = [
    [['--lr', '-1'], /--lr must be a number > 0, got '-1'/],
    [['--lr', '0'], /--lr must be a number > 0/],
    [['--gamma', '-5'], /--gamma must be a number > 0/],
    [['--milestones', ','], /--milestones must be a comma-separated list/],
    [['--time-limit', '-1'], /--time-limit must be a number > 0/],
    [['--log', out], /-o '.*same\.safetensors' is the same file as --log/],
  ];
  for (const [extra, re] of usage) assertCliError(cli(['train', ...small, '--steps', '2', '-o', out, ...extra]), 2, re);
  // Contrastive settings without the photos they act on would be silently ignored.
  const noReal = small.filter((x, i) => x !== '--real' && small[i - 1] !== '--real');
  assertCliError(cli(['train', ...noReal, '--steps', '2', '-o', out]), 2, /--vgg-tap sets the contrastive terms, which run only with --real/);
  const t0 = Date.now();
  assertCliError(cli(['train', ...small, '--steps', '100', '-o', join(dir, 'nodir', 'ck.safetensors')]), 1, /nodir.*does not exist/);
  // A folder for a file (a trailing slash) is refused before training too, for --export as well.
  assertCliError(cli(['train', ...small, '--steps', '100', '-o', `${dir}/`]), 1, /names a folder, not a file/);
  assertCliError(cli(['train', ...small, '--steps', '100', '-o', out, '--export', join(dir, 'sub') + '/']), 1, /--export|names a folder, not a file/);
  assert.ok(Date.now() - t0 < 20000, 'refused before training');
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
