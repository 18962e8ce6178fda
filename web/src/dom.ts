// Small DOM helpers shared by the pages: typed lookups, the status line and the error box.

export function el<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`page is missing #${id}`);
  return e as T;
}

export type PageState = 'starting' | 'ready' | 'busy' | 'done' | 'error';

/** The status line; `data-state` lets tests and styles follow the page without parsing text. */
export function setStatus(text: string, state: PageState): void {
  const s = el('status');
  s.textContent = text;
  s.dataset.state = state;
}

/** The first line of an error, as people should read it (stack traces go to the console). */
export function errorText(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0] || 'unknown error';
}

/** Shows a readable error; `action` adds one button (e.g. restart the GPU). */
export function showError(message: string, action?: { label: string; run: () => void }): void {
  const box = el('error');
  box.replaceChildren(document.createTextNode(message));
  if (action) {
    const b = document.createElement('button');
    b.textContent = action.label;
    b.addEventListener('click', action.run, { once: true });
    box.append(document.createElement('br'), b);
  }
  box.hidden = false;
  // The box says it all; the status line only carries the state for scripts.
  setStatus('', 'error');
}

export function clearError(): void {
  const box = el('error');
  box.hidden = true;
  box.replaceChildren();
}

/** Saves bytes as a file through a temporary object URL. */
export function download(data: Blob | Uint8Array, name: string): void {
  const blob = data instanceof Blob ? data : new Blob([data as Uint8Array<ArrayBuffer>], { type: 'application/octet-stream' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  // Revoking at once can cancel the download in some browsers; a minute is plenty.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
