import { describe, expect, it } from 'vitest';
import { testOrder } from '../api/testOrder';
import type { Order } from '../api/types';
import { CancelRejectWatch, cancelRejectText, cancelRejectWords, formatExecutedNotional, orderWords } from './orders';

function order(over: Partial<Order> = {}): Order {
  return testOrder({
    orderId: '7',
    clientOrderId: null,
    quantity: '0.10000',
    filledQuantity: '0.00000',
    status: 'ACCEPTED',
    createdAt: '2026-12-02T15:00:00.000Z',
    updatedAt: '2026-12-02T15:00:00.000Z',
    ...over,
  });
}

const HALTED_AT = '2026-12-02T16:00:00.000Z';
/** The order as a refused cancel leaves it: the refusal recorded, `updatedAt` moved to it. */
const refused = (reason: string, at: string, over: Partial<Order> = {}) =>
  order({ lastCancelReject: { rejectReason: reason, at }, updatedAt: at, ...over });

describe('refused cancels in words', () => {
  it('says why in words', () => {
    expect(cancelRejectWords('INSTRUMENT_HALTED')).toBe('the symbol is halted');
    expect(cancelRejectWords('ORDER_NOT_LIVE')).toBe('the order had already ended');
    expect(cancelRejectWords('UNKNOWN_ORDER')).toBe('the venue no longer had the order');
  });

  it('falls back to the code of a reason it does not know', () => {
    expect(cancelRejectWords('SOMETHING_NEW')).toBe('SOMETHING_NEW');
    expect(cancelRejectWords('')).toBe('no reason given');
  });

  it('names the order by symbol, side, quantity and price, without trailing zeros', () => {
    expect(orderWords(order())).toBe('BTC/USD buy 0.1 @ 45000');
    expect(orderWords(order({ side: 'SELL', price: '45000.50', quantity: '2.00000' }))).toBe(
      'BTC/USD sell 2 @ 45000.5',
    );
    expect(orderWords(order({ orderType: 'MARKET', price: null }))).toBe('BTC/USD buy 0.1 at market');
  });

  it('tells of the refusal an order shows', () => {
    expect(cancelRejectText(refused('INSTRUMENT_HALTED', HALTED_AT))).toBe(
      'Cancel of BTC/USD buy 0.1 @ 45000 refused: the symbol is halted',
    );
    expect(cancelRejectText(refused('ORDER_NOT_LIVE', HALTED_AT, { side: 'SELL' }))).toBe(
      'Cancel of BTC/USD sell 0.1 @ 45000 refused: the order had already ended',
    );
    expect(cancelRejectText(refused('NEW_CODE', HALTED_AT))).toBe(
      'Cancel of BTC/USD buy 0.1 @ 45000 refused: NEW_CODE',
    );
    expect(cancelRejectText(order())).toBeNull();
  });
});

