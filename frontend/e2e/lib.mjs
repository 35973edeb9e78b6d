// Shared helpers of the browser tests and the performance probe: configuration from the
// environment, Debian's Chromium through playwright-core, and a tiny sequential test runner.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

export function config() {
  const baseUrl = (process.env.OMS_URL ?? 'http://127.0.0.1:8080').replace(/\/$/, '');
  const apiKey = process.env.OMS_API_KEY ?? '';
  const adminKey = process.env.OMS_ADMIN_KEY ?? '';
  const artifacts = path.resolve(process.env.OMS_ARTIFACTS ?? path.join(here, '..', '..', 'test-artifacts'));
  const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  return { baseUrl, apiKey, adminKey, artifacts, chromiumPath, symbol: process.env.OMS_SYMBOL ?? '' };
}

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

export async function launch(cfg) {
  if (!fs.existsSync(cfg.chromiumPath)) {
    throw new Error(`Chromium not found at ${cfg.chromiumPath} (apt-get install -y chromium, or set CHROMIUM_PATH)`);
  }
  return chromium.launch({ executablePath: cfg.chromiumPath, args: CHROMIUM_ARGS, headless: true });
}

/** Waits until the server answers /health, so a just-started `oms serve` is not a failure. */
export async function waitForServer(baseUrl, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < until) {
    try {
      const r = await fetch(`${baseUrl}/health`);
      if (r.ok) return;
      last = `HTTP ${r.status}`;
    } catch (e) {
      last = e.message;
    }
    await sleep(500);
  }
  throw new Error(`${baseUrl}/health did not answer within ${timeoutMs} ms (${last})`);
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns a truthy value; throws `what` on timeout. */
export async function until(what, fn, timeoutMs = 15_000, everyMs = 200) {
  const end = Date.now() + timeoutMs;
  let lastErr;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastErr = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastErr ? ` (${lastErr.message})` : ''}`);
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

/** Sequential steps sharing state; after a failed step, the steps that need it are skipped. */
export class Runner {
  constructor() {
    this.passed = 0;
    this.failed = 0;
    this.skipped = 0;
    this.broken = new Set();
  }

  async step(name, fn, { needs = [] } = {}) {
    const missing = needs.filter((n) => this.broken.has(n));
    if (missing.length) {
      this.failed++;
      this.broken.add(name);
      console.log(`✗ ${name} (not run: needs ${missing.join(', ')})`);
      return;
    }
    const t0 = Date.now();
    try {
      await fn();
      this.passed++;
      console.log(`✓ ${name} (${Date.now() - t0} ms)`);
    } catch (e) {
      this.failed++;
      this.broken.add(name);
      console.log(
        `✗ ${name} (${Date.now() - t0} ms)\n    ${String(e?.stack ?? e)
          .split('\n')
          .slice(0, 4)
          .join('\n    ')}`,
      );
    }
  }
}

// ---- exact decimals (the tests compare balances and prices without float error) ----

function parts(s) {
  const m = /^(-?)(\d*)(?:\.(\d*))?$/.exec(String(s).trim());
  if (!m) throw new Error(`not a decimal: ${s}`);
  const frac = m[3] ?? '';
  const units = BigInt((m[2] || '0') + frac) * (m[1] ? -1n : 1n);
  return { units, scale: frac.length };
}

function align(a, b) {
  const x = parts(a);
  const y = parts(b);
  const scale = Math.max(x.scale, y.scale);
  return [x.units * 10n ** BigInt(scale - x.scale), y.units * 10n ** BigInt(scale - y.scale), scale];
}

function text(units, scale) {
  const neg = units < 0n;
  const d = (neg ? -units : units).toString().padStart(scale + 1, '0');
  return (neg ? '-' : '') + (scale ? `${d.slice(0, -scale)}.${d.slice(-scale)}` : d);
}

export const decimal = {
  cmp(a, b) {
    const [x, y] = align(a, b);
    return x < y ? -1 : x > y ? 1 : 0;
  },
  sub(a, b) {
    const [x, y, s] = align(a, b);
    return text(x - y, s);
  },
  add(a, b) {
    const [x, y, s] = align(a, b);
    return text(x + y, s);
  },
  /** The exact product, at the sum of the scales. */
  mul(a, b) {
    const x = parts(a);
    const y = parts(b);
    return text(x.units * y.units, x.scale + y.scale);
  },
  /** The multiple of `increment` nearest below `value × ratio` (ratio a decimal string), at the increment's scale. */
  floorToIncrement(value, ratio, increment) {
    const v = parts(value);
    const r = parts(ratio);
    const inc = parts(increment);
    const scale = Math.max(v.scale + r.scale, inc.scale);
    const prod = v.units * r.units * 10n ** BigInt(scale - v.scale - r.scale);
    const step = inc.units * 10n ** BigInt(scale - inc.scale);
    return text((prod / step) * inc.units, inc.scale);
  },
  /** Without trailing fraction zeros: "0.10000" → "0.1", "45000.00" → "45000". */
  plain(value) {
    const { units, scale } = parts(value);
    let [u, s] = [units, scale];
    while (s > 0 && u % 10n === 0n) {
      u /= 10n;
      s -= 1;
    }
    return text(u, s);
  },
  /** `count` increments, written at the increment's scale. */
  times(increment, count) {
    const inc = parts(increment);
    return text(inc.units * BigInt(count), inc.scale);
  },
};
