// An order as the server sends it, for tests: a resting-size BTC/USD limit buy, `NEW`, with
// whatever a test changes.
import type { Order } from './types';

export function testOrder(over: Partial<Order> = {}): Order {
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
    executedNotional: '0',
    averageFillPrice: null,
    fees: '0',
    status: 'NEW',
    rejectReason: null,
    cancelReason: null,
    expireAt: null,
    createdAt: '2026-11-25T08:00:00.000Z',
    updatedAt: '2026-11-25T08:00:00.000Z',
    lastCancelReject: null,
    ...over,
  };
}
