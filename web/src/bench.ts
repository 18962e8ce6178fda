// The benchmark page: the CLI's bench cases and harness, run on this browser's WebGPU adapter.
//   bench.html?reps=N   timed runs per case (default: as many as fit in about a second, at least 5)
import { allCases } from '../../src/bench/cases/index.js';
import { adapterName, MIN_REPS, runCases, selectCases, toJsonLine, type BenchResult } from '../../src/bench/harness.js';
import type { Engine } from '../../src/gpu/runtime.js';
import { clearError, el, errorText, setStatus, showError } from './dom.js';
import { NoWebGpuError, startEngine } from './gpu.js';

let engine: Engine | null = null;
const runButton = el<HTMLButtonElement>('run');

function cell(row: HTMLTableRowElement, text: string, num = false): void {
  const td = row.insertCell();
  td.textContent = text;
  if (num) td.className = 'num';
}

function addRow(r: BenchResult): void {
  const row = el<HTMLTableElement>('results').tBodies[0].insertRow();
  row.dataset.name = r.name;
  cell(row, r.name);
  cell(row, r.shape);
  cell(row, r.median_ms.toFixed(3), true);
  cell(row, r.min_ms.toFixed(3), true);
  cell(row, String(r.runs), true);
  cell(row, r.gflops !== undefined ? `${r.gflops.toFixed(2)} GFLOP/s` : r.gbps !== undefined ? `${r.gbps.toFixed(2)} GB/s` : '-', true);
  el('json').textContent += `${toJsonLine(r)}\n`;
}

function addFailure(name: string, shape: string, err: unknown): void {
  const row = el<HTMLTableElement>('results').tBodies[0].insertRow();
  row.className = 'failed';
  cell(row, name);
  cell(row, shape);
  const td = row.insertCell();
  td.colSpan = 4;
  td.textContent = `failed: ${errorText(err)}`;
}

function repsFromUrl(): number | undefined {
  const v = new URLSearchParams(location.search).get('reps');
  if (v === null) return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n >= MIN_REPS ? n : MIN_REPS;
}

async function run(): Promise<void> {
  if (!engine) return;
  const cases = selectCases(allCases, { quick: el<HTMLInputElement>('quick').checked, filter: el<HTMLInputElement>('filter').value.trim() || undefined });
  clearError();
  el<HTMLTableElement>('results').tBodies[0].replaceChildren();
  el('json').textContent = '';
  if (cases.length === 0) {
    showError('No benchmark case matches the filter.');
    return;
  }
  runButton.disabled = true;
  const t0 = performance.now();
  let done = 0;
  let failed = 0;
  setStatus(`Running ${cases.length} cases: ${cases[0].name} ${cases[0].shape}…`, 'busy');
  try {
    await runCases(engine, cases, {
      reps: repsFromUrl(),
      onResult: (r) => {
        addRow(r);
        done++;
        const next = cases[done + failed];
        if (next) setStatus(`Running case ${done + failed + 1}/${cases.length}: ${next.name} ${next.shape}…`, 'busy');
      },
      onError: (c, err) => {
        failed++;
        addFailure(c.name, c.shape, err);
      },
    });
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    setStatus(`Done: ${done} of ${cases.length} cases in ${secs} s${failed ? `, ${failed} failed` : ''}.`, failed ? 'error' : 'done');
  } catch (e) {
    showError(errorText(e));
  } finally {
    runButton.disabled = engine.lost;
  }
}

async function init(): Promise<void> {
  try {
    engine = await startEngine((msg) => {
      runButton.disabled = true;
      showError(`${msg.replace(/ Your photo.*$/, '')} Reload the page to start again.`);
    });
  } catch (e) {
    showError(e instanceof NoWebGpuError ? e.message : `WebGPU could not start: ${errorText(e)}`);
    return;
  }
  el('adapter').textContent = `Adapter: ${adapterName(engine)}${engine.adapter.software ? ' (software renderer: expect low numbers)' : ''}`;
  runButton.disabled = false;
  runButton.addEventListener('click', () => void run());
  setStatus(`Ready: ${selectCases(allCases, { quick: true }).length} cases in the quick set.`, 'ready');
}

void init();
