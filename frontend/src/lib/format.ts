// Display formatting of the API's decimal strings. Prices and sizes are formatted exactly from
// their text (no float round trip), grouped in thousands, at the instrument's precision.
import { fractionDigits, parseDec, toFixed } from './decimal';

/** Fraction digits implied by a tick or step size: "0.01" → 2, "0.00001" → 5, "1" → 0. */
export function decimalsOf(increment: string): number {
  const d = parseDec(increment);
  return d ? fractionDigits(d) : 0;
}

function group(intPart: string): string {
  return intPart.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/** Exact decimal text rounded (half-up) to `decimals` places, with thousands separators. */
export function formatDecimal(value: string | null | undefined, decimals: number, grouped = true): string {
  if (value == null || value === '') return '—';
  const d = parseDec(value);
  if (!d) return value;
  const fixed = toFixed(d, decimals);
  if (!grouped) return fixed;
  const neg = fixed.startsWith('-');
  const body = neg ? fixed.slice(1) : fixed;
  const dot = body.indexOf('.');
  const int = dot < 0 ? body : body.slice(0, dot);
  const frac = dot < 0 ? '' : body.slice(dot);
  return (neg ? '-' : '') + group(int) + frac;
}

/** A price at the instrument's tick precision. */
export function formatPrice(value: string | null | undefined, tickSize: string): string {
  return formatDecimal(value, decimalsOf(tickSize));
}

/** A size at the instrument's step precision. */
export function formatSize(value: string | null | undefined, stepSize: string): string {
  return formatDecimal(value, decimalsOf(stepSize));
}

const UNITS: [number, string][] = [
  [1e12, 'T'],
  [1e9, 'B'],
  [1e6, 'M'],
  [1e3, 'K'],
];

/** Compact volume for the ticker (display only): 1234567.8 → "1.23M". */
export function formatCompact(value: string | null | undefined): string {
  if (value == null || value === '') return '—';
  const d = parseDec(value);
  if (!d) return value;
  const n = Number(toFixed(d));
  const abs = Math.abs(n);
  for (const [size, suffix] of UNITS) {
    if (abs >= size) return (n / size).toFixed(2) + suffix;
  }
  return abs >= 1 ? n.toFixed(2) : String(Number(n.toPrecision(4)));
}

/** Signed percent with two decimals: "1.234" → "+1.23%". The API gives percent units. */
export function formatPercent(value: string | null | undefined): string {
  if (value == null || value === '') return '—';
  const d = parseDec(value);
  if (!d) return value;
  const fixed = toFixed(d, 2);
  return (d.units > 0n ? '+' : '') + fixed + '%';
}

/** Signed change at price precision: "+12.50" / "-3.00". */
export function formatSigned(value: string | null | undefined, decimals: number): string {
  if (value == null || value === '') return '—';
  const d = parseDec(value);
  if (!d) return value;
  return (d.units > 0n ? '+' : '') + formatDecimal(value, decimals);
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** Local wall-clock time HH:MM:SS of an ISO timestamp or epoch ms. */
export function formatTime(at: string | number | null | undefined): string {
  if (at == null || at === '') return '—';
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return String(at);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Local date and time YYYY-MM-DD HH:MM:SS. */
export function formatDateTime(at: string | number | null | undefined): string {
  if (at == null || at === '') return '—';
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return String(at);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${formatTime(at)}`;
}

/** Integer-ish sign of a decimal string, for up/down colouring. */
export function signOf(value: string | null | undefined): -1 | 0 | 1 {
  if (!value) return 0;
  const d = parseDec(value);
  if (!d || d.units === 0n) return 0;
  return d.units > 0n ? 1 : -1;
}
