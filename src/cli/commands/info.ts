// `info`: the adapter, its limits, and a model's size and configuration.
import { macsPerPixel, preset, PRESET_NAMES, receptiveRadius } from '../../model/config.js';
import { DrdNet } from '../../model/drdnet.js';
import { oneOf, parseArgs, str, UsageError } from '../args.js';
import { defaultWeightsPath, getEngine, loadWeightsFile } from '../common.js';

export const help = `usage: semi-drdnet info [--preset micro|tiny|paper | --weights W] [--json]

Prints the WebGPU adapter and its limits, and the parameter count and configuration of a preset
or a weights file (default: the bundled weights, when present).`;

export async function run(argv: string[]): Promise<number> {
  const a = parseArgs(argv, ['preset', 'weights'], ['json'], {}, 0);
  let model: DrdNet | null = null;
  let source = '';
  const presetName = oneOf(a, 'preset', PRESET_NAMES);
  if (presetName && str(a, 'weights')) throw new UsageError('give --preset or --weights, not both');
  const engine = await getEngine();
  if (presetName) {
    model = new DrdNet(engine, preset(presetName));
    source = `preset ${presetName}`;
  } else if (str(a, 'weights') || defaultWeightsPath()) {
    const r = await loadWeightsFile(str(a, 'weights'), 'info');
    model = r.model;
    source = r.path;
  }
  const info = {
    adapter: engine.adapter,
    limits: engine.limits,
    model: model && {
      source,
      parameters: model.parameterCount(),
      macsPerPixel: macsPerPixel(model.config),
      receptiveRadius: receptiveRadius(model.config),
      config: model.config,
    },
  };
  if (a.flags.has('json')) {
    console.log(JSON.stringify(info));
    return 0;
  }
  const ad = engine.adapter;
  console.log(`adapter: ${[ad.vendor, ad.architecture, ad.device, ad.description].filter(Boolean).join(' / ')}${ad.software ? ' (software)' : ''}`);
  for (const [k, v] of Object.entries(engine.limits)) console.log(`  ${k}: ${v}`);
  if (info.model) {
    const m = info.model;
    console.log(`model: ${m.source}`);
    console.log(`  trainable parameters: ${m.parameters.toLocaleString('en-US')}`);
    console.log(`  multiply-adds per pixel: ${m.macsPerPixel.toLocaleString('en-US')}`);
    console.log(`  receptive-field radius: ${m.receptiveRadius} px`);
    console.log(`  config: ${JSON.stringify(m.config)}`);
  }
  return 0;
}
