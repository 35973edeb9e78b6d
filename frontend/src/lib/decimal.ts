// Exact decimal arithmetic on bigint, for the values the API sends as strings (prices,
// quantities, balances). Order-ticket checks and cost estimates must never go through floating
// point: 0.1 + 0.2 style errors would accept an off-tick price or misstate a cost.

/** value = units / 10^scale */
export interface Dec {
  readonly units: bigint;
  readonly scale: number;
}

const PLAIN_DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?$/;

/** Parses a plain decimal ("12", "-0.50", ".5", "3."); no exponent, no separators. */
export function parseDec(text: string): Dec | null {
  const m = PLAIN_DECIMAL.exec(text.trim());
  if (!m) return null;
  const [, sign, int = '', frac = ''] = m;
  if (int === '' && frac === '') return null;
  const units = BigInt((int || '0') + frac);
  return { units: sign === '-' ? -units : units, scale: frac.length };
}

/** Like parseDec but throws: for values that come from the server and must be valid. */
export function dec(text: string | number | bigint): Dec {
  if (typeof text === 'bigint') return { units: text, scale: 0 };
  const d = parseDec(String(text));
  if (!d) throw new Error(`not a plain decimal: ${text}`);
  return d;
}

export const ZERO: Dec = { units: 0n, scale: 0 };

const POW10: bigint[] = [1n];
function pow10(n: number): bigint {
  for (let i = POW10.length; i <= n; i++) POW10.push(POW10[i - 1] * 10n);
  return POW10[n];
}

function rescale(a: Dec, scale: number): bigint {
  return a.units * pow10(scale - a.scale);
}

export function add(a: Dec, b: Dec): Dec {
  const scale = Math.max(a.scale, b.scale);
  return { units: rescale(a, scale) + rescale(b, scale), scale };
}

export function sub(a: Dec, b: Dec): Dec {
  const scale = Math.max(a.scale, b.scale);
  return { units: rescale(a, scale) - rescale(b, scale), scale };
}

export function mul(a: Dec, b: Dec): Dec {
  return { units: a.units * b.units, scale: a.scale + b.scale };
}

export function cmp(a: Dec, b: Dec): -1 | 0 | 1 {
  const scale = Math.max(a.scale, b.scale);
  const x = rescale(a, scale);
  const y = rescale(b, scale);
  return x < y ? -1 : x > y ? 1 : 0;
}

export function isZero(a: Dec): boolean {
  return a.units === 0n;
}

export function isPositive(a: Dec): boolean {
  return a.units > 0n;
}

/** True when a is an exact integer multiple of step (step > 0). */
export function isMultipleOf(a: Dec, step: Dec): boolean {
  if (step.units <= 0n) return false;
  const scale = Math.max(a.scale, step.scale);
  return rescale(a, scale) % rescale(step, scale) === 0n;
}

/** Drops trailing fraction zeros: 1.2300 → 1.23, 5.000 → 5. */
export function normalize(a: Dec): Dec {
  let { units, scale } = a;
  while (scale > 0 && units % 10n === 0n) {
    units /= 10n;
    scale -= 1;
  }
  return { units, scale };
}

/** Number of significant fraction digits: 0.010 → 2, 5 → 0. */
export function fractionDigits(a: Dec): number {
  return normalize(a).scale;
}

export type Rounding = 'half-up' | 'down' | 'up';

/** Rounds to `scale` fraction digits (half away from zero by default). */
export function round(a: Dec, scale: number, mode: Rounding = 'half-up'): Dec {
  if (a.scale <= scale) return { units: rescale(a, scale), scale };
  const f = pow10(a.scale - scale);
  const neg = a.units < 0n;
  const abs = neg ? -a.units : a.units;
  let q = abs / f;
  const r = abs % f;
  if (r !== 0n) {
    if (mode === 'up' || (mode === 'half-up' && r * 2n >= f)) q += 1n;
  }
  return { units: neg ? -q : q, scale };
}

/** Exact text with exactly `scale` fraction digits when given, else the value's own scale. */
export function toFixed(a: Dec, scale: number = a.scale): string {
  const r = round(a, scale);
  const neg = r.units < 0n;
  const digits = (neg ? -r.units : r.units).toString().padStart(scale + 1, '0');
  const int = digits.slice(0, digits.length - scale);
  const frac = digits.slice(digits.length - scale);
  return (neg ? '-' : '') + int + (scale > 0 ? '.' + frac : '');
}

export function toStr(a: Dec): string {
  return toFixed(normalize(a));
}
