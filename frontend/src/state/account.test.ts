import { describe, expect, it } from 'vitest';
import type { Order } from '../api/types';
import { isNewer } from './account';

function order(over: Partial<Order>): Order {
  return {
    orderId: '1',
    clientOrderId: 'c',
    accountId: 1,
    symbol: 'BTC/USD',
    side: 'BUY',
    orderType: 'LIMIT',
    timeInForce: 'GTC',
    postOnly: false,
    price: '45000.00',
    stopPrice: null,
    quantity: '1.00000',
    filledQuantity: '0',
    averageFillPrice: null,
    fees: '0',
    status: 'NEW',
    rejectReason: null,
    expireAt: null,
    createdAt: '2026-11-25T08:00:00.000Z',
    updatedAt: '2026-11-25T08:00:00.000Z',
    ...over,
  };
}

describe('order state ordering', () => {
  it('moves forward through the statuses', () => {
    expect(isNewer(order({ status: 'NEW' }), order({ status: 'ACCEPTED' }))).toBe(true);
    expect(isNewer(order({ status: 'ACCEPTED' }), order({ status: 'FILLED', filledQuantity: '1' }))).toBe(true);
  });

  it('never goes back, even with a later timestamp', () => {
    const filled = order({ status: 'FILLED', filledQuantity: '1', updatedAt: '2026-11-25T08:00:01.000Z' });
    const lateAccepted = order({ status: 'ACCEPTED', updatedAt: '2026-11-25T08:00:02.000Z' });
    expect(isNewer(filled, lateAccepted)).toBe(false);
    // The 202 reply (NEW) arriving after the channel's ACCEPTED.
    expect(isNewer(order({ status: 'ACCEPTED' }), order({ status: 'NEW' }))).toBe(false);
  });

  it('takes a final state even when its clock is behind', () => {
    const accepted = order({ status: 'ACCEPTED', updatedAt: '2026-11-25T08:00:00.005Z' });
    const filled = order({ status: 'FILLED', filledQuantity: '1', updatedAt: '2026-11-25T08:00:00.004Z' });
    expect(isNewer(accepted, filled)).toBe(true);
  });

  it('orders partial fills by filled quantity', () => {
    const a = order({ status: 'PARTIALLY_FILLED', filledQuantity: '0.3' });
    const b = order({ status: 'PARTIALLY_FILLED', filledQuantity: '0.5' });
    expect(isNewer(a, b)).toBe(true);
    expect(isNewer(b, a)).toBe(false);
  });

  it('orders same-status changes (amends) by time', () => {
    const before = order({ status: 'ACCEPTED', price: '45000.00', updatedAt: '2026-11-25T08:00:01.000Z' });
    const amended = order({ status: 'ACCEPTED', price: '44900.00', updatedAt: '2026-11-25T08:00:02.000Z' });
    expect(isNewer(before, amended)).toBe(true);
    expect(isNewer(amended, before)).toBe(false);
    expect(isNewer(amended, { ...amended })).toBe(true);
  });
});
