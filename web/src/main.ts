// The derain page: load weights, derain a chosen or dropped photo on WebGPU, compare, download,
// and adapt the network to the photo in place.
import type { Engine } from '../../src/gpu/runtime.js';
import { decodeImageBlob, encodeImageBlob } from '../../src/io/image-browser.js';
import type { Image } from '../../src/io/image.js';
import { derainImage, planTiles } from '../../src/model/derain.js';
import type { DrdNet } from '../../src/model/drdnet.js';
import { describe, loadModel, weightsToBytes } from '../../src/model/weights.js';
import { rngFor, synthesizeRain } from '../../src/data/synth.js';
import { ADAPT_DEFAULTS, adaptToPhotos, fitPatch } from '../../src/train/adapt.js';
import { GUARD_TOLERANCE_DB, guardKeeps, selfConsistency } from '../../src/train/adapt-guard.js';
import { clampImage, psnr } from '../../src/train/metrics.js';
import { loadBytes, loadImage, loadManifest, loadPairs, type Manifest, type Pair } from './assets.js';
import { CompareView } from './compare.js';
import { clearError, download, el, errorText, setStatus, showError } from './dom.js';
import { NoWebGpuError, startEngine, stopEngine } from './gpu.js';
import { LossPlot } from './plot.js';

// Activations per tile; smaller than the CLI's default to stay friendly to a browser tab's GPU
// memory. Tiles carry their full receptive field, so the result does not depend on it.
const ACTIVATION_BUDGET = 64 * 2 ** 20;
/** `?tile=N` fixes the tile size, as the CLI's --tile does (tests use it to exercise tiling). */
const TILE = tileFromUrl();

function tileFromUrl(): number | undefined {
  const v = new URLSearchParams(location.search).get('tile');
  const n = Number(v);
  return v !== null && Number.isInteger(n) && n > 0 ? n : undefined;
}

interface Weights {
  bytes: Uint8Array;
  name: string;
}

const state = {
  engine: null as Engine | null,
  model: null as DrdNet | null,
  manifest: null as Manifest | null,
  pairs: null as Pair[] | null,
  /** What "revert" goes back to: the weights as loaded (bundled or the user's file). */
  loaded: null as Weights | null,
  /** What the model holds now (after adaptation: the adapted weights), for restarts and download. */
  current: null as Weights | null,
  adaptedSteps: 0,
  photo: null as { img: Image; name: string } | null,
  /** The clean image behind the photo when it is the synthetic example (then PSNR can be shown). */
  truth: null as Image | null,
  result: null as Image | null,
  busy: false,
  stop: false,
};

const view = new CompareView();
const plot = new LossPlot(el<HTMLCanvasElement>('loss-plot'));
const buttons = {
  downloadResult: el<HTMLButtonElement>('download-result'),
  adapt: el<HTMLButtonElement>('adapt'),
  stop: el<HTMLButtonElement>('stop'),
  downloadWeights: el<HTMLButtonElement>('download-weights'),
  reset: el<HTMLButtonElement>('reset-weights'),
  tryExample: el<HTMLButtonElement>('try-example'),
};
const inputs = { image: el<HTMLInputElement>('image-input'), weights: el<HTMLInputElement>('weights-input') };

function refresh(): void {
  const idle = !state.busy && state.engine !== null && !state.engine.lost;
  buttons.downloadResult.disabled = !idle || !state.result;
  buttons.adapt.disabled = !idle || !state.photo || !state.model || !state.manifest?.pairs.length;
  buttons.adapt.title = state.manifest && !state.manifest.pairs.length ? 'this build has no synthetic pairs to adapt with' : '';
  buttons.downloadWeights.disabled = !idle || state.adaptedSteps === 0;
  buttons.reset.disabled = !idle || state.adaptedSteps === 0;
  buttons.stop.disabled = !state.busy || state.stop;
  buttons.tryExample.disabled = !idle || !state.model || !state.manifest?.example;
  inputs.image.disabled = state.busy;
  inputs.weights.disabled = state.busy;
  el('adapt-panel').hidden = !state.photo;
  const w = state.current ? `${state.current.name}${state.model ? ` (${describe(state.model.config)})` : ''}` : 'none';
  el('weights-name').textContent = state.adaptedSteps ? `${w}, adapted for ${state.adaptedSteps} steps` : w;
}

