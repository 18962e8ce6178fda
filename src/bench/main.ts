// `npm run bench`: runs the registered cases on dawn.node and prints a table or JSON lines.
//   --json           one JSON object per line (name, shape, median_ms, gflops|gbps, adapter, runs, min_ms)
//   --filter TEXT    only cases whose name or shape contains TEXT (repeat it: any of them)
//   --exclude TEXT   no case whose name or shape contains TEXT (repeatable)
//   --quick          only the quick set (about a minute on lavapipe; CI runs it)
//   --compare FILE   speed ratios (new/old) against an earlier --json run, matched by name + shape
//   --reps N         timed runs per case (default: 5..50 within ~1 s per case)
//   --list           print the selected cases without running them
//   --no-tune        default conv tiles only (no timing of candidates, no cache file; also SEMI_DRDNET_TUNE=0)
//   --show-config    print the conv tile configs each case ran with (JSON rows carry them as `config` anyway)
//   --profile        after timing, one more run of each case with GPU time per kernel label (timestamp queries)
//   --swiftshader    run on Chromium's SwiftShader (Chrome's fallback adapter) instead of the system's Vulkan driver
import { existsSync, readFileSync } from 'node:fs';
import { SWIFTSHADER_ICD, useDawn } from '../gpu/node.js';
import { Engine } from '../gpu/runtime.js';
import { fsCause } from '../io/fs-node.js';
import { tuneStats } from '../kernels/conv2d.js';
import { allCases } from './cases/index.js';
import { MIN_REPS, formatProfile, formatTable, parseJsonLines, runCases, selectCases, speedups, toJsonLine, type BenchResult } from './harness.js';

interface Args {
  json: boolean;
  quick: boolean;
  list: boolean;
  tune: boolean;
  showConfig: boolean;
  swiftshader: boolean;
  profile: boolean;
  filter: string[];
  exclude: string[];
  compare?: string;
  reps?: number;
}

const USAGE = 'usage: semi-drdnet bench [--swiftshader] [--json] [--quick] [--filter TEXT] [--exclude TEXT] [--compare OLD.jsonl] [--reps N] [--list] [--no-tune] [--show-config] [--profile] (in a checkout: npm run bench -- ...)';

function parseArgs(argv: string[]): Args {
  const args: Args = { json: false, quick: false, list: false, tune: true, showConfig: false, swiftshader: false, profile: false, filter: [], exclude: [] };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split(/=(.*)/s, 2);
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--json': args.json = true; break;
      case '--quick': args.quick = true; break;
      case '--list': args.list = true; break;
      case '--no-tune': args.tune = false; break;
      case '--show-config': args.showConfig = true; break;
      case '--swiftshader': args.swiftshader = true; break;
      case '--profile': args.profile = true; break;
      case '--filter': args.filter.push(value()); break;
      case '--exclude': args.exclude.push(value()); break;
      case '--compare': args.compare = value(); break;
      case '--reps': {
        const v = value();
        const n = Number(v);
        if (!/^\d+$/.test(v) || n < MIN_REPS) throw new Error(`--reps must be an integer >= ${MIN_REPS}, got '${v}'`);
        args.reps = n;
        break;
      }
      case '--help': case '-h': console.log(USAGE); process.exit(0);
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  return args;
}

/** Runs the bench with command-line arguments; resolves to the exit code. */
export async function benchMain(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    console.error(`semi-drdnet bench: ${(e as Error).message} (see --help)`);
    return 2;
  }
  let baseline: BenchResult[] | undefined;
  if (args.compare) {
    try {
      baseline = parseJsonLines(readFileSync(args.compare, 'utf8'));
    } catch (e) {
      console.error(`semi-drdnet bench: cannot read --compare '${args.compare}': ${fsCause(e)}`);
      return 1;
    }
    if (baseline.length === 0) {
      console.error(`semi-drdnet bench: --compare '${args.compare}' holds no bench rows (it takes the output of bench --json)`);
      return 1;
    }
  }
  const cases = selectCases(allCases, args);
  if (cases.length === 0) {
    console.error('semi-drdnet bench: no case matches');
    return 1;
  }
  if (args.list) {
    for (const c of cases) console.log(`${c.name}  ${c.shape}${c.quick ? '  (quick)' : ''}`);
    return 0;
  }
  if (args.swiftshader) {
    if (!existsSync(SWIFTSHADER_ICD)) {
      console.error(`semi-drdnet bench: --swiftshader needs Chromium's SwiftShader Vulkan driver (${SWIFTSHADER_ICD}; on Debian: apt-get install chromium)`);
      return 2;
    }
    // Read by the Vulkan loader when Dawn creates its instance, which has not happened yet.
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
  useDawn();
  const engine = await Engine.create(args.tune ? {} : { tune: false });
  let failed = 0;
  const results = await runCases(engine, cases, {
    reps: args.reps,
    profile: args.profile,
    onResult: (r) => {
      if (args.showConfig) console.error(`${r.name} ${r.shape}: config ${r.config === undefined ? '(no conv)' : JSON.stringify(r.config)}`);
      if (r.kernels && !args.json) console.error(formatProfile(r));
      if (args.json) {
        const ratio = baseline ? speedups([r], baseline).values().next().value : undefined;
        console.log(toJsonLine(r, ratio === undefined ? {} : { speedup: Number(ratio.toFixed(3)) }));
      } else {
        console.error(`${r.name} ${r.shape}: ${r.median_ms.toFixed(2)} ms`);
      }
    },
    onError: (c, err) => {
      failed++;
      console.error(`bench: ${c.name} ${c.shape} failed: ${(err as Error).stack ?? err}`);
    },
  });
  if (!args.json) console.log(formatTable(results, baseline));
  if (args.showConfig) {
    for (const t of tuneStats(engine).timed) console.error(`tuned ${t.key} in ${(t.ms / 1000).toFixed(1)} s: ${JSON.stringify(t.config)}`);
  }
  engine.destroy();
  return failed > 0 ? 1 : 0;
}

