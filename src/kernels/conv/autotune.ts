// Conv autotuner: times candidate tile configurations per shape class and records the fastest in the engine's tuning cache.
import type { Engine } from '../../gpu/runtime.js';
import { Tensor, type Shape } from '../../core/tensor.js';
import type { PerAxis } from '../util.js';
import { convTuning, defaultConvConfig, registerDefault, subgroupShare, defaultVec4Config, defaultWgradConfig, defaultWinogradConfig, tuningKey, vec4Eligible, winogradEligible, type ConvKind, type ConvTileConfig, type WgradTileConfig } from './config.js';
import { conv2dBackwardData, conv2dForward, conv2dMultiBackwardData, conv2dMultiForward } from './forward.js';
import { geometry, type Geometry } from './geometry.js';
import { conv2dBackwardFilter } from './wgrad.js';

export interface ConvShape {
  /** Input shape [N, Ci, H, W]. */
  x: Shape;
  /** Weight shape [Co, Ci, KH, KW]. */
  w: Shape;
  stride?: PerAxis;
  padding?: PerAxis;
  dilation?: PerAxis;
  /** Passes to tune (default all three). */
  kinds?: ConvKind[];
  /**
   * A multi-dilation conv: every branch's padding and dilation (the first is `padding` and
   * `dilation` above); forward and dgrad are then timed as the fused multi-branch kernel with the
   * weight `w` on each branch, and recorded under the multi-branch shape class.
   */
  branches?: Array<{ padding: [number, number]; dilation: [number, number] }>;
}

/**
 * Forward/dgrad candidates for a pass with `M` output channels. Software: register tiles. GPUs:
 * workgroup-memory tiles over workgroup shapes (square, wide, 64 lanes), 4..8 outputs per side per
 * invocation and two staging depths, so an adapter nobody has measured still finds its shape.
 * Both: Winograd and vec4 rows where the pass allows them; with subgroups, the register tiles with
 * subgroup-shared weights. The algorithms' lists are interleaved, the default first: a budget cut
 * short has timed the first configs of every algorithm, not all of one and none of another.
 */
export function convCandidates(e: Engine, M: number, first?: ConvTileConfig, opts: { winograd?: boolean; vec4?: boolean } = {}): ConvTileConfig[] {
  const plain: ConvTileConfig[] = [];
  if (e.adapter.software) {
    const tms = M <= 4 ? [4] : M <= 8 ? [4, 8] : [8, 16];
    // tn = 32 is left out: no faster here, and lavapipe takes tens of seconds to compile it.
    for (const tm of tms) for (const tn of [8, 16]) for (const wgX of [32, 64]) plain.push({ smem: false, wgX, wgY: 1, tm, tn, bk: 16 });
  } else {
    for (const [wgX, wgY] of [[16, 16], [32, 8], [64, 4], [8, 8]]) {
      for (const [tm, tn] of [[4, 4], [4, 8], [8, 4], [8, 8]]) {
        for (const bk of [8, 16]) {
          if (wgX * wgY > e.limits.maxComputeInvocationsPerWorkgroup) continue;
          if (bk * (wgY * tm + wgX * tn) * 4 <= e.limits.maxComputeWorkgroupStorageSize) plain.push({ smem: true, wgX, wgY, tm, tn, bk });
        }
      }
    }
  }
  // The register tiles again with subgroup-shared weights, where the device can.
  const share = subgroupShare(e);
  const shared = share > 0 ? plain.filter((c) => !c.smem && c.wgX % share === 0).map((c) => ({ ...c, subgroups: true })) : [];
  const head = first ?? defaultConvConfig(e, M);
  // The default's family leads; the other direct family's first config is its old default.
  const direct = head.subgroups ? [[head, ...shared], [registerDefault(M), ...plain]] : [[head, ...plain], shared];
  const lists = [...direct, opts.winograd ? winogradCandidates(M) : [], opts.vec4 ? vec4Candidates(M) : []].map(dedupe);
  const out: ConvTileConfig[] = [];
  for (let i = 0; lists.some((l) => i < l.length); i++) for (const l of lists) if (i < l.length) out.push(l[i]);
  return dedupe(out);
}

