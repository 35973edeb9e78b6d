import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { installFakeBrowser, lastWs, uninstallFakeBrowser } from '../api/fakeWebSocket';
import { ApiError } from '../api/http';
import { MarketSocket } from '../api/socket';
import type { Instrument } from '../api/types';
import { watchInstruments } from './instruments';
import { clearNotices, notices } from './notices';

const BTC = { symbol: 'BTC/USD', status: 'TRADING', tickSize: '0.01' } as Instrument;
const ETH = { symbol: 'ETH/USD', status: 'TRADING', tickSize: '0.01' } as Instrument;

const status = (symbol: string, s: string, channel = `status:${symbol}`) => ({
  channel,
  seq: 1,
  data: { symbol, status: s, since: 1764057600000 },
});

describe('watching the instruments', () => {
  let socket: MarketSocket;
  let load: ReturnType<typeof vi.fn<() => Promise<Instrument[]>>>;
  let lists: Instrument[][];
  let stop: () => void;

  const start = () => {
    stop = watchInstruments({ socket, load, onList: (l) => lists.push(l) });
  };
  /** The server sends `msgs`; the socket delivers them in its next batch. */
  const push = async (...msgs: object[]) => {
    for (const m of msgs) lastWs().receive(m);
    await vi.advanceTimersByTimeAsync(300);
  };
  const subscribed = () =>
    lastWs().sent.flatMap((m) => {
      const { op, channels } = m as { op: string; channels: string[] };
      return op === 'subscribe' ? channels : [];
    });
  const noticeTexts = () => notices.get().map((n) => `${n.kind}: ${n.text}`);
  const shown = () => lists.at(-1)?.map((i) => `${i.symbol} ${i.status}`);

  beforeEach(() => {
    installFakeBrowser();
    clearNotices();
    socket = new MarketSocket();
    socket.start();
    lastWs().open();
    load = vi.fn(async () => [BTC, ETH]);
    lists = [];
    stop = () => undefined;
  });

  afterEach(() => {
    stop();
    socket.stop();
    clearNotices();
    uninstallFakeBrowser();
  });

  it('reads the list once and subscribes to the status of each instrument', async () => {
    start();
    await vi.advanceTimersByTimeAsync(0);
    expect(lists).toEqual([[BTC, ETH]]);
    expect(subscribed()).toEqual(['status:BTC/USD', 'status:ETH/USD']);
    // Never read again: the statuses come by the socket.
    await vi.advanceTimersByTimeAsync(120_000);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('applies each pushed status to the list at once, keeping the other instruments as they were', async () => {
    start();
    await vi.advanceTimersByTimeAsync(0);
    await push(status('BTC/USD', 'HALTED'));
    expect(shown()).toEqual(['BTC/USD HALTED', 'ETH/USD TRADING']);
    const halted = lists.at(-1)!;
    expect(halted[0]).toEqual({ ...BTC, status: 'HALTED' });
    expect(halted[1]).toBe(ETH);

    // Several in one batch: the last one of a symbol is in force.
    await push(status('BTC/USD', 'CANCEL_ONLY'), status('ETH/USD', 'HALTED'), status('BTC/USD', 'TRADING'));
    expect(lists).toHaveLength(3);
    expect(shown()).toEqual(['BTC/USD TRADING', 'ETH/USD HALTED']);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('passes on no list when a status message changes nothing', async () => {
    start();
    await vi.advanceTimersByTimeAsync(0);
    // The first message of a subscription is the status in force: here the one already shown.
    await push(status('BTC/USD', 'TRADING'), status('ETH/USD', 'TRADING'));
    expect(lists).toHaveLength(1);
  });

  it('ignores other channels, unknown symbols and messages that do not match their channel', async () => {
    start();
    await vi.advanceTimersByTimeAsync(0);
    await push(
      { channel: 'ticker:BTC/USD', data: { symbol: 'BTC/USD', status: 'HALTED' } },
      status('DOGE/USD', 'HALTED'),
      status('ETH/USD', 'HALTED', 'status:BTC/USD'),
      { channel: 'status:BTC/USD', data: { symbol: 'BTC/USD' } },
      { channel: 'status:BTC/USD', data: { symbol: 'BTC/USD', status: 7 } },
      { channel: 'status:BTC/USD', data: null },
      { type: 'error', code: 'UNKNOWN_SYMBOL', channel: 'status:DOGE/USD', message: 'unknown symbol' },
    );
    expect(lists).toEqual([[BTC, ETH]]);
  });

  it('subscribes the statuses again after a reconnect, and applies the status then in force', async () => {
    start();
    await vi.advanceTimersByTimeAsync(0);
    lastWs().drop();
    await vi.advanceTimersByTimeAsync(1_000);
    const again = lastWs();
    expect(again.sent).toEqual([]);
    again.open();
    expect(subscribed()).toEqual(['status:BTC/USD', 'status:ETH/USD']);
    // Halted while the page was cut off: the resubscription's first message says so.
    await push(status('ETH/USD', 'HALTED'));
    expect(shown()).toEqual(['BTC/USD TRADING', 'ETH/USD HALTED']);
    expect(load).toHaveBeenCalledTimes(1);
  });

  it('retries a failed read with backoff under one notice, and takes it away once a read succeeds', async () => {
    load.mockRejectedValueOnce(new TypeError('Failed to fetch'));
    load.mockRejectedValueOnce(new ApiError(503, { title: 'Service unavailable', status: 503 }));
    start();
    await vi.advanceTimersByTimeAsync(0);
    expect(noticeTexts()).toEqual(['error: Instruments unavailable: Failed to fetch (retrying)']);
    expect(subscribed()).toEqual([]);
    await vi.advanceTimersByTimeAsync(999);
    expect(load).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(load).toHaveBeenCalledTimes(2);
    // Failed again: the same one notice, and twice the wait.
    expect(noticeTexts()).toEqual(['error: Instruments unavailable: Failed to fetch (retrying)']);
    await vi.advanceTimersByTimeAsync(1_999);
    expect(load).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(load).toHaveBeenCalledTimes(3);
    expect(lists).toEqual([[BTC, ETH]]);
    expect(noticeTexts()).toEqual([]);
    expect(subscribed()).toEqual(['status:BTC/USD', 'status:ETH/USD']);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(load).toHaveBeenCalledTimes(3);
  });

  it('caps the wait between retries', async () => {
    load.mockRejectedValue(new TypeError('Failed to fetch'));
    stop = watchInstruments({ socket, load, onList: (l) => lists.push(l), retryMs: 1_000, maxRetryMs: 4_000 });
    // Reads at 0, 1, 3, 7, 11, 15 s.
    await vi.advanceTimersByTimeAsync(15_000);
    expect(load).toHaveBeenCalledTimes(6);
    expect(notices.get()).toHaveLength(1);
  });

  it('tells nothing of a 401: the page signs out', async () => {
    load.mockRejectedValueOnce(new ApiError(401, { title: 'Unauthorized', status: 401 }));
    start();
    await vi.advanceTimersByTimeAsync(0);
    expect(noticeTexts()).toEqual([]);
  });

  it('once stopped, releases the status channels and ignores what comes after', async () => {
    start();
    await vi.advanceTimersByTimeAsync(0);
    stop();
    expect(lastWs().sent.at(-1)).toEqual({ op: 'unsubscribe', channels: ['status:ETH/USD'] });
    expect(lastWs().sent.at(-2)).toEqual({ op: 'unsubscribe', channels: ['status:BTC/USD'] });
    await push(status('BTC/USD', 'HALTED'));
    expect(lists).toHaveLength(1);
  });

  it('stops retrying, ignores a read that ends after the stop, and takes its notice away', async () => {
    let answer: (l: Instrument[]) => void = () => undefined;
    load.mockRejectedValueOnce(new TypeError('Failed to fetch'));
    load.mockImplementationOnce(() => new Promise((r) => (answer = r)));
    start();
    await vi.advanceTimersByTimeAsync(1_000);
    expect(load).toHaveBeenCalledTimes(2);
    expect(notices.get()).toHaveLength(1);
    stop();
    expect(notices.get()).toEqual([]);
    answer([BTC]);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(lists).toEqual([]);
    expect(subscribed()).toEqual([]);
    expect(load).toHaveBeenCalledTimes(2);
  });
});
