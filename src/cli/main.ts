// The `semi-drdnet` command line: dispatches to one module per command.
import { fsCause, packageVersion, removeUnfinished } from '../io/fs-node.js';
import { UsageError } from './args.js';
import { reportError } from './common.js';
import * as adapt from './commands/adapt.js';
import * as bench from './commands/bench.js';
import * as derain from './commands/derain.js';
import * as evalCmd from './commands/eval.js';
import * as experiment from './commands/experiment.js';
import * as info from './commands/info.js';
import * as parity from './commands/parity.js';
import * as synth from './commands/synth.js';
import * as train from './commands/train.js';

interface Command {
  help: string;
  run(argv: string[]): Promise<number>;
}

const commands: Record<string, Command> = { derain, adapt, parity, info, synth, train, eval: evalCmd, experiment, bench };

const usage = `usage: semi-drdnet <command> [options]   (every command has --help; so does help <command>)

commands:
  derain <images...> -o <dir|file>   derain images of any size
  adapt <images...> -o <weights.safetensors> [--weights W] [--steps N] [--seed S] [--log L]   fine-tune on your own rainy photos
  parity --weights W --rainy R --clean C --mode train|eval -o X.safetensors
  train --preset P --data <pairs> -o ckpt [--real <dir>] [--steps N]   semi-supervised training
  experiment <file.json> -o <dir>    layer variants under one budget
  bench [--json] [--quick] [--filter T] [--profile]       kernel and model benchmarks
  info                               adapter, limits, model size
  --version                          the package version
  synth --clean <dir> -o <dir> [--rain light|heavy|real] [--seed N]   synthetic rainy/clean pairs
  eval --data <pairs> [--weights W] [--json] [--convention rgb|y|authors]   PSNR/SSIM vs baselines

Commands that run the network time conv kernel tiles the first time a shape runs on this adapter
and cache the winners in ~/.cache/semi-drdnet (or $XDG_CACHE_HOME); --no-tune or
SEMI_DRDNET_TUNE=0 keeps the defaults.`;

/** Commands that run the network: they tune conv kernels on first use unless --no-tune (bench parses its own). */
const TUNING = new Set(['derain', 'train', 'eval', 'adapt', 'experiment']);
const NO_TUNE_HELP = `

  --no-tune           use the default conv tiles: no timing of candidates on first use of a shape
                      and no tuning cache file (same as SEMI_DRDNET_TUNE=0)`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  let rest = args;
  if (name && TUNING.has(name) && rest.includes('--no-tune')) {
    // Every engine this process creates (the CLI's, an experiment's) reads the switch at creation.
    process.env.SEMI_DRDNET_TUNE = '0';
    rest = rest.filter((a) => a !== '--no-tune');
  }
  if (name === '--version' || name === '-v') {
    console.log(packageVersion());
    return 0;
  }
  if (name === 'help' && rest.length > 0) {
    const cmd = commands[rest[0]!];
    if (!cmd) {
      process.stderr.write(`semi-drdnet: unknown command '${rest[0]}' (try --help)\n`);
      return 2;
    }
    console.log(cmd.help + (TUNING.has(rest[0]!) ? NO_TUNE_HELP : ''));
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    // Asked for: stdout, exit 0. No command at all is a usage error: stderr, exit 2.
    if (name) console.log(usage);
    else process.stderr.write(`${usage}\n`);
    return name ? 0 : 2;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`semi-drdnet: unknown command '${name}' (try --help)\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.help + (TUNING.has(name) ? NO_TUNE_HELP : ''));
    return 0;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    const err = e as Error;
    reportError(name, err);
    if (process.env.SEMI_DRDNET_DEBUG) console.error(err.stack);
    return err instanceof UsageError ? 2 : 1;
  }
}

process.env.XDG_RUNTIME_DIR ??= '/tmp';
// A result that cannot be written (a full disk behind `> file`) is a failure, not a silent exit 0;
// a closed pipe (`| head`) is the reader's choice: the rest of the output is dropped quietly.
let stdoutFailed = false;
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE' || stdoutFailed) return;
  process.stderr.write(`semi-drdnet: cannot write to standard output: ${fsCause(err)}\n`);
  stdoutFailed = true;
  process.exitCode = 1;
});
// Ctrl-C or SIGTERM ends a command at once (train's own handler finishes the step first), but
// never leaves an unfinished output behind: a write's temp file, half of a synthesized pair.
const onSignal = (signal: NodeJS.Signals) => {
  if (process.listenerCount(signal) > 1) return;
  removeUnfinished();
  process.exit(signal === 'SIGTERM' ? 143 : 130);
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
main(process.argv.slice(2)).then((code) => {
  process.exitCode = stdoutFailed ? 1 : code;
});
