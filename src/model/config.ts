// Semi-DRDNet configuration and the contract's presets.

/** Semi-DRDNet architecture: channels, blocks per branch, SE width, dilations, and switches. */
export interface DrdConfig {
  /** Feature width of both branches (paper: 64). */
  channels: number;
  /** SE residual blocks in the rain residual network (paper: 16). */
  rainBlocks: number;
  /** Context aggregation blocks in the detail repair network (paper: 16). */
  detailBlocks: number;
  /** Hidden width of the squeeze-and-excitation gate (default max(1, channels / 16)). */
  seHidden: number;
  /** Dilations of the parallel 3x3 convs in each detail-block layer (paper: 1, 3, 5). */
  dilations: number[];
  /** Squeeze-and-excitation gates in the rain blocks. */
  se: boolean;
  /** The detail repair branch (without it, final = derained). */
  detail: boolean;
  /** Detail-branch input: O (paper, authors' PyTorch code) or 2O - R (original Keras code). */
  detailInput: 'O' | '2O-R';
  /** Preset this came from, if any (informational). */
  preset?: string;
}

/** Name of a preset: 'micro', 'tiny' or 'paper'. */
export type PresetName = 'micro' | 'tiny' | 'paper';

/** A configuration from channels and block counts, with the paper's choices unless overridden. */
export function makeConfig(channels: number, rainBlocks: number, detailBlocks: number, extra: Partial<DrdConfig> = {}): DrdConfig {
  return {
    channels,
    rainBlocks,
    detailBlocks,
    seHidden: Math.max(1, Math.floor(channels / 16)),
    dilations: [1, 3, 5],
    se: true,
    detail: true,
    detailInput: 'O',
    ...extra,
  };
}

/** The presets' names, for option parsing. */
export const PRESET_NAMES: readonly PresetName[] = ['micro', 'tiny', 'paper'];

/** The contract's presets: micro (tests), tiny (trains on lavapipe), paper (5,221,766 parameters). */
export const PRESETS: Record<PresetName, DrdConfig> = {
  micro: makeConfig(4, 1, 1, { preset: 'micro' }),
  tiny: makeConfig(16, 3, 3, { preset: 'tiny' }),
  paper: makeConfig(64, 16, 16, { preset: 'paper' }),
};

/** The configuration of a named preset. */
export function preset(name: string): DrdConfig {
  const p = PRESETS[name as PresetName];
  if (!p) throw new Error(`unknown preset '${name}' (micro, tiny, paper)`);
  return { ...p, dilations: [...p.dilations] };
}

/**
 * Receptive-field radius in pixels: how far an output pixel can see. Tiles carry this much
 * context on every side so that tiled inference equals untiled inference.
 */
export function receptiveRadius(c: DrdConfig): number {
  const rain = 1 + 2 * c.rainBlocks + 1 + 1; // head, two 3x3 per block, body, tail
  const detail = c.detail ? 1 + 2 * c.detailBlocks * Math.max(...c.dilations) + 1 + 1 : 0;
  return c.detail && c.detailInput === '2O-R' ? rain + detail : Math.max(rain, detail);
}

/** Multiply-adds per output pixel (convolutions only). */
export function macsPerPixel(c: DrdConfig): number {
  const C = c.channels;
  const k3 = 9 * C * C;
  const rain = 2 * 27 * C + c.rainBlocks * 2 * k3 + k3;
  const dccl = c.dilations.length * k3 + c.dilations.length * C * C;
  const detail = c.detail ? 2 * 27 * C + c.detailBlocks * 2 * dccl + k3 : 0;
  return rain + detail;
}

export function validateConfig(c: DrdConfig): void {
  const int = (v: number, what: string, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new Error(`model config: ${what} must be an integer >= ${min}, got ${v}`);
  };
  int(c.channels, 'channels', 1);
  int(c.rainBlocks, 'rainBlocks', 0);
  int(c.detailBlocks, 'detailBlocks', 0);
  int(c.seHidden, 'seHidden', 1);
  if (!Array.isArray(c.dilations) || c.dilations.length < 1 || c.dilations.length > 4) throw new Error('model config: dilations must list 1 to 4 values');
  for (const d of c.dilations) int(d, 'each dilation', 1);
  if (c.detailInput !== 'O' && c.detailInput !== '2O-R') throw new Error(`model config: detailInput must be 'O' or '2O-R', got '${c.detailInput}'`);
}
