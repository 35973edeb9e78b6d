import { describe, expect, it } from 'vitest';
import type { Candle } from '../api/types';
import { mergeCandle, prependHistory, toChartBar, toVolumeBar } from './candles';

function c(openTime: number, close = '100', trades = 1): Candle {
  return { openTime, open: '100', high: '110', low: '90', close, volume: '2', quoteVolume: '200', trades };
}

describe('candles', () => {
  it('replaces the current bucket with its live update', () => {
    const s = [c(0), c(60_000, '101', 3)];
    expect(mergeCandle(s, c(60_000, '105', 4))).toBe('replace');
    expect(s).toHaveLength(2);
    expect(s[1].close).toBe('105');
  });

  it('appends a new bucket', () => {
    const s = [c(0)];
    expect(mergeCandle(s, c(60_000))).toBe('append');
    expect(s.map((x) => x.openTime)).toEqual([0, 60_000]);
    const empty: Candle[] = [];
    expect(mergeCandle(empty, c(0))).toBe('append');
  });

  it('fills a hole in the past and ignores late stale copies', () => {
    const s = [c(0), c(120_000)];
    expect(mergeCandle(s, c(60_000))).toBe('insert');
    expect(s.map((x) => x.openTime)).toEqual([0, 60_000, 120_000]);
    s[2] = c(120_000, '107', 9);
    expect(mergeCandle(s, c(120_000, '103', 8))).toBe('ignore');
    expect(s[2].close).toBe('107');
  });

  it('prepends older history without duplicates, sorted', () => {
    const s = [c(120_000, 'live'), c(180_000)];
    const merged = prependHistory(s, [c(60_000), c(0), c(120_000, 'old')]);
    expect(merged.map((x) => x.openTime)).toEqual([0, 60_000, 120_000, 180_000]);
    expect(merged[2].close).toBe('live');
    expect(prependHistory(s, [c(120_000)])).toBe(s);
  });

  it('maps to chart bars in seconds', () => {
    expect(toChartBar(c(60_000, '105.5'))).toEqual({ time: 60, open: 100, high: 110, low: 90, close: 105.5 });
    expect(toVolumeBar(c(60_000, '99')).value).toBe(2);
    expect(toVolumeBar(c(60_000, '99')).color).toContain('239');
  });
});
