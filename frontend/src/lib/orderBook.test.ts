import { describe, expect, it } from 'vitest';
import { applySnapshot, applyUpdate, bookView, clearBook, createBook } from './orderBook';

function seeded() {
  const b = createBook();
  applySnapshot(
    b,
    10,
    [
      ['44999.00', '0.5'],
      ['45000.00', '1.25'],
      ['44990.50', '2'],
    ],
    [
      ['45001.00', '0.1'],
      ['45010.00', '0.3'],
    ],
  );
  return b;
}

describe('order book', () => {
  it('builds a sorted ladder with cumulative sizes and spread', () => {
    const v = bookView(seeded(), 10);
    expect(v.bids.map((r) => r.price)).toEqual(['45000.00', '44999.00', '44990.50']);
    expect(v.bids.map((r) => r.cumulative)).toEqual(['1.25', '1.75', '3.75']);
    expect(v.asks.map((r) => r.price)).toEqual(['45001.00', '45010.00']);
    expect(v.asks.map((r) => r.cumulative)).toEqual(['0.1', '0.4']);
    expect(v.bestBid).toBe('45000.00');
    expect(v.bestAsk).toBe('45001.00');
    expect(v.spread).toBe('1.00');
    expect(v.maxCumulative).toBe('3.75');
  });

  it('limits the ladder depth', () => {
    const v = bookView(seeded(), 2);
    expect(v.bids).toHaveLength(2);
    expect(v.bids[1].cumulative).toBe('1.75');
  });

  it('applies updates in sequence: change, add, remove', () => {
    const b = seeded();
    expect(applyUpdate(b, { seq: 11, side: 'BUY', price: '45000.00', quantity: '0.75' })).toBe('applied');
    expect(applyUpdate(b, { seq: 12, side: 'SELL', price: '45000.50', quantity: '0.2' })).toBe('applied');
    expect(applyUpdate(b, { seq: 13, side: 'SELL', price: '45001.00', quantity: '0' })).toBe('applied');
    const v = bookView(b, 10);
    expect(v.bids[0]).toEqual({ price: '45000.00', quantity: '0.75', cumulative: '0.75' });
    expect(v.asks.map((r) => r.price)).toEqual(['45000.50', '45010.00']);
    expect(v.spread).toBe('0.50');
    expect(b.seq).toBe(13);
  });

  it('treats differently written prices as one level', () => {
    const b = seeded();
    applyUpdate(b, { seq: 11, side: 'BUY', price: '45000', quantity: '0.000' });
    expect(bookView(b, 10).bids[0].price).toBe('44999.00');
  });

  it('ignores stale updates and reports gaps without applying them', () => {
    const b = seeded();
    expect(applyUpdate(b, { seq: 10, side: 'BUY', price: '1.00', quantity: '1' })).toBe('stale');
    expect(applyUpdate(b, { seq: 5, side: 'BUY', price: '1.00', quantity: '1' })).toBe('stale');
    expect(applyUpdate(b, { seq: 12, side: 'BUY', price: '1.00', quantity: '1' })).toBe('gap');
    expect(b.seq).toBe(10);
    expect(bookView(b, 10).bids).toHaveLength(3);
  });

  it('needs a snapshot first, and a new snapshot replaces everything', () => {
    const b = createBook();
    expect(applyUpdate(b, { seq: 1, side: 'BUY', price: '1.00', quantity: '1' })).toBe('no-snapshot');
    applySnapshot(b, 100, [['2.00', '3']], []);
    expect(bookView(b, 10).bids).toEqual([{ price: '2.00', quantity: '3', cumulative: '3' }]);
    expect(bookView(b, 10).spread).toBeNull();
    expect(applyUpdate(b, { seq: 101, side: 'SELL', price: '2.50', quantity: '1' })).toBe('applied');
    clearBook(b);
    expect(b.seq).toBeNull();
    expect(bookView(b, 10).asks).toEqual([]);
  });

  it('sums cumulative sizes exactly', () => {
    const b = createBook();
    applySnapshot(
      b,
      1,
      [
        ['3.00', '0.1'],
        ['2.00', '0.2'],
      ],
      [],
    );
    expect(bookView(b, 10).bids[1].cumulative).toBe('0.3');
  });

  it('bumps the version on every change only', () => {
    const b = seeded();
    const v0 = b.version;
    applyUpdate(b, { seq: 9, side: 'BUY', price: '1.00', quantity: '1' });
    expect(b.version).toBe(v0);
    applyUpdate(b, { seq: 11, side: 'BUY', price: '1.00', quantity: '1' });
    expect(b.version).toBe(v0 + 1);
  });
});
