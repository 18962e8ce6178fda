// Tests for src/io: safetensors parse/serialize, image codecs and EXIF orientation, atomic file writes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { deflateSync } from 'node:zlib';
import { mkdtemp, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { createDeflate } from 'node:zlib';
import { tmpdir } from 'node:os';
import { existsSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import {
  parseSafetensors,
  safetensorsReadLimit,
  serializeSafetensors,
  toFloat32,
  type NamedSerializableTensor,
  type SerializableTensor,
} from '../src/io/safetensors.js';
import { fsCause, LineLog, makeDir, readFileBytes, removeUnfinished, unfinishedOutput, writeFileAtomic } from '../src/io/fs-node.js';
import {
  applyOrientation,
  detectImageFormat,
  formatFromPath,
  imageToRgb8,
  readJpegOrientation,
  rgbaToImage,
  toByte,
  type Image,
} from '../src/io/image.js';
import { decodeImage, encodeImage, MAX_MEGAPIXELS_ENV, pixelBudget, readImage, writeImage } from '../src/io/image-node.js';
import { assertMessage, errorOf, rejectionOf } from './errors.js';

// ---------- helpers ----------


const tmpDir = (): Promise<string> => mkdtemp(join(tmpdir(), 'io-test-'));

/** Hand-built safetensors file, to feed the parser headers the serializer would never write. */
function rawSafetensors(header: unknown, data: Uint8Array = new Uint8Array(0), headerText?: string): Uint8Array {
  const json = new TextEncoder().encode(headerText ?? JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const u16le = (values: number[]): Uint8Array => new Uint8Array(new Uint16Array(values).buffer);

// Minimal PNG writer, independent of pngjs, so decode tests cover colour types pngjs can't write.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(new TextEncoder().encode(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}
function makePng(
  width: number,
  height: number,
  colorType: number,
  depth: number,
  rows: number[][],
  extra: Array<[string, Uint8Array]> = [],
  idat?: Uint8Array,
  interlaced = false,
): Uint8Array {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr.set([depth, colorType, 0, 0, interlaced ? 1 : 0], 8);
  const raw = rows.flatMap((r) => [0, ...r]); // filter type 0 (None) per scanline
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    ...extra.map(([t, d]) => pngChunk(t, d)),
    pngChunk('IDAT', idat ?? deflateSync(new Uint8Array(raw))),
    pngChunk('IEND', new Uint8Array(0)),
  ];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** RGB triple at (x, y) of a planar image. */
function pixel(img: Image, x: number, y: number): number[] {
  const plane = img.width * img.height;
  const i = y * img.width + x;
  return [img.data[i]!, img.data[plane + i]!, img.data[2 * plane + i]!];
}

function imageFromBytes(width: number, height: number, rgb: (x: number, y: number) => number[]): Image {
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) rgba.set([...rgb(x, y), 255], (y * width + x) * 4);
  }
  return rgbaToImage(rgba, width, height);
}

function insertApp1(jpg: Uint8Array, payload: Uint8Array): Uint8Array {
  const seg = new Uint8Array(4 + payload.length);
  seg.set([0xff, 0xe1, (payload.length + 2) >> 8, (payload.length + 2) & 0xff]);
  seg.set(payload, 4);
  const out = new Uint8Array(jpg.length + seg.length);
  out.set(jpg.subarray(0, 2));
  out.set(seg, 2);
  out.set(jpg.subarray(2), 2 + seg.length);
  return out;
}

/** "Exif\0\0" + a TIFF header whose IFD0 holds only the orientation tag. */
function exifOrientation(orientation: number, littleEndian: boolean): Uint8Array {
  const out = new Uint8Array(6 + 8 + 2 + 12 + 4);
  out.set([0x45, 0x78, 0x69, 0x66, 0, 0]);
  const v = new DataView(out.buffer, 6);
  v.setUint16(0, littleEndian ? 0x4949 : 0x4d4d);
  v.setUint16(2, 42, littleEndian);
  v.setUint32(4, 8, littleEndian);
  v.setUint16(8, 1, littleEndian);
  v.setUint16(10, 0x0112, littleEndian);
  v.setUint16(12, 3, littleEndian);
  v.setUint32(14, 1, littleEndian);
  v.setUint16(18, orientation, littleEndian);
  return out;
}

// ---------- safetensors ----------

test('safetensors: F32/I64/F16 round trip with metadata, insertion order, padded header', () => {
  const tensors: NamedSerializableTensor[] = [
    { name: 'conv.weight', dtype: 'F32', shape: [2, 3], data: new Float32Array([1, -2.5, 3, 0, 1e-8, 7]) },
    { name: 'step', dtype: 'I64', shape: [], data: new BigInt64Array([123456789012345n]) },
    { name: 'a.half', dtype: 'F16', shape: [3], data: new Uint16Array([0x3c00, 0xc000, 0x3555]) },
  ];
  const bytes = serializeSafetensors(tensors, { format: 'pt', epoch: '3' });
  const headerLen = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.is(headerLen % 8, 0);
  const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + headerLen));
  assert.ok(headerText.indexOf('conv.weight') < headerText.indexOf('step'));
  assert.ok(headerText.indexOf('step') < headerText.indexOf('a.half'));

  const parsed = parseSafetensors(bytes);
  assert.equal(parsed.metadata, { format: 'pt', epoch: '3' });
  assert.equal([...parsed.tensors.keys()], ['conv.weight', 'step', 'a.half']);
  const w = parsed.tensors.get('conv.weight')!;
  assert.is(w.dtype, 'F32');
  assert.equal(w.shape, [2, 3]);
  assert.equal(Array.from(toFloat32(w, 'conv.weight')), Array.from(tensors[0]!.data as Float32Array));
  const step = parsed.tensors.get('step')!;
  assert.equal(step.shape, []);
  assert.is(new DataView(step.data.buffer, step.data.byteOffset).getBigInt64(0, true), 123456789012345n);
  const half = parsed.tensors.get('a.half')!;
  assert.equal(Array.from(new Uint16Array(half.data.slice().buffer)), [0x3c00, 0xc000, 0x3555]);
  const f = toFloat32(half, 'a.half');
  assert.is(f[0], 1);
  assert.is(f[1], -2);
  assert.ok(Math.abs(f[2]! - 1 / 3) < 1e-3);
});

