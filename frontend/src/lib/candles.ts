// Candle series kept oldest first, without duplicate buckets: live updates of the current bucket
// replace it, a new bucket is appended, and older history pages are merged in front.
import type { Candle } from '../api/types';

export type MergeKind = 'append' | 'replace' | 'insert' | 'ignore';

function indexOf(series: Candle[], openTime: number): { index: number; found: boolean } {
  let lo = 0;
  let hi = series.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (series[mid].openTime < openTime) lo = mid + 1;
    else hi = mid;
  }
  return { index: lo, found: lo < series.length && series[lo].openTime === openTime };
}

/**
 * Merges a live candle (the current bucket, updated) into the series in place.
 * 'replace' when its bucket is already there (usually the last one), 'append' when it is newer
 * than the last, 'insert' when it fills a hole in the past, 'ignore' when it is an out-of-order
 * update identical in bucket but older in trade count (a late duplicate).
 */
export function mergeCandle(series: Candle[], c: Candle): MergeKind {
  const last = series[series.length - 1];
  if (!last || c.openTime > last.openTime) {
    series.push(c);
    return 'append';
  }
  const { index, found } = indexOf(series, c.openTime);
  if (found) {
    // A delayed message can carry an earlier state of the bucket; trade counts only grow.
    if (c.trades < series[index].trades) return 'ignore';
    series[index] = c;
    return 'replace';
  }
  series.splice(index, 0, c);
  return 'insert';
}

/** Older history (any order) merged in front of `series`; live data wins on overlap. */
export function prependHistory(series: Candle[], older: Candle[]): Candle[] {
  const known = new Set(series.map((c) => c.openTime));
  const fresh = older.filter((c) => !known.has(c.openTime)).sort((a, b) => a.openTime - b.openTime);
  if (fresh.length === 0) return series;
  const merged = fresh.concat(series);
  // A page could overlap the range already held in the middle; keep the order total.
  merged.sort((a, b) => a.openTime - b.openTime);
  return merged;
}

export interface ChartBar {
  time: number;
  open: number;
  high: number;
  low: number;
  close: number;
}

export interface VolumeBar {
  time: number;
  value: number;
  color: string;
}

export const UP_COLOR = '#26a69a';
export const DOWN_COLOR = '#ef5350';

/** Chart bars use numbers (display only) and seconds since the epoch. */
export function toChartBar(c: Candle): ChartBar {
  return { time: c.openTime / 1000, open: +c.open, high: +c.high, low: +c.low, close: +c.close };
}

export function toVolumeBar(c: Candle): VolumeBar {
  return {
    time: c.openTime / 1000,
    value: +c.volume,
    color: +c.close >= +c.open ? 'rgba(38,166,154,0.5)' : 'rgba(239,83,80,0.5)',
  };
}