/** Runs one user action: one at a time, errors shown in the page rather than lost in the console. */
async function act(fn: () => Promise<void>): Promise<void> {
  if (state.busy) return;
  state.busy = true;
  state.stop = false;
  clearError();
  refresh();
  try {
    await fn();
  } catch (e) {
    if (e instanceof Stopped) {
      setStatus('Stopped. Choose or drop a photo to derain it again.', 'done');
      return;
    }
    console.error(e);
    if (state.engine?.lost) return; // the device-lost handler has already said what happened
    showError(errorText(e));
  } finally {
    state.busy = false;
    refresh();
  }
}

/** A download's base name: the file's without its extension, spaces and brackets made '-'. */
function baseName(name: string): string {
  return name.replace(/\.[^.]*$/, '').replace(/[^\w.-]+/g, '-').replace(/^-+|-+$/g, '') || 'image';
}

/** Thrown from a derain's progress callback when Stop is pressed between tiles. */
class Stopped extends Error {}

function setModel(w: Weights): void {
  const engine = state.engine!;
  const { model } = loadModel(engine, w.bytes, w.name);
  state.model?.dispose();
  state.model = model;
  state.current = w;
}

async function derain(): Promise<void> {
  const { model, photo } = state;
  if (!model || !photo) return;
  const { img } = photo;
  const plan = planTiles(model, img.width, img.height, { activationBudget: ACTIVATION_BUDGET, tile: TILE });
  setStatus(`Deraining ${img.width}x${img.height}${plan.tiles > 1 ? ` in ${plan.tiles} tiles` : ''}…`, 'busy');
  const t0 = performance.now();
  const result = await derainImage(model, img, {
    activationBudget: ACTIVATION_BUDGET,
    tile: TILE,
    onTile: (d, n) => {
      // Stop ends a large derain between tiles (not after the last one: a finished result is kept).
      if (state.stop && d < n) throw new Stopped();
      if (n > 1) setStatus(`Deraining ${img.width}x${img.height}: tile ${d}/${n}…`, 'busy');
    },
    // First use on this adapter: kernels are timed once and the choices kept (seconds per shape
    // on a GPU-less browser's software adapter).
    onTuning: (n) => setStatus(`Deraining ${img.width}x${img.height}: tuning the convolution kernels for this GPU (${n} shape${n > 1 ? 's' : ''}; first use only)…`, 'busy'),
  });
  state.result = result;
  view.setAfter(result);
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  setStatus(`Derained ${photo.name} (${img.width}x${img.height}) in ${secs} s on ${state.engine!.adapter.description || state.engine!.adapter.architecture || 'the GPU'}.`, 'done');
  if (state.truth) {
    el('quality').textContent = `Known ground truth (synthetic example): rainy input ${psnr(img, state.truth).toFixed(2)} dB, derained ${outputPsnr()!.toFixed(2)} dB PSNR.`;
  }
}

/** PSNR of the current result against the known clean image (synthetic example only). */
function outputPsnr(): number | null {
  return state.truth && state.result ? psnr(clampImage(state.result), state.truth) : null;
}

/** The synthetic example: a clean held-out photo under the hazy `real` recipe, which no labelled pair of the bundled weights' training had. */
async function tryExample(): Promise<void> {
  const path = state.manifest?.example;
  if (!path) return;
  setStatus('Loading the example photo…', 'busy');
  const clean = await loadImage(path);
  const { rainy } = synthesizeRain(clean, 'real', rngFor(1, 'page-example'));
  state.photo = { img: rainy, name: 'example (synthetic hazy rain)' };
  state.truth = clean;
  state.result = null;
  view.setBefore(rainy);
  el('image-info').textContent = `${state.photo.name}: ${rainy.width}x${rainy.height}, clean original known`;
  refresh();
  await derain();
}

async function openPhoto(file: File): Promise<void> {
  setStatus(`Decoding ${file.name}…`, 'busy');
  const img = await decodeImageBlob(file, file.name);
  state.photo = { img, name: file.name };
  state.truth = null;
  el('quality').textContent = '';
  state.result = null;
  view.setBefore(img);
  el('image-info').textContent = `${file.name}: ${img.width}x${img.height}`;
  refresh();
  if (!state.model) {
    setStatus('Photo loaded. Load weights (.safetensors) to derain it: this build has no bundled weights.', 'ready');
    return;
  }
  await derain();
}

