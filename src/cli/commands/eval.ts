// `eval --weights W --data <pairs> [--json] [--convention rgb|y|authors]`: PSNR/SSIM of the
// rainy input, the derained output and a 3x3 median-filter baseline against the clean images.
import { pairFiles, readPair } from '../../data/dataset.js';
import { derainImage, MIN_TILE } from '../../model/derain.js';
import { clampImage, CONVENTION_LABEL, CONVENTIONS, medianFilter3x3, psnr, ssim, ssimMinSide } from '../../train/metrics.js';
import { int, oneOf, parseArgs, required, str } from '../args.js';
import { ensembleArg, loadWeightsFile, progress } from '../common.js';

export const help = `usage: semi-drdnet eval --data <pairs> [--weights W] [--json] [--convention rgb|y|authors] [--tile N]
              [--ensemble 1|2|4]

Derains every rainy image of a paired dataset (<pairs>/rain + <pairs>/norain, Rain200 names such
as norain-12x2.png <-> norain-12.png accepted) and prints PSNR/SSIM against the clean image for
the input, the output (clamped to [0,1]) and a 3x3 median filter of the input, per image and mean.
  --data <dir>          the paired dataset
  --weights <file>      safetensors weights (default: the bundled weights, when present)
  --json                one JSON object: {"images":[{"name","psnr_in","psnr_out","ssim_in",
                        "ssim_out","psnr_median","ssim_median"}...],"mean":{...},"convention"}
                        (an infinite PSNR, identical images, is written as null)
  --convention <c>      rgb (default: float RGB, data range 1, SSIM 11x11 gaussian sigma 1.5),
                        y (the same on BT.601 luma), authors (uint8 truncation, 7x7 uniform SSIM)
  --tile <N>            output pixels per tile side (at least ${MIN_TILE}) for large images (no effect
                        on the result); a model whose output is not finite is an error`;

const KEYS = ['psnr_in', 'psnr_out', 'psnr_median', 'ssim_in', 'ssim_out', 'ssim_median'] as const;
type Row = { name: string } & Record<(typeof KEYS)[number], number>;

const fmt = (v: number, psnrKey: boolean): string => (Number.isFinite(v) ? v.toFixed(psnrKey ? 2 : 4) : String(v));

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ['weights', 'data', 'convention', 'tile', 'ensemble'], ['json'], {}, 0);
  const data = required(a, 'data', '(--data <pairs>)');
  const convention = oneOf(a, 'convention', CONVENTIONS, 'rgb')!;
  const tile = int(a, 'tile', undefined, MIN_TILE);
  const ensemble = ensembleArg(a);
  const json = a.flags.get('json') === true;
  const pairs = pairFiles(data);
  const { model, path } = await loadWeightsFile(str(a, 'weights'), 'eval');
  const rows: Row[] = [];
  const minSide = ssimMinSide(convention);
  for (const [i, p] of pairs.entries()) {
    progress(`eval ${i + 1}/${pairs.length} ${p.name}`);
    const { rainy, clean } = await readPair(p);
    // Said with the image's name, and before its derain.
    if (Math.min(rainy.width, rainy.height) < minSide) throw new Error(`'${p.rainyPath}' is ${rainy.width}x${rainy.height}: SSIM needs images of at least ${minSide}x${minSide} pixels`);
    const out = clampImage(await derainImage(model, rainy, { tile, ensemble }));
    const median = medianFilter3x3(rainy);
    rows.push({
      name: p.name,
      psnr_in: psnr(rainy, clean, convention),
      psnr_out: psnr(out, clean, convention),
      psnr_median: psnr(median, clean, convention),
      ssim_in: ssim(rainy, clean, convention),
      ssim_out: ssim(out, clean, convention),
      ssim_median: ssim(median, clean, convention),
    });
  }
  progress('', false);
  const mean = Object.fromEntries(KEYS.map((k) => [k, rows.reduce((s, r) => s + r[k], 0) / rows.length])) as Record<(typeof KEYS)[number], number>;
  if (json) {
    const order = ['psnr_in', 'psnr_out', 'ssim_in', 'ssim_out', 'psnr_median', 'ssim_median'] as const;
    const pick = (r: Record<(typeof KEYS)[number], number>) => Object.fromEntries(order.map((k) => [k, Number.isFinite(r[k]) ? r[k] : null]));
    const doc = {
      images: rows.map((r) => ({ name: r.name, ...pick(r) })),
      mean: pick(mean),
      convention: CONVENTION_LABEL[convention],
    };
    console.log(JSON.stringify(doc));
    return 0;
  }
  const width = Math.max(5, ...rows.map((r) => r.name.length));
  const head = ['PSNR in', 'out', 'median', 'SSIM in', 'out', 'median'];
  const line = (name: string, vals: string[]) => `${name.padEnd(width)}  ${vals.map((v, j) => v.padStart(j === 0 || j === 3 ? 8 : 7)).join(' ')}`;
  console.log(`weights ${path}, ${rows.length} image${rows.length === 1 ? '' : 's'}, convention ${CONVENTION_LABEL[convention]}`);
  console.log(line('image', head));
  for (const r of rows) console.log(line(r.name, KEYS.map((k) => fmt(r[k], k.startsWith('psnr')))));
  console.log(line('mean', KEYS.map((k) => fmt(mean[k], k.startsWith('psnr')))));
  return 0;
}
