// Conv tile configurations: their types, per-adapter defaults, validation, and the engine's tuning cache.
import type { Engine } from '../../gpu/runtime.js';
import type { Geometry } from './geometry.js';

/**
 * Tiles of the forward/dgrad kernels: the direct implicit GEMM (conv2d.wgsl, entry `conv`); with
 * `algo: 'winograd'`, Winograd F(2x2,3x3) (conv2d_winograd.wgsl; stride-1 3x3 convs only): there
 * `tm` is output channels and `tn` 2x2 output tiles per invocation (tm * tn <= 16), register tiles
 * only (smem false, wgY 1), and `bk` is unused; with `algo: 'vec4'`, vec4 rows (lib/conv_direct.wgsl, entry
 * `conv_rows`; stride-1 passes): `tm` output channels (4, 8 or 16) x `tn` pixels of one row (4 or
 * 8) per invocation in named vec4 accumulators, smem false, wgY 1, `bk` unused.
 */
export interface ConvTileConfig {
  /** The algorithm; absent means 'direct'. */
  algo?: 'direct' | 'winograd' | 'vec4';
  /**
   * Direct register tiles only (smem false): each lane loads one of 8 (or 4) weights and
   * subgroupBroadcast shares them (conv2d_subgroup.wgsl). Needs a device with the 'subgroups'
   * feature (`AdapterSummary.subgroupMinSize` >= 4) and wgX a multiple of the share.
   */
  subgroups?: boolean;
  /** Stage tiles in workgroup memory (real GPUs) or keep register tiles only (software). */
  smem: boolean;
  /** Workgroup size; wgY must be 1 without smem. */
  wgX: number;
  wgY: number;
  /** Output channels per invocation (multiple of 4, <= 16). */
  tm: number;
  /** Output pixels per invocation (<= 32); tm * tn <= 256. */
  tn: number;
  /** Reduction depth staged per step (smem only). */
  bk: number;
}

/** Tiles of the weight-gradient kernel. */
export interface WgradTileConfig {
  /**
   * Software adapters: 'nhwc' (wide layers): NHWC copies of x and dy, lanes over input channels,
   * dy uniform across the workgroup; 'nhwc4': the same with named vec4 accumulators (tu 4, 8 or
   * 16, tv 4 or 8; SwiftShader); 'pixels' (narrow layers): lanes over output pixels, per-lane
   * partials. Real GPUs: 'tiled', a workgroup-memory GEMM with pixels as the reduction.
   */
  kernel: 'nhwc' | 'nhwc4' | 'pixels' | 'tiled';
  /**
   * 'nhwc' only: each dy value loaded by one lane and shared with subgroupBroadcast
   * (conv2d_wgrad_subgroup.wgsl); needs the device's 'subgroups' feature, as ConvTileConfig.subgroups.
   */
  subgroups?: boolean;
  /** Workgroup size; wgY must be 1 for 'pixels'. */
  wgX: number;
  wgY: number;
  /** 'nhwc', 'pixels': output channels (a multiple of 4, <= 16) x input channels (<= 16) per invocation. */
  tu: number;
  tv: number;
  /** 'tiled': outputs per invocation (<= 8 each) and pixels per staged slice. */
  tm: number;
  tn: number;
  bk: number;
  /** Aim for about this many workgroups in total when choosing the number of splits. */
  targetWorkgroups: number;
  /** Most output pixels one split reduces (bounds the serial part of the reduction). */
  maxSplitPixels: number;
}

export type ConvKind = 'fwd' | 'dgrad' | 'wgrad';

const TUNING = Symbol('conv2d tuning');

/** This engine's tuned choices, keyed by `${adapter}|${kind}|${shape class}`; persist with JSON.stringify([...map]). */
export function convTuning(e: Engine): Map<string, ConvTileConfig | WgradTileConfig> {
  return e.local(TUNING, () => new Map<string, ConvTileConfig | WgradTileConfig>());
}

/**
 * Revision of the tuner and its candidates: part of every key, so choices stored by an earlier
 * tuner are timed again (on 2026-12-07 the stored ones were often untuned defaults: its budget
 * could run out on the default). Bump it when kernels, candidate lists or the tuner's rules change
 * what wins (5: the default is displaced only by a config that wins paired runs).
 */
export const TUNER_REVISION = 5;

function adapterKey(e: Engine): string {
  const a = e.adapter;
  return `r${TUNER_REVISION}:${a.vendor}/${a.architecture}/${a.device}`;
}