test('safetensors: Map input and empty metadata', () => {
  const map = new Map<string, SerializableTensor>([
    ['b', { dtype: 'F32', shape: [1], data: new Float32Array([2]) }],
    ['a', { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) }],
  ]);
  const parsed = parseSafetensors(serializeSafetensors(map));
  assert.equal([...parsed.tensors.keys()], ['b', 'a']);
  assert.equal(parsed.metadata, {});
  assert.is(toFloat32(parsed.tensors.get('a')!, 'a').length, 0);
});

test('safetensors: F16 and BF16 known values', () => {
  const f16 = [0x3c00, 0xc000, 0x7bff, 0x0001, 0x0400, 0x7c00, 0xfc00, 0x8000, 0x7e00, 0x3555];
  const bf16 = [0x3f80, 0xc049, 0x7f80, 0x0000, 0x4280, 0xbf00];
  const file = rawSafetensors(
    {
      h: { dtype: 'F16', shape: [f16.length], data_offsets: [0, 2 * f16.length] },
      b: { dtype: 'BF16', shape: [2, 3], data_offsets: [2 * f16.length, 2 * f16.length + 12] },
    },
    new Uint8Array([...u16le(f16), ...u16le(bf16)]),
  );
  const { tensors } = parseSafetensors(file);
  const h = toFloat32(tensors.get('h')!, 'h');
  assert.equal(Array.from(h.subarray(0, 8)), [1, -2, 65504, 2 ** -24, 2 ** -14, Infinity, -Infinity, -0]);
  assert.ok(Object.is(h[7], -0));
  assert.ok(Number.isNaN(h[8]));
  assert.is(h[9], Math.fround(0.333251953125));
  const b = toFloat32(tensors.get('b')!, 'b');
  assert.equal(Array.from(b), [1, -3.140625, Infinity, 0, 64, -0.5]);
});

test('safetensors: F64 and unaligned data are converted by copy', () => {
  const f64 = new Float64Array([0.5, -1.25, 1e10]);
  const f32 = new Float32Array([3.5, -7]);
  // A 7-byte-odd header puts the data section at an unaligned offset on purpose.
  const header = { d: { dtype: 'F64', shape: [3], data_offsets: [0, 24] }, s: { dtype: 'F32', shape: [2], data_offsets: [24, 32] } };
  const text = JSON.stringify(header) + ' '.repeat(((8 - (JSON.stringify(header).length % 8)) % 8) + 3);
  const file = rawSafetensors(null, new Uint8Array([...new Uint8Array(f64.buffer), ...new Uint8Array(f32.buffer)]), text);
  const { tensors } = parseSafetensors(file);
  assert.ok(tensors.get('s')!.data.byteOffset % 4 !== 0);
  assert.equal(Array.from(toFloat32(tensors.get('d')!, 'd')), [0.5, -1.25, 1e10]);
  const s = toFloat32(tensors.get('s')!, 's');
  assert.equal(Array.from(s), [3.5, -7]);
  s[0] = 99; // result must not alias the file
  assert.equal(Array.from(toFloat32(tensors.get('s')!, 's')), [3.5, -7]);
});

test('safetensors: toFloat32 rejects integer dtypes naming tensor and dtype', () => {
  const { tensors } = parseSafetensors(
    serializeSafetensors([{ name: 'counter', dtype: 'I64', shape: [1], data: new BigInt64Array([1n]) }]),
    'ckpt.safetensors',
  );
  assertMessage(errorOf(() => toFloat32(tensors.get('counter')!, 'counter', 'ckpt.safetensors')), 'ckpt.safetensors', "'counter'", 'I64');
});