describe('which refused cancels to tell of', () => {
  const text = 'Cancel of BTC/USD buy 0.1 @ 45000 refused: the symbol is halted';

  it('tells of a refusal that a known order shows for the first time, on the channel or in a read', () => {
    const pushed = new CancelRejectWatch();
    expect(pushed.take(order(), false)).toBeNull();
    expect(pushed.take(refused('INSTRUMENT_HALTED', HALTED_AT), true)).toBe(text);
    const read = new CancelRejectWatch();
    expect(read.take(order(), true)).toBeNull();
    expect(read.take(refused('INSTRUMENT_HALTED', HALTED_AT), false)).toBe(text);
  });

  it('tells of each refusal once, however many states show it', () => {
    const w = new CancelRejectWatch();
    w.take(order(), false);
    expect(w.take(refused('INSTRUMENT_HALTED', HALTED_AT), true)).toBe(text);
    expect(w.take(refused('INSTRUMENT_HALTED', HALTED_AT), true)).toBeNull();
    expect(w.take(refused('INSTRUMENT_HALTED', HALTED_AT), false)).toBeNull();
    // A later state of the order (a fill) still carrying it.
    const filled = refused('INSTRUMENT_HALTED', HALTED_AT, {
      status: 'PARTIALLY_FILLED',
      filledQuantity: '0.05000',
      updatedAt: '2026-12-02T16:00:05.000Z',
    });
    expect(w.take(filled, true)).toBeNull();
    // A state read before the refusal, arriving late, then the refusal again.
    expect(w.take(order(), false)).toBeNull();
    expect(w.take(refused('INSTRUMENT_HALTED', HALTED_AT), false)).toBeNull();
  });

  it('tells of a later refusal of the same order, not of an earlier one arriving late', () => {
    const w = new CancelRejectWatch();
    w.take(order(), false);
    w.take(refused('INSTRUMENT_HALTED', HALTED_AT), true);
    const again = '2026-12-02T16:00:01.500Z';
    expect(w.take(refused('INSTRUMENT_HALTED', again), true)).toBe(text);
    expect(w.take(refused('INSTRUMENT_HALTED', HALTED_AT), false)).toBeNull();
    expect(w.take(refused('ORDER_NOT_LIVE', '2026-12-02T16:00:03.000Z', { status: 'FILLED' }), false)).toBe(
      'Cancel of BTC/USD buy 0.1 @ 45000 refused: the order had already ended',
    );
  });

  it('keeps quiet about refusals already there when an order is first read', () => {
    const w = new CancelRejectWatch();
    expect(w.take(refused('INSTRUMENT_HALTED', HALTED_AT), false)).toBeNull();
    expect(w.take(refused('INSTRUMENT_HALTED', HALTED_AT), true)).toBeNull();
    // The next refusal of that order is news.
    expect(w.take(refused('INSTRUMENT_HALTED', '2026-12-02T16:01:00.000Z'), true)).toBe(text);
  });

  it('tells of an order first seen on the channel only when the refusal is that update', () => {
    const w = new CancelRejectWatch();
    expect(w.take(refused('INSTRUMENT_HALTED', HALTED_AT, { orderId: '8' }), true)).toBe(text);
    // An older order's other change (a fill) carrying an old refusal.
    const old = refused('INSTRUMENT_HALTED', HALTED_AT, {
      orderId: '9',
      status: 'PARTIALLY_FILLED',
      updatedAt: '2026-12-02T17:00:00.000Z',
    });
    expect(w.take(old, true)).toBeNull();
  });

  it('keeps each order apart', () => {
    const w = new CancelRejectWatch();
    w.take(order({ orderId: '1' }), false);
    w.take(order({ orderId: '2', side: 'SELL' }), false);
    expect(w.take(refused('INSTRUMENT_HALTED', HALTED_AT, { orderId: '1' }), true)).toBe(text);
    expect(w.take(refused('INSTRUMENT_HALTED', HALTED_AT, { orderId: '2', side: 'SELL' }), true)).toBe(
      'Cancel of BTC/USD sell 0.1 @ 45000 refused: the symbol is halted',
    );
  });

  it('stays bounded, an order forgotten being taken as new', () => {
    const w = new CancelRejectWatch();
    w.take(order({ orderId: 'first' }), false);
    for (let i = 0; i < 6_000; i++) w.take(order({ orderId: String(i) }), false);
    // Forgotten: a read with a refusal is taken as the first sight of it.
    expect(w.take(refused('INSTRUMENT_HALTED', HALTED_AT, { orderId: 'first' }), false)).toBeNull();
    // Still remembered: the newest ones.
    expect(w.take(refused('INSTRUMENT_HALTED', HALTED_AT, { orderId: '5999' }), false)).toBe(text);
  });
});

describe('executed notional', () => {
  it('is a dash before any fill', () => {
    expect(formatExecutedNotional('0', '0.01')).toBe('—');
    expect(formatExecutedNotional('0.0000', '0.01')).toBe('—');
    expect(formatExecutedNotional(undefined, '0.01')).toBe('—');
    expect(formatExecutedNotional('', '0.01')).toBe('—');
  });

  it('is exact and grouped, at least at the price precision', () => {
    expect(formatExecutedNotional('4500', '0.01')).toBe('4,500.00');
    expect(formatExecutedNotional('4500.001', '0.01')).toBe('4,500.001');
    expect(formatExecutedNotional('13500.0015', '0.1')).toBe('13,500.0015');
    expect(formatExecutedNotional('12.5', '1')).toBe('12.5');
  });
});