/** Whether a stored key belongs to this engine's adapter and tuner revision (others are dropped on load). */
export function isCurrentKey(e: Engine, key: string): boolean {
  return key.startsWith(`${adapterKey(e)}|`);
}

const bucket = (v: number) => 2 ** Math.round(Math.log2(Math.max(1, v)));

/**
 * The shape class: channels and kernel exactly, pixel count to the nearest power of two, and the
 * number of branches a multi-dilation conv sums (its best tiles differ from a single conv's).
 */
function shapeClass(kind: ConvKind, g: Geometry, nb: number): string {
  const strided = g.sh > 1 || g.sw > 1 ? 's' : '';
  return `${kind}:${g.Ci}->${g.Co}:k${g.KH}x${g.KW}${strided}:px${bucket(g.N * g.Ho * g.Wo)}${nb > 1 ? `:b${nb}` : ''}`;
}

export function tuningKey(e: Engine, kind: ConvKind, g: Geometry, nb = 1): string {
  return `${adapterKey(e)}|${shapeClass(kind, g, nb)}`;
}

/** Shape classes a kernel met without a tuned entry while `engine.tune` was on: `tunePending` times them. */
export function pendingTuning(e: Engine): Map<string, PendingShape> {
  return e.local(PENDING, () => new Map<string, PendingShape>());
}

/** A shape class awaiting tuning: the pass, its geometry, and each branch's geometry for multi-dilation convs. */
export interface PendingShape {
  kind: ConvKind;
  g: Geometry;
  branches?: Geometry[];
}
const PENDING = Symbol('conv2d shape classes awaiting tuning');

/** While set (`recordConvConfigs`), every forward/dgrad/wgrad config used, by key (explicit `config` options included, so bench rows that force one show it). */
const USED = Symbol('conv2d configs in use');
const used = (e: Engine) => e.local(USED, () => ({ map: null as Map<string, ConvTileConfig | WgradTileConfig> | null }));

/** Starts recording the configs the conv kernels choose; the returned function stops and returns them (bench rows report them). */
export function recordConvConfigs(e: Engine): () => Map<string, ConvTileConfig | WgradTileConfig> {
  const u = used(e);
  const map = new Map<string, ConvTileConfig | WgradTileConfig>();
  u.map = map;
  return () => {
    if (u.map === map) u.map = null;
    return map;
  };
}

/** The tuned entry for this pass and shape class; a miss is noted for tuning when the engine tunes. */
function tuned<T extends ConvTileConfig | WgradTileConfig>(e: Engine, kind: ConvKind, g: Geometry, branches?: Geometry[]): { key: string; c: T | undefined } {
  const multi = branches && branches.length > 1 ? branches : undefined;
  const key = tuningKey(e, kind, g, multi?.length);
  const c = convTuning(e).get(key) as T | undefined;
  if (!c && e.tune) pendingTuning(e).set(key, { kind, g, branches: multi });
  return { key, c };
}

function noteUse(e: Engine, key: string, c: ConvTileConfig | WgradTileConfig): void {
  used(e).map?.set(key, c);
}

/**
 * The forward/dgrad defaults for a pass with `M` output channels, `pixels` output pixels per
 * image and a reduction of `K` (input channels x taps). Software: the register tiles of
 * `registerDefault`, or with subgroups of 8 (lavapipe) 64 lanes x TM channels x 8 pixels with
 * subgroup-shared weights, 1.5-2x faster on 64->64 forward and dgrad at 1x64x128x128
 * (experiments/subgroup-weights.md). GPU: 64x64 workgroup tiles in workgroup memory.
 */
export function defaultConvConfig(e: Engine, M: number, pixels = Infinity, K = Infinity): ConvTileConfig {
  if (e.adapter.software) {
    if (subgroupShare(e) !== 8) return registerDefault(M, pixels, K);
    return { smem: false, subgroups: true, wgX: 64, wgY: 1, tm: channelTile(M), tn: Math.min(8, pixelsPerLane(pixels, 64)), bk: 16 };
  }
  // 16x16 invocations of 4x4 outputs; narrow passes (M < 64) shrink the channel side.
  const wgY = Math.min(16, Math.ceil(M / 4));
  const wgX = wgY === 16 ? 16 : 64;
  const fits = (bk: number) => bk * (wgY * 4 + wgX * 4) * 4 <= e.limits.maxComputeWorkgroupStorageSize;
  return { smem: true, wgX, wgY, tm: 4, tn: 4, bk: fits(16) ? 16 : 8 };
}