async function openWeights(file: File): Promise<void> {
  setStatus(`Loading weights ${file.name}…`, 'busy');
  const w = { bytes: new Uint8Array(await file.arrayBuffer()), name: file.name };
  setModel(w);
  state.loaded = w;
  state.adaptedSteps = 0;
  plot.reset();
  refresh();
  if (state.photo) await derain();
  else setStatus(`Loaded ${file.name}. Choose or drop a photo.`, 'ready');
}

/** Sends a chosen or dropped file where it belongs: weights by extension, everything else is a photo. */
function openFile(file: File): Promise<void> {
  return act(() => (/\.safetensors$/i.test(file.name) ? openWeights(file) : openPhoto(file)));
}

async function adapt(): Promise<void> {
  const { engine, model, photo, manifest } = state;
  if (!engine || !model || !photo || !manifest) return;
  if (!state.pairs) {
    setStatus('Loading the synthetic pairs…', 'busy');
    state.pairs = await loadPairs(manifest);
  }
  const num = (id: string) => Number(el<HTMLInputElement>(id).value);
  const opts = { steps: Math.max(1, Math.floor(num('steps'))), patch: Math.floor(num('patch')), batch: Math.max(1, Math.floor(num('batch'))), lr: num('lr') };
  if (!(opts.lr > 0)) throw new Error('the learning rate must be a positive number');
  fitPatch(opts.patch, [photo.img], state.pairs); // says so now if the photo is too small
  plot.reset();
  el('loss-text').textContent = '';
  setStatus('Adapting: scoring the current weights on this photo (self-consistency)…', 'busy');
  // Needs no ground truth: how well the model takes known synthetic rain back off its own output.
  const consistencyBefore = await selfConsistency(model, [photo.img]);
  const psnrBefore = outputPsnr();
  setStatus(`Adapting: step 0/${opts.steps} (compiling shaders)…`, 'busy');
  let result;
  try {
    // BN handling and the contrastive terms: the shared defaults (src/train/adapt.ts), as in `adapt`.
    result = await adaptToPhotos(engine, model, [photo.img], state.pairs, opts, {
      shouldStop: () => state.stop,
      onStep: (r, n) => {
        plot.push(r);
        el('loss-text').textContent = `step ${r.step}: loss ${r.loss.toPrecision(4)} (supervised ${r.loss_sup.toPrecision(4)}, CR background ${r.loss_cr_bg.toPrecision(4)}, CR rain ${r.loss_cr_rain.toPrecision(4)}), ${(r.ms / 1000).toFixed(2)} s/step`;
        setStatus(`Adapting: step ${r.step}/${n}…`, 'busy');
      },
    });
  } catch (e) {
    // A step failed half-way: put back the weights from before this run so the model is consistent.
    try {
      if (!engine.lost && state.current) setModel(state.current);
    } catch {
      // the original error is the one worth showing
    }
    throw new Error(`adaptation failed, the weights are back to where they were: ${errorText(e)}`);
  }
  const { records, diverged } = result;
  if (records.length > 0) {
    state.adaptedSteps += records.length;
    state.current = { bytes: await weightsToBytes(model), name: `${baseName(photo.name)}-adapted.safetensors` };
    refresh();
    await derain();
    const derained = el('status').textContent;
    setStatus('Adapting: scoring the adapted weights on this photo (self-consistency)…', 'busy');
    const consistencyAfter = await selfConsistency(model, [photo.img]);
    const psnrAfter = outputPsnr();
    const lines = [];
    if (psnrBefore !== null && psnrAfter !== null) {
      const d = psnrAfter - psnrBefore;
      lines.push(`Known ground truth: PSNR ${psnrBefore.toFixed(2)} dB before adaptation, ${psnrAfter.toFixed(2)} dB after (${d >= 0 ? '+' : ''}${d.toFixed(2)} dB).`);
    }
    lines.push(`Self-consistency (no ground truth needed): ${consistencyBefore.toFixed(2)} dB before, ${consistencyAfter.toFixed(2)} dB after.`);
    // The CLI's default rule (adapt --guard keep): adapted weights pass only when the check rose.
    if (!guardKeeps(consistencyBefore, consistencyAfter)) {
      lines.push(
        `Warning: the self-consistency check did not rise by more than ${GUARD_TOLERANCE_DB} dB, so this adaptation may have made the photo worse (the command-line adapt would keep the starting weights). Download the result or the weights if you want to keep them; Revert puts the original weights back and shows their result.`,
      );
    }
    el('quality').textContent = lines.join(' ');
    setStatus(derained ?? '', 'done');
  }
  if (diverged) {
    showError(`Adaptation stopped: ${diverged}. ${records.length ? `The ${records.length} good step(s) before it are kept.` : 'The weights are unchanged.'} Try a lower learning rate.`);
    return;
  }
  if (records.length === 0) {
    setStatus('Adaptation stopped before the first step; the weights are unchanged.', 'done');
    return;
  }
  setStatus(`Adapted for ${records.length} step${records.length > 1 ? 's' : ''}${state.stop ? ' (stopped)' : ''} and derained again. ${el('status').textContent}`, 'done');
}