test('safetensors: malformed files give one-line errors naming file and tensor', () => {
  const src = 'bad.safetensors';
  const parse = (b: Uint8Array) => errorOf(() => parseSafetensors(b, src));
  const good = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };

  assertMessage(parse(new Uint8Array(4)), src, 'too short');
  assertMessage(parse(new Uint8Array(0)), src, 'too short');
  const huge = new Uint8Array(16);
  new DataView(huge.buffer).setBigUint64(0, 1000n, true);
  assertMessage(parse(huge), src, 'header length 1000 exceeds file size');
  const max = new Uint8Array(16);
  new DataView(max.buffer).setBigUint64(0, 0xffffffffffffffffn, true);
  assertMessage(parse(max), src, 'exceeds file size');
  // Truncated data section: the header promises 8 bytes, only 4 remain.
  assertMessage(parse(rawSafetensors(good, new Uint8Array(4))), src, "tensor 'w'", 'out of range');
  assertMessage(parse(rawSafetensors(null, new Uint8Array(0), '{"w": {')), src, 'invalid JSON');
  assertMessage(parse(rawSafetensors([1, 2])), src, 'not a JSON object');
  assertMessage(
    parse(rawSafetensors({ w: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(8))),
    src, "tensor 'w'", 'out of range',
  );
  assertMessage(
    parse(rawSafetensors({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8))),
    src, "tensor 'w'", 'span 8 bytes', 'needs 12',
  );
  // A span longer than the shape needs is refused too (it would hide bytes of another tensor).
  assertMessage(
    parse(rawSafetensors({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(8))),
    src, "tensor 'w'", 'span 8 bytes', 'needs 4',
  );
  assertMessage(
    parse(rawSafetensors({ w: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, new Uint8Array(8))),
    src, "tensor 'w'", 'out of range',
  );
  assertMessage(
    parse(rawSafetensors({ w: { dtype: 'F32', shape: [2], data_offsets: [0] } }, new Uint8Array(8))),
    src, "tensor 'w'", 'data_offsets',
  );
  assertMessage(
    parse(rawSafetensors({
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    }, new Uint8Array(12))),
    src, "tensor 'b'", "overlap tensor 'a'",
  );
  assertMessage(parse(rawSafetensors({ w: { dtype: 'Q4', shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8))), src, "tensor 'w'", "unknown dtype 'Q4'");
  assertMessage(parse(rawSafetensors({ w: { shape: [2], data_offsets: [0, 8] } }, new Uint8Array(8))), src, "tensor 'w'", 'dtype');
  assertMessage(parse(rawSafetensors({ w: { dtype: 'F32', shape: [2.5], data_offsets: [0, 10] } }, new Uint8Array(10))), src, "tensor 'w'", 'shape');
  assertMessage(parse(rawSafetensors({ w: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, new Uint8Array(8))), src, "tensor 'w'", 'shape');
  assertMessage(parse(rawSafetensors({ w: 5 })), src, "tensor 'w'", 'not an object');
  assertMessage(parse(rawSafetensors({ __metadata__: { a: 1 } })), src, "'__metadata__.a'", 'not a string');
  assertMessage(parse(rawSafetensors({ __metadata__: [] })), src, '__metadata__');
  // Invalid UTF-8 in the header is a JSON error, not silent replacement characters.
  const badUtf8 = rawSafetensors(null, new Uint8Array(0), '{}');
  badUtf8[8] = 0xff;
  assertMessage(parse(badUtf8), src, 'invalid JSON');
});

test('safetensors: serializer validates dtype, shape and names', () => {
  const ser = (t: NamedSerializableTensor) => errorOf(() => serializeSafetensors([t]));
  assertMessage(ser({ name: 'x', dtype: 'F32', shape: [2], data: new Uint16Array(2) }), "'x'", 'Float32Array');
  assertMessage(ser({ name: 'x', dtype: 'F32', shape: [3], data: new Float32Array(2) }), "'x'", '3 elements');
  assertMessage(ser({ name: '__metadata__', dtype: 'F32', shape: [1], data: new Float32Array(1) }), 'reserved');
  const dup = errorOf(() => serializeSafetensors([
    { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
    { name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) },
  ]));
  assertMessage(dup, "'x'", 'duplicate');
});

test('safetensors: subarray views serialize only their own bytes', () => {
  const backing = new Float32Array([9, 1, 2, 9]);
  const out = parseSafetensors(serializeSafetensors([{ name: 'v', dtype: 'F32', shape: [2], data: backing.subarray(1, 3) }]));
  assert.equal(Array.from(toFloat32(out.tensors.get('v')!, 'v')), [1, 2]);
});

// ---------- files ----------

test('fs: writeFileAtomic writes, replaces and leaves no temp files', async () => {
  const dir = await tmpDir();
  const path = join(dir, 'model.safetensors');
  await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
  await writeFileAtomic(path, new Uint8Array([4, 5]));
  assert.equal(Array.from(await readFileBytes(path)), [4, 5]);
  assert.equal(await readdir(dir), ['model.safetensors']);
});

test('fs: unfinished outputs are what a signal removes, and a finished write leaves none registered', async () => {
  const dir = await tmpDir();
  const half = join(dir, 'norain.png');
  await writeFile(half, 'half of a pair');
  unfinishedOutput(half);
  const done = join(dir, 'done.bin');
  await writeFileAtomic(done, new Uint8Array([1]));
  await rejectionOf(writeFileAtomic(join(dir, 'nope', 'x.bin'), new Uint8Array(1)));
  removeUnfinished(); // what the CLI's SIGINT/SIGTERM handler runs before it exits
  assert.equal(await readdir(dir), ['done.bin']);
  unfinishedOutput(join(dir, 'gone'));
  removeUnfinished(); // a path that never came to be is no error
});

test('fs: writeFileAtomic failures leave no temp files and name the path', async () => {
  const dir = await tmpDir();
  const missing = join(dir, 'nope', 'x.bin');
  assertMessage(await rejectionOf(writeFileAtomic(missing, new Uint8Array(1))), missing, 'no such file or directory');
  assert.equal(await readdir(dir), []);
  // The temp file is written successfully here, and the rename onto a directory then fails.
  const target = join(dir, 'occupied');
  await mkdir(target);
  assertMessage(await rejectionOf(writeFileAtomic(target, new Uint8Array(8))), target);
  assert.equal(await readdir(dir), ['occupied']);
  assert.equal(await readdir(target), []);
});

test('fs: readFileBytes errors for missing file, directory, empty file', async () => {
  const dir = await tmpDir();
  const missing = join(dir, 'missing.png');
  assertMessage(await rejectionOf(readFileBytes(missing)), `cannot read '${missing}'`, 'no such file');
  assertMessage(await rejectionOf(readFileBytes(dir)), `cannot read '${dir}'`, 'is a directory');
  const empty = join(dir, 'empty.bin');
  await writeFile(empty, new Uint8Array(0));
  assertMessage(await rejectionOf(readFileBytes(empty)), `cannot read '${empty}'`, 'file is empty');
});

// ---------- pixels ----------

test('image: toByte rounding rule and clamping', () => {
  assert.is(toByte(0), 0);
  assert.is(toByte(1), 255);
  assert.is(toByte(-0.3), 0);
  assert.is(toByte(1.7), 255);
  assert.is(toByte(NaN), 0);
  assert.is(toByte(0.5), 128); // 127.5 rounds half up
  assert.is(toByte(100 / 255), 100);
  for (let k = 0; k < 256; k++) assert.is(toByte(Math.fround(k / 255)), k);
});

test('image: format sniffing and extension mapping', () => {
  assert.is(detectImageFormat(makePng(1, 1, 0, 8, [[0]])), 'png');
  assert.is(detectImageFormat(new Uint8Array([0xff, 0xd8, 0xff, 0xe0])), 'jpg');
  assert.is(detectImageFormat(new TextEncoder().encode('GIF89a')), null);
  assert.is(formatFromPath('/a/b.PNG'), 'png');
  assert.is(formatFromPath('x.jpeg'), 'jpg');
  assert.is(formatFromPath('x.JPG'), 'jpg');
  assert.is(formatFromPath('x.bmp'), null);
  assert.is(formatFromPath('dir.png/file'), null);
});

test('image: applyOrientation handles all eight EXIF orientations', () => {
  // 3x2 image whose red channel labels the pixels: a b c / d e f.
  const labels = 'abcdef';
  const rgba = new Uint8Array(24);
  for (let i = 0; i < 6; i++) rgba.set([labels.charCodeAt(i), 0, 0, 255], i * 4);
  const show = (o: number) => {
    const r = applyOrientation({ width: 3, height: 2, data: rgba }, o);
    const s: string[] = [];
    for (let y = 0; y < r.height; y++) {
      let row = '';
      for (let x = 0; x < r.width; x++) row += String.fromCharCode(r.data[(y * r.width + x) * 4]!);
      s.push(row);
    }
    return s.join('/');
  };
  assert.is(show(1), 'abc/def');
  assert.is(show(2), 'cba/fed');
  assert.is(show(3), 'fed/cba');
  assert.is(show(4), 'def/abc');
  assert.is(show(5), 'ad/be/cf');
  assert.is(show(6), 'da/eb/fc');
  assert.is(show(7), 'fc/eb/da');
  assert.is(show(8), 'cf/be/ad');
  assert.is(show(0), 'abc/def');
  assert.is(show(9), 'abc/def');
});

test('image: readJpegOrientation reads both byte orders and tolerates junk', () => {
  const jpg = encodeImage(imageFromBytes(8, 8, () => [10, 20, 30]), 'jpg');
  assert.is(readJpegOrientation(jpg), 1);
  assert.is(readJpegOrientation(insertApp1(jpg, exifOrientation(6, false))), 6);
  assert.is(readJpegOrientation(insertApp1(jpg, exifOrientation(8, true))), 8);
  assert.is(readJpegOrientation(insertApp1(jpg, exifOrientation(42, true))), 1);
  const broken = exifOrientation(6, true);
  broken[6] = 0x58; // bad byte-order mark
  assert.is(readJpegOrientation(insertApp1(jpg, broken)), 1);
  assert.is(readJpegOrientation(insertApp1(jpg, new TextEncoder().encode('http://ns.adobe.com/xap/1.0/\0<x/>'))), 1);
  assert.is(readJpegOrientation(new Uint8Array(0)), 1);
});

// ---------- codecs ----------

test('png: 8-bit RGB round trip is exact', () => {
  const w = 7;
  const h = 5;
  const img = imageFromBytes(w, h, (x, y) => [(x * 37 + y * 11) & 255, (x * 5 + y * 91 + 3) & 255, (x * y * 13 + 255) & 255]);
  const png = encodeImage(img, 'png');
  assert.is(detectImageFormat(png), 'png');
  const back = decodeImage(png, 'rt.png');
  assert.is(back.width, w);
  assert.is(back.height, h);
  assert.equal(back.data, img.data);
  assert.equal(imageToRgb8(back), imageToRgb8(img));
});

test('png: encode quantises with toByte', () => {
  const img: Image = { width: 2, height: 1, data: new Float32Array([-1, 0.5, 0.2, 2, -0.3, 0.999]) };
  const rgb = imageToRgb8(decodeImage(encodeImage(img, 'png')));
  assert.equal(Array.from(rgb), [0, 51, 0, 128, 255, 255]);
});

test('png: RGBA drops alpha without premultiplying', () => {
  const png = makePng(2, 1, 6, 8, [[200, 100, 50, 0, 10, 20, 30, 128]]);
  assert.equal(Array.from(imageToRgb8(decodeImage(png))), [200, 100, 50, 10, 20, 30]);
});

test('png: gray and gray+alpha expand to RGB', () => {
  assert.equal(Array.from(imageToRgb8(decodeImage(makePng(3, 1, 0, 8, [[0, 77, 255]])))), [0, 0, 0, 77, 77, 77, 255, 255, 255]);
  assert.equal(Array.from(imageToRgb8(decodeImage(makePng(2, 1, 4, 8, [[90, 0, 180, 255]])))), [90, 90, 90, 180, 180, 180]);
  // 2-bit gray: 0..3 maps to 0, 1/3, 2/3, 1.
  const low = decodeImage(makePng(4, 1, 0, 2, [[0b00011011]]));
  assert.equal(Array.from(low.data.subarray(0, 4)), [0, 1 / 3, 2 / 3, 1].map(Math.fround));
});

test('png: a tRNS colour key makes its pixels transparent without altering the raw samples', () => {
  const gray = decodeImage(makePng(2, 1, 0, 8, [[40, 41]], [['tRNS', new Uint8Array([0, 40])]]));
  assert.equal(Array.from(imageToRgb8(gray)), [40, 40, 40, 41, 41, 41]);
  assert.equal(Array.from(gray.alpha ?? []), [0, 1]);
  const rgb = decodeImage(makePng(2, 1, 2, 8, [[1, 2, 3, 1, 2, 4]], [['tRNS', new Uint8Array([0, 1, 0, 2, 0, 3])]]));
  assert.equal(Array.from(imageToRgb8(rgb)), [1, 2, 3, 1, 2, 4]);
  assert.equal(Array.from(rgb.alpha ?? []), [0, 1]);
  const low = decodeImage(makePng(2, 1, 0, 4, [[0x12]], [['tRNS', new Uint8Array([0, 1])]]));
  assert.equal(Array.from(low.alpha ?? []), [0, 1]);
  const deep = decodeImage(makePng(2, 1, 0, 16, [[1, 0, 1, 1]], [['tRNS', new Uint8Array([1, 1])]]));
  assert.equal(Array.from(deep.alpha ?? []), [1, 0]);
});

test('png: palette images, with the alphas of tRNS (entries past its end opaque)', () => {
  const plte = new Uint8Array([255, 0, 0, 0, 128, 255, 9, 8, 7]);
  const keyed = decodeImage(makePng(3, 1, 3, 8, [[2, 0, 1]], [['PLTE', plte], ['tRNS', new Uint8Array([0, 51])]]));
  assert.equal(Array.from(imageToRgb8(keyed)), [9, 8, 7, 255, 0, 0, 0, 128, 255]);
  assert.equal(Array.from(keyed.alpha ?? []), [1, 0, 0.2].map(Math.fround));
  const packed = makePng(3, 1, 3, 4, [[0x21, 0x00]], [['PLTE', plte]]);
  assert.equal(Array.from(imageToRgb8(decodeImage(packed))), [9, 8, 7, 0, 128, 255, 255, 0, 0]);
});

test('png: 16-bit samples are scaled by 1/65535 at full precision', () => {
  const samples = [0, 256, 257, 65535, 12345, 40000];
  const row = samples.flatMap((s) => [s >> 8, s & 255]);
  const img = decodeImage(makePng(2, 1, 2, 16, [row]));
  // Planar order: R(x0) R(x1) G(x0) G(x1) B(x0) B(x1).
  const expected = [samples[0], samples[3], samples[1], samples[4], samples[2], samples[5]].map((s) => s! / 65535);
  for (let i = 0; i < 6; i++) assert.ok(Math.abs(img.data[i]! - expected[i]!) < 1e-7, `sample ${i}`);
  assert.ok(img.data[2] !== img.data[4], '256 and 257 must stay distinguishable');
  const gray16 = decodeImage(makePng(1, 1, 4, 16, [[0x80, 0x00, 0x00, 0x00]]));
  assert.equal(Array.from(gray16.data).map((v) => Math.abs(v - 0x8000 / 65535) < 1e-7), [true, true, true]);
});

test('png: Adam7 interlaced image decodes', () => {
  // 3x3 gray, value 10*y + x + 1; scanlines listed per pass (passes 2 and 3 are empty at this size).
  const v = (x: number, y: number) => 10 * y + x + 1;
  const rows = [[v(0, 0)], [v(2, 0)], [v(0, 2), v(2, 2)], [v(1, 0)], [v(1, 2)], [v(0, 1), v(1, 1), v(2, 1)]];
  const img = decodeImage(makePng(3, 3, 0, 8, rows, [], undefined, true));
  const got = Array.from(imageToRgb8(img)).filter((_, i) => i % 3 === 0);
  assert.equal(got, [1, 2, 3, 11, 12, 13, 21, 22, 23]);
});

test('png: corrupt or short zlib streams are errors, not garbage pixels', () => {
  const dec = (b: Uint8Array) => errorOf(() => decodeImage(b, 'z.png'));
  const rows = [[1, 2, 3, 4], [5, 6, 7, 8]];
  const full = deflateSync(new Uint8Array(rows.flatMap((r) => [0, ...r])));
  // Chunks are intact (valid CRCs) but the zlib data inside is not.
  assertMessage(dec(makePng(4, 2, 0, 8, rows, [], new Uint8Array([1, 2, 3, 4]))), "cannot decode image 'z.png': corrupt PNG data");
  assertMessage(dec(makePng(4, 2, 0, 8, rows, [], full.subarray(0, full.length - 6))), "cannot decode image 'z.png'");
  const short = deflateSync(new Uint8Array([0, 1, 2, 3, 4]));
  assertMessage(dec(makePng(4, 2, 0, 8, rows, [], short)), "cannot decode image 'z.png': truncated PNG data");
  // Surplus image data is tolerated.
  const long = deflateSync(new Uint8Array([...rows.flatMap((r) => [0, ...r]), 0, 9, 9, 9, 9]));
  assert.equal(Array.from(imageToRgb8(decodeImage(makePng(4, 2, 0, 8, rows, [], long)))).filter((_, i) => i % 3 === 0), [1, 2, 3, 4, 5, 6, 7, 8]);
  assertMessage(dec(makePng(4, 2, 5, 8, rows)), 'invalid IHDR');
});

test('jpeg: round trip within tolerance', () => {
  const w = 40;
  const h = 24;
  const img = imageFromBytes(w, h, (x, y) => [x * 6, y * 10, 128 + Math.round(60 * Math.sin(x / 5))]);
  const jpg = encodeImage(img, 'jpg');
  assert.is(detectImageFormat(jpg), 'jpg');
  const back = decodeImage(jpg, 'rt.jpg');
  assert.is(back.width, w);
  assert.is(back.height, h);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < img.data.length; i++) {
    const d = Math.abs(back.data[i]! - img.data[i]!);
    sum += d;
    max = Math.max(max, d);
  }
  assert.ok(sum / img.data.length < 0.01, `mean error ${sum / img.data.length}`);
  assert.ok(max < 0.08, `max error ${max}`);
});

test('jpeg: EXIF orientations 6 (big-endian) and 3 (little-endian) are applied', () => {
  // 48x32 made of 3x2 flat 16x16 blocks, far apart in colour so JPEG error can't confuse them.
  const colors = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255], [255, 0, 255]];
  const block = (bx: number, by: number) => colors[by * 3 + bx]!;
  const jpg = encodeImage(imageFromBytes(48, 32, (x, y) => block(x >> 4, y >> 4)), 'jpg');
  const near = (img: Image, bx: number, by: number, want: number[], label: string) => {
    const got = pixel(img, bx * 16 + 8, by * 16 + 8).map(toByte);
    assert.ok(got.every((v, i) => Math.abs(v - want[i]!) < 24), `${label} block (${bx},${by}): got ${got} want ${want}`);
  };

  const plain = decodeImage(jpg);
  for (let by = 0; by < 2; by++) for (let bx = 0; bx < 3; bx++) near(plain, bx, by, block(bx, by), 'plain');

  const rot6 = decodeImage(insertApp1(jpg, exifOrientation(6, false)));
  assert.is(rot6.width, 32);
  assert.is(rot6.height, 48);
  // Rotated 90 degrees clockwise: the stored left column becomes the top row, read right to left.
  const expect6 = [[block(0, 1), block(0, 0)], [block(1, 1), block(1, 0)], [block(2, 1), block(2, 0)]];
  for (let by = 0; by < 3; by++) for (let bx = 0; bx < 2; bx++) near(rot6, bx, by, expect6[by]![bx]!, 'o6');

  const rot3 = decodeImage(insertApp1(jpg, exifOrientation(3, true)));
  assert.is(rot3.width, 48);
  assert.is(rot3.height, 32);
  for (let by = 0; by < 2; by++) for (let bx = 0; bx < 3; bx++) near(rot3, bx, by, block(2 - bx, 1 - by), 'o3');
});

test('jpeg: 4000x3000 decodes within the configured limits', () => {
  const w = 4000;
  const h = 3000;
  const img: Image = { width: w, height: h, data: new Float32Array(3 * w * h).fill(0.25) };
  const back = decodeImage(encodeImage(img, 'jpg'), 'big.jpg');
  assert.is(back.width, w);
  assert.is(back.height, h);
  assert.ok(Math.abs(back.data[12345]! - 0.25) < 0.01);
});

test('decode: empty, unknown, truncated and corrupt inputs give one-line errors', () => {
  const dec = (b: Uint8Array, name: string) => errorOf(() => decodeImage(b, name));
  assertMessage(dec(new Uint8Array(0), 'e.png'), "cannot decode image 'e.png'", 'file is empty');
  assertMessage(dec(new TextEncoder().encode('hello world'), 'x.png'), "cannot decode image 'x.png': not a PNG or JPEG file");

  const png = encodeImage(imageFromBytes(16, 16, (x, y) => [x * 16, y * 16, 7]), 'png');
  for (const cut of [8, 20, 40, png.length - 20, png.length - 4]) {
    assertMessage(dec(png.subarray(0, cut), 't.png'), "cannot decode image 't.png': truncated PNG data");
  }
  const flipped = png.slice();
  flipped[flipped.length - 20]! ^= 0xff; // inside IDAT: CRC mismatch
  assertMessage(dec(flipped, 'c.png'), "cannot decode image 'c.png': corrupt PNG data");
  const badZlib = makePng(1, 1, 0, 8, [[0]], [], new Uint8Array([1, 2, 3, 4]));
  assertMessage(dec(badZlib, 'z.png'), "cannot decode image 'z.png': corrupt PNG data");

  const jpg = encodeImage(imageFromBytes(16, 16, (x, y) => [x * 16, y * 16, 7]), 'jpg');
  for (const cut of [3, 30, Math.floor(jpg.length / 2), jpg.length - 2]) {
    assertMessage(dec(jpg.subarray(0, cut), 't.jpg'), "cannot decode image 't.jpg': truncated JPEG data");
  }
  assertMessage(dec(new Uint8Array([0xff, 0xd8, 0xff, 0xd9]), 'c.jpg'), "cannot decode image 'c.jpg': corrupt JPEG data");
});

test('files: writeImage/readImage round trip, extension chooses format', async () => {
  const dir = await tmpDir();
  const img = imageFromBytes(9, 4, (x, y) => [x * 20, y * 60, 99]);
  await writeImage(join(dir, 'a.png'), img);
  await writeImage(join(dir, 'b.JPEG'), img);
  await writeImage(join(dir, 'c.out'), img, 'png');
  assert.equal((await readdir(dir)).sort(), ['a.png', 'b.JPEG', 'c.out']);
  assert.equal((await readImage(join(dir, 'a.png'))).data, img.data);
  assert.is(detectImageFormat(new Uint8Array(await readFile(join(dir, 'b.JPEG')))), 'jpg');
  assert.is((await readImage(join(dir, 'b.JPEG'))).width, 9);
  assert.equal((await readImage(join(dir, 'c.out'))).data, img.data);

  assertMessage(await rejectionOf(writeImage(join(dir, 'd.bmp'), img)), 'd.bmp', 'unknown extension');
  const bad: Image = { width: 2, height: 2, data: new Float32Array(5) };
  assertMessage(await rejectionOf(writeImage(join(dir, 'e.png'), bad)), 'e.png', 'Float32Array');
  const nan: Image = { width: 2, height: 1, data: Float32Array.of(0.5, 0.5, NaN, 0.5, 0.5, 0.5) };
  assertMessage(await rejectionOf(writeImage(join(dir, 'f.png'), nan)), 'f.png', 'value NaN at index 2 (channel 1)');
  assert.equal((await readdir(dir)).sort(), ['a.png', 'b.JPEG', 'c.out']);

  const empty = join(dir, 'empty.png');
  await writeFile(empty, new Uint8Array(0));
  assertMessage(await rejectionOf(readImage(empty)), empty, 'file is empty');
  const missing = join(dir, 'missing.jpg');
  assertMessage(await rejectionOf(readImage(missing)), missing, 'no such file');
  const junk = join(dir, 'junk.jpg');
  await writeFile(junk, 'not an image');
  assertMessage(await rejectionOf(readImage(junk)), `cannot decode image '${junk}': not a PNG or JPEG file`);
});

// ---------- hostile inputs: budgets, devices, full disks ----------

/** A 14000x14000 all-zero RGB PNG: 571 KB on disk, 196 MP (2.4 GB as float32) once decoded. */
async function zeroPng(size: number): Promise<Uint8Array> {
  const ihdr = new Uint8Array(13);
  new DataView(ihdr.buffer).setUint32(0, size);
  new DataView(ihdr.buffer).setUint32(4, size);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const deflate = createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (c: Buffer) => parts.push(c));
  const done = new Promise((r) => deflate.on('end', r));
  const row = Buffer.alloc(1 + size * 3);
  for (let y = 0; y < size; y++) deflate.write(row);
  deflate.end();
  await done;
  const chunks = [new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), pngChunk('IHDR', ihdr), pngChunk('IDAT', Buffer.concat(parts)), pngChunk('IEND', new Uint8Array(0))];
  return Buffer.concat(chunks);
}

