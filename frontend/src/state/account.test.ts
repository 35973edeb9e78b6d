import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { MarketSocket } from '../api/socket';
import type { Fill, Order, OrdersChannelData, WsDataMessage } from '../api/types';
import { KILL_SWITCH_SETTLE_MS } from '../lib/killSwitch';
import { ACCOUNT_POLL_MS, AccountFeed, HALTED_POLL_MS, isNewer, refusedAmendText } from './account';
import { clearNotices, notices } from './notices';
import { testOrder } from '../api/testOrder';

const order = (over: Partial<Order>): Order => testOrder(over);

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

describe('kill switch', () => {
  // The account as GET /api/accounts/me reports it: it lags behind a switch until `stored` moves.
  let stored = false;
  let halted = false;
  let accountReads = 0;
  let feed: AccountFeed;
  const socket = {
    subscribe: () => () => undefined,
    onBatch: () => () => undefined,
    onOpen: () => () => undefined,
    whileDisconnected: () => () => undefined,
  } as unknown as MarketSocket;

  const json = (body: unknown, status = 200) =>
    new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

  beforeEach(async () => {
    vi.useFakeTimers();
    stored = false;
    halted = false;
    accountReads = 0;
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string, init: RequestInit) => {
        if (url === '/api/accounts/me') {
          accountReads++;
          return json({ accountId: 1, name: 'demo', balances: [], killSwitch: stored, globalKillSwitch: halted });
        }
        if (url === '/api/accounts/me/kill-switch' && init.method === 'PUT') {
          return json({ killSwitch: (JSON.parse(init.body as string) as { enabled: boolean }).enabled }, 202);
        }
        return json({ orders: [], nextCursor: null });
      }),
    );
    feed = new AccountFeed(socket);
    await vi.advanceTimersByTimeAsync(0);
  });

  afterEach(() => {
    feed.dispose();
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('is read with the account', () => {
    expect(feed.killSwitch.get()).toEqual({ on: false, requested: null });
    expect(feed.globalKillSwitch.get()).toBe(false);
  });

  it('re-reads the account every 30 s, and every 5 s while trading is halted', async () => {
    const reads = accountReads;
    await vi.advanceTimersByTimeAsync(HALTED_POLL_MS);
    expect(accountReads).toBe(reads);
    halted = true;
    await vi.advanceTimersByTimeAsync(ACCOUNT_POLL_MS - HALTED_POLL_MS);
    expect(accountReads).toBe(reads + 1);
    expect(feed.globalKillSwitch.get()).toBe(true);
    halted = false;
    await vi.advanceTimersByTimeAsync(HALTED_POLL_MS);
    expect(accountReads).toBe(reads + 2);
    expect(feed.globalKillSwitch.get()).toBe(false);
    await vi.advanceTimersByTimeAsync(HALTED_POLL_MS);
    expect(accountReads).toBe(reads + 2);
    feed.dispose();
    await vi.advanceTimersByTimeAsync(ACCOUNT_POLL_MS);
    expect(accountReads).toBe(reads + 2);
  });

  it("reads the operators' global switch with the account, apart from the account's own", async () => {
    halted = true;
    await feed.loadAccount();
    expect(feed.globalKillSwitch.get()).toBe(true);
    expect(feed.killSwitch.get()).toEqual({ on: false, requested: null });
    halted = false;
    await feed.loadAccount();
    expect(feed.globalKillSwitch.get()).toBe(false);
  });

  it('shows a switch at once, ignores lagging reads, then stops reading once one agrees', async () => {
    await feed.setKillSwitch(true);
    expect(feed.killSwitch.get().on).toBe(true);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(accountReads).toBe(2);
    expect(feed.killSwitch.get().on).toBe(true);

    stored = true;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(accountReads).toBe(3);
    expect(feed.killSwitch.get()).toEqual({ on: true, requested: null });
    await vi.advanceTimersByTimeAsync(KILL_SWITCH_SETTLE_MS);
    expect(accountReads).toBe(3);
  });

  it("takes the server's state when no read agrees within the settle time", async () => {
    await feed.setKillSwitch(true);
    await vi.advanceTimersByTimeAsync(KILL_SWITCH_SETTLE_MS - 1);
    expect(feed.killSwitch.get().on).toBe(true);
    await vi.advanceTimersByTimeAsync(2_000);
    expect(feed.killSwitch.get()).toEqual({ on: false, requested: null });
    const reads = accountReads;
    await vi.advanceTimersByTimeAsync(KILL_SWITCH_SETTLE_MS);
    expect(accountReads).toBe(reads);
  });

  it('stops re-reading after the settle time even when no read succeeds', async () => {
    await feed.setKillSwitch(true);
    vi.mocked(fetch).mockImplementation(async () => json({ title: 'Service unavailable', status: 503 }, 503));
    const failing = vi.mocked(fetch).mock.calls.length;
    await vi.advanceTimersByTimeAsync(KILL_SWITCH_SETTLE_MS + 1_000);
    const reads = vi.mocked(fetch).mock.calls.length;
    expect(reads).toBeGreaterThan(failing);
    // Still the requested state: nothing read contradicts it.
    expect(feed.killSwitch.get().on).toBe(true);
    await vi.advanceTimersByTimeAsync(KILL_SWITCH_SETTLE_MS);
    expect(vi.mocked(fetch).mock.calls.length).toBe(reads);
  });

  it('does not show a switch the server refused', async () => {
    vi.mocked(fetch).mockResolvedValueOnce(
      new Response(JSON.stringify({ title: 'Forbidden', status: 403 }), {
        status: 403,
        headers: { 'Content-Type': 'application/problem+json' },
      }),
    );
    await expect(feed.setKillSwitch(true)).rejects.toThrow('Forbidden');
    expect(feed.killSwitch.get().on).toBe(false);
  });
});

