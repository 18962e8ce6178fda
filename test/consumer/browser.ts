// A browser consumer of the installed package: bundled by esbuild for the browser and type-checked
// with bundler resolution, where the package's browser entry and types apply.
import { Engine, Tensor, bundledWeightsUrl, loadDerainer, type DerainInput } from 'semi-drdnet';

export async function run(canvas: HTMLCanvasElement): Promise<number> {
  const engine = await Engine.create();
  const derainer = await loadDerainer({ engine, weights: bundledWeightsUrl() });
  const ctx = canvas.getContext('2d')!;
  const input: DerainInput = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const out = await derainer.derain(input);
  const t = Tensor.fromData(engine, out.data, [1, 3, out.height, out.width]);
  const mean = (await t.read()).reduce((s, v) => s + v, 0) / t.size;
  derainer.dispose();
  return mean;
}
