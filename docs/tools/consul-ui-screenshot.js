// Takes a screenshot of a Consul UI page with headless Chromium (Debian's
// chromium package) through playwright-core:
//
//   (cd /tmp/shots-node && npm install playwright-core)   # outside the repo
//   NODE_PATH=/tmp/shots-node/node_modules node docs/tools/consul-ui-screenshot.js URL OUT.png
//
// docs/consul-ui.md says how the screenshots in docs/img were made.
const { chromium } = require('playwright-core');

(async () => {
  const [url, out] = process.argv.slice(2);
  if (!url || !out) {
    console.error('usage: node consul-ui-screenshot.js URL OUT.png');
    process.exit(2);
  }
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const page = await browser.newPage({ viewport: { width: 1400, height: 720 } });
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(url);
  await page.waitForTimeout(5000); // the UI renders after its first API answers
  await page.screenshot({ path: out });
  await browser.close();
})();
