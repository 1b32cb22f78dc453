// The README's browser path with no dev server: the binary serves
// /examples/dashboard.html in embedded mode, a page running the unmodified
// laravel-echo + pusher-js. Real headless Chromium opens it with a member's
// token; attendees created over REST (from Node, and from the page's own
// form) appear in it live, x-triggered-by included.
//
// The page loads the clients from jsDelivr, pinned to the versions this
// suite installs; the test answers those requests from node_modules, so it
// runs offline and tests exactly the installed builds.
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';

import { test, startServer, mintToken, apiCall, expectStatus, CONFORMANCE_DIR } from '../lib/server.js';
import { launchChromium, openPage } from '../lib/browser.js';

const CDN = {
  'https://cdn.jsdelivr.net/npm/pusher-js@8.6.0/dist/web/pusher.min.js': 'pusher-js/dist/web/pusher.min.js',
  'https://cdn.jsdelivr.net/npm/laravel-echo@2.5.0/dist/echo.iife.js': 'laravel-echo/dist/echo.iife.js',
};

let browser;
let srv;
after(async () => {
  await browser?.close();
  await srv?.stop();
});

test('the embedded dashboard page shows attendees live through laravel-echo', { timeout: 60_000 }, async () => {
  srv = await startServer({ env: { DATABASE_URL: '' } });
  const admin = await mintToken({ sub: '1', admin: true });
  const jane = await mintToken({ sub: '42', projects: ['demo'] });
  expectStatus(await apiCall(srv.baseURL, 'POST', '/api/v1/projects', { slug: 'demo', name: 'Demo' }, { token: admin }), 201, 'project');

  browser = await launchChromium();
  const context = await browser.newContext();
  for (const [url, file] of Object.entries(CDN)) {
    const body = await readFile(path.join(CONFORMANCE_DIR, 'node_modules', file));
    await context.route(url, (route) => route.fulfill({ status: 200, contentType: 'text/javascript', body }));
  }
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(e.message));
  const res = await page.goto(`${srv.baseURL}/examples/dashboard.html?token=${jane}`);
  assert.equal(res.status(), 200);
  await page.waitForFunction(() => document.querySelector('#state').textContent === 'subscribed', null, { timeout: 15_000 })
    .catch((e) => { throw new Error(`dashboard never subscribed (${page.problems.join('; ')}): ${e.message}`); });

  const created = await apiCall(srv.baseURL, 'POST', '/api/v1/projects/demo/attendees',
    { first_name: 'Jane', last_name: 'Smith', email: 'jane@example.com', attendee_type_id: 1 }, { token: jane, requestId: 'abc123' });
  expectStatus(created, 201, 'attendee');
  const id = created.body.id;
  const ev = await page.waitForFunction((id) => window.__events.find((x) => x.name === 'AttendeeCreated' && x.e.attendee_id === id)?.e,
    id, { timeout: 10_000 });
  const e = await ev.jsonValue();
  assert.equal(e.first_name, 'Jane');
  assert.deepEqual(e['x-triggered-by'], { operation_id: 'v1.project.attendees.store', request_id: 'abc123' });
  await page.waitForSelector(`tr[data-id="${id}"]`);

  // The page's own REST form: a same-origin write that comes back live.
  await page.fill('#create input[name=first_name]', 'Ann');
  await page.click('#create button');
  await page.waitForFunction(() => window.__events.some((x) => x.name === 'AttendeeCreated' && x.e.first_name === 'Ann'), null, { timeout: 10_000 });
  assert.deepEqual(page.problems, []);

  await mkdir(path.join(CONFORMANCE_DIR, 'artifacts'), { recursive: true });
  await page.screenshot({ path: path.join(CONFORMANCE_DIR, 'artifacts', 'dashboard.png'), fullPage: true });
});