describe('fills changed', () => {
  let onBatch: (batch: WsDataMessage[]) => void = () => undefined;
  let onOpen: (reconnected: boolean) => void = () => undefined;
  let feed: AccountFeed;
  const socket = {
    subscribe: () => () => undefined,
    onBatch: (fn: typeof onBatch) => {
      onBatch = fn;
      return () => undefined;
    },
    onOpen: (fn: typeof onOpen) => {
      onOpen = fn;
      return () => undefined;
    },
    whileDisconnected: () => () => undefined,
  } as unknown as MarketSocket;
  const update = (data: OrdersChannelData): WsDataMessage => ({ channel: 'orders', type: 'update', data });

  beforeEach(async () => {
    vi.useFakeTimers();
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) =>
        url === '/api/accounts/me'
          ? Response.json({ accountId: 1, name: 'demo', balances: [], killSwitch: false, globalKillSwitch: false })
          : Response.json({ orders: [order({ status: 'ACCEPTED', filledQuantity: '0.2' })], nextCursor: null }),
      ),
    );
    feed = new AccountFeed(socket);
    await vi.advanceTimersByTimeAsync(0);
  });

  afterEach(() => {
    feed.dispose();
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('counts channel updates that fill, not the others', () => {
    const fill: Fill = {
      tradeId: 3,
      price: '45000.00',
      quantity: '0.1',
      liquidity: 'MAKER',
      fee: '0',
      feeAsset: 'USD',
      at: '2026-11-25T08:00:01.000Z',
    };
    onBatch([update({ order: order({ status: 'ACCEPTED', filledQuantity: '0.2', price: '44000.00' }) })]);
    expect(feed.fillsChanged.get()).toBe(0);
    onBatch([{ channel: 'depth:BTC/USD', type: 'update', data: {} }]);
    expect(feed.fillsChanged.get()).toBe(0);
    // A higher filled quantity, even without the fill itself.
    onBatch([update({ order: order({ status: 'PARTIALLY_FILLED', filledQuantity: '0.3' }) })]);
    expect(feed.fillsChanged.get()).toBe(1);
    // A burst of fills in one batch counts once.
    onBatch([
      update({ order: order({ orderId: '2', status: 'PARTIALLY_FILLED', filledQuantity: '0.1' }), fill }),
      update({ order: order({ orderId: '2', status: 'FILLED', filledQuantity: '1' }), fill: { ...fill, tradeId: 4 } }),
    ]);
    expect(feed.fillsChanged.get()).toBe(2);
  });

  it('tells of a refused amend once, however many updates of the order show it', async () => {
    clearNotices();
    const lastAmend = { amendId: '9', status: 'REJECTED' as const, rejectReason: 'NOTIONAL_ABOVE_MAX' };
    const refused = order({ status: 'ACCEPTED', filledQuantity: '0.2', lastAmend });
    onBatch([update({ order: refused })]);
    expect(notices.get().map((n) => n.text)).toEqual(['Amend of order 1 refused: NOTIONAL_ABOVE_MAX']);
    // Read and closed; a second update before the first is applied, then one after, carry
    // the same refusal: it is not told again.
    clearNotices();
    onBatch([update({ order: { ...refused, filledQuantity: '0.3', status: 'PARTIALLY_FILLED' } })]);
    await vi.advanceTimersByTimeAsync(1000);
    onBatch([update({ order: { ...refused, filledQuantity: '0.4', status: 'PARTIALLY_FILLED' } })]);
    expect(notices.get()).toEqual([]);
  });

  it('counts a reconnect, when fills may have been missed', () => {
    onOpen(false);
    expect(feed.fillsChanged.get()).toBe(0);
    onOpen(true);
    expect(feed.fillsChanged.get()).toBe(1);
  });
});