/**
 * Register tiles without subgroups (software adapters): 32 lanes over pixels, TM channels by TN
 * pixels each (16x16 for wide layers, TM = 4 or 8 for narrow ones; small images get fewer pixels
 * per lane, so less of the tile is wasted and the kernel compiles faster).
 */
export function registerDefault(M: number, pixels = Infinity, K = Infinity): ConvTileConfig {
  // A short reduction (K = input channels x taps, e.g. 3 -> 64) runs better on 8 pixels per lane.
  return { smem: false, wgX: 32, wgY: 1, tm: channelTile(M), tn: Math.min(K < 64 ? 8 : 16, pixelsPerLane(pixels, 32)), bk: 16 };
}

/** Register-tile channels per invocation for `M` channels: 4, 8 or 16. */
function channelTile(M: number): number {
  return M <= 4 ? 4 : M <= 8 ? 8 : 16;
}

/** Pixels per lane that cover `pixels` with `lanes` lanes, rounded up to a power of two. */
function pixelsPerLane(pixels: number, lanes: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, Math.ceil(pixels / lanes))));
}

export function defaultWgradConfig(e: Engine, g: Geometry): WgradTileConfig {
  if (!e.adapter.software) {
    return { kernel: 'tiled', wgX: 16, wgY: 16, tu: 16, tv: 8, tm: 4, tn: 4, bk: 16, targetWorkgroups: 1024, maxSplitPixels: 4096 };
  }
  const tu = channelTile(g.Co);
  const base = { wgY: 1, tu, tm: 4, tn: 4, bk: 16, targetWorkgroups: 64, maxSplitPixels: 8192 };
  // Wide layers: one SIMD row of 8 lanes over input channels, 8 channels each (64 per workgroup),
  // with subgroup-shared dy where subgroups are 8 wide (lavapipe: 2-2.3x faster on 64->64).
  // A 1x1 kernel does too little per pixel to pay for the NHWC copies.
  if (g.Ci >= 8 && g.Co >= 8 && g.KH * g.KW > 1) {
    return { ...base, kernel: 'nhwc', wgX: 8, tv: Math.min(8, Math.ceil(g.Ci / 8)), ...(subgroupShare(e) === 8 ? { subgroups: true } : {}) };
  }
  // Otherwise (1x1, 3 -> 64, 64 -> 3): lanes over pixels, at most 128 accumulators per lane
  // (16x16 is no faster here and takes lavapipe several times longer to compile).
  return { ...base, kernel: 'pixels', wgX: 8, tv: Math.min(g.Ci, 128 / tu, 16) };
}

/**
 * The Winograd tiles for a pass with `M` output channels (the tuner's first Winograd candidate;
 * bench rows force it): 8 channels x 2 tiles per invocation measured best on lavapipe for 64->64
 * (16 x 1 spills: 64 vec4 accumulators), 4 x 4 when there are only 4 channels.
 */
export function defaultWinogradConfig(M: number): ConvTileConfig {
  return { algo: 'winograd', smem: false, wgX: 64, wgY: 1, tm: M <= 4 ? 4 : 8, tn: M <= 4 ? 4 : 2, bk: 16 };
}

/**
 * The vec4-row tiles for a pass with `M` output channels (the tuner's first vec4 candidate): 8
 * channels x 8 pixels, within 10% of the best on SwiftShader for 64->64 (1x64x64x64, one process,
 * a loaded machine: forward 255 ms, 16 x 8 305; dgrad 263, 16 x 8 236) and quick to compile on
 * lavapipe (about 5 s with a cold shader cache, 16 x 8 16 s), where the first candidate of every
 * algorithm is timed for every shape class.
 */
export function defaultVec4Config(M: number): ConvTileConfig {
  return { algo: 'vec4', smem: false, wgX: 64, wgY: 1, tm: M <= 4 ? 4 : 8, tn: 8, bk: 16 };
}

/** Winograd tile rows (or columns) covering `size` outputs at dilation d: d interleaved sub-grids of ceil(size / 2d) pairs each. */
export const winogradTiles = (size: number, d: number): number => d * Math.ceil(size / (2 * d));

/**
 * Whether the Winograd kernel can run a conv: 3x3, stride 1, and (with `c`) a tile grid within the
 * device's per-dimension workgroup limit for every branch. `out` is the pass's output size.
 */
function winogradFits(e: Engine, k: [number, number], stride: [number, number], out: [number, number], dils: Array<[number, number]>, c?: ConvTileConfig): boolean {
  if (k[0] !== 3 || k[1] !== 3 || stride[0] !== 1 || stride[1] !== 1) return false;
  if (!c) return true;
  const most = Math.max(...dils.map(([dh, dw]) => winogradTiles(out[0], dh) * winogradTiles(out[1], dw)));
  return Math.ceil(most / (c.wgX * c.tn)) <= e.limits.maxComputeWorkgroupsPerDimension;
}

