// Platform-neutral reader/writer for the safetensors checkpoint format (https://github.com/huggingface/safetensors).

/** One tensor of a parsed safetensors file: dtype name, shape and its raw bytes. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** View into the parsed file's bytes (no copy); little-endian raw values. */
  data: Uint8Array;
}

/** A parsed safetensors file: its tensors by name (in file order) and its metadata. */
export interface ParsedSafetensors {
  tensors: Map<string, SafetensorsEntry>;
  metadata: Record<string, string>;
}

export type SerializableDtype = 'F32' | 'I64' | 'F16';

export interface SerializableTensor {
  dtype: SerializableDtype;
  shape: number[];
  /** F32 -> Float32Array, I64 -> BigInt64Array, F16 -> Uint16Array of raw half bits. */
  data: Float32Array | BigInt64Array | Uint16Array;
}

/** A tensor to serialize under its name (`serializeSafetensors` takes a list of them, in file order). */
export interface NamedSerializableTensor extends SerializableTensor {
  name: string;
}

/** Bytes per element for every dtype the reference implementation knows. */
export const DTYPE_SIZES: Readonly<Record<string, number>> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
  U16: 2, I16: 2, F16: 2, BF16: 2,
  U32: 4, I32: 4, F32: 4,
  U64: 8, I64: 8, F64: 8,
};

const METADATA_KEY = '__metadata__';

// A header this large is certainly corrupt; refusing early avoids decoding gigabytes as JSON.
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const isNonNegInt = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Parses safetensors bytes with strict checks (header size and JSON, dtypes, offsets and spans); errors name `source` and the tensor. */
export function parseSafetensors(bytes: Uint8Array, source = 'safetensors'): ParsedSafetensors {
  // Explicitly typed so calls narrow types like a throw statement does.
  const fail: (msg: string) => never = (msg) => {
    throw new Error(`${source}: ${msg}`);
  };
  if (bytes.byteLength < 8) fail(`file too short for a safetensors header (${bytes.byteLength} bytes)`);

  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  const available = BigInt(bytes.byteLength - 8);
  if (headerLen > available) fail(`header length ${headerLen} exceeds file size (${available} bytes after the length prefix; not a safetensors file, or cut short?)`);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLen} exceeds ${MAX_HEADER_BYTES} bytes (not a safetensors file?)`);
  const dataStart = 8 + Number(headerLen);

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart)));
  } catch (e) {
    fail(`invalid JSON header (${(e as Error).message.split('\n')[0]})`);
  }
  if (!isRecord(header)) fail('header is not a JSON object');

  const metadata: Record<string, string> = {};
  const rawMeta = header[METADATA_KEY];
  if (rawMeta !== undefined) {
    if (!isRecord(rawMeta)) fail(`field '${METADATA_KEY}' is not an object`);
    for (const [k, v] of Object.entries(rawMeta)) {
      if (typeof v !== 'string') fail(`field '${METADATA_KEY}.${k}' is not a string`);
      metadata[k] = v;
    }
  }

  const dataLen = bytes.byteLength - dataStart;
  const tensors = new Map<string, SafetensorsEntry>();
  const ranges: Array<{ name: string; begin: number; end: number }> = [];

  for (const [name, raw] of Object.entries(header)) {
    if (name === METADATA_KEY) continue;
    const bad: (msg: string) => never = (msg) => fail(`tensor '${name}': ${msg}`);
    if (!isRecord(raw)) bad('entry is not an object');
    const { dtype, shape, data_offsets: offsets } = raw;

    if (typeof dtype !== 'string') bad('missing or non-string dtype');
    const elemSize = DTYPE_SIZES[dtype];
    if (elemSize === undefined) bad(`unknown dtype '${dtype}'`);

    if (!Array.isArray(shape) || !shape.every(isNonNegInt)) bad(`shape ${JSON.stringify(shape)} is not an array of non-negative integers`);
    const dims: number[] = shape;

    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegInt)) {
      bad(`data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLen) bad(`data_offsets [${begin}, ${end}] out of range (data section is ${dataLen} bytes)`);

    const numel = dims.reduce((a, b) => a * b, 1);
    const expected = numel * elemSize;
    if (end - begin !== expected) {
      bad(`data_offsets span ${end - begin} bytes but ${dtype} shape [${dims.join(', ')}] needs ${expected}`);
    }

    ranges.push({ name, begin, end });
    tensors.set(name, { dtype, shape: dims.slice(), data: bytes.subarray(dataStart + begin, dataStart + end) });
  }

  // Gaps are tolerated (harmless padding from other writers); shared bytes are not, they mean a corrupt header.
  const nonEmpty = ranges.filter((r) => r.end > r.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < nonEmpty.length; i++) {
    const prev = nonEmpty[i - 1]!;
    const cur = nonEmpty[i]!;
    if (cur.begin < prev.end) {
      fail(`tensor '${cur.name}': data_offsets [${cur.begin}, ${cur.end}] overlap tensor '${prev.name}' [${prev.begin}, ${prev.end}]`);
    }
  }

  return { tensors, metadata };
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Decode an F32/F16/BF16/F64 tensor to a fresh Float32Array (never aliases the file bytes). */
export function toFloat32(entry: SafetensorsEntry, name: string, source = 'safetensors'): Float32Array {
  const { dtype, data } = entry;
  const elemSize = DTYPE_SIZES[dtype];
  if (elemSize === undefined || !['F32', 'F16', 'BF16', 'F64'].includes(dtype)) {
    throw new Error(`${source}: tensor '${name}': cannot convert dtype ${dtype} to float32`);
  }
  if (data.byteLength % elemSize !== 0) {
    throw new Error(`${source}: tensor '${name}': ${data.byteLength} bytes is not a multiple of the ${dtype} size ${elemSize}`);
  }
  const n = data.byteLength / elemSize;
  // DataView reads are endian-explicit and accept any alignment, so one path serves views at odd offsets.
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out = new Float32Array(n);
  switch (dtype) {
    case 'F32':
      for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
      break;
    case 'F64':
      for (let i = 0; i < n; i++) out[i] = view.getFloat64(i * 8, true);
      break;
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = halfToFloat(view.getUint16(i * 2, true));
      break;
    case 'BF16': {
      // bf16 is the top half of an f32, so widening is a 16-bit shift into a scratch word.
      const scratch = new DataView(new ArrayBuffer(4));
      for (let i = 0; i < n; i++) {
        scratch.setUint32(0, view.getUint16(i * 2, true) << 16);
        out[i] = scratch.getFloat32(0);
      }
      break;
    }
  }
  return out;
}

