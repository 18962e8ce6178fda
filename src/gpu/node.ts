// Node's GPU provider: dawn.node from the `webgpu` package, and the file tuning store (imported only by Node entry points).
import { create, globals } from 'webgpu';
import { fileTuningStore } from '../io/tuning-store-node.js';
import { setGpuProvider } from './runtime.js';
import { defaultTuningStore, setTuningStore } from './tuning.js';

let gpu: GPU | undefined;

/**
 * Registers dawn.node as the engine's GPU, installs the WebGPU globals (GPUBufferUsage, ...) and,
 * unless one is set, the tuning store in the user's cache folder.
 */
export function useDawn(options: string[] = []): void {
  for (const [k, v] of Object.entries(globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  setGpuProvider(() => (gpu ??= create(options) as GPU));
  if (!defaultTuningStore()) setTuningStore(fileTuningStore());
}