/** Winograd candidates for a stride-1 3x3 pass with `M` output channels (register tiles on every adapter). */
export function winogradCandidates(M: number): ConvTileConfig[] {
  const first = defaultWinogradConfig(M);
  const out = [first];
  for (const tm of M <= 4 ? [4] : M <= 8 ? [4, 8] : [8, 16]) {
    for (const tn of [1, 2]) if (tm * tn <= 16) out.push({ ...first, tm, tn });
  }
  out.push({ ...first, wgX: 32 });
  return dedupe(out);
}

/** Vec4-row candidates for a stride-1 pass with `M` output channels (on every adapter). */
export function vec4Candidates(M: number): ConvTileConfig[] {
  const first = defaultVec4Config(M);
  const out = [first];
  for (const tm of M <= 4 ? [4] : M <= 8 ? [4, 8] : [8, 16]) for (const tn of [4, 8]) out.push({ ...first, tm, tn });
  return dedupe(out);
}

function dedupe<T>(xs: T[]): T[] {
  const seen = new Set<string>();
  return xs.filter((x) => {
    const k = JSON.stringify(x);
    return !seen.has(k) && (seen.add(k), true);
  });
}

/** Weight-gradient candidates for a geometry (the default first). */
export function wgradCandidates(e: Engine, g: Geometry): WgradTileConfig[] {
  const base = defaultWgradConfig(e, g);
  const out: WgradTileConfig[] = [base];
  if (!e.adapter.software) {
    for (const [wgX, wgY] of [[16, 16], [32, 8], [8, 32]]) {
      for (const [tm, tn] of [[4, 4], [8, 4], [4, 8]]) {
        if (wgX * wgY > e.limits.maxComputeInvocationsPerWorkgroup || base.bk * (wgY * tm + wgX * tn) * 4 > e.limits.maxComputeWorkgroupStorageSize) continue;
        for (const targetWorkgroups of [256, 1024]) out.push({ ...base, wgX, wgY, tm, tn, targetWorkgroups });
      }
    }
    return dedupe(out);
  }
  // The default's fields without its subgroup flag, for the other kernels.
  const { subgroups: _, ...plain } = base;
  for (const tu of [4, 8, 16]) {
    if (tu > Math.max(4, g.Co)) continue;
    for (const tv of [4, 8, 16]) {
      if (tv > Math.max(4, g.Ci)) continue;
      out.push({ ...plain, kernel: 'pixels', wgX: 8, tu, tv });
      if (g.Ci >= 8 && tu * tv <= 128) for (const wgX of [8, 16]) out.push({ ...plain, kernel: 'nhwc', wgX, tu, tv: Math.min(tv, Math.ceil(g.Ci / wgX)) });
    }
  }
  // Where the device has subgroups, each 'nhwc' config also with subgroup-shared dy (the default
  // has it where they are 8 wide: then its plain twin comes right after it).
  const share = subgroupShare(e);
  if (share > 0) {
    out.push(...out.filter((c) => c.kernel === 'nhwc' && !c.subgroups && c.wgX % share === 0).map((c) => ({ ...c, subgroups: true })));
    if (base.subgroups) out.splice(1, 0, plain);
  }
  // Named vec4 accumulators (for SwiftShader, which keeps the others' register tiles in memory):
  // the widest right after the default (the first config of a kernel is timed whatever the
  // budget), the others last.
  if (g.Ci >= 8) {
    const tus = [16, 8, 4].filter((tu) => tu <= Math.max(4, g.Co));
    // The head's lanes x channels per lane match the layer's input channels where they can
    // (64: 8 x 8, 32: 8 x 4, 16: 4 x 4), so few lanes only repeat the last channel.
    out.splice(1, 0, { ...plain, kernel: 'nhwc4', wgX: g.Ci >= 32 ? 8 : 4, tu: tus[0], tv: g.Ci >= 64 ? 8 : 4 });
    for (const tu of tus) for (const tv of [8, 4]) for (const wgX of [8, 4]) out.push({ ...plain, kernel: 'nhwc4', wgX, tu, tv });
  }
  return dedupe(out);
}

/** Milliseconds of one run to completion. */
async function timeOnce(e: Engine, run: () => Tensor): Promise<number> {
  const t0 = performance.now();
  run().dispose();
  await e.sync();
  return performance.now() - t0;
}

/**
 * A candidate this much slower than the best so far (fastest runs compared) gets no more runs: 2,
 * not less, because one run can land in a slow moment of a shared machine (2x swings seen).
 */
const GIVE_UP_RATIO = 2;