async function revert(): Promise<void> {
  if (!state.loaded) return;
  setModel(state.loaded);
  state.adaptedSteps = 0;
  plot.reset();
  el('quality').textContent = ''; // it described the adapted weights (the synthetic example's derain writes its own)
  refresh();
  await derain();
}

/** After a device loss: a new engine, the current weights reloaded, the photo derained again. */
async function restartGpu(): Promise<void> {
  if (state.engine) stopEngine(state.engine);
  state.engine = null;
  state.model = null;
  state.pairs = null;
  setStatus('Restarting WebGPU…', 'busy');
  state.engine = await startEngine(onLost);
  if (state.current) setModel(state.current);
  refresh();
  if (state.photo) await derain();
  else setStatus('WebGPU restarted.', 'ready');
}

function onLost(message: string): void {
  state.stop = true;
  state.model = null; // its buffers died with the device
  showError(message, { label: 'Restart the GPU', run: () => void act(restartGpu) });
  refresh();
}

function wireInputs(): void {
  inputs.image.addEventListener('change', () => {
    const f = inputs.image.files?.[0];
    inputs.image.value = ''; // choosing the same file again should reload it
    if (f) void openFile(f);
  });
  inputs.weights.addEventListener('change', () => {
    const f = inputs.weights.files?.[0];
    inputs.weights.value = '';
    if (f) void act(() => openWeights(f));
  });
  const drop = el('drop');
  // The whole window accepts drops, so a near miss does not navigate away to the file.
  window.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  window.addEventListener('dragleave', (e) => e.relatedTarget === null && drop.classList.remove('over'));
  window.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer?.files[0];
    if (f && state.busy) showError(`${f.name} was not opened: the page is busy. Wait, or press Stop, then drop it again.`);
    else if (f) void openFile(f);
  });
  buttons.downloadResult.addEventListener('click', () =>
    void act(async () => {
      download(await encodeImageBlob(state.result!, 'png'), `${baseName(state.photo!.name)}-derained.png`);
    }),
  );
  buttons.adapt.addEventListener('click', () => void act(adapt));
  buttons.stop.addEventListener('click', () => {
    state.stop = true;
    setStatus('Stopping after the current step or tile…', 'busy');
    refresh();
  });
  buttons.downloadWeights.addEventListener('click', () => state.current && download(state.current.bytes, state.current.name));
  buttons.reset.addEventListener('click', () => void act(revert));
  buttons.tryExample.addEventListener('click', () => void act(tryExample));
  window.addEventListener('unhandledrejection', (e) => showError(errorText(e.reason)));
  window.addEventListener('error', (e) => showError(errorText(e.error ?? e.message)));
}

/** The adaptation fields start at the shared defaults (src/train/adapt.ts), the same as `adapt`'s. */
function adaptDefaults(): void {
  for (const k of ['steps', 'patch', 'batch', 'lr'] as const) el<HTMLInputElement>(k).value = String(ADAPT_DEFAULTS[k]);
}

async function init(): Promise<void> {
  adaptDefaults();
  wireInputs();
  refresh();
  try {
    state.engine = await startEngine(onLost);
  } catch (e) {
    el('inputs').hidden = true; // nothing here works without a GPU
    showError(e instanceof NoWebGpuError ? e.message : `WebGPU could not start: ${errorText(e)}`);
    return;
  }
  await act(async () => {
    state.manifest = await loadManifest();
    if (state.manifest.weights) {
      setStatus('Loading the bundled weights…', 'busy');
      const w = { bytes: await loadBytes(state.manifest.weights), name: state.manifest.weights.split('/').pop()! };
      setModel(w);
      state.loaded = w;
    }
    setStatus(state.model ? 'Ready: choose or drop a rainy photo.' : 'Ready. This build has no bundled weights: load a .safetensors file, then choose a photo.', 'ready');
  });
}

void init();
