// The bundle-time WGSL include step (scripts/wgsl-include.mjs): relative paths, each file once per
// shader, cycles and missing files refused naming the line; every shader in shaders/ resolves.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveWgsl } from '../scripts/wgsl-include.mjs';
import { assertMessage, errorOf } from './errors.js';

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'wgsl-include-'));
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

test('includes resolve relative to the including file, in place, each file once', () => {
  const dir = tree({
    'main.wgsl': 'a\n#include "lib/x.wgsl"\nb\n#include "lib/y.wgsl"  // again x, through y\nc',
    'lib/x.wgsl': 'X',
    'lib/y.wgsl': '#include "x.wgsl"\nY',
  });
  try {
    const { code, files } = resolveWgsl(join(dir, 'main.wgsl'));
    assert.is(code, 'a\nX\nb\nY\nc');
    assert.is(files.length, 3);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a cycle, a missing file or a malformed directive is an error naming file and line', () => {
  const dir = tree({
    'a.wgsl': 'x\n#include "b.wgsl"',
    'b.wgsl': '#include "a.wgsl"',
    'missing.wgsl': '\n\n#include "nope.wgsl"',
    'bad.wgsl': '#include lib/x.wgsl',
  });
  try {
    assertMessage(errorOf(() => resolveWgsl(join(dir, 'a.wgsl'))), 'b.wgsl:1', '#include cycle', 'a.wgsl -> ', 'b.wgsl -> ');
    assertMessage(errorOf(() => resolveWgsl(join(dir, 'missing.wgsl'))), 'missing.wgsl:3', 'nope.wgsl', 'no such file');
    assertMessage(errorOf(() => resolveWgsl(join(dir, 'bad.wgsl'))), 'bad.wgsl:1', 'not an include directive');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every shader resolves to WGSL with no directive left', () => {
  for (const f of readdirSync('shaders').filter((n) => n.endsWith('.wgsl'))) {
    const { code } = resolveWgsl(join('shaders', f));
    assert.not.match(code, /^\s*#/m, f);
  }
});

test.run();
