// Named uniforms: the WGSL struct bound as `var<uniform>` at @binding(0) is the one declaration of
// a kernel's parameters; dispatches pass an object by field name and this module packs it with
// WGSL's layout rules, so a reordered, missing or misspelt field is an error, not a wrong answer.

/** A uniform field's value: a number for scalars, an array for vectors. */
export type UniformValue = number | readonly number[];

/** A kernel's uniforms by WGSL field name. */
export type Uniforms = Readonly<Record<string, UniformValue>>;

type Scalar = 'u32' | 'i32' | 'f32';

export interface UniformField {
  name: string;
  scalar: Scalar;
  /** 1 for scalars, 2-4 for vectors. */
  lanes: number;
  /** Byte offset in the struct (WGSL uniform layout). */
  offset: number;
}

export interface UniformStruct {
  name: string;
  fields: UniformField[];
  /** Size in bytes, rounded up to the struct's 16-byte uniform alignment. */
  size: number;
}

const SCALARS: Record<string, Scalar> = { u32: 'u32', i32: 'i32', f32: 'f32' };

/** Parses a WGSL field type: scalars and vecN of them (vec4<i32>, vec4i, vec2f, ...). */
function fieldType(type: string, where: string): { scalar: Scalar; lanes: number } {
  const t = type.replace(/\s+/g, '');
  if (SCALARS[t]) return { scalar: SCALARS[t], lanes: 1 };
  const v = /^vec([234])(?:<(u32|i32|f32)>|([uif]))$/.exec(t);
  if (v) return { scalar: (v[2] as Scalar) ?? ({ u: 'u32', i: 'i32', f: 'f32' } as const)[v[3] as 'u' | 'i' | 'f'], lanes: Number(v[1]) };
  throw new Error(`${where}: uniform field type '${type}' is not supported (u32, i32, f32 and their vectors)`);
}

/** Lays out one struct body by WGSL's rules: scalars align to 4, vec2 to 8, vec3 and vec4 to 16. */
function layout(name: string, body: string): UniformStruct {
  const fields: UniformField[] = [];
  let offset = 0;
  let maxAlign = 4;
  const clean = body.replace(/\/\/[^\n]*/g, '');
  for (const decl of clean.split(',')) {
    const m = /^\s*(\w+)\s*:\s*([\w<>\s]+?)\s*$/.exec(decl);
    if (!m) {
      if (decl.trim()) throw new Error(`struct ${name}: cannot read field '${decl.trim()}'`);
      continue;
    }
    const { scalar, lanes } = fieldType(m[2], `struct ${name}`);
    const align = lanes === 1 ? 4 : lanes === 2 ? 8 : 16;
    offset = Math.ceil(offset / align) * align;
    fields.push({ name: m[1], scalar, lanes, offset });
    offset += 4 * lanes;
    maxAlign = Math.max(maxAlign, align);
  }
  return { name, fields, size: Math.ceil(offset / Math.max(16, maxAlign)) * Math.max(16, maxAlign) };
}

const parsed = new Map<string, UniformStruct[]>();

/** The structs a shader binds as `var<uniform>` at @binding(0) (one per entry-point family), cached by source. */
export function uniformStructs(code: string): UniformStruct[] {
  let out = parsed.get(code);
  if (out) return out;
  const bodies = new Map<string, string>();
  for (const m of code.matchAll(/struct\s+(\w+)\s*\{([^}]*)\}/g)) bodies.set(m[1], m[2]);
  out = [];
  for (const m of code.matchAll(/@binding\(0\)\s*var<uniform>\s*\w+\s*:\s*(\w+)\s*;/g)) {
    const body = bodies.get(m[1]);
    if (body !== undefined && !out.some((s) => s.name === m[1])) out.push(layout(m[1], body));
  }
  parsed.set(code, out);
  return out;
}

/**
 * The struct these uniforms fill: the binding-0 uniform struct whose field names are exactly the
 * given keys. Errors name the kernel, the struct and the missing or unknown fields.
 */
export function matchStruct(code: string, uniforms: Uniforms, label: string): UniformStruct {
  const structs = uniformStructs(code);
  const keys = Object.keys(uniforms);
  const exact = structs.find((s) => s.fields.length === keys.length && s.fields.every((f) => f.name in uniforms));
  if (exact) return exact;
  if (structs.length === 0) throw new Error(`${label}: uniforms given, but the shader binds no uniform struct at @binding(0)`);
  // Report against the struct that shares the most names: the likely intended one.
  const best = structs.reduce((a, s) => (s.fields.filter((f) => f.name in uniforms).length > a.fields.filter((f) => f.name in uniforms).length ? s : a));
  const missing = best.fields.filter((f) => !(f.name in uniforms)).map((f) => f.name);
  const unknown = keys.filter((k) => !best.fields.some((f) => f.name === k));
  const parts = [missing.length ? `missing ${missing.join(', ')}` : '', unknown.length ? `unknown ${unknown.join(', ')}` : ''].filter(Boolean);
  throw new Error(`${label}: uniforms do not match struct ${best.name} (${parts.join('; ')})`);
}

/** Writes the uniforms into `view` at `base` by the struct's layout, checking each value against its WGSL type. */
export function packUniforms(view: DataView, base: number, s: UniformStruct, uniforms: Uniforms, label: string): void {
  for (const f of s.fields) {
    const v = uniforms[f.name]!;
    const values = typeof v === 'number' ? [v] : v;
    if (values.length !== f.lanes) throw new Error(`${label}: uniform '${f.name}' needs ${f.lanes} value${f.lanes > 1 ? 's' : ''}, got ${values.length}`);
    values.forEach((x, i) => {
      const at = base + f.offset + 4 * i;
      if (f.scalar === 'f32') return view.setFloat32(at, x, true);
      const ok = Number.isInteger(x) && (f.scalar === 'u32' ? x >= 0 && x <= 0xffffffff : x >= -0x80000000 && x <= 0x7fffffff);
      if (!ok) throw new Error(`${label}: uniform '${f.name}' is ${f.scalar}, got ${x}`);
      if (f.scalar === 'u32') view.setUint32(at, x, true);
      else view.setInt32(at, x, true);
    });
  }
}
