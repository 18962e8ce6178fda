// A dependency-free SVG line plot for loss curves (log-scale y), one colour per series, with an optional shaded band.

export interface Series {
  name: string;
  /** [x, y] points; y must be > 0 for the log scale (others are skipped). */
  points: Array<[number, number]>;
  /** [x, low, high] points shaded around the line (e.g. the range over seeds). */
  band?: Array<[number, number, number]>;
}

const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

/** Moving average, so noisy per-step losses read as curves. */
export function smooth(points: Array<[number, number]>, window: number): Array<[number, number]> {
  if (window <= 1) return points;
  return points.map(([x], i) => {
    const lo = Math.max(0, i - window + 1);
    const slice = points.slice(lo, i + 1);
    return [x, slice.reduce((a, [, y]) => a + y, 0) / slice.length];
  });
}

/**
 * Several runs of one curve (e.g. one per seed) as their pointwise mean with a min-max band, over
 * the x values every run reached (runs stopped by a time budget differ in length).
 */
export function meanBand(runs: ReadonlyArray<ReadonlyArray<[number, number]>>): Pick<Series, 'points' | 'band'> {
  const n = Math.min(...runs.map((r) => r.length));
  const points: Array<[number, number]> = [];
  const band: Array<[number, number, number]> = [];
  for (let i = 0; i < n; i++) {
    const ys = runs.map((r) => r[i][1]);
    points.push([runs[0][i][0], ys.reduce((a, b) => a + b, 0) / ys.length]);
    band.push([runs[0][i][0], Math.min(...ys), Math.max(...ys)]);
  }
  return { points, band };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function lossPlotSvg(series: Series[], title: string, width = 720, height = 420): string {
  const m = { l: 64, r: 170, t: 36, b: 44 };
  const pts = series.flatMap((s) => [...s.points, ...(s.band ?? []).flatMap(([x, lo, hi]): Array<[number, number]> => [[x, lo], [x, hi]])].filter(([, y]) => y > 0 && Number.isFinite(y)));
  const xs = pts.map(([x]) => x);
  const ys = pts.map(([, y]) => Math.log10(y));
  const [x0, x1] = [Math.min(...xs, 0), Math.max(...xs, 1)];
  let [y0, y1] = [Math.floor(Math.min(...ys, 0) * 2) / 2, Math.ceil(Math.max(...ys, -1) * 2) / 2];
  if (y1 - y0 < 0.5) y1 = y0 + 0.5;
  const px = (x: number) => m.l + ((x - x0) / (x1 - x0 || 1)) * (width - m.l - m.r);
  const py = (ly: number) => height - m.b - ((ly - y0) / (y1 - y0)) * (height - m.t - m.b);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${m.l}" y="22" font-size="14">${esc(title)}</text>`,
  ];
  for (let ly = y0; ly <= y1 + 1e-9; ly += 0.5) {
    out.push(`<line x1="${m.l}" x2="${width - m.r}" y1="${py(ly)}" y2="${py(ly)}" stroke="#ddd"/>`);
    out.push(`<text x="${m.l - 6}" y="${py(ly) + 4}" text-anchor="end">${Number((10 ** ly).toPrecision(2))}</text>`);
  }
  const ticks = 5;
  for (let i = 0; i <= ticks; i++) {
    const x = x0 + ((x1 - x0) * i) / ticks;
    out.push(`<text x="${px(x)}" y="${height - m.b + 18}" text-anchor="middle">${Math.round(x)}</text>`);
  }
  out.push(`<text x="${(m.l + width - m.r) / 2}" y="${height - 8}" text-anchor="middle">step</text>`);
  out.push(`<rect x="${m.l}" y="${m.t}" width="${width - m.l - m.r}" height="${height - m.t - m.b}" fill="none" stroke="#444"/>`);
  // Bands first, so every line is drawn over every band.
  series.forEach((s, i) => {
    const band = (s.band ?? []).filter(([, lo, hi]) => lo > 0 && Number.isFinite(lo) && Number.isFinite(hi));
    if (band.length < 2) return;
    const edge = [...band.map(([x, , hi]) => [x, hi]), ...band.reverse().map(([x, lo]) => [x, lo])];
    const path = edge.map(([x, y]) => `${px(x).toFixed(1)},${py(Math.log10(y)).toFixed(1)}`).join(' ');
    out.push(`<polygon fill="${COLOURS[i % COLOURS.length]}" fill-opacity="0.15" stroke="none" points="${path}"/>`);
  });
  series.forEach((s, i) => {
    const c = COLOURS[i % COLOURS.length];
    const path = s.points
      .filter(([, y]) => y > 0 && Number.isFinite(y))
      .map(([x, y]) => `${px(x).toFixed(1)},${py(Math.log10(y)).toFixed(1)}`)
      .join(' ');
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${path}"/>`);
    const ly = m.t + 14 + 18 * i;
    out.push(`<line x1="${width - m.r + 12}" x2="${width - m.r + 32}" y1="${ly - 4}" y2="${ly - 4}" stroke="${c}" stroke-width="2"/>`);
    out.push(`<text x="${width - m.r + 38}" y="${ly}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
