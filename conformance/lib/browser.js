// Real-browser helpers: Debian's headless Chromium driven by playwright-core
// (no browser download: CHROMIUM_BIN or /usr/bin/chromium, which .ci/run
// installs with apt-get when missing).
//
// Environment:
//   CHROMIUM_BIN   the Chromium executable (default /usr/bin/chromium)
import { existsSync } from 'node:fs';

export const CHROMIUM_BIN = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

// launchChromium starts headless Chromium, or fails saying how to get it.
export async function launchChromium() {
  if (!existsSync(CHROMIUM_BIN)) {
    throw new Error(
      `Chromium not found at ${CHROMIUM_BIN}: install Debian's package ` +
        '(apt-get install --no-install-recommends chromium, as .ci/run does) or set CHROMIUM_BIN',
    );
  }
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM_BIN, args: ['--no-sandbox', '--headless=new'], timeout: 30_000 });
}

// openPage opens url in a fresh browser context (own cookies and storage)
// and collects the page's uncaught errors and console errors in
// page.problems, for failure messages.
export async function openPage(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`uncaught: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') page.problems.push(`console.error: ${m.text()}`);
  });
  const res = await page.goto(url, { waitUntil: 'load' });
  if (!res || !res.ok()) throw new Error(`GET ${url}: HTTP ${res ? res.status() : 'no response'}`);
  return page;
}
