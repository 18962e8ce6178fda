// Node's GPU provider: dawn.node from the `webgpu` package (imported only by Node entry points).
import { create, globals } from 'webgpu';
import { setGpuProvider } from './runtime.js';

let gpu: GPU | undefined;

/** Registers dawn.node as the engine's GPU and installs the WebGPU globals (GPUBufferUsage, ...). */
export function useDawn(options: string[] = []): void {
  for (const [k, v] of Object.entries(globals)) {
    if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
  }
  setGpuProvider(() => (gpu ??= create(options) as GPU));
}
