// Helpers of the console's browser tests: Debian's Chromium through playwright-core, tokens from
// the `billing` binary, page assertions that quote the page they saw when they fail.
//
// The environment (scripts/browser-test sets it):
//   BILLING_BASE_URL       the `billing serve` address, e.g. http://127.0.0.1:41234
//   BILLING_BIN            the `billing` binary (for `billing token issue`)
//   BILLING_AUTH_KEY_FILE  the key file the server checks tokens with
//   CHROMIUM               the browser (default /usr/bin/chromium)
//   SCREENSHOT_DIR         where NN-name.png screenshots go; unset: none are written
//   FAILURE_DIR            where a failing test's last page is saved (PNG and HTML); unset: not saved

import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`${name} is not set: run the tests through scripts/browser-test`);
  }
  return value;
}

export const BASE = required('BILLING_BASE_URL').replace(/\/$/, '');
const BIN = required('BILLING_BIN');
const KEY = required('BILLING_AUTH_KEY_FILE');
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || '';
const FAILURE_DIR = process.env.FAILURE_DIR || '';

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/// The flags known to work on these machines (no network but loopback).
const CHROMIUM_ARGS = [
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/// Debian's Chromium, headless, without a sandbox (the tests run as root). playwright-core gives
/// every launch a new empty user data directory of its own.
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    chromiumSandbox: false,
    args: CHROMIUM_ARGS,
    timeout: 30_000,
  });
}

/// A short random suffix for workspace ids and user names.
export function unique(prefix) {
  return `${prefix}-${randomBytes(5).toString('hex')}`;
}

/// A bearer token from `billing token issue`.
export function token(actor, workspace, role) {
  return execFileSync(
    BIN,
    ['token', 'issue', '--auth-key', KEY, '--actor', actor, '--workspace', workspace, '--role', role, '--ttl', '1h'],
    { encoding: 'utf8' },
  ).trim();
}

/// The billing view through the API (`GET /v1/workspaces/{id}`).
export async function view(workspace, bearer) {
  const response = await fetch(`${BASE}/v1/workspaces/${workspace}`, {
    headers: { authorization: `Bearer ${bearer}` },
  });
  const body = await response.text();
  assert.equal(response.status, 200, `GET /v1/workspaces/${workspace}: ${response.status} ${body}`);
  return JSON.parse(body);
}

/// The first day of the month after `date`'s, at midnight, as the console writes it for `tz`:
/// "2027-01-01 00:00 (Asia/Shanghai)".
export function nextMonthStart(tz, date = new Date()) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone: tz, year: 'numeric', month: 'numeric' })
      .formatToParts(date)
      .map((p) => [p.type, p.value]),
  );
  let year = Number(parts.year);
  let month = Number(parts.month) + 1;
  if (month === 13) {
    month = 1;
    year += 1;
  }
  return `${year}-${String(month).padStart(2, '0')}-01 00:00 (${tz})`;
}

/// Runs `body(page, context)` in a new browser context (its own cookies) of `browser`, and on
/// failure keeps the last page in FAILURE_DIR. `options`: `phone` (390x844, a touch phone),
/// `javaScript` (default false: the console needs none).
export async function inContext(browser, name, options, body) {
  const phone = Boolean(options.phone);
  const context = await browser.newContext({
    viewport: phone ? PHONE : DESKTOP,
    deviceScaleFactor: 1,
    isMobile: phone,
    hasTouch: phone,
    javaScriptEnabled: Boolean(options.javaScript),
    locale: 'en-US',
  });
  context.setDefaultTimeout(10_000);
  context.setDefaultNavigationTimeout(15_000);
  const page = await context.newPage();
  try {
    await body(page, context);
  } catch (error) {
    if (FAILURE_DIR) {
      try {
        mkdirSync(FAILURE_DIR, { recursive: true });
        const file = join(FAILURE_DIR, name.replace(/[^a-z0-9]+/gi, '-').toLowerCase());
        await page.screenshot({ path: `${file}.png`, fullPage: true });
        writeFileSync(`${file}.html`, await page.content());
      } catch {
        // The page may be gone; the assertion's own message says what was seen.
      }
    }
    throw error;
  } finally {
    await context.close();
  }
}

/// The page's URL and visible text, for assertion messages.
export async function seen(page) {
  let text;
  try {
    text = (await page.locator('body').innerText({ timeout: 2_000 })).replace(/\s+/g, ' ').trim();
  } catch {
    text = '(no body)';
  }
  if (text.length > 1_500) {
    text = `${text.slice(0, 1_500)}…`;
  }
  const url = page.url().replace(/token=[^&]+/, 'token=…');
  return `\n    page: ${url}\n    text: ${JSON.stringify(text)}`;
}

/// The normalised visible text of the first element matching `selector`, or null if none does.
export async function textOf(page, selector) {
  const locator = page.locator(selector);
  if ((await locator.count()) === 0) {
    return null;
  }
  return (await locator.first().innerText()).replace(/\s+/g, ' ').trim();
}

/// `selector`'s text equals `expected` (a string), matches it (a RegExp) or contains every
/// string of it (an array).
export async function expectText(page, selector, expected, what = '') {
  const actual = await textOf(page, selector);
  const label = `${what ? `${what}: ` : ''}${selector}`;
  if (actual === null) {
    assert.fail(`${label} is missing (expected ${JSON.stringify(String(expected))})${await seen(page)}`);
  }
  let ok;
  if (expected instanceof RegExp) {
    ok = expected.test(actual);
  } else if (Array.isArray(expected)) {
    ok = expected.every((part) => actual.includes(part));
  } else {
    ok = actual === expected;
  }
  if (!ok) {
    assert.fail(
      `${label} reads ${JSON.stringify(actual)}, expected ${
        Array.isArray(expected) ? `to contain ${JSON.stringify(expected)}` : JSON.stringify(String(expected))
      }${await seen(page)}`,
    );
  }
  return actual;
}

