// Benchmark runner shared by the CLI and browser pages: selects cases, times them, formats results.
// No Node APIs here: bench/main.ts owns argument parsing and output.
import type { Engine, KernelTime } from '../gpu/runtime.js';
import { adapterId, prepareTuning, recordConvConfigs, tunePending } from '../kernels/conv2d.js';
import type { BenchCase } from './case.js';

export interface BenchResult {
  name: string;
  shape: string;
  median_ms: number;
  min_ms: number;
  runs: number;
  gflops?: number;
  gbps?: number;
  /** Milliseconds per megapixel of image (whole-network cases). */
  ms_per_mp?: number;
  adapter: string;
  /**
   * The conv tile configs the case ran with: the config itself for a single conv pass, else one
   * per shape class (`fwd:16->16:k3x3:px65536` ...). Absent when the case runs no conv.
   */
  config?: unknown;
  /** With `RunOptions.profile`: GPU time per dispatch label in one more run, longest first. */
  kernels?: KernelTime[];
}

export interface SelectOptions {
  /** Keep cases whose name or shape contains this text (a list: any of them). */
  filter?: string | readonly string[];
  /** Keep only `quick: true` cases. */
  quick?: boolean;
  /** Drop cases whose name or shape contains this text (a list: any of them). */
  exclude?: string | readonly string[];
}

export interface RunOptions {
  /** Timed runs per case (>= 5). Default: as many as fit in `budgetMs`, at least 5, at most 50. */
  reps?: number;
  /** Untimed runs before timing (>= 1; pipelines compile in the first). Default 1. */
  warmup?: number;
  /** Target timing budget per case when `reps` is not given. Default 1000 ms. */
  budgetMs?: number;
  /** After timing, one more run with every dispatch timed on the GPU (`Engine.profile`). */
  profile?: boolean;
  /** Called after each case, e.g. to print it at once. */
  onResult?: (r: BenchResult) => void;
  /** Called when a case throws; the run goes on with the next case. */
  onError?: (c: BenchCase, err: unknown) => void;
}

export const MIN_REPS = 5;
const MAX_REPS = 50;

export function selectCases(cases: readonly BenchCase[], opts: SelectOptions = {}): BenchCase[] {
  const list = (t: string | readonly string[] | undefined) => (t === undefined ? [] : typeof t === 'string' ? [t] : t);
  const [keep, drop] = [list(opts.filter), list(opts.exclude)];
  const has = (c: BenchCase, text: string) => c.name.includes(text) || c.shape.includes(text);
  return cases.filter((c) => (!opts.quick || c.quick) && (keep.length === 0 || keep.some((t) => has(c, t))) && !drop.some((t) => has(c, t)));
}

/** The adapter as one short string, e.g. 'llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)' (the tuning store's name for it). */
export const adapterName: (engine: Engine) => string = adapterId;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * Times one case: each run is wall clock from the first recorded command to the queue reporting
 * the submitted work done (`engine.sync()`), all passes included, on an idle queue.
 */
export async function timeCase(engine: Engine, c: BenchCase, opts: RunOptions = {}): Promise<BenchResult> {
  await prepareTuning(engine);
  const run = await c.setup(engine);
  try {
    const once = async (): Promise<number> => {
      await engine.sync();
      const t0 = performance.now();
      await run.run();
      await engine.sync();
      return performance.now() - t0;
    };
    for (let i = 0; i < Math.max(1, opts.warmup ?? 1); i++) await once();
    // Shape classes the warm-up met untuned are timed now (engine.tune), then warmed up again.
    if ((await tunePending(engine)).size > 0) await once();
    const stop = recordConvConfigs(engine);
    const times: number[] = [];
    if (opts.reps !== undefined) {
      for (let i = 0; i < Math.max(MIN_REPS, opts.reps); i++) times.push(await once());
    } else {
      const budget = opts.budgetMs ?? 1000;
      let spent = 0;
      while (times.length < MIN_REPS || (spent < budget && times.length < MAX_REPS)) {
        times.push(await once());
        spent += times[times.length - 1];
      }
    }
    const used = stop();
    const med = median(times);
    const r: BenchResult = { name: c.name, shape: c.shape, median_ms: med, min_ms: Math.min(...times), runs: times.length, adapter: adapterName(engine) };
    if (used.size === 1) r.config = [...used.values()][0];
    else if (used.size > 1) r.config = Object.fromEntries([...used].map(([k, v]) => [k.slice(k.indexOf('|') + 1), v]));
    if (c.flops) r.gflops = c.flops / (med * 1e6);
    else if (c.bytes) r.gbps = c.bytes / (med * 1e6);
    if (c.pixels) r.ms_per_mp = med / (c.pixels / 1e6);
    if (opts.profile) r.kernels = (await engine.profile(() => run.run())).kernels;
    return r;
  } finally {
    run.dispose();
    await engine.sync();
  }
}

