import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { MarketSocket } from '../api/socket';
import type { WsDataMessage as WsMessage } from '../api/types';
import { MarketFeed } from './market';

/** The parts of MarketSocket the feed uses, recorded. */
function fakeSocket() {
  let batch: ((b: WsMessage[]) => void) | null = null;
  const subscribed: string[] = [];
  const resubscribed: string[] = [];
  const socket = {
    subscribe: (ch: string) => {
      subscribed.push(ch);
      return () => subscribed.splice(subscribed.indexOf(ch), 1);
    },
    resubscribe: (ch: string) => resubscribed.push(ch),
    onBatch: (fn: (b: WsMessage[]) => void) => {
      batch = fn;
      return () => (batch = null);
    },
    onOpen: () => () => undefined,
    whileDisconnected: () => () => undefined,
  };
  return {
    socket: socket as unknown as MarketSocket,
    deliver: (...m: WsMessage[]) => batch?.(m),
    subscribed,
    resubscribed,
  };
}

beforeEach(() => {
  // REST is not reachable here; the feed must live on the WebSocket alone.
  vi.stubGlobal('fetch', () => Promise.reject(new Error('offline')));
});
afterEach(() => vi.unstubAllGlobals());

const snapshot = (seq: number, bid: string, ask: string): WsMessage => ({
  channel: 'depth:BTC/USD',
  type: 'snapshot',
  seq,
  data: { bids: [[bid, '1']], asks: [[ask, '2']] },
});
const update = (seq: number, side: 'BUY' | 'SELL', price: string, quantity: string): WsMessage => ({
  channel: 'depth:BTC/USD',
  type: 'update',
  seq,
  data: { seq, side, price, quantity },
});

describe('MarketFeed', () => {
  it('subscribes the symbol channels and swaps them on a symbol change', () => {
    const f = fakeSocket();
    const feed = new MarketFeed(f.socket);
    feed.select('BTC/USD');
    expect(f.subscribed).toEqual(['ticker:BTC/USD', 'trades:BTC/USD', 'depth:BTC/USD']);
    feed.select('ETH/USD');
    expect(f.subscribed).toEqual(['ticker:ETH/USD', 'trades:ETH/USD', 'depth:ETH/USD']);
    feed.dispose();
    expect(f.subscribed).toEqual([]);
  });

  it('builds the book from the snapshot and its updates', () => {
    const f = fakeSocket();
    const feed = new MarketFeed(f.socket);
    feed.select('BTC/USD');
    f.deliver(snapshot(10, '100.00', '101.00'), update(11, 'BUY', '100.50', '3'), update(12, 'SELL', '101.00', '0'));
    const view = feed.book.get();
    expect(view.bids.map((r) => [r.price, r.cumulative])).toEqual([
      ['100.50', '3'],
      ['100.00', '4'],
    ]);
    expect(view.asks).toEqual([]);
  });

  it('resubscribes on a gap and recovers from the next snapshot', () => {
    const f = fakeSocket();
    const feed = new MarketFeed(f.socket);
    feed.select('BTC/USD');
    f.deliver(snapshot(10, '100.00', '101.00'));
    f.deliver(update(12, 'BUY', '99.00', '1'), update(13, 'BUY', '98.00', '1'));
    expect(f.resubscribed).toEqual(['depth:BTC/USD']); // once, not per update
    expect(feed.book.get().bids.map((r) => r.price)).toEqual(['100.00']);
    f.deliver(snapshot(13, '99.50', '100.50'), update(13, 'BUY', '1.00', '1'), update(14, 'SELL', '100.25', '1'));
    const view = feed.book.get();
    expect(view.bids.map((r) => r.price)).toEqual(['99.50']);
    expect(view.asks.map((r) => r.price)).toEqual(['100.25', '100.50']);
    expect(view.spread).toBe('0.75');
  });

  it('keeps the newest trades first without duplicates, and the latest ticker', () => {
    const f = fakeSocket();
    const feed = new MarketFeed(f.socket);
    feed.select('BTC/USD');
    const trade = (id: number) => ({
      channel: 'trades:BTC/USD',
      seq: id,
      data: { tradeId: id, price: '1.00', quantity: '1', takerSide: 'BUY', at: 0 },
    });
    f.deliver(trade(1), trade(2), { channel: 'ticker:BTC/USD', data: { symbol: 'BTC/USD', last: '1.00' } });
    f.deliver(trade(2), trade(3), { channel: 'trades:ETH/USD', data: { tradeId: 9 } });
    expect(feed.trades.get().map((t) => t.tradeId)).toEqual([3, 2, 1]);
    expect(feed.ticker.get()?.last).toBe('1.00');
    expect(feed.tradeCount).toBe(4);
  });
});