/** Values one broadcast group shares on this device (lib/subgroup_share.wgsl's SG: 8, or 4 on SwiftShader), 0 where the subgroup variants cannot run. */
export function subgroupShare(e: Engine): number {
  const s = Math.min(8, e.adapter.subgroupMinSize);
  return s >= 4 ? s : 0;
}

/** Whether the vec4-row kernel can run a pass of `g`: stride 1 (its rows step one input pixel per output pixel). */
export function vec4Eligible(g: Geometry): boolean {
  return g.sh === 1 && g.sw === 1;
}

/** Whether the Winograd kernel can run pass `kind` of `g` (every branch of a multi-branch conv) with `c`. */
export function winogradEligible(e: Engine, kind: 'fwd' | 'dgrad', g: Geometry, branches?: Geometry[], c?: ConvTileConfig): boolean {
  const out: [number, number] = kind === 'fwd' ? [g.Ho, g.Wo] : [g.H, g.W];
  return winogradFits(e, [g.KH, g.KW], [g.sh, g.sw], out, (branches ?? [g]).map((b) => [b.dh, b.dw]), c);
}

/**
 * Whether this device can run `c`'s subgroup variant, if it has one: a stored choice may come from
 * an engine on the same adapter whose device had the 'subgroups' feature (one an application
 * created without it, say).
 */
function shareFits(e: Engine, c: { subgroups?: boolean; wgX: number }): boolean {
  const share = subgroupShare(e);
  return !c.subgroups || (share > 0 && c.wgX % share === 0);
}

/** Whether `c`'s algorithm can run pass `kind` of `g` (the direct kernel runs every pass). */
function algoEligible(e: Engine, kind: 'fwd' | 'dgrad', g: Geometry, branches: Geometry[] | undefined, c: ConvTileConfig): boolean {
  if (!shareFits(e, c)) return false;
  if (c.algo === 'winograd') return winogradEligible(e, kind, g, branches, c);
  if (c.algo === 'vec4') return vec4Eligible(g);
  return true;
}

export function convConfig(e: Engine, kind: 'fwd' | 'dgrad', g: Geometry, given?: ConvTileConfig, branches?: Geometry[]): ConvTileConfig {
  if (given) {
    checkConvConfig(e, given);
    if (!algoEligible(e, kind, g, branches, given)) {
      throw new Error(given.algo === 'winograd'
        ? `conv2d: the Winograd config ${JSON.stringify(given)} needs a stride-1 3x3 conv (kernel ${g.KH}x${g.KW}, stride ${g.sh}x${g.sw}) within the workgroup grid limit`
        : `conv2d: the vec4 config ${JSON.stringify(given)} needs a stride-1 conv (stride ${g.sh}x${g.sw})`);
    }
    noteUse(e, tuningKey(e, kind, g, branches && branches.length > 1 ? branches.length : undefined), given);
    return given;
  }
  const t = tuned<ConvTileConfig>(e, kind, g, branches);
  // A stored entry whose shape class also holds an ineligible shape (a Winograd grid past the
  // limit), or that this device cannot run (subgroups), falls back to the direct default.
  const usable = t.c && algoEligible(e, kind, g, branches, t.c) ? t.c : undefined;
  const c = usable ?? (kind === 'fwd' ? defaultConvConfig(e, g.Co, g.Ho * g.Wo, g.Ci * g.KH * g.KW) : defaultConvConfig(e, g.Ci, g.H * g.W, g.Co * g.KH * g.KW));
  noteUse(e, t.key, c);
  return checkConvConfig(e, c);
}