const ZERO_PNG_SIZE = 14000;

test('budget: a 571 KB PNG of 14000x14000 zeros fails at once, before any allocation', async () => {
  const dir = await tmpDir();
  const path = join(dir, 'zeros.png');
  await writeFile(path, await zeroPng(ZERO_PNG_SIZE));
  const t0 = Date.now();
  const err = await rejectionOf(readImage(path, { maxPixels: 100e6 }));
  assertMessage(err, path, '14000x14000 pixels (196 MP)', 'budget of 100 MP', MAX_MEGAPIXELS_ENV);
  assert.ok(Date.now() - t0 < 1000, `took ${Date.now() - t0} ms`);
});

test('budget: a tiny JPEG declaring 14000x14000 is refused before decoding', () => {
  const jpg = encodeImage(imageFromBytes(16, 16, (x, y) => [x * 16, y * 16, 7]), 'jpg').slice();
  // Patch the SOF0 segment's height and width (after FF C0, length, precision).
  const sof = jpg.findIndex((b, i) => b === 0xff && jpg[i + 1] === 0xc0);
  new DataView(jpg.buffer).setUint16(sof + 5, 14000);
  new DataView(jpg.buffer).setUint16(sof + 7, 14000);
  const t0 = Date.now();
  assertMessage(errorOf(() => decodeImage(jpg, 'claim.jpg', { maxPixels: 100e6 })), "cannot decode image 'claim.jpg'", '14000x14000', 'budget');
  assert.ok(Date.now() - t0 < 1000);
});

