// A live loss plot on a canvas: total loss and its parts per adaptation step, log-scaled.
import type { StepRecord } from '../../src/train/trainer.js';

const SERIES: Array<{ key: keyof StepRecord; label: string; color: string }> = [
  { key: 'loss', label: 'total', color: '#1d232b' },
  { key: 'loss_sup', label: 'supervised', color: '#2463eb' },
  { key: 'loss_cr_bg', label: 'CR background', color: '#1a9a5b' },
  { key: 'loss_cr_rain', label: 'CR rain', color: '#d9731a' },
];

export class LossPlot {
  #steps: StepRecord[] = [];

  constructor(readonly canvas: HTMLCanvasElement) {
    this.draw();
  }

  reset(): void {
    this.#steps = [];
    this.draw();
  }

  push(r: StepRecord): void {
    this.#steps.push(r);
    this.draw();
  }

  get steps(): readonly StepRecord[] {
    return this.#steps;
  }

  draw(): void {
    const c = this.canvas;
    // The records ride along as JSON so scripts (and the e2e test) can read exact values.
    c.dataset.steps = JSON.stringify(this.#steps.map((s) => ({ step: s.step, loss: s.loss, loss_sup: s.loss_sup, loss_cr_bg: s.loss_cr_bg, loss_cr_rain: s.loss_cr_rain })));
    const g = c.getContext('2d')!;
    const W = c.width;
    const H = c.height;
    const pad = { l: 48, r: 10, t: 22, b: 22 };
    g.clearRect(0, 0, W, H);
    g.font = '11px system-ui, sans-serif';
    g.fillStyle = '#5b6673';
    const values = this.#steps.flatMap((s) => SERIES.map((x) => s[x.key] as number)).filter((v) => v > 0 && Number.isFinite(v));
    if (values.length === 0) {
      g.fillText('loss per step appears here during adaptation', pad.l, H / 2);
      return;
    }
    let lo = Math.log10(Math.min(...values));
    let hi = Math.log10(Math.max(...values));
    if (hi - lo < 0.1) {
      lo -= 0.05;
      hi += 0.05;
    }
    const n = Math.max(2, this.#steps.length);
    const x = (i: number) => pad.l + ((W - pad.l - pad.r) * i) / (n - 1);
    const y = (v: number) => pad.t + ((H - pad.t - pad.b) * (hi - Math.log10(v))) / (hi - lo);
    g.strokeStyle = '#d5dae1';
    g.strokeRect(pad.l, pad.t, W - pad.l - pad.r, H - pad.t - pad.b);
    g.fillText(10 ** hi < 0.01 ? (10 ** hi).toExponential(1) : (10 ** hi).toPrecision(2), 4, pad.t + 4);
    g.fillText(10 ** lo < 0.01 ? (10 ** lo).toExponential(1) : (10 ** lo).toPrecision(2), 4, H - pad.b);
    g.fillText(`step ${this.#steps.length}`, W - pad.r - 50, H - 6);
    let lx = pad.l;
    for (const s of SERIES) {
      const pts = this.#steps.map((r, i) => [x(i), r[s.key] as number] as const).filter(([, v]) => v > 0 && Number.isFinite(v));
      if (pts.length === 0) continue;
      g.strokeStyle = s.color;
      g.fillStyle = s.color;
      g.lineWidth = s.key === 'loss' ? 2 : 1.2;
      g.beginPath();
      pts.forEach(([px, v], i) => (i ? g.lineTo(px, y(v)) : g.moveTo(px, y(v))));
      g.stroke();
      if (pts.length === 1) g.fillRect(pts[0][0] - 2, y(pts[0][1]) - 2, 4, 4);
      g.fillText(s.label, lx, 14);
      lx += g.measureText(s.label).width + 14;
    }
  }
}
