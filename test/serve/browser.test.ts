/**
 * `serve` in a real browser: headless Chromium (Debian's `chromium`, installed by `npm run
 * setup`) driven by playwright-core — no browser download. It opens the address with the token,
 * goes into a backup, searches, opens a file's history and downloads a file; a preview of a
 * backed-up HTML file runs nothing. A screenshot of each page goes to test-results/serve/.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backup, configArgs, project } from '../support/backup.js';
import { expectRun } from '../support/cli.js';
import { EXTERNAL, useGrid } from '../support/grid.js';
import { makeTree, tempDir } from '../support/tree.js';
import { startServe, type Served } from './support.js';

const CHROMIUM = process.env.LAFS_TEST_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(import.meta.dirname, '..', '..', 'test-results', 'serve');
const env = useGrid();
const missing = !existsSync(CHROMIUM);
// Against a real gateway a missing browser is skipped, like the other tests that need this machine's set-up.
const maybe = missing && EXTERNAL ? describe.skip : describe;

let s: Served;
let browser: Browser;
let src: string;

beforeAll(async () => {
  if (missing) {
    if (EXTERNAL) return;
    throw new Error(`the browser test needs Chromium at ${CHROMIUM}: run \`npm run setup\` (it installs Debian's chromium package)`);
  }
  mkdirSync(SHOTS, { recursive: true });
  const dir = tempDir('lb-browser-');
  src = join(dir, 'home');
  makeTree(src, { 'notes.txt': 'first notes\n', docs: { 'report.md': '# Report\n' + 'text\n'.repeat(400) }, 'page.html': '<script>alert("from the backup")</script><h1>hi</h1>' });
  const p = project(dir, src, env.url);
  expectRun(await backup(p));
  // Two nights more, each adding and changing something: the chart has points, the history rows.
  for (const night of [1, 2]) {
    await new Promise((ok) => setTimeout(ok, 1100));
    writeFileSync(join(src, 'notes.txt'), `notes of night ${night}\n`.repeat(night * 50));
    writeFileSync(join(src, `night-${night}.log`), 'x'.repeat(20_000 * night));
    expectRun(await backup(p));
  }
  s = await startServe(configArgs(p));
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (s) expect(await s.stop()).toBe(0);
});

maybe('serve in a browser', () => {
  it('opens with the token, goes into a backup, searches, opens a history, downloads a file; nothing from the backup runs', async () => {
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 760 } });
    const page = await context.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));

    await page.goto(s.url);
    // The token left the address bar; the cookie is out of reach of any script.
    expect(new URL(page.url()).search).toBe('');
    expect(await page.evaluate(() => document.cookie)).toBe('');
    const [cookie] = await context.cookies();
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    await expect.poll(async () => (await page.goto(page.url()), page.locator('table td.num').first().textContent()), { timeout: 20_000 }).not.toBe('…');
    expect(await page.locator('svg.chart').count()).toBe(1);
    await page.screenshot({ path: join(SHOTS, 'backups.png'), fullPage: true });

    // Into the newest generation.
    await page.locator('table tbody tr').first().locator('a').first().click();
    await expect.poll(() => page.locator('h1').textContent()).toMatch(/^home /);
    expect(await page.locator('td.name a').allTextContents()).toEqual(['docs/', 'night-1.log', 'night-2.log', 'notes.txt', 'page.html']);
    await page.screenshot({ path: join(SHOTS, 'browse.png'), fullPage: true });

    // A backed-up HTML file: previewed as text in a sandbox, its script never runs.
    await page.locator('td.name a', { hasText: 'page.html' }).click();
    const frame = page.frameLocator('iframe.preview');
    await expect.poll(() => frame.locator('body').textContent()).toContain('<script>alert("from the backup")</script>');
    await page.screenshot({ path: join(SHOTS, 'preview.png'), fullPage: true });
    await page.goBack();

    // Search from the header.
    await page.fill('header input[name=q]', 'notes.txt');
    await page.press('header input[name=q]', 'Enter');
    await page.waitForURL(/\/search\?q=notes\.txt/);
    expect(await page.locator('main table tbody tr').count()).toBe(3);
    await page.screenshot({ path: join(SHOTS, 'search.png'), fullPage: true });

    // The history of the file: three versions, each downloadable.
    await page.locator('main table tbody tr').first().locator('a', { hasText: 'history' }).click();
    await page.waitForURL(/\/history\/home\/notes\.txt$/);
    expect(await page.locator('main table tbody tr').count()).toBe(3);
    await page.screenshot({ path: join(SHOTS, 'history.png'), fullPage: true });
    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('main table tbody tr').first().locator('a', { hasText: 'download' }).click()]);
    expect(download.suggestedFilename()).toBe('notes.txt');
    const saved = join(tempDir('lb-browser-dl-'), 'notes.txt');
    await download.saveAs(saved);
    expect(readFileSync(saved).equals(readFileSync(join(src, 'notes.txt')))).toBe(true);

    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
    await context.close();
  });
});