/** A challenger that beats the default by this much in one paired run displaces it without more pairs. */
const DECISIVE = 1.25;

/** Options of `autotuneConv`. */
export interface AutotuneOptions {
  /**
   * Timed runs per candidate (default 3): one right after its warm-up, the rest in rounds over all
   * candidates still in the race, so they share the machine's slow and fast moments; the fastest
   * run counts (shared, noisy machines swing 2x from one second to the next).
   */
  reps?: number;
  /** Only the first this many candidates of each list. */
  maxCandidates?: number;
  /**
   * Milliseconds (compiles included) per pass and shape class for everything but the first run of
   * the first candidate of each algorithm (the default, the first Winograd config; for wgrad, of
   * each kernel): those are always timed and not counted, since on a slow adapter, or with a cold
   * shader cache, the default alone can take longer than the budget, which then never tried
   * anything. The other candidates' first runs and the rounds share it.
   */
  budgetMs?: number;
  /** Called with each candidate timed and its fastest run in milliseconds (after all rounds). */
  onTimed?: (config: ConvTileConfig | WgradTileConfig, ms: number) => void;
  /** Candidate lists to use instead of the built-in ones. */
  candidates?: { conv?: ConvTileConfig[]; wgrad?: WgradTileConfig[] };
}

/**
 * Races one shape class's candidates, in list order, and returns those timed with their fastest
 * run, and the winner. `measure` compiles, warms up and times one run (null: the device cannot run
 * it), `again` times one more. The first candidate of each algorithm (its head) is always measured
 * and costs no budget (see `AutotuneOptions.budgetMs`); any other is skipped when two runs at the
 * fastest's speed no longer fit in the budget (a slow adapter overshot it by a whole candidate), or
 * when its algorithm's first timed config ran more than GIVE_UP_RATIO slower than the fastest so
 * far: on SwiftShader the register kernels ran 4x slower than vec4 rows, and their siblings used up
 * the budget that the second vec4 config needed. Then rounds over the candidates within
 * GIVE_UP_RATIO of the fastest, while the budget lasts; last, if a config beat the first candidate
 * (the default), paired runs of the two decide (best of three pairs, or one pair won by DECISIVE).
 * `now` is the clock the budget is counted on.
 */
export async function raceCandidates<C>(
  cands: readonly C[],
  algoOf: (c: C) => string,
  measure: (c: C) => Promise<number | null>,
  again: (c: C) => Promise<number>,
  opts: { reps: number; budgetMs: number; now?: () => number },
): Promise<{ timed: Array<{ c: C; t: number }>; winner: C | null }> {
  const now = opts.now ?? (() => performance.now());
  let spent = 0; // beyond the first run of the first candidate of each algorithm
  const reached = new Set<string>();
  const firstRun = new Map<string, number>();
  const timed: Array<{ c: C; t: number }> = [];
  const fastest = () => Math.min(...timed.map((x) => x.t));
  for (const c of cands) {
    const algo = algoOf(c);
    const head = !reached.has(algo);
    reached.add(algo);
    // Not started unless its warm-up and timed run, at the fastest's speed, fit in what is left,
    // nor when its algorithm's first config lost by over GIVE_UP_RATIO.
    if (!head && timed.length > 0 && (spent + 2 * fastest() > opts.budgetMs || (firstRun.get(algo) ?? 0) > fastest() * GIVE_UP_RATIO)) continue;
    const t0 = now();
    let t: number | null;
    try {
      t = await measure(c);
    } finally {
      if (!head) spent += now() - t0;
    }
    if (t === null) continue;
    if (!firstRun.has(algo)) firstRun.set(algo, t);
    timed.push({ c, t });
  }
  // The rounds share the budget: on a slow adapter they would cost more than the screening.
  for (let round = 1; round < opts.reps && spent < opts.budgetMs; round++) {
    const bound = fastest() * GIVE_UP_RATIO;
    for (const x of timed) {
      if (x.t > bound || spent + x.t > opts.budgetMs) continue;
      const t = await again(x.c);
      x.t = Math.min(x.t, t);
      spent += t;
    }
  }
  // The default (the first candidate) is displaced only by a config that also wins paired runs,
  // whatever the budget: the default, then the challenger, back to back (the same moment of the
  // machine), until one side has won two pairs; a pair won by DECISIVE settles it at once
  // (SwiftShader's vec4 rows beat the default 3-4x). With one slow screening run of the default a
  // config 1.5x slower took a tiny network's three-branch dgrad on lavapipe; with one more run of
  // each and the fastest run deciding, a 16-channel weight gradient 1.3x slower in interleaved
  // timing still won one tuning in six.
  const first = timed[0];
  const best = timed.reduce((a, b) => (b.t < a.t ? b : a), first);
  let winner = best;
  if (first && first.c === cands[0] && best !== first) {
    let won = 0;
    let lost = 0;
    while (won < 2 && lost < 2) {
      const td = await again(first.c);
      const tb = await again(best.c);
      first.t = Math.min(first.t, td);
      best.t = Math.min(best.t, tb);
      if (tb * DECISIVE <= td) won = 2;
      else if (tb < td) won++;
      else lost++;
    }
    if (lost === 2) winner = first;
  }
  return { timed, winner: winner?.c ?? null };
}

