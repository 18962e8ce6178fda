// `npm run serve`: builds the pages (scripts/build-web.mjs) and serves them on 127.0.0.1 only.
//   node scripts/serve.mjs [--port N] [--no-build]      (default port 8080; 0 picks a free one)
import { open, realpath } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildWeb, DEFAULT_OUT } from './build-web.mjs';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.svg': 'image/svg+xml',
  '.safetensors': 'application/octet-stream',
};

/** A short plain-text reply; every reply says nosniff so a browser never guesses a type. */
function reply(res, status, text) {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' }).end(text ? `${text}\n` : undefined);
}

/** Serves `root` read-only on `host:port`; resolves once listening. */
export function serveStatic(root, { port = 8080, host = '127.0.0.1' } = {}) {
  const base = resolve(root);
  // Symlinks are resolved before the containment check, so one pointing outside is not followed.
  let realBase;
  const server = createServer(async (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(res, 405);
      return;
    }
    let path;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    } catch {
      reply(res, 400, 'bad request');
      return;
    }
    const file = normalize(join(base, path.endsWith('/') ? `${path}index.html` : path));
    const inside = (p, b) => p === b || p.startsWith(b + sep);
    // Nothing outside the built folder is reachable, whatever the URL says.
    if (!inside(file, base)) {
      reply(res, 403, 'forbidden');
      return;
    }
    let fh;
    try {
      realBase ??= await realpath(base);
      const real = await realpath(file);
      if (!inside(real, realBase)) throw Object.assign(new Error('outside the root'), { code: 'ENOENT' });
      fh = await open(real, 'r');
      const st = await fh.stat();
      if (!st.isFile()) throw Object.assign(new Error('not a file'), { code: 'ENOENT' });
      res.statusCode = 200;
      res.setHeader('content-type', TYPES[extname(file)] ?? 'application/octet-stream');
      // The length is only promised for HEAD: a file that changes size under a GET (or a /proc
      // file, which stats as empty) must not make the response lie about its body.
      if (req.method === 'HEAD') res.setHeader('content-length', st.size);
      res.setHeader('cache-control', 'no-cache');
      res.setHeader('x-content-type-options', 'nosniff');
    } catch (e) {
      await fh?.close().catch(() => undefined);
      if (e.code === 'ENOENT' || e.code === 'ENOTDIR' || e.code === 'ELOOP') reply(res, 404, `not found: ${path}`);
      else reply(res, 500, `cannot read ${path}`);
      return;
    }
    if (req.method === 'HEAD') {
      await fh.close();
      res.end();
      return;
    }
    // Headers go out with the first chunk, so a read that fails at once still becomes a 500;
    // one that fails later can only cut the response short. Either way the server keeps running.
    const stream = fh.createReadStream();
    stream.on('error', () => {
      if (!res.headersSent) {
        for (const h of ['content-length', 'content-type', 'cache-control']) res.removeHeader(h);
        reply(res, 500, `cannot read ${path}`);
      } else res.destroy();
    });
    stream.pipe(res);
  });
  return new Promise((resolvePromise, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const addr = server.address();
      resolvePromise({ url: `http://${host}:${addr.port}/`, close: () => new Promise((r) => server.close(() => r())), server });
    });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const i = args.indexOf('--port');
  const port = i >= 0 ? Number(args[i + 1]) : Number(process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error('serve: --port must be an integer from 0 to 65535');
    process.exit(2);
  }
  if (!args.includes('--no-build')) await buildWeb();
  try {
    const { url } = await serveStatic(DEFAULT_OUT, { port });
    console.log(`Semi-DRDNet pages at ${url} (benchmark: ${url}bench.html). Ctrl-C stops.`);
  } catch (e) {
    console.error(`serve: cannot listen on 127.0.0.1:${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use (try --port 0)' : e.message}`);
    process.exit(1);
  }
}
