// A tiny static file server for browser tests that need a page on an origin
// other than switchboard's (cross-origin CORS and WebSocket Origin checks).
// It serves a fixed map of paths, nothing else (no directory listing, no
// path resolution), and closes every socket when stopped, so a test never
// leaves a listener behind.
//
//   const site = await startStaticServer({
//     '/': { file: '/abs/page.html' },                   // type from the extension
//     '/vendor/pusher.js': { file: require.resolve(...) },
//     '/config.json': { body: '{"a":1}', type: 'application/json' },
//   });
//   site.origin  // 'http://127.0.0.1:<port>'
//   await site.close();
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.css': 'text/css; charset=utf-8',
};

const live = new Set();
process.on('exit', () => {
  for (const s of live) {
    try { s.closeAllConnections(); s.close(); } catch { /* ignore */ }
  }
});

// startStaticServer listens on host (127.0.0.1) and a free port (or `port`)
// and serves `routes`: path → { file } or { body, type }. Every request is
// recorded in site.requests ({method, url, origin}) for failure messages.
export async function startStaticServer(routes, { host = '127.0.0.1', port = 0 } = {}) {
  const requests = [];
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    requests.push({ method: req.method, url: req.url });
    const route = routes[url.pathname];
    if (!route || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    try {
      const body = route.file ? await readFile(route.file) : Buffer.from(route.body ?? '');
      const type = route.type ?? TYPES[path.extname(route.file ?? url.pathname)] ?? 'application/octet-stream';
      res.writeHead(200, { 'Content-Type': type, 'Content-Length': body.length, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    } catch (err) {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`${err.message}\n`);
    }
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  live.add(server);
  const actual = server.address().port;
  return {
    port: actual,
    host,
    origin: `http://${host}:${actual}`,
    requests,
    close() {
      live.delete(server);
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