export async function expectPresent(page, selector, what = '') {
  if ((await page.locator(selector).count()) === 0) {
    assert.fail(`${what ? `${what}: ` : ''}${selector} is missing${await seen(page)}`);
  }
}

export async function expectAbsent(page, selector, what = '') {
  const n = await page.locator(selector).count();
  if (n !== 0) {
    assert.fail(`${what ? `${what}: ` : ''}${selector} is there (${n}) but should not be${await seen(page)}`);
  }
}

/// The page's path is `path` (the console is mounted at the root).
export async function expectPath(page, path, what = '') {
  const actual = new URL(page.url()).pathname;
  if (actual !== path) {
    assert.fail(`${what ? `${what}: ` : ''}at ${actual}, expected ${path}${await seen(page)}`);
  }
}

export async function expectStatus(page, response, status, what = '') {
  const actual = response ? response.status() : 'no response';
  if (actual !== status) {
    assert.fail(`${what ? `${what}: ` : ''}status ${actual}, expected ${status}${await seen(page)}`);
  }
}

/// What the contract asks of every console page: a title ending " · workspace-billing", the
/// viewport meta, and no script at all.
export async function expectConsolePage(page) {
  const title = await page.title();
  if (!title.endsWith(' · workspace-billing')) {
    assert.fail(`the title ${JSON.stringify(title)} does not end with " · workspace-billing"${await seen(page)}`);
  }
  const viewport = await page.locator('meta[name="viewport"]').getAttribute('content').catch(() => null);
  if (!viewport || !viewport.includes('width=device-width')) {
    assert.fail(`no <meta name="viewport" content="width=device-width, …"> (${viewport})${await seen(page)}`);
  }
  const scripts = await page.locator('script').count();
  if (scripts !== 0) {
    assert.fail(`the page has ${scripts} <script> element(s); the console has no JavaScript${await seen(page)}`);
  }
  const handlers = await page.locator('[onclick],[onload],[onsubmit],[onchange],[oninput]').count();
  if (handlers !== 0) {
    assert.fail(`the page has ${handlers} inline event handler(s); the console has no JavaScript${await seen(page)}`);
  }
}

/// GET `path` of the console; checks the page, returns the response.
export async function go(page, path) {
  const response = await page.goto(`${BASE}${path}`);
  await expectConsolePage(page);
  return response;
}

/// Clicks `selector` (a submit button or a link) and waits for the page it leads to (after any
/// redirects); checks the page, returns the last response.
export async function click(page, selector) {
  await expectPresent(page, selector, 'before clicking');
  const [response] = await Promise.all([page.waitForNavigation(), page.click(selector)]);
  await expectConsolePage(page);
  return response;
}

/// The horizontal overflow check of a phone page.
export async function expectNoHorizontalScroll(page, width = PHONE.width) {
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  if (scrollWidth > width) {
    assert.fail(`the page scrolls sideways: scrollWidth ${scrollWidth} > ${width}${await seen(page)}`);
  }
}

/// A screenshot `NN-name.png` into SCREENSHOT_DIR (the whole page), when screenshots are on.
export async function shot(page, name) {
  if (!SCREENSHOT_DIR) {
    return;
  }
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOT_DIR, `${name}.png`), fullPage: true });
}

/// Signs in with `bearer` (GET /sign-in?token=…): the cookie is set and the browser lands on the
/// workspace (a token naming one workspace goes straight to it).
export async function signIn(page, bearer, workspace) {
  const response = await page.goto(`${BASE}/sign-in?token=${encodeURIComponent(bearer)}`);
  await expectConsolePage(page);
  await expectStatus(page, response, 200, 'signing in');
  if (workspace) {
    await expectPath(page, `/workspaces/${workspace}`, 'after signing in with a one-workspace token');
  }
  return response;
}

/// The upgrade through the console, from Billing to the agreement accepted: request on `site`,
/// then bind `bind` (an existing user name) or register `register`, tick and accept. Returns
/// the response after accepting.
export async function upgrade(page, workspace, site, { bind, register }) {
  await go(page, `/workspaces/${workspace}`);
  await expectText(page, '#plan', 'Experience Plan');
  await click(page, '#upgrade');
  await expectPath(page, `/workspaces/${workspace}/upgrade`);
  await page.selectOption('#site', site);
  let response = await click(page, '#request-submit');
  await expectStatus(page, response, 200, `requesting the upgrade on ${site}`);
  if (bind) {
    await page.fill('#bind-username', bind);
    response = await click(page, '#bind-submit');
  } else {
    await page.fill('#register-username', register);
    await page.fill('#register-email', `${register}@example.com`);
    response = await click(page, '#register-submit');
  }
  await expectStatus(page, response, 200, 'binding the account');
  await expectPresent(page, '#agreement-form', 'the agreement page');
  await page.check('#agree');
  response = await click(page, '#accept-submit');
  await expectStatus(page, response, 200, 'accepting the agreement');
  return response;
}

/// A command through the API (`POST /v1/workspaces/{id}/{path}` with an Idempotency-Key).
export async function command(workspace, bearer, path, body) {
  const response = await fetch(`${BASE}/v1/workspaces/${workspace}/${path}`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${bearer}`,
      'content-type': 'application/json',
      'idempotency-key': unique('cmd'),
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  assert.equal(response.status, 200, `POST /v1/workspaces/${workspace}/${path}: ${response.status} ${text}`);
  return JSON.parse(text);
}
