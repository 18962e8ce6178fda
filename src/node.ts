// Node entry point: the public API with dawn.node registered as the GPU.
import { useDawn } from './gpu/node.js';

useDawn();
export * from './index.js';
export { useDawn };
