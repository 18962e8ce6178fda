// Named uniforms: every shader's binding-0 uniform structs parse and lay out by WGSL's rules, and
// a dispatch whose uniforms miss, misspell or mistype a field is refused naming it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync } from 'node:fs';
import { resolveWgsl } from '../scripts/wgsl-include.mjs';
import { matchStruct, packUniforms, uniformStructs } from '../src/gpu/uniforms.js';
import { assertMessage, errorOf } from './errors.js';

test('every uniform struct in shaders/ parses; offsets follow WGSL alignment (vec4 on 16 bytes)', () => {
  for (const f of readdirSync('shaders').filter((n) => n.endsWith('.wgsl'))) {
    const { code } = resolveWgsl(`shaders/${f}`); // as bundled, includes inlined
    const declared = [...code.matchAll(/@binding\(0\)\s*var<uniform>\s*\w+\s*:\s*(\w+)/g)].map((m) => m[1]);
    const structs = uniformStructs(code);
    assert.equal(structs.map((s) => s.name).sort(), [...new Set(declared)].sort(), f);
    for (const s of structs) {
      assert.ok(s.fields.length > 0 && s.size % 16 === 0 && s.size <= 256, `${f} ${s.name}`);
      for (const fl of s.fields) assert.is(fl.offset % (fl.lanes === 1 ? 4 : fl.lanes === 2 ? 8 : 16), 0, `${f} ${s.name}.${fl.name}`);
    }
  }
  const conv = uniformStructs(resolveWgsl('shaders/conv2d.wgsl').code).find((s) => s.name === 'Params')!;
  const at = Object.fromEntries(conv.fields.map((fl) => [fl.name, fl.offset]));
  assert.equal([at.sh, at.ph, at.pw, at.dw, at.alpha, at.hasBias], [48, 64, 80, 112, 128, 136]);
});

const code = `struct P { n: u32, shift: i32, // a comment, with a comma
  scale: f32, v: vec4<i32>, w: vec2f }
@group(0) @binding(0) var<uniform> p: P;`;

test('packing writes each field at its offset with its type', () => {
  const s = matchStruct(code, { n: 3, shift: -2, scale: 0.5, v: [1, -1, 2, -2], w: [0.25, 4] }, 't');
  const view = new DataView(new ArrayBuffer(s.size));
  packUniforms(view, 0, s, { n: 3, shift: -2, scale: 0.5, v: [1, -1, 2, -2], w: [0.25, 4] }, 't');
  assert.equal([view.getUint32(0, true), view.getInt32(4, true), view.getFloat32(8, true)], [3, -2, 0.5]);
  assert.equal([16, 20, 24, 28].map((o) => view.getInt32(o, true)), [1, -1, 2, -2]);
  assert.equal([view.getFloat32(32, true), view.getFloat32(36, true)], [0.25, 4]);
  assert.is(s.size, 48);
});

test('a missing, unknown, mistyped or misshaped field is an error naming it', () => {
  const ok = { n: 1, shift: 0, scale: 1, v: [0, 0, 0, 0], w: [0, 0] };
  assertMessage(errorOf(() => matchStruct(code, { ...ok, scael: 1 }, 'k')), 'k', 'struct P', 'unknown scael');
  const { scale: _, ...noScale } = ok;
  assertMessage(errorOf(() => matchStruct(code, noScale, 'k')), 'missing scale');
  const s = matchStruct(code, ok, 'k');
  const view = new DataView(new ArrayBuffer(s.size));
  assertMessage(errorOf(() => packUniforms(view, 0, s, { ...ok, n: -1 }, 'k')), "uniform 'n' is u32, got -1");
  assertMessage(errorOf(() => packUniforms(view, 0, s, { ...ok, shift: 0.5 }, 'k')), "uniform 'shift' is i32, got 0.5");
  assertMessage(errorOf(() => packUniforms(view, 0, s, { ...ok, v: [1, 2] }, 'k')), "uniform 'v' needs 4 values, got 2");
  assertMessage(errorOf(() => matchStruct('@compute @workgroup_size(1) fn main() {}', { n: 1 }, 'k')), 'binds no uniform struct');
});

test.run();