describe('refusedAmendText', () => {
  const refused = { amendId: '9', status: 'REJECTED' as const, rejectReason: 'NOTIONAL_ABOVE_MAX' };
  it('tells of a refused amend once, when an update first shows it', () => {
    const before = order({ status: 'ACCEPTED' });
    const after = order({ status: 'ACCEPTED', lastAmend: refused });
    expect(refusedAmendText(before, after)).toBe('Amend of order 1 refused: NOTIONAL_ABOVE_MAX');
    expect(refusedAmendText(undefined, after)).toBe('Amend of order 1 refused: NOTIONAL_ABOVE_MAX');
    expect(refusedAmendText(after, { ...after })).toBeNull();
  });
  it('says nothing of an applied amend or an order without one', () => {
    const applied = order({ lastAmend: { amendId: '10', status: 'APPLIED', rejectReason: null } });
    expect(refusedAmendText(order({ lastAmend: refused }), applied)).toBeNull();
    expect(refusedAmendText(undefined, order({}))).toBeNull();
  });
});

describe('refused cancels', () => {
  let onBatch: (batch: WsDataMessage[]) => void = () => undefined;
  let feed: AccountFeed;
  /** What GET /api/orders answers. */
  let listed: Order[] = [];
  const socket = {
    subscribe: () => () => undefined,
    onBatch: (fn: typeof onBatch) => {
      onBatch = fn;
      return () => undefined;
    },
    onOpen: () => () => undefined,
    whileDisconnected: () => () => undefined,
  } as unknown as MarketSocket;
  const update = (o: Order): WsDataMessage => ({ channel: 'orders', type: 'update', data: { order: o } });
  const halted = (at: string, over: Partial<Order> = {}) =>
    order({ status: 'ACCEPTED', lastCancelReject: { rejectReason: 'INSTRUMENT_HALTED', at }, updatedAt: at, ...over });
  const shown = () => notices.get().map((n) => n.text);
  const HALTED = 'Cancel of BTC/USD buy 1 @ 45000 refused: the symbol is halted';

  beforeEach(async () => {
    vi.useFakeTimers();
    clearNotices();
    // Order 1 was refused a cancel before the page loaded; order 2 never was.
    listed = [
      halted('2026-11-25T08:00:01.000Z'),
      order({ orderId: '2', side: 'SELL', status: 'ACCEPTED', quantity: '0.50000', price: '46000.00' }),
    ];
    vi.stubGlobal(
      'fetch',
      vi.fn(async (url: string) =>
        url === '/api/accounts/me'
          ? Response.json({ accountId: 1, name: 'demo', balances: [], killSwitch: false, globalKillSwitch: false })
          : Response.json({ orders: listed, nextCursor: null }),
      ),
    );
    feed = new AccountFeed(socket);
    await vi.advanceTimersByTimeAsync(0);
  });

  afterEach(() => {
    feed.dispose();
    clearNotices();
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('does not tell of refusals already there when the page loaded', async () => {
    expect(feed.orders.get().get('1')?.lastCancelReject?.rejectReason).toBe('INSTRUMENT_HALTED');
    await feed.loadOrders();
    expect(shown()).toEqual([]);
  });

  it('tells once of a refusal the channel shows, and keeps the order open', async () => {
    const refused = halted('2026-11-25T08:00:02.000Z', {
      orderId: '2',
      side: 'SELL',
      quantity: '0.50000',
      price: '46000.00',
    });
    onBatch([update(refused)]);
    const text = 'Cancel of BTC/USD sell 0.5 @ 46000 refused: the symbol is halted';
    expect(shown()).toEqual([text]);
    // Read and closed; the same refusal again, before and after the update is applied, and in a read.
    clearNotices();
    onBatch([update({ ...refused })]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(feed.orders.get().get('2')?.status).toBe('ACCEPTED');
    expect(feed.orders.get().get('2')?.lastCancelReject?.at).toBe('2026-11-25T08:00:02.000Z');
    listed = [listed[0], refused];
    await feed.loadOrders();
    onBatch([update({ ...refused })]);
    expect(shown()).toEqual([]);
  });

  it('tells of a newer refusal of an order that had one at load, on the channel', () => {
    onBatch([update(halted('2026-11-25T08:00:01.000Z'))]);
    expect(shown()).toEqual([]);
    onBatch([update(halted('2026-11-25T08:00:05.000Z'))]);
    expect(shown()).toEqual([HALTED]);
  });

  it('tells of a refusal first seen in a REST read, as after a reconnect', async () => {
    listed = [
      listed[0],
      order({
        orderId: '2',
        side: 'SELL',
        status: 'FILLED',
        quantity: '0.50000',
        filledQuantity: '0.50000',
        executedNotional: '23000',
        price: '46000.00',
        lastCancelReject: { rejectReason: 'ORDER_NOT_LIVE', at: '2026-11-25T08:00:03.000Z' },
        updatedAt: '2026-11-25T08:00:03.000Z',
      }),
    ];
    await feed.loadOrders();
    expect(shown()).toEqual(['Cancel of BTC/USD sell 0.5 @ 46000 refused: the order had already ended']);
    expect(feed.orders.get().get('2')?.executedNotional).toBe('23000');
  });
});
