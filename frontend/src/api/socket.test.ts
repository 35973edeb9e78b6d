import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FakeWs, installFakeBrowser, lastWs as last, uninstallFakeBrowser } from './fakeWebSocket';
import { MarketSocket } from './socket';
import type { WsMessage } from './types';

beforeEach(installFakeBrowser);
afterEach(uninstallFakeBrowser);

describe('MarketSocket', () => {
  it('connects to /ws on the page origin and subscribes once per channel', () => {
    const s = new MarketSocket();
    const a = s.subscribe('trades:BTC/USD');
    const b = s.subscribe('trades:BTC/USD');
    s.start();
    expect(last().url).toBe('ws://oms.test/ws');
    last().open();
    expect(s.status.get()).toBe('connected');
    expect(last().sent).toEqual([{ op: 'subscribe', channels: ['trades:BTC/USD'] }]);
    a();
    expect(last().sent).toHaveLength(1);
    b();
    expect(last().sent[1]).toEqual({ op: 'unsubscribe', channels: ['trades:BTC/USD'] });
    s.stop();
  });

  it('delivers messages in batches, in order', () => {
    const s = new MarketSocket({ minFlushMs: 100 });
    const batches: WsMessage[][] = [];
    s.onBatch((b) => batches.push(b));
    s.start();
    last().open();
    for (let i = 1; i <= 5; i++) last().receive({ channel: 'trades:BTC/USD', seq: i, data: {} });
    expect(batches).toHaveLength(0);
    vi.advanceTimersByTime(20);
    expect(batches).toHaveLength(1);
    expect(batches[0].map((m) => (m as { seq: number }).seq)).toEqual([1, 2, 3, 4, 5]);
    last().receive({ channel: 'trades:BTC/USD', seq: 6, data: {} });
    vi.advanceTimersByTime(50);
    expect(batches).toHaveLength(1); // not before minFlushMs since the last delivery
    vi.advanceTimersByTime(100);
    expect(batches).toHaveLength(2);
    s.stop();
  });

  it('reconnects with growing delays and resubscribes everything', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.999);
    const s = new MarketSocket({ baseDelayMs: 500, maxDelayMs: 4000, offlineAfter: 3 });
    const opens: boolean[] = [];
    s.onOpen((re) => opens.push(re));
    s.subscribe('depth:BTC/USD');
    s.subscribe('orders');
    s.start();
    last().open();
    expect(opens).toEqual([false]);

    last().drop();
    expect(s.status.get()).toBe('reconnecting');
    const delays: number[] = [];
    for (let attempt = 0; attempt < 5; attempt++) {
      const before = FakeWs.all.length;
      let waited = 0;
      while (FakeWs.all.length === before) {
        vi.advanceTimersByTime(50);
        waited += 50;
      }
      delays.push(waited);
      if (attempt < 4) last().drop();
    }
    // ~500, 1000, 2000, 4000, 4000 (capped), jitter at its maximum.
    expect(delays).toEqual([500, 1000, 2000, 4000, 4000]);
    expect(s.status.get()).toBe('offline');

    last().open();
    expect(s.status.get()).toBe('connected');
    expect(opens).toEqual([false, true]);
    expect(last().sent).toEqual([{ op: 'subscribe', channels: ['depth:BTC/USD', 'orders'] }]);
    s.stop();
  });

  it('reconnects when the server goes silent', () => {
    const s = new MarketSocket({ silenceMs: 30_000, pingMs: 10_000 });
    s.start();
    const first = last();
    first.open();
    vi.advanceTimersByTime(10_000);
    expect(first.sent).toContainEqual({ op: 'ping' });
    vi.advanceTimersByTime(20_000);
    expect(first.readyState).toBe(1); // 30 s of silence not yet exceeded
    vi.advanceTimersByTime(15_000);
    expect(first.readyState).toBe(3);
    vi.advanceTimersByTime(1_000);
    expect(FakeWs.all.length).toBe(2);
    s.stop();
  });

  it('resubscribe restarts one channel', () => {
    const s = new MarketSocket();
    s.subscribe('depth:ETH/USD');
    s.start();
    last().open();
    s.resubscribe('depth:ETH/USD');
    expect(last().sent.slice(1)).toEqual([
      { op: 'unsubscribe', channels: ['depth:ETH/USD'] },
      { op: 'subscribe', channels: ['depth:ETH/USD'] },
    ]);
    s.stop();
  });

  it('polls through a fallback only while disconnected', () => {
    const s = new MarketSocket({ baseDelayMs: 1000 });
    s.start();
    let polls = 0;
    const stop = s.whileDisconnected(() => polls++, 5_000);
    vi.advanceTimersByTime(5_000);
    expect(polls).toBe(1);
    last().open();
    vi.advanceTimersByTime(20_000);
    expect(polls).toBe(1);
    last().drop();
    vi.advanceTimersByTime(5_000);
    expect(polls).toBe(2);
    stop();
    vi.advanceTimersByTime(20_000);
    expect(polls).toBe(2);
    s.stop();
  });

  it('keeps control messages, even ones naming a channel, out of the data batches', () => {
    const s = new MarketSocket();
    const batches: WsMessage[][] = [];
    const controls: WsMessage[] = [];
    s.onBatch((b) => batches.push(b));
    s.onControl((m) => controls.push(m));
    s.start();
    last().open();
    last().receive({ type: 'error', code: 'UNKNOWN_SYMBOL', message: 'no such symbol', channel: 'depth:XYZ' });
    last().receive({ type: 'heartbeat', ts: 1 });
    last().receive({ channel: 'depth:BTC/USD', type: 'snapshot', seq: 1, data: { bids: [], asks: [] } });
    vi.advanceTimersByTime(20);
    expect(controls.map((m) => m.type)).toEqual(['error', 'heartbeat']);
    expect(batches.flat().map((m) => m.channel)).toEqual(['depth:BTC/USD']);
    s.stop();
  });
});