test('budget: scales with the machine and is overridable', () => {
  const gb = 2 ** 30;
  assert.ok(pixelBudget({}, 8 * gb) >= 24e6, 'an 8 GB machine takes a 24 MP photo');
  assert.ok(pixelBudget({}, 23 * gb) < ZERO_PNG_SIZE ** 2, 'a 23 GB machine refuses 196 MP');
  assert.ok(pixelBudget({}, 128 * gb) > pixelBudget({}, 23 * gb));
  assert.is(pixelBudget({ [MAX_MEGAPIXELS_ENV]: '2.5' }, gb), 2.5e6);
  assertMessage(errorOf(() => pixelBudget({ [MAX_MEGAPIXELS_ENV]: '-1' })), MAX_MEGAPIXELS_ENV, "'-1'");
});

test('reads are capped: /dev/zero as an image or as safetensors fails fast', async () => {
  const t0 = Date.now();
  assertMessage(await rejectionOf(readImage('/dev/zero')), "'/dev/zero'", 'not a PNG or JPEG file');
  assertMessage(await rejectionOf(readFileBytes('/dev/zero', safetensorsReadLimit('/dev/zero'))), '/dev/zero', 'invalid JSON header');
  assertMessage(await rejectionOf(readFileBytes('/dev/zero', { maxBytes: 1000 })), "cannot read '/dev/zero'", 'longer than');
  // A pipe with a PNG signature and then endless zeros: refused from its head, not read forever.
  const dir = await tmpDir();
  const fifo = join(dir, 'pipe.png');
  const { spawnSync, spawn } = await import('node:child_process');
  spawnSync('mkfifo', [fifo]);
  const writer = spawn('sh', ['-c', `{ printf '\\211PNG\\r\\n\\032\\n'; cat /dev/zero; } > ${fifo}`]);
  assertMessage(await rejectionOf(readImage(fifo)), fifo, 'first chunk is not IHDR');
  writer.kill();
  assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
});

