// WebGPU start-up for the pages: a readable message when the browser has none, and a callback
// when the device is lost later (driver reset, tab backgrounded too long, GPU process crash).
import { Engine } from '../../src/gpu/runtime.js';

export class NoWebGpuError extends Error {}

function noWebGpuMessage(): string {
  if (!window.isSecureContext) {
    return 'WebGPU needs a secure page: open it as http://localhost:… or over https (this address is neither).';
  }
  return 'This browser has no WebGPU, so the network cannot run here. Use a current Chrome or Edge (or Firefox/Safari with WebGPU enabled), and check that hardware acceleration is on.';
}

/** Creates the engine or throws NoWebGpuError with a message meant for people. */
export async function startEngine(onLost: (message: string) => void): Promise<Engine> {
  if (!('gpu' in navigator) || !navigator.gpu) throw new NoWebGpuError(noWebGpuMessage());
  let engine: Engine;
  try {
    engine = await Engine.create();
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    if (/no WebGPU adapter/i.test(msg)) throw new NoWebGpuError(`${noWebGpuMessage()} (The browser offers WebGPU but found no usable GPU adapter.)`);
    throw e;
  }
  engine.device.lost.then((info) => {
    if (!disposed.has(engine)) {
      onLost(`The GPU device was lost (${info.reason}${info.message ? `: ${info.message}` : ''}). Your photo is still here; restart the GPU to go on.`);
    }
  });
  return engine;
}

const disposed = new WeakSet<Engine>();

/** Destroys an engine on purpose, so its loss is not reported as a failure. */
export function stopEngine(engine: Engine): void {
  disposed.add(engine);
  engine.destroy();
}
