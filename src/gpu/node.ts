// Node's GPU provider: dawn.node from the `webgpu` package, and the file tuning store (imported only by Node entry points).
import { create, globals } from 'webgpu';
import { fileTuningStore } from '../io/tuning-store-node.js';
import { setGpuProvider } from './runtime.js';
import { defaultTuningStore, setTuningStore } from './tuning.js';

let gpu: GPU | undefined;

/**
 * Where Debian's chromium package puts SwiftShader's Vulkan driver manifest (the adapter Chrome
 * falls back to without a GPU): with VK_ICD_FILENAMES set to it before the first engine is
 * created, Dawn runs on SwiftShader instead of the system's driver.
 */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/**
 * Registers dawn.node as the engine's GPU, installs the WebGPU globals (GPUBufferUsage, ...) and,
 * unless one is set, the tuning store in the user's cache folder.
 */
export function useDawn(options: string[] = []): void {
  for (const [k, v] of Object.entries(globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  setGpuProvider(() => dawnGpu(options), { synchronousErrors: true });
  if (!defaultTuningStore()) setTuningStore(fileTuningStore());
}

/**
 * The package's dawn.node GPU object (`navigator.gpu` for Node), created on first use and held for
 * the life of the process. Request your own adapter and device from it: dawn.node destroys a
 * device once the object that made it is garbage-collected, so one held here never goes away
 * under you (`options` are Dawn's `create()` flags and count only on the first call).
 */
export function dawnGpu(options: string[] = []): GPU {
  return (gpu ??= create(options) as GPU);
}