/**
 * Times candidate tile configurations for each shape and pass, and records the fastest in
 * `convTuning` (used by every later call of that shape class on this adapter). Optional: the
 * defaults are used for untuned shapes. Returns the choices made, keyed like `convTuning`.
 */
export async function autotuneConv(engine: Engine, shapes: ConvShape[], opts: AutotuneOptions = {}): Promise<Map<string, ConvTileConfig | WgradTileConfig>> {
  const reps = opts.reps ?? 3;
  const chosen = new Map<string, ConvTileConfig | WgradTileConfig>();
  const rand = (shape: Shape) => Tensor.fromData(engine, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i * 12.9898) * 0.5), shape);
  for (const s of shapes) {
    const g = geometry('autotuneConv', s.x, s.w, s);
    const p = { stride: s.stride, padding: s.padding, dilation: s.dilation };
    const x = rand(s.x);
    const w = rand(s.w);
    const dy = rand([g.N, g.Co, g.Ho, g.Wo]);
    try {
      for (const kind of s.kinds ?? (['fwd', 'dgrad', 'wgrad'] as ConvKind[])) {
        const multi = kind !== 'wgrad' && s.branches && s.branches.length > 1 ? s.branches.map((b) => ({ weight: w, ...b })) : null;
        const key = tuningKey(engine, kind, g, multi?.length);
        const cands: Array<ConvTileConfig | WgradTileConfig> =
          kind === 'wgrad' ? (opts.candidates?.wgrad ?? wgradCandidates(engine, g))
          : (opts.candidates?.conv ?? convCandidates(engine, kind === 'fwd' ? g.Co : g.Ci, kind === 'fwd' ? defaultConvConfig(engine, g.Co, g.Ho * g.Wo, g.Ci * g.KH * g.KW) : defaultConvConfig(engine, g.Ci, g.H * g.W, g.Co * g.KH * g.KW), { winograd: winogradEligible(engine, kind, g), vec4: vec4Eligible(g) }));
        const run = (c: ConvTileConfig | WgradTileConfig) =>
          multi ? (kind === 'fwd' ? () => conv2dMultiForward(x, multi, null, { config: c as ConvTileConfig }) : () => conv2dMultiBackwardData(dy, multi, s.x, { config: c as ConvTileConfig }))
          : kind === 'fwd' ? () => conv2dForward(x, w, null, { ...p, config: c as ConvTileConfig })
          : kind === 'dgrad' ? () => conv2dBackwardData(dy, w, s.x, { ...p, config: c as ConvTileConfig })
          : () => conv2dBackwardFilter(x, dy, s.w, { ...p, config: c as WgradTileConfig });
        const { timed, winner } = await raceCandidates(
          cands.slice(0, opts.maxCandidates ?? Infinity),
          (c) => ('kernel' in c ? c.kernel : (c.algo ?? 'direct')),
          async (c) => {
            try {
              run(c)().dispose(); // compile and warm up
              await engine.sync();
              return await timeOnce(engine, run(c));
            } catch {
              return null; // a candidate this device cannot run (limits) is skipped
            }
          },
          (c) => timeOnce(engine, run(c)),
          { reps, budgetMs: opts.budgetMs ?? Infinity },
        );
        for (const x of timed) opts.onTimed?.(x.c, x.t);
        if (winner) {
          convTuning(engine).set(key, winner);
          chosen.set(key, winner);
        }
      }
    } finally {
      x.dispose();
      w.dispose();
      dy.dispose();
    }
  }
  return chosen;
}
