// `train`: semi-supervised training with checkpoints, resume, a JSONL log and a progress line.
import { join } from 'node:path';
import { checkOutputFile, LineLog, readSafetensorsBytes, removeUnfinished, writeFileAtomic } from '../../io/fs-node.js';
import { preset, PRESET_NAMES } from '../../model/config.js';
import { DrdNet } from '../../model/drdnet.js';
import { loadVgg, randomVgg, DEFAULT_MAX_TAP, MAX_TAP } from '../../model/vgg.js';
import { assignWeights, configFromWeights, NonFiniteWeightsError, weightsToBytes } from '../../model/weights.js';
import { checkpointBytes, checkpointMilestones, checkpointStep, hasOptimizerState, restoreCheckpoint } from '../../train/checkpoint.js';
import { dualContrastiveLoss } from '../../train/contrastive.js';
import { openPairs, openReal } from '../../train/sources-node.js';
import { NonFiniteLossError, Trainer, type StepRecord } from '../../train/trainer.js';
import { int, intList, oneOf, parseArgs, positive, required, seedArg, str, UsageError } from '../args.js';
import { getEngine, progress, readSafetensorsFile, refuseInsideInputs, refuseOverwrite } from '../common.js';

export const help = `usage: semi-drdnet train --preset micro|tiny|paper --data <pairs> -o ckpt.safetensors [--real <dir>]
       [--steps N] [--batch B] [--patch P] [--lr X] [--resume ckpt | --init weights] [--vgg file]
       [--log run.jsonl]

Trains on synthetic pairs (<pairs>/rain + <pairs>/norain) and, with --real, on unlabelled real
rainy images through the dual contrastive regularisation. Without --vgg the contrastive feature
extractor is a seeded RANDOM-initialised VGG-19 (no pretrained weights can be downloaded here).
  --steps N              total steps (a resumed run continues up to N)          default 1000
  --batch B --patch P    batch size and square crop size                          default 8, 100
  --lr X                 Adam learning rate                                       default 1e-3
  --milestones a,b,..    steps where lr is multiplied by --gamma                  default 20%,33%,53% of N
                         (a resumed run keeps the milestones stored in its checkpoint)
  --gamma G              default 0.2
  --seed N               data order, crops and flips                              default 1
  --init W               start from the weights in W (e.g. the bundled ones, to fine-tune them on
                         your own pairs) with a fresh optimizer at step 0; --preset may be left out
  --checkpoint-every N   also written at the end and on Ctrl-C or SIGTERM          default 100
  --cr-bg W --cr-rain W  contrastive weights                                      default 0.1, 0.1
  --vgg-tap T            deepest VGG tap (1..5) for the contrastive features       default ${DEFAULT_MAX_TAP}
  --real-bn batch|running  BN statistics of the real batch's forward              default batch
  --real-batch K         real images per contrastive step (<= B)                  default B
  --cr-every N           apply the contrastive terms every N steps                default 1
  --time-limit M         stop (with a checkpoint) after M minutes of training
  --export W             also write the final weights alone (no optimizer state) to W
  --log L                one JSON line per step; a resumed run first cuts L back to its step

A checkpoint is only written when every weight, BN statistic and Adam moment is finite; a step
that breaks the model stops training with the last good checkpoint in place.`;

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(
    argv,
    ['preset', 'data', 'real', 'steps', 'batch', 'patch', 'lr', 'out', 'resume', 'init', 'vgg', 'log', 'seed', 'checkpoint-every', 'milestones', 'gamma', 'cr-bg', 'cr-rain', 'vgg-tap', 'real-bn', 'real-batch', 'cr-every', 'time-limit', 'export'],
    [],
    { o: 'out' },
    0,
  );
  const out = required(a, 'out', '(-o ckpt.safetensors)');
  const dataDir = required(a, 'data');
  const steps = int(a, 'steps', 1000, 1)!;
  const batch = int(a, 'batch', 8, 1)!;
  const patch = int(a, 'patch', 100, 8)!;
  const lr = positive(a, 'lr', 1e-3)!;
  const seed = seedArg(a, 1);
  const every = int(a, 'checkpoint-every', 100, 1)!;
  const gamma = positive(a, 'gamma', 0.2)!;
  const givenMilestones = intList(a, 'milestones', 1);
  const crBg = positive(a, 'cr-bg', 0.1, { inclusive: true })!;
  const crRain = positive(a, 'cr-rain', 0.1, { inclusive: true })!;
  const tap = int(a, 'vgg-tap', DEFAULT_MAX_TAP, 1)!;
  if (tap > MAX_TAP) throw new UsageError(`--vgg-tap must be an integer from 1 to ${MAX_TAP} (relu1_1 .. relu5_1), got '${tap}'`);
  const realBn = oneOf(a, 'real-bn', ['batch', 'running'] as const, 'batch')!;
  const realBatch = int(a, 'real-batch', batch, 1)!;
  const crEvery = int(a, 'cr-every', 1, 1)!;
  const timeLimit = positive(a, 'time-limit');
  if (realBatch > batch) throw new UsageError(`--real-batch (${realBatch}) cannot exceed --batch (${batch})`);
  const presetName = oneOf(a, 'preset', PRESET_NAMES);
  const resume = str(a, 'resume');
  const init = str(a, 'init');
  if (resume && init) throw new UsageError('--resume and --init exclude each other: --resume continues a checkpoint, --init starts a new run from weights');
  if (!presetName && !resume && !init) throw new UsageError('--preset micro|tiny|paper is required (or --resume a checkpoint, or --init weights)');
  const logPath = str(a, 'log');
  const exportPath = str(a, 'export');
  const vggPath = str(a, 'vgg');
  const realDir = str(a, 'real');
  // The contrastive terms run on --real's photos: their settings without it would do nothing.
  const contrastiveOnly = ['vgg', 'vgg-tap', 'real-bn', 'real-batch', 'cr-bg', 'cr-rain', 'cr-every'].find((f) => a.flags.has(f));
  if (!realDir && contrastiveOnly) throw new UsageError(`--${contrastiveOnly} sets the contrastive terms, which run only with --real <dir> (unlabelled rainy photos)`);
  // Every output is checked before the first step, not when it is first written hours later,
  // against every input: files given by flag and the image folders of --data and --real.
  const imageDirs: Array<[string, string | undefined]> = [['--data', join(dataDir, 'rain')], ['--data', join(dataDir, 'norain')], ['--real', realDir]];
  for (const [flag, p] of [['-o', out], ['--log', logPath], ['--export', exportPath]] as const) if (p !== undefined) refuseInsideInputs(p, flag, imageDirs);
  refuseOverwrite(out, '-o', [['--init', init], ['--vgg', vggPath], ['--log', logPath], ['--export', exportPath]]);
  if (logPath) refuseOverwrite(logPath, '--log', [['--resume', resume], ['--init', init], ['--vgg', vggPath], ['--export', exportPath]]);
  if (exportPath) refuseOverwrite(exportPath, '--export', [['--resume', resume], ['--init', init], ['--vgg', vggPath]]);
  checkOutputFile(out, 'checkpoint');
  if (logPath) checkOutputFile(logPath, 'log');
  if (exportPath) checkOutputFile(exportPath, 'weights');

  const engine = await getEngine();

  let model: DrdNet;
  let resumeFile = null;
  const from = resume ?? init;
  if (from) {
    // --init takes any weights file (a checkpoint's optimizer state is ignored); --resume needs one.
    const file = await readSafetensorsFile(from);
    if (resume && !hasOptimizerState(file)) {
      throw new UsageError(`--resume '${resume}' is a weights file, not a training checkpoint (no optimizer state): --resume takes the -o file of an earlier train run (--init starts from weights)`);
    }
    if (resume) resumeFile = file;
    model = new DrdNet(engine, configFromWeights(file, from));
    assignWeights(model, file, from);
    if (presetName && preset(presetName).channels !== model.config.channels) {
      throw new UsageError(`--preset ${presetName} does not match the ${model.config.channels}-channel model in '${from}'`);
    }
  } else {
    model = new DrdNet(engine, preset(presetName!), seed);
  }

  // A finished checkpoint needs no data: say so before decoding every training image.
  const done = resumeFile ? checkpointStep(resumeFile, resume!) : 0;
  if (resumeFile && done >= steps) {
    if (exportPath) await writeFileAtomic(exportPath, await weightsToBytes(model));
    progress(`train: the checkpoint is already at step ${done} (--steps ${steps}): no step to run${exportPath ? `; weights -> ${exportPath}` : ''} (raise --steps to train on)`, true);
    return 0;
  }
  const pairs = await openPairs(dataDir, patch, seed);
  const real = realDir ? await openReal(realDir, patch, seed + 1) : null;

  // A resumed run keeps its own lr schedule unless --milestones is given again.
  const milestones = givenMilestones ?? (resumeFile && checkpointMilestones(resumeFile, resume!)) ?? [0.2, 1 / 3, 0.53].map((f) => Math.round(f * steps));

  let contrastive = null;
  if (real) {
    const extractor = vggPath ? loadVgg(engine, await readSafetensorsBytes(vggPath), vggPath, tap) : randomVgg(engine, 0, tap);
    if (!vggPath) process.stderr.write('train: no --vgg given: the contrastive features come from a seeded random-initialised VGG-19 (no pretrained weights)\n');
    contrastive = (inputs: Parameters<typeof dualContrastiveLoss>[1]) => dualContrastiveLoss(extractor, inputs, { bgWeight: crBg, rainWeight: crRain });
  }
  const trainer = new Trainer(engine, model, pairs, { batch, patch, lr, milestones, gamma, realBn, realBatch, crEvery }, real, contrastive);
  trainer.contrastiveWeights = { bg: crBg, rain: crRain };
  const saveState = () => {
    const p = pairs.saveState();
    const r = real?.saveState() ?? { rng: [], cursor: [] };
    return { step: trainer.step, rng: Uint32Array.from([...p.rng, ...r.rng]), epochCursor: [...encode(p.cursor), ...encode(r.cursor)], milestones };
  };
  if (resumeFile) {
    const st = restoreCheckpoint(resumeFile, model, trainer.opt, resume!);
    trainer.step = st.step;
    const [p, r = []] = decode(st.epochCursor);
    // The data order is saved per dataset: another --data or --real than the run had cannot go on from it.
    const other = (what: string, e: unknown) => new UsageError(`--resume '${resume}' was trained ${what} (${(e as Error).message}): resume with the run's data, or start anew with --init`);
    try {
      pairs.loadState({ rng: [...st.rng.slice(0, 4)], cursor: p });
    } catch (e) {
      throw other(`on other data than --data '${dataDir}'`, e);
    }
    try {
      real?.loadState({ rng: [...st.rng.slice(4, 8)], cursor: r });
    } catch (e) {
      throw other(r.length ? `on other photos than --real '${realDir}'` : 'without --real', e);
    }
  }

  // A resumed run's log keeps the steps up to the checkpoint's (a crash may have logged more).
  const resumedStep = trainer.step;
  const log = logPath ? LineLog.open(logPath, resume ? (line) => stepOf(line) <= resumedStep : undefined) : null;
  const save = async () => {
    let bytes: Uint8Array;
    try {
      bytes = await checkpointBytes(model, trainer.opt, saveState());
    } catch (e) {
      if (!(e instanceof NonFiniteWeightsError)) throw e;
      progress('', false);
      throw new Error(`step ${trainer.step} broke the model (${e.message}); stopped, the last good checkpoint (if any) is ${out}`);
    }
    await writeFileAtomic(out, bytes);
  };
  // SIGTERM (kill, a job scheduler's time-out) is handled like Ctrl-C: finish the step, checkpoint.
  let stop: NodeJS.Signals | null = null;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stop) {
      removeUnfinished();
      process.exit(exitCode(signal));
    }
    stop = signal;
    progress(`train: ${signal}: stopping after this step (send it again to abort without a checkpoint)`, true);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const t0 = performance.now();
  const first = trainer.step;
  try {
    let timedOut = false;
    while (trainer.step < steps && !stop) {
      if (timeLimit !== undefined && performance.now() - t0 >= timeLimit * 60000) {
        timedOut = true;
        break;
      }
      let rec: StepRecord;
      try {
        rec = await trainer.trainStep();
      } catch (e) {
        if (e instanceof NonFiniteLossError) {
          progress('', false);
          throw new Error(`${e.message}; stopped, the last good checkpoint (if any) is ${out}`);
        }
        throw e;
      }
      log?.append(JSON.stringify(rec));
      const done = trainer.step - first;
      const rate = done / ((performance.now() - t0) / 1000);
      const eta = (steps - trainer.step) / rate;
      progress(
        `step ${trainer.step}/${steps} loss ${rec.loss.toFixed(4)} sup ${rec.loss_sup.toFixed(4)}` +
          (real ? ` cr ${rec.loss_cr_bg.toFixed(3)}/${rec.loss_cr_rain.toFixed(3)}` : '') +
          ` ${rate.toFixed(2)} steps/s ETA ${formatTime(eta)}`,
      );
      if (trainer.step % every === 0 || trainer.step === steps) await save();
    }
    if (stop) {
      await save();
      progress(`train: stopped by ${stop} at step ${trainer.step}; checkpoint ${out}`, true);
      return exitCode(stop);
    }
    if (exportPath) await writeFileAtomic(exportPath, await weightsToBytes(model));
    if (timedOut) {
      await save();
      progress(`train: time limit of ${timeLimit} min reached at step ${trainer.step}; checkpoint ${out}`, true);
      return 0;
    }
    const ran = trainer.step - first;
    progress(`train: ${ran} step${ran === 1 ? '' : 's'}${first > 0 ? ` (steps ${first + 1}-${trainer.step} of ${steps})` : ''} in ${formatTime((performance.now() - t0) / 1000)}; checkpoint ${out}`, true);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    log?.close();
  }
}

/** The shell's convention: 128 + the signal number (SIGINT 130, SIGTERM 143). */
function exitCode(signal: NodeJS.Signals): number {
  return signal === 'SIGTERM' ? 143 : 130;
}

/** The step of a log line, or Infinity for a line that is not one (so it and all after it are cut). */
function stepOf(line: string): number {
  try {
    const step = (JSON.parse(line) as { step?: unknown }).step;
    return typeof step === 'number' ? step : Infinity;
  } catch {
    return Infinity;
  }
}

/** Length-prefixed concatenation, so several sources' states fit in one integer list. */
function encode(s: number[]): number[] {
  return [s.length, ...s];
}
function decode(s: number[]): number[][] {
  const parts: number[][] = [];
  for (let i = 0; i < s.length; ) {
    parts.push(s.slice(i + 1, i + 1 + s[i]));
    i += 1 + s[i];
  }
  return parts.length ? parts : [[]];
}

function formatTime(s: number): string {
  if (!Number.isFinite(s)) return '--';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}