test('transparency: an RGBA PNG keeps its alpha through decode and encode; opaque images carry none', async () => {
  const w = 5, h = 3;
  const data = Float32Array.from({ length: 3 * w * h }, (_, i) => (i % 7) / 7);
  const alpha = Float32Array.from({ length: w * h }, (_, i) => (i % 3 === 0 ? 0 : i % 3 === 1 ? 128 / 255 : 1));
  const back = decodeImage(encodeImage({ width: w, height: h, data, alpha }, 'png'));
  assert.ok(back.alpha, 'alpha lost');
  assert.equal([...back.alpha!].map((v) => Math.round(v * 255)), [...alpha].map((v) => Math.round(v * 255)));
  assert.equal([...back.data].map((v) => Math.round(v * 255)), [...data].map((v) => Math.round(v * 255)), 'colours under transparent pixels are kept, not composited');
  assert.is(decodeImage(encodeImage({ width: w, height: h, data }, 'png')).alpha, undefined);
  assert.is(decodeImage(encodeImage({ width: w, height: h, data, alpha }, 'jpg')).alpha, undefined, 'JPEG has no alpha');
});

test('16-bit PNG: depth kept through decode and encode, samples exact; 8-bit images carry none', () => {
  // Hand-made 16-bit RGBA (big-endian samples), values no 8-bit image holds.
  const samples = [[1, 258, 40000, 65535], [12345, 0, 65534, 3], [300, 60000, 7, 32768]];
  const row = samples.flatMap((px) => px.flatMap((v) => [v >> 8, v & 255]));
  const img = decodeImage(makePng(3, 1, 6, 16, [row]));
  assert.is(img.depth, 16);
  const back = decodeImage(encodeImage(img, 'png'));
  const bytes = encodeImage(img, 'png');
  assert.is(bytes[24], 16, 'IHDR bit depth');
  assert.is(back.depth, 16);
  assert.equal([...back.data].map((v) => Math.round(v * 65535)), [0, 1, 2].flatMap((c) => samples.map((px) => px[c]!)));
  assert.equal([...back.alpha!].map((v) => Math.round(v * 65535)), samples.map((px) => px[3]!));
  const rgb = { width: img.width, height: img.height, data: img.data, depth: 16 as const };
  assert.equal([...decodeImage(encodeImage(rgb, 'png')).data], [...back.data], 'RGB without alpha');
  assert.is(decodeImage(makePng(1, 1, 2, 8, [[1, 2, 3]])).depth, undefined);
  assert.is(decodeImage(encodeImage(img, 'jpg')).depth, undefined, 'JPEG is 8-bit');
});

