// Headless Debian Chromium with WebGPU for the browser tests: launch flags, page-state waits,
// downloads and screenshots. No browser is downloaded: /usr/bin/chromium is used as installed.
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SCREENSHOTS = join('test-results', 'browser');

// WebGPU on SwiftShader (what a GPU-less root container offers); the rest keeps a test browser
// quiet and offline, and leaves no profile behind.
const FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--enable-features=Vulkan',
  '--use-webgpu-adapter=swiftshader',
  '--disable-gpu-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export interface TestBrowser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh profile in a temp dir; downloads accepted. */
export async function launch(): Promise<TestBrowser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium package (apt-get install chromium)`);
  const profile = mkdtempSync(join(tmpdir(), 'semi-drdnet-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    acceptDownloads: true,
    viewport: { width: 1100, height: 900 },
  });
  // Pages use the default conv tiles, like the rest of the suite (no timing on SwiftShader; see gpu/tuning.ts).
  await context.addInitScript(() => {
    (globalThis as { SEMI_DRDNET_TUNE?: string }).SEMI_DRDNET_TUNE = '0';
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Page errors and console errors, collected so a failure can say what the page said. */
export function watch(page: Page): string[] {
  const log: string[] = [];
  page.on('pageerror', (e) => log.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && log.push(`console: ${m.text()}`));
  return log;
}

/** Waits until #status has one of `states`; a different final state fails with the page's words. */
export async function waitForState(page: Page, states: string[], timeoutMs: number): Promise<string> {
  const handle = await page.waitForFunction(
    (want) => {
      const s = document.getElementById('status');
      const st = s?.dataset.state ?? '';
      return want.includes(st) || st === 'error' ? st : null;
    },
    states,
    { timeout: timeoutMs, polling: 100 },
  );
  const st = (await handle.jsonValue()) as string;
  if (!states.includes(st)) {
    const err = await page.textContent('#error').catch(() => null);
    throw new Error(`page reached state '${st}': ${err || (await page.textContent('#status'))}`);
  }
  return st;
}

/** Clicks `selector` and saves the download it starts; returns the path. */
export async function downloadVia(page: Page, selector: string, dir: string): Promise<{ path: string; name: string }> {
  const [dl] = await Promise.all([page.waitForEvent('download', { timeout: 60_000 }), page.click(selector)]);
  const name = dl.suggestedFilename();
  const path = join(dir, name);
  await dl.saveAs(path);
  return { path, name };
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

export type { Browser, Page };
