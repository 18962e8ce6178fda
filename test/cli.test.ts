// The command line as users meet it: outputs, one-line errors, exit codes, no partial files.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preset } from '../src/model/config.js';
import { DrdNet } from '../src/model/drdnet.js';
import { weightsToBytes } from '../src/model/weights.js';
import { encodeImage } from '../src/io/image-node.js';
import { parseSafetensors } from '../src/io/safetensors.js';
import { readFileSync } from 'node:fs';
import { engine } from './helpers.js';
import { assertCliError, runCli } from './run-cli.js';

const dir = mkdtempSync(join(tmpdir(), 'semi-drdnet-cli-'));
const weights = join(dir, 'micro.safetensors');
const rainy = join(dir, 'rainy.png');
const clean = join(dir, 'clean.jpg');
let paramCount = 0;

const cli = (...args: string[]) => runCli(args);

function image(w: number, h: number, f: (i: number) => number) {
  return { width: w, height: h, data: Float32Array.from({ length: 3 * w * h }, (_, i) => f(i)) };
}

test.before(async () => {
  const e = await engine();
  const m = new DrdNet(e, preset('micro'), 2);
  writeFileSync(weights, await weightsToBytes(m));
  paramCount = m.namedParameters().length;
  m.dispose();
  writeFileSync(rainy, encodeImage(image(21, 17, (i) => (i * 37) % 101 / 100), 'png'));
  writeFileSync(clean, encodeImage(image(21, 17, (i) => (i * 13) % 97 / 96), 'jpg'));
});

test('derain writes outputs with the input names', () => {
  const out = join(dir, 'out');
  const r = cli('derain', rainy, clean, '-o', out, '--weights', weights);
  assert.is(r.status, 0, r.errLines.join('\n'));
  assert.equal(readdirSync(out).sort(), ['clean.jpg', 'rainy.png']);
  const single = join(dir, 'single.jpg');
  assert.is(cli('derain', rainy, '-o', single, '--weights', weights).status, 0);
  assert.ok(existsSync(single));
  const mirrored = join(dir, 'ensemble.png');
  assert.is(cli('derain', rainy, '-o', mirrored, '--weights', weights, '--ensemble', '2').status, 0);
  assert.ok(existsSync(mirrored));
});

test('parity writes outputs, loss and a gradient per parameter', () => {
  const out = join(dir, 'parity.safetensors');
  const r = cli('parity', '--weights', weights, '--rainy', rainy, '--clean', rainy, '--mode', 'train', '-o', out);
  assert.is(r.status, 0, r.errLines.join('\n'));
  const f = parseSafetensors(readFileSync(out));
  assert.equal(f.tensors.get('output.final')!.shape, [1, 3, 17, 21]);
  assert.equal(f.tensors.get('loss')!.shape, [1]);
  assert.equal(f.tensors.get('grad.rain_net.0.rain_net_head.0.weight')!.shape, [4, 3, 3, 3]);
  assert.is([...f.tensors.keys()].filter((k) => k.startsWith('grad.')).length, paramCount);
});

test('--version, and plain progress lines at intervals when stderr is not a terminal', () => {
  const v = cli('--version');
  assert.is(v.status, 0);
  assert.is(v.stdout.trim(), (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version);
  const out = join(dir, 'progress');
  const args = ['derain', rainy, clean, '-o', out, '--weights', weights, '--tile', '16'];
  const quiet = cli(...args);
  assert.is(quiet.status, 0, quiet.stderr);
  // Short runs print only their final lines; with the interval at 0 every step shows, without escape codes.
  assert.not.ok(quiet.errLines.some((l) => / tile /.test(l)), quiet.stderr);
  const chatty = runCli(args, { env: { ...process.env, SEMI_DRDNET_PROGRESS_SECONDS: '0' } });
  assert.is(chatty.status, 0, chatty.stderr);
  assert.ok(chatty.errLines.some((l) => /^derain 1\/2 rainy\.png \d+x\d+ tile 1\/\d+$/.test(l)), chatty.stderr);
  assert.not.ok(chatty.stderr.includes('\x1b['), 'escape codes in a non-terminal stderr');
});

test('bad input: one clear line, non-zero exit, no partial output', () => {
  const corrupt = join(dir, 'corrupt.png');
  writeFileSync(corrupt, Buffer.from('\x89PNG\r\n\x1a\nnot really'));
  const empty = join(dir, 'empty.jpg');
  writeFileSync(empty, '');
  const truncated = join(dir, 'truncated.safetensors');
  writeFileSync(truncated, readFileSync(weights).subarray(0, 500));
  const out = join(dir, 'bad-out');
  const cases: Array<[string[], RegExp, number]> = [
    [['derain', corrupt, '-o', out, '--weights', weights], /corrupt\.png/, 1],
    [['derain', empty, '-o', out, '--weights', weights], /empty\.jpg/, 1],
    [['derain', join(dir, 'missing.png'), '-o', out, '--weights', weights], /missing\.png/, 1],
    [['derain', rainy, '-o', out, '--weights', truncated], /truncated\.safetensors/, 1],
    [['derain', rainy, '-o', out, '--weights', join(dir, 'nope.safetensors')], /nope\.safetensors/, 1],
    [['derain', rainy, '-o', out, '--weights', rainy], /rainy\.png/, 1],
    [['derain', rainy], /--out is required/, 2],
    [['derain', rainy, '-o', out, '--tile', 'x', '--weights', weights], /--tile must be an integer/, 2],
    [['derain', rainy, '-o', out, '--ensemble', '3', '--weights', weights], /--ensemble must be one of 1, 2, 4, got '3'/, 2],
    [['derain', rainy, '-o', out, '--tile', '0x20', '--weights', weights], /--tile must be an integer >= 16, got '0x20'/, 2],
    [['synth', '--clean', dir, '-o', out, '--seed', ''], /--seed must be an integer from 0 to 4294967295, got ''/, 2],
    [['train', '--data', dir, '-o', join(dir, 'c.safetensors'), '--seed', '4294967296'], /--seed must be an integer from 0 to 4294967295/, 2],
    [['train', '--data', dir, '-o', join(dir, 'c.safetensors'), '--steps', ' 2 '], /--steps must be an integer/, 2],
    [['train', '--data', dir, '-o', join(dir, 'c.safetensors'), '--lr', '0x1'], /--lr must be a number, got '0x1'/, 2],
    [['bench', '--bogus'], /^semi-drdnet bench: unknown argument --bogus/, 2],
    [['bench', '--compare', join(dir, 'nope.jsonl')], /^semi-drdnet bench: cannot read --compare '.*nope\.jsonl'/, 1],
    [['frobnicate'], /unknown command 'frobnicate'/, 2],
    [['parity', '--weights', weights, '--rainy', rainy, '--clean', join(dir, 'nope.png'), '--mode', 'train', '-o', join(dir, 'p.safetensors')], /nope\.png/, 1],
  ];
  for (const [args, re, code] of cases) assertCliError(cli(...args), code, re);
  assert.equal(existsSync(out) ? readdirSync(out) : [], []);
  assert.not.ok(existsSync(join(dir, 'p.safetensors')));
});

test.run();
