// `train`: semi-supervised training with checkpoints, resume, a JSONL log and a progress line.
import { appendFileSync, writeFileSync } from 'node:fs';
import { readFileBytes, writeFileAtomic } from '../../io/fs-node.js';
import { parseSafetensors } from '../../io/safetensors.js';
import { preset } from '../../model/config.js';
import { DrdNet } from '../../model/drdnet.js';
import { loadVgg, randomVgg, DEFAULT_MAX_TAP } from '../../model/vgg.js';
import { assignWeights, configFromWeights, weightsToBytes } from '../../model/weights.js';
import { checkpointBytes, restoreCheckpoint } from '../../train/checkpoint.js';
import { dualContrastiveLoss } from '../../train/contrastive.js';
import { openPairs, openReal } from '../../train/sources-node.js';
import { NonFiniteLossError, Trainer, type StepRecord } from '../../train/trainer.js';
import { int, num, oneOf, parseArgs, required, str, UsageError } from '../args.js';
import { getEngine, progress } from '../common.js';

export const help = `usage: semi-drdnet train --preset micro|tiny|paper --data <pairs> [--real <dir>] --steps N
       --batch B --patch P --lr X -o ckpt.safetensors [--resume ckpt] [--vgg file] [--log run.jsonl]

Trains on synthetic pairs (<pairs>/rain + <pairs>/norain) and, with --real, on unlabelled real
rainy images through the dual contrastive regularisation. Without --vgg the contrastive feature
extractor is a seeded RANDOM-initialised VGG-19 (no pretrained weights can be downloaded here).
  --steps N              total steps (a resumed run continues up to N)          default 1000
  --batch B --patch P    batch size and square crop size                          default 8, 100
  --lr X                 Adam learning rate                                       default 1e-3
  --milestones a,b,..    steps where lr is multiplied by --gamma                  default 20%,33%,53% of N
  --gamma G              default 0.2
  --seed N               data order, crops and flips                              default 1
  --checkpoint-every N   also written at the end and on Ctrl-C                     default 100
  --cr-bg W --cr-rain W  contrastive weights                                      default 0.1, 0.1
  --vgg-tap T            deepest VGG tap (1..5) for the contrastive features       default ${DEFAULT_MAX_TAP}
  --real-bn batch|running  BN statistics of the real batch's forward              default batch
  --real-batch K         real images per contrastive step (<= B)                  default B
  --cr-every N           apply the contrastive terms every N steps                default 1
  --time-limit M         stop (with a checkpoint) after M minutes of training
  --export W             also write the final weights alone (no optimizer state) to W`;

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(
    argv,
    ['preset', 'data', 'real', 'steps', 'batch', 'patch', 'lr', 'out', 'resume', 'vgg', 'log', 'seed', 'checkpoint-every', 'milestones', 'gamma', 'cr-bg', 'cr-rain', 'vgg-tap', 'real-bn', 'real-batch', 'cr-every', 'time-limit', 'export'],
    [],
    { o: 'out' },
  );
  const out = required(a, 'out', '(-o ckpt.safetensors)');
  const dataDir = required(a, 'data');
  const steps = int(a, 'steps', 1000, 1)!;
  const batch = int(a, 'batch', 8, 1)!;
  const patch = int(a, 'patch', 100, 8)!;
  const lr = num(a, 'lr', 1e-3)!;
  const seed = int(a, 'seed', 1, 0)!;
  const every = int(a, 'checkpoint-every', 100, 1)!;
  const gamma = num(a, 'gamma', 0.2)!;
  const milestones = str(a, 'milestones')?.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new UsageError(`--milestones must be step numbers, got '${s}'`);
    return n;
  }) ?? [0.2, 1 / 3, 0.53].map((f) => Math.round(f * steps));
  const crBg = num(a, 'cr-bg', 0.1)!;
  const crRain = num(a, 'cr-rain', 0.1)!;
  const tap = int(a, 'vgg-tap', DEFAULT_MAX_TAP, 1)!;
  const realBn = oneOf(a, 'real-bn', ['batch', 'running'] as const, 'batch')!;
  const realBatch = int(a, 'real-batch', batch, 1)!;
  const crEvery = int(a, 'cr-every', 1, 1)!;
  const timeLimit = num(a, 'time-limit');
  if (realBatch > batch) throw new UsageError(`--real-batch (${realBatch}) cannot exceed --batch (${batch})`);
  const presetName = oneOf(a, 'preset', ['micro', 'tiny', 'paper'] as const);
  const resume = str(a, 'resume');
  if (!presetName && !resume) throw new UsageError('--preset micro|tiny|paper is required (or --resume a checkpoint)');

  const engine = await getEngine();
  const pairs = await openPairs(dataDir, patch, seed);
  const realDir = str(a, 'real');
  const real = realDir ? await openReal(realDir, patch, seed + 1) : null;

  let model: DrdNet;
  let resumeFile = null;
  if (resume) {
    resumeFile = parseSafetensors(await readFileBytes(resume), resume);
    model = new DrdNet(engine, configFromWeights(resumeFile, resume));
    assignWeights(model, resumeFile, resume);
    if (presetName && preset(presetName).channels !== model.config.channels) {
      throw new UsageError(`--preset ${presetName} does not match the checkpoint's ${model.config.channels}-channel model`);
    }
  } else {
    model = new DrdNet(engine, preset(presetName!), seed);
  }

  let contrastive = null;
  if (real) {
    const vggPath = str(a, 'vgg');
    const extractor = vggPath ? loadVgg(engine, await readFileBytes(vggPath), vggPath, tap) : randomVgg(engine, 0, tap);
    if (!vggPath) process.stderr.write('train: no --vgg given: the contrastive features come from a seeded random-initialised VGG-19 (no pretrained weights)\n');
    contrastive = (inputs: Parameters<typeof dualContrastiveLoss>[1]) => dualContrastiveLoss(extractor, inputs, { bgWeight: crBg, rainWeight: crRain });
  }
  const trainer = new Trainer(engine, model, pairs, { batch, patch, lr, milestones, gamma, realBn, realBatch, crEvery }, real, contrastive);
  trainer.contrastiveWeights = { bg: crBg, rain: crRain };
  const saveState = () => {
    const p = pairs.saveState();
    const r = real?.saveState() ?? { rng: [], cursor: [] };
    return { step: trainer.step, rng: Uint32Array.from([...p.rng, ...r.rng]), epochCursor: [...encode(p.cursor), ...encode(r.cursor)] };
  };
  if (resumeFile) {
    const st = restoreCheckpoint(resumeFile, model, trainer.opt, resume!);
    trainer.step = st.step;
    const [p, r = []] = decode(st.epochCursor);
    pairs.loadState({ rng: [...st.rng.slice(0, 4)], cursor: p });
    real?.loadState({ rng: [...st.rng.slice(4, 8)], cursor: r });
  }

  const logPath = str(a, 'log');
  if (logPath && !resume) writeFileSync(logPath, '');
  const save = async () => writeFileAtomic(out, await checkpointBytes(model, trainer.opt, saveState()));
  let stop = false;
  const onSigint = () => {
    if (stop) process.exit(130);
    stop = true;
    progress('train: stopping after this step (Ctrl-C again to abort without a checkpoint)', true);
  };
  process.on('SIGINT', onSigint);
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
      if (logPath) appendFileSync(logPath, JSON.stringify(rec) + '\n');
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
      progress(`train: stopped at step ${trainer.step}; checkpoint ${out}`, true);
      return 130;
    }
    const exportPath = str(a, 'export');
    if (exportPath) await writeFileAtomic(exportPath, await weightsToBytes(model));
    if (timedOut) {
      await save();
      progress(`train: time limit of ${timeLimit} min reached at step ${trainer.step}; checkpoint ${out}`, true);
      return 0;
    }
    progress(`train: ${steps} steps in ${formatTime((performance.now() - t0) / 1000)}; checkpoint ${out}`, true);
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
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
