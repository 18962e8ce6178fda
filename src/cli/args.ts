// A small argument parser: positionals, --flag value, --flag=value, -o value, boolean flags.
import { MAX_SEED } from '../util/rng.js';

export class UsageError extends Error {}

export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string | true>;
}

/**
 * `valued` lists flags that take a value; `aliases` maps short names (o -> out); `maxPositionals`
 * refuses extra words (a command that takes none would otherwise ignore a typo).
 */
export function parseArgs(argv: string[], valued: string[], booleans: string[], aliases: Record<string, string> = {}, maxPositionals = Infinity): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positionals.push(a);
      continue;
    }
    let name = a.replace(/^--?/, '');
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    name = aliases[name] ?? name;
    if (booleans.includes(name)) {
      if (value !== undefined) throw new UsageError(`--${name} takes no value`);
      flags.set(name, true);
    } else if (valued.includes(name)) {
      if (value === undefined) {
        value = argv[++i];
        if (value === undefined) throw new UsageError(`--${name} needs a value`);
      }
      flags.set(name, value); // given twice, the last one wins (so scripts can override a default)
    } else {
      throw new UsageError(`unknown option ${a}`);
    }
  }
  if (positionals.length > maxPositionals) {
    throw new UsageError(`unexpected argument '${positionals[maxPositionals]}'${maxPositionals === 0 ? ' (this command takes only options)' : ''}`);
  }
  return { positionals, flags };
}

export function str(a: ParsedArgs, name: string): string | undefined {
  const v = a.flags.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function required(a: ParsedArgs, name: string, why = ''): string {
  const v = str(a, name);
  if (v === undefined) throw new UsageError(`--${name} is required${why ? ` ${why}` : ''}`);
  if (v === '') throw new UsageError(`--${name} needs a non-empty value`);
  if (name === 'out' && v === '-') throw new UsageError('-o - (standard output) is not supported: give a file or folder name');
  return v;
}

// Numbers as people type them: decimal digits (an exponent for non-integers), nothing around
// them. Number() alone would take '0x20', ' 2 ', '' (0) and '1e3' for a count.
const INTEGER = /^[+-]?\d+$/;
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

export function int(a: ParsedArgs, name: string, fallback?: number, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = str(a, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!INTEGER.test(v) || n < min || n > max) {
    throw new UsageError(`--${name} must be an integer ${max < Number.MAX_SAFE_INTEGER ? `from ${min} to ${max}` : `>= ${min}`}, got '${v}'`);
  }
  return n;
}

/** A random seed, at most MAX_SEED (a larger one would silently repeat another). */
export function seedArg(a: ParsedArgs, fallback: number): number {
  return int(a, 'seed', fallback, 0, MAX_SEED)!;
}

export function num(a: ParsedArgs, name: string, fallback?: number): number | undefined {
  const v = str(a, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!DECIMAL.test(v) || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${v}'`);
  return n;
}

export function oneOf<T extends string>(a: ParsedArgs, name: string, choices: readonly T[], fallback?: T): T | undefined {
  const v = str(a, name);
  if (v === undefined) return fallback;
  if (!choices.includes(v as T)) throw new UsageError(`--${name} must be one of ${choices.join(', ')}, got '${v}'`);
  return v as T;
}

/** A finite number above `min` (exclusive by default: a learning rate of 0 is as wrong as -1). */
export function positive(a: ParsedArgs, name: string, fallback?: number, { min = 0, inclusive = false } = {}): number | undefined {
  const n = num(a, name, fallback);
  if (n === undefined || str(a, name) === undefined) return n;
  if (inclusive ? n < min : n <= min) throw new UsageError(`--${name} must be a number ${inclusive ? '>=' : '>'} ${min}, got '${str(a, name)}'`);
  return n;
}

/** A comma-separated list of integers >= min, e.g. --milestones 900,1400 (no empty items). */
export function intList(a: ParsedArgs, name: string, min = 0): number[] | undefined {
  const v = str(a, name);
  if (v === undefined) return undefined;
  return v.split(',').map((s) => {
    const n = Number(s.trim());
    if (s.trim() === '' || !Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be a comma-separated list of integers >= ${min}, got '${v}'`);
    return n;
  });
}