/** Runs the cases in order; a failing case is reported through `onError` and skipped. */
export async function runCases(engine: Engine, cases: readonly BenchCase[], opts: RunOptions = {}): Promise<BenchResult[]> {
  const out: BenchResult[] = [];
  for (const c of cases) {
    let r: BenchResult;
    try {
      r = await timeCase(engine, c, opts);
    } catch (err) {
      if (!opts.onError) throw err;
      opts.onError(c, err);
      continue;
    }
    out.push(r);
    opts.onResult?.(r);
  }
  return out;
}

// ---- formatting -------------------------------------------------------------------------------

const key = (r: { name: string; shape: string }) => `${r.name}\u0000${r.shape}`;
const round = (x: number, digits: number) => Number(x.toFixed(digits));

/** One result as its JSON line (the `--json` contract), plus optional extra fields. */
export function toJsonLine(r: BenchResult, extra: Record<string, unknown> = {}): string {
  const o: Record<string, unknown> = { name: r.name, shape: r.shape, median_ms: round(r.median_ms, 4) };
  if (r.gflops !== undefined) o.gflops = round(r.gflops, 3);
  if (r.gbps !== undefined) o.gbps = round(r.gbps, 3);
  if (r.ms_per_mp !== undefined) o.ms_per_mp = round(r.ms_per_mp, 1);
  Object.assign(o, { adapter: r.adapter, runs: r.runs, min_ms: round(r.min_ms, 4) }, r.config === undefined ? {} : { config: r.config }, extra);
  if (r.kernels) o.kernels = r.kernels.map((k) => ({ label: k.label, count: k.count, ms: round(k.ms, 3) }));
  return JSON.stringify(o);
}

/** Parses JSON lines from an earlier `--json` run (other lines are ignored). */
export function parseJsonLines(text: string): BenchResult[] {
  const out: BenchResult[] = [];
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t.startsWith('{')) continue;
    try {
      const o = JSON.parse(t) as BenchResult;
      if (typeof o.name === 'string' && typeof o.shape === 'string' && typeof o.median_ms === 'number' && o.median_ms > 0 && Number.isFinite(o.median_ms)) out.push(o);
    } catch {
      // not a result line
    }
  }
  return out;
}

/** New speed over old speed (old / new time) per result matched by name and shape. */
export function speedups(results: readonly BenchResult[], baseline: readonly BenchResult[]): Map<string, number> {
  const old = new Map(baseline.map((b) => [key(b), b]));
  const out = new Map<string, number>();
  for (const r of results) {
    const b = old.get(key(r));
    if (b && r.median_ms > 0) out.set(key(r), b.median_ms / r.median_ms);
  }
  return out;
}

/** Table header and rows (aligned columns); with a baseline, a `vs old` ratio column. */
export function formatTable(results: readonly BenchResult[], baseline?: readonly BenchResult[]): string {
  const ratios = baseline ? speedups(results, baseline) : undefined;
  const head = ['name', 'shape', 'median ms', 'min ms', 'runs', 'rate', ...(ratios ? ['vs old'] : []), 'adapter'];
  const rows = results.map((r) => {
    const rate =
      (r.gflops !== undefined ? `${r.gflops.toFixed(2)} GFLOP/s` : r.gbps !== undefined ? `${r.gbps.toFixed(2)} GB/s` : '-') +
      (r.ms_per_mp !== undefined ? `, ${r.ms_per_mp.toFixed(0)} ms/MP` : '');
    const ratio = ratios ? [ratios.has(key(r)) ? `${ratios.get(key(r))!.toFixed(2)}x` : 'new'] : [];
    return [r.name, r.shape, r.median_ms.toFixed(3), r.min_ms.toFixed(3), String(r.runs), rate, ...ratio, r.adapter];
  });
  const right = new Set([2, 3, 4, 5, ...(ratios ? [6] : [])]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ');
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** A profiled case's GPU time per kernel label: count, milliseconds and share of the profiled total. */
export function formatProfile(r: BenchResult): string {
  const ks = r.kernels ?? [];
  const total = ks.reduce((a, k) => a + k.ms, 0);
  const w = Math.max(6, ...ks.map((k) => k.label.length));
  const lines = ks.map((k) => `  ${k.label.padEnd(w)}  ${String(k.count).padStart(5)}  ${k.ms.toFixed(2).padStart(10)} ms  ${total > 0 ? ((100 * k.ms) / total).toFixed(1).padStart(5) : '-'}%`);
  return [`profile of ${r.name} ${r.shape}: ${ks.reduce((a, k) => a + k.count, 0)} dispatches, ${total.toFixed(2)} ms of GPU time`, ...lines].join('\n');
}
