import { describe, expect, it } from 'vitest';
import type { AccountFill } from '../api/types';
import {
  exportHref,
  applyFirstPage,
  applyOlderPage,
  fillKey,
  fillsQuery,
  formatNotional,
  liquidityLabel,
  notional,
  type TradesView,
} from './trades';

function fill(orderId: string, tradeId: number, over: Partial<AccountFill> = {}): AccountFill {
  return {
    orderId,
    symbol: 'BTC/USD',
    side: 'BUY',
    tradeId,
    price: '45000.00',
    quantity: '0.1',
    liquidity: 'MAKER',
    fee: '4.5',
    feeAsset: 'USD',
    at: '2026-12-01T21:40:00.123Z',
    ...over,
  };
}

const keys = (v: TradesView | null) => v?.fills.map(fillKey);

describe('notional', () => {
  it('is exact where floating point is not', () => {
    // Floating point happens to print this one right, but not 0.1 × 3 (0.30000000000000004).
    expect(notional('45000.01', '0.1')).toBe('4500.001');
    expect(notional('0.1', '3')).toBe('0.3');
    expect(notional('0.00000001', '123456789.12345678')).toBe('1.2345678912345678');
    // Beyond 2^53: every digit kept (checked with Python's decimal module).
    expect(notional('99999999999.99', '99999999.99999999')).toBe('9999999999998999000.0000000001');
  });

  it('drops trailing zeros', () => {
    expect(notional('45000.00', '0.10')).toBe('4500');
    expect(notional('0', '1.5')).toBe('0');
  });

  it('is shown at least at the price precision, never rounded', () => {
    expect(formatNotional('4500.001', '0.01')).toBe('4,500.001');
    expect(formatNotional('4500', '0.01')).toBe('4,500.00');
    expect(formatNotional('0.000045', '0.01')).toBe('0.000045');
  });
});

describe('fills query', () => {
  it('encodes the symbol and leaves out what is not set', () => {
    expect(fillsQuery({ symbol: 'BTC/USD', limit: 100 })).toBe('?symbol=BTC%2FUSD&limit=100');
    expect(fillsQuery({})).toBe('');
    expect(fillsQuery()).toBe('');
    expect(fillsQuery({ symbol: '', cursor: '', from: '' })).toBe('');
  });

  it('passes every filter, times as epoch ms or RFC 3339', () => {
    expect(
      fillsQuery({
        symbol: 'ETH/BTC',
        side: 'SELL',
        from: 1764625200000,
        to: new Date(Date.UTC(2026, 11, 1, 21, 40, 0, 123)),
        limit: 50,
        cursor: 'a+b/c==',
      }),
    ).toBe(
      '?symbol=ETH%2FBTC&side=SELL&from=1764625200000&to=2026-12-01T21%3A40%3A00.123Z&limit=50&cursor=a%2Bb%2Fc%3D%3D',
    );
    expect(new URLSearchParams(fillsQuery({ cursor: 'a+b/c==' })).get('cursor')).toBe('a+b/c==');
  });

  it('keeps the limit in 1..500', () => {
    expect(fillsQuery({ limit: 0 })).toBe('?limit=1');
    expect(fillsQuery({ limit: 10_000 })).toBe('?limit=500');
    expect(fillsQuery({ limit: 20.7 })).toBe('?limit=20');
    expect(fillsQuery({ limit: Number.NaN })).toBe('');
  });
});

describe('export link', () => {
  it('carries the symbol filter, encoded, and nothing else', () => {
    expect(exportHref('')).toBe('/api/fills/export');
    expect(exportHref('BTC/USD')).toBe('/api/fills/export?symbol=BTC%2FUSD');
  });
});

describe('trade history pages', () => {
  it('keys a fill by order and trade: trade ids repeat across symbols', () => {
    expect(fillKey(fill('12', 7))).not.toBe(fillKey(fill('1', 27)));
    const view = applyFirstPage(null, {
      fills: [fill('9', 7, { symbol: 'ETH/USD' }), fill('8', 7), fill('8', 7)],
      nextCursor: null,
    });
    expect(keys(view)).toEqual(['9:7', '8:7']);
  });

  it('appends older pages in order, without duplicates', () => {
    let view: TradesView | null = applyFirstPage(null, { fills: [fill('5', 3), fill('5', 2)], nextCursor: 'c1' });
    // The boundary fill again (a page cut at equal times) is shown once.
    view = applyOlderPage(view, 'c1', { fills: [fill('5', 2), fill('4', 9), fill('3', 1)], nextCursor: 'c2' });
    expect(keys(view)).toEqual(['5:3', '5:2', '4:9', '3:1']);
    expect(view?.nextCursor).toBe('c2');
    view = applyOlderPage(view, 'c2', { fills: [fill('2', 1)], nextCursor: null });
    expect(keys(view)).toEqual(['5:3', '5:2', '4:9', '3:1', '2:1']);
    expect(view?.nextCursor).toBeNull();
  });

  it('ignores an older page for a list that moved on', () => {
    const view = applyFirstPage(null, { fills: [fill('5', 3)], nextCursor: 'c9' });
    expect(applyOlderPage(view, 'c1', { fills: [fill('1', 1)], nextCursor: null })).toBe(view);
    expect(applyOlderPage(null, 'c1', { fills: [fill('1', 1)], nextCursor: null })).toBeNull();
  });

  it('puts new fills of a fresh first page on top and keeps the older pages loaded', () => {
    let view: TradesView | null = applyFirstPage(null, { fills: [fill('5', 3), fill('5', 2)], nextCursor: 'c1' });
    view = applyOlderPage(view, 'c1', { fills: [fill('4', 1)], nextCursor: 'c2' });
    view = applyFirstPage(view, { fills: [fill('6', 4), fill('6', 3), fill('5', 3)], nextCursor: 'c3' });
    expect(keys(view)).toEqual(['6:4', '6:3', '5:3', '5:2', '4:1']);
    // Still continues after the oldest fill shown, not after the fresh page.
    expect(view.nextCursor).toBe('c2');
  });

  it('starts over when a fresh first page does not reach the fills shown', () => {
    let view: TradesView | null = applyFirstPage(null, { fills: [fill('5', 3)], nextCursor: 'c1' });
    view = applyFirstPage(view, { fills: [fill('9', 2), fill('9', 1)], nextCursor: 'c7' });
    expect(keys(view)).toEqual(['9:2', '9:1']);
    expect(view.nextCursor).toBe('c7');
  });

  it('takes a last page as the whole history', () => {
    let view: TradesView | null = applyFirstPage(null, { fills: [], nextCursor: null });
    expect(view).toEqual({ fills: [], nextCursor: null });
    view = applyFirstPage(view, { fills: [fill('7', 1)], nextCursor: null });
    expect(keys(view)).toEqual(['7:1']);
    expect(view.nextCursor).toBeNull();
  });
});

describe('liquidity', () => {
  it('reads as words', () => {
    expect(liquidityLabel('MAKER')).toBe('Maker');
    expect(liquidityLabel('TAKER')).toBe('Taker');
  });
});