/** Throws unless `c` is a forward/dgrad config this device can run; returns it. */
export function checkConvConfig(e: Engine, c: ConvTileConfig): ConvTileConfig {
  if (c.algo !== undefined && c.algo !== 'direct' && c.algo !== 'winograd' && c.algo !== 'vec4') throw new Error(`conv2d: unknown algo in tile config ${JSON.stringify(c)} ('direct', 'winograd' or 'vec4')`);
  if (c.subgroups && c.algo !== undefined && c.algo !== 'direct') throw new Error(`conv2d: subgroups are for direct register tiles only, not ${c.algo}: ${JSON.stringify(c)}`);
  if (c.algo === 'vec4') {
    if (c.smem || c.wgY !== 1 || ![4, 8, 16].includes(c.tm) || ![4, 8].includes(c.tn)) {
      throw new Error(`conv2d: invalid vec4 config ${JSON.stringify(c)} (smem false, wgY 1, tm 4, 8 or 16, tn 4 or 8)`);
    }
    checkWorkgroup(e, 'conv2d', c, 0);
    return c;
  }
  if (c.algo === 'winograd') {
    if (c.smem || c.wgY !== 1 || c.tm % 4 !== 0 || c.tm < 4 || c.tm > 16 || !Number.isInteger(c.tn) || c.tn < 1 || c.tn > 4 || c.tm * c.tn > 16) {
      throw new Error(`conv2d: invalid Winograd config ${JSON.stringify(c)} (smem false, wgY 1, tm a multiple of 4 up to 16, tn 1 to 4 tiles, tm*tn <= 16)`);
    }
    checkWorkgroup(e, 'conv2d', c, 0);
    return c;
  }
  if (c.tm % 4 !== 0 || c.tm < 4 || c.tm > 16 || c.tn < 1 || c.tn > 32 || c.tm * c.tn > 256 || (!c.smem && c.wgY !== 1)) {
    throw new Error(`conv2d: invalid tile config ${JSON.stringify(c)} (tm a multiple of 4 up to 16, tn <= 32, tm*tn <= 256, wgY = 1 without smem)`);
  }
  if (c.subgroups) {
    if (c.smem) throw new Error(`conv2d: subgroups are for register tiles only (smem false): ${JSON.stringify(c)}`);
    checkShare(e, 'conv2d', c);
  }
  checkWorkgroup(e, 'conv2d', c, c.smem ? c.bk * (c.wgY * c.tm + c.wgX * c.tn) : 0);
  return c;
}

export function wgradConfig(e: Engine, g: Geometry, given?: WgradTileConfig): WgradTileConfig {
  if (given) return checkWgradConfig(e, given);
  const t = tuned<WgradTileConfig>(e, 'wgrad', g);
  const c = t.c && shareFits(e, t.c) ? t.c : defaultWgradConfig(e, g);
  noteUse(e, t.key, c);
  return checkWgradConfig(e, c);
}

/** Throws unless `c` is a weight-gradient config this device can run; returns it. */
export function checkWgradConfig(e: Engine, c: WgradTileConfig): WgradTileConfig {
  const bad = c.kernel === 'tiled'
    ? c.tm < 1 || c.tm > 8 || c.tn < 1 || c.tn > 8
    : c.tu % 4 !== 0 || c.tu < 4 || c.tu > 16 || c.tv < 1 || c.tv > 16 || c.wgY !== 1 || (c.kernel === 'nhwc4' && ![4, 8].includes(c.tv));
  if (bad) throw new Error(`conv2d.wgrad: invalid tile config ${JSON.stringify(c)}`);
  if (c.subgroups) {
    if (c.kernel !== 'nhwc') throw new Error(`conv2d.wgrad: subgroups are for the 'nhwc' kernel only: ${JSON.stringify(c)}`);
    checkShare(e, 'conv2d.wgrad', c);
  }
  checkWorkgroup(e, 'conv2d.wgrad', c, c.kernel === 'tiled' ? c.bk * (c.wgY * c.tm + c.wgX * c.tn) : 0);
  return c;
}

/** Throws unless this device can run subgroup config `c`: the 'subgroups' feature, and wgX a multiple of the share. */
function checkShare(e: Engine, op: string, c: { wgX: number }): void {
  const share = subgroupShare(e);
  if (share === 0) throw new Error(`${op}: the subgroup config ${JSON.stringify(c)} needs a device with the 'subgroups' feature and subgroups of 4 or more lanes (this one: ${e.adapter.subgroupMinSize || 'none'})`);
  if (c.wgX % share !== 0) throw new Error(`${op}: invalid subgroup config ${JSON.stringify(c)} (wgX a multiple of ${share})`);
}

function checkWorkgroup(e: Engine, op: string, c: { wgX: number; wgY: number }, sharedFloats: number): void {
  const l = e.limits;
  if (c.wgX * c.wgY > l.maxComputeInvocationsPerWorkgroup || sharedFloats * 4 > l.maxComputeWorkgroupStorageSize) {
    throw new Error(`${op}: tile config needs ${c.wgX}x${c.wgY} invocations and ${sharedFloats * 4} bytes of workgroup memory; the device allows ${l.maxComputeInvocationsPerWorkgroup} and ${l.maxComputeWorkgroupStorageSize}`);
  }
}