const SERIALIZE_ARRAY_TYPES: Record<SerializableDtype, string> = {
  F32: 'Float32Array',
  I64: 'BigInt64Array',
  F16: 'Uint16Array',
};

function dataMatchesDtype(dtype: SerializableDtype, data: SerializableTensor['data']): boolean {
  switch (dtype) {
    case 'F32': return data instanceof Float32Array;
    case 'I64': return data instanceof BigInt64Array;
    case 'F16': return data instanceof Uint16Array;
    default: return false;
  }
}

/**
 * Serialize tensors in insertion order. Typed-array bytes are copied as-is: safetensors is
 * little-endian, as is every JS/WebGPU host we target.
 */
export function serializeSafetensors(
  tensors: NamedSerializableTensor[] | Map<string, SerializableTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const list: NamedSerializableTensor[] = Array.isArray(tensors)
    ? tensors
    : [...tensors].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: t.data }));

  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`serializeSafetensors: metadata '${k}' is not a string`);
    }
    header[METADATA_KEY] = metadata;
  }

  let offset = 0;
  for (const t of list) {
    const bad: (msg: string) => never = (msg) => {
      throw new Error(`serializeSafetensors: tensor '${t.name}': ${msg}`);
    };
    if (t.name === METADATA_KEY) bad('name is reserved');
    if (Object.prototype.hasOwnProperty.call(header, t.name)) bad('duplicate name');
    if (!(t.dtype in SERIALIZE_ARRAY_TYPES)) bad(`unsupported dtype '${t.dtype}' (use F32, I64 or F16)`);
    if (!dataMatchesDtype(t.dtype, t.data)) bad(`dtype ${t.dtype} needs a ${SERIALIZE_ARRAY_TYPES[t.dtype]}`);
    if (!t.shape.every(isNonNegInt)) bad(`shape ${JSON.stringify(t.shape)} is not an array of non-negative integers`);
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) bad(`shape [${t.shape.join(', ')}] has ${numel} elements but data has ${t.data.length}`);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.data.byteLength] };
    offset += t.data.byteLength;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  // Padding keeps the data section 8-byte aligned so readers can map tensors in place, as the reference writer does.
  const headerLen = Math.ceil(json.byteLength / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.byteLength, 8 + headerLen);

  let pos = 8 + headerLen;
  for (const t of list) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    pos += t.data.byteLength;
  }
  return out;
}

/**
 * The most bytes a safetensors file can need, judged from its first bytes: the 8-byte prefix, the
 * header and the largest data offset the header declares. Reads of devices and pipes stop there;
 * a head that cannot start a safetensors file (e.g. /dev/zero: an empty header) is refused at once.
 */
export function safetensorsReadLimit(source: string, maxBytes = 2 ** 31 - 1): { maxBytes: number; fromHead: (head: Uint8Array) => number } {
  return {
    maxBytes,
    fromHead: (head) => {
      if (head.byteLength < 8) return head.byteLength; // too short: the parser says so
      const headerLen = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
      if (headerLen > BigInt(MAX_HEADER_BYTES)) throw new Error(`${source}: header length ${headerLen} exceeds ${MAX_HEADER_BYTES} bytes (not a safetensors file?)`);
      const end = 8 + Number(headerLen);
      if (end > head.byteLength) return maxBytes; // the header alone is larger than the head
      let header: unknown;
      try {
        header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(head.subarray(8, end)));
      } catch (e) {
        throw new Error(`${source}: invalid JSON header (${(e as Error).message.split('\n')[0]})`);
      }
      let dataEnd = 0;
      if (isRecord(header)) {
        for (const v of Object.values(header)) {
          const off = isRecord(v) ? v.data_offsets : undefined;
          if (Array.isArray(off) && isNonNegInt(off[1])) dataEnd = Math.max(dataEnd, off[1]);
        }
      }
      return end + dataEnd;
    },
  };
}
