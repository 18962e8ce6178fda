// `parity`: one supervised forward/backward, written out for comparison with PyTorch.
import { checkOutputFile, writeFileAtomic } from '../../io/fs-node.js';
import { readImage } from '../../io/image-node.js';
import { serializeSafetensors } from '../../io/safetensors.js';
import { parityTensors } from '../../train/parity.js';
import { oneOf, parseArgs, required, UsageError } from '../args.js';
import { loadWeightsFile, refuseOverwrite } from '../common.js';

export const help = `usage: semi-drdnet parity --weights W --rainy R.png --clean C.png --mode train|eval -o X.safetensors

Runs the network on R (BN batch statistics in train mode, running statistics in eval mode),
computes 0.1*L1(derained, C) + L1(final, C), backpropagates, and writes output.derained,
output.final (1x3xHxW), loss ([1]) and grad.<name> for every trainable parameter (all F32).`;

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ['weights', 'rainy', 'clean', 'mode', 'out'], [], { o: 'out' }, 0);
  const weights = required(a, 'weights');
  const rainyPath = required(a, 'rainy');
  const cleanPath = required(a, 'clean');
  const mode = oneOf(a, 'mode', ['train', 'eval'] as const);
  if (!mode) throw new UsageError('--mode train|eval is required');
  const out = required(a, 'out', '(-o X.safetensors)');
  refuseOverwrite(out, '-o', [['--weights', weights], ['--rainy', rainyPath], ['--clean', cleanPath]]);
  checkOutputFile(out);
  const { model } = await loadWeightsFile(weights, 'parity');
  const [rainy, clean] = [await readImage(rainyPath), await readImage(cleanPath)];
  if (rainy.width !== clean.width || rainy.height !== clean.height) {
    throw new Error(`--rainy '${rainyPath}' is ${rainy.width}x${rainy.height} but --clean '${cleanPath}' is ${clean.width}x${clean.height}`);
  }
  const tensors = await parityTensors(model, rainy, clean, mode);
  await writeFileAtomic(out, serializeSafetensors(tensors, { 'semi_drdnet.parity_mode': mode }));
  const loss = tensors.find((t) => t.name === 'loss')!.data[0];
  process.stderr.write(`parity: loss ${Number(loss).toPrecision(7)}, ${tensors.length - 3} gradients -> ${out}\n`);
  return 0;
}