test('fs errors: one line naming the path and the cause', async () => {
  const dir = await tmpDir();
  const loop = join(dir, 'loop.png');
  await symlink(loop, loop);
  assertMessage(await rejectionOf(readImage(loop)), loop, 'too many levels of symbolic links');
  const plain = join(dir, 'plain');
  await writeFile(plain, 'x');
  assertMessage(errorOf(() => makeDir(join(plain, 'sub'))), 'sub', 'a parent path is not a directory');
  assertMessage(errorOf(() => makeDir(plain)), plain, 'already exists');
  // Node 20's recursive mkdirSync never returns here as root (mkdir(2) says ENOENT under /proc).
  if (existsSync('/proc/self')) {
    const t0 = Date.now();
    assertMessage(errorOf(() => makeDir('/proc/semi-drdnet-test/sub')), '/proc/semi-drdnet-test/sub');
    assert.ok(Date.now() - t0 < 5000);
  }
  for (const [code, words] of [['EROFS', 'read-only file system'], ['EACCES', 'permission denied'], ['ENOSPC', 'no space left on device'], ['EEXIST', 'already exists']]) {
    assert.is(fsCause(Object.assign(new Error(`${code}: raw node message, open '/x'`), { code })), words);
  }
});

test('LineLog: a full disk leaves whole lines only, and the error names the file', async () => {
  const dir = await tmpDir();
  const path = join(dir, 'run.jsonl');
  const log = LineLog.open(path);
  log.append('{"step":1}');
  log.close();
  // A disk that takes 5 bytes of the next line and then is full (what appendFileSync left half-written).
  let budget = 5;
  const full = LineLog.open(path, () => true, {
    write: (fd, buf, off, len, pos) => {
      if (budget === 0) throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
      const n = Math.min(len, budget);
      budget -= n;
      return writeSync(fd, buf, off, n, pos);
    },
  });
  assertMessage(errorOf(() => full.append('{"step":2,"loss":0.5}')), `cannot write '${path}'`, 'no space left on device');
  full.close();
  assert.is(await readFile(path, 'utf8'), '{"step":1}\n');
  assertMessage(errorOf(() => LineLog.open('/dev/full').append('{"step":1}')), "cannot write '/dev/full'", 'no space left on device');
  // Reopening for a resume keeps the chosen prefix and drops a half line.
  await writeFile(path, '{"step":1}\n{"step":2}\n{"step":3}\n{"st');
  LineLog.open(path, (l) => JSON.parse(l).step <= 2).close();
  assert.is(await readFile(path, 'utf8'), '{"step":1}\n{"step":2}\n');
});

test.run();
