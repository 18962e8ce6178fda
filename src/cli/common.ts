// Shared CLI plumbing: the engine, default weights, file checks, progress lines.
import { existsSync, statSync } from 'node:fs';
import { BUNDLED_WEIGHTS, bundledWeightsPath } from '../api/node.js';
import { useDawn } from '../gpu/node.js';
import { Engine } from '../gpu/runtime.js';
import { isInside, readSafetensorsBytes, samePath } from '../io/fs-node.js';
import { formatFromPath } from '../io/image.js';
import { parseSafetensors, type ParsedSafetensors } from '../io/safetensors.js';
import { ENSEMBLES, type Ensemble } from '../model/derain.js';
import type { DrdNet } from '../model/drdnet.js';
import { loadModel } from '../model/weights.js';
import { oneOf, UsageError, type ParsedArgs } from './args.js';

let engine: Promise<Engine> | undefined;

/** `--ensemble 1|2|4` of derain and eval (default 1). */
export function ensembleArg(a: ParsedArgs): Ensemble {
  return Number(oneOf(a, 'ensemble', ENSEMBLES.map(String), '1')) as Ensemble;
}

export function getEngine(): Promise<Engine> {
  if (!engine) {
    useDawn();
    engine = Engine.create();
  }
  return engine;
}

/** The bundled weights' path when this install or checkout has them. */
export function defaultWeightsPath(): string | null {
  const p = bundledWeightsPath();
  return existsSync(p) ? p : null;
}

export async function loadWeightsFile(path: string | undefined, command: string): Promise<{ model: DrdNet; path: string; bytes: Uint8Array }> {
  const p = path ?? defaultWeightsPath();
  if (!p) throw new UsageError(`${command}: --weights is required (this checkout has no bundled default weights at ${BUNDLED_WEIGHTS})`);
  const bytes = await readSafetensorsBytes(p);
  return { model: loadModel(await getEngine(), bytes, p).model, path: p, bytes };
}

export async function readSafetensorsFile(path: string): Promise<ParsedSafetensors> {
  return parseSafetensors(await readSafetensorsBytes(path), path);
}

/** Refuses (usage error, before any work) an output that would replace one of the inputs. */
export function refuseOverwrite(out: string, outFlag: string, inputs: Array<[flag: string, path: string | undefined]>): void {
  for (const [flag, p] of inputs) {
    if (p !== undefined && samePath(out, p)) throw new UsageError(`${outFlag} '${out}' is the same file as ${flag} '${p}': refusing to overwrite it`);
  }
}

/**
 * Refuses (usage error, before any work) an output named like an image inside a folder the command
 * reads images from: it could replace one of them, or be read as one by the next run. (Other names
 * there, e.g. a checkpoint, are never read as images.)
 */
export function refuseInsideInputs(out: string, outFlag: string, dirs: Array<[flag: string, dir: string | undefined]>): void {
  if (formatFromPath(out) === null) return;
  for (const [flag, d] of dirs) {
    if (d !== undefined && isInside(out, d)) throw new UsageError(`${outFlag} '${out}' is an image name inside the ${flag} folder '${d}': refusing to write among the inputs`);
  }
}

/** A command's one error line: `semi-drdnet <command>: <first line>` (a message that already starts with the command's name is not prefixed twice). */
export function reportError(command: string, e: unknown): void {
  const line = (e as Error).message.split('\n')[0]!.replace(new RegExp(`^${command}: `), '');
  process.stderr.write(`semi-drdnet ${command}: ${line}\n`);
}

export function isDirectory(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Seconds between plain progress lines when stderr is not a terminal (SEMI_DRDNET_PROGRESS_SECONDS, default 10). */
function plainInterval(): number {
  const v = Number(process.env.SEMI_DRDNET_PROGRESS_SECONDS);
  return Number.isFinite(v) && v >= 0 ? v * 1000 : 10_000;
}

// The launcher (bin/quiet-dawn.js) pipes our stderr but tells us whether its own is a terminal.
const terminal = process.stderr.isTTY || !!process.env.SEMI_DRDNET_STDERR_TTY;
let lastPlain = 0; // performance.now() starts at process start: short commands print no progress

/**
 * One status line on stderr: rewritten in place on a terminal; in a log or pipe, every final line
 * and, once a run has gone on for the interval, a plain line per interval (so it shows it is alive).
 */
export function progress(text: string, final = false): void {
  if (terminal) {
    process.stderr.write(`\r\x1b[K${text}${final ? '\n' : ''}`);
    return;
  }
  const now = performance.now();
  if (!text || (!final && now - lastPlain < plainInterval())) return;
  process.stderr.write(`${text}\n`);
  lastPlain = now;
}
