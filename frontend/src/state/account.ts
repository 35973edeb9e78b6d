// The signed-in account's orders, fills, balances and kill switch: loaded over REST, kept live
// from the private `orders` channel, and refetched after every (re)connect so nothing missed
// stays stale.
import { api } from '../api/http';
import type { MarketSocket } from '../api/socket';
import {
  type Balance,
  type Fill,
  LIVE_STATUSES,
  type Order,
  type OrderStatus,
  type OrdersChannelData,
  type WsDataMessage,
} from '../api/types';
import { cmp, dec } from '../lib/decimal';
import {
  afterRead,
  afterSwitch,
  KILL_SWITCH_SETTLE_MS,
  KILL_SWITCH_UNKNOWN,
  type KillSwitchView,
} from '../lib/killSwitch';
import { CancelRejectWatch } from '../lib/orders';
import { notify } from './notices';
import { Store } from './store';

const STATUS_RANK: Record<OrderStatus, number> = {
  NEW: 0,
  ACCEPTED: 1,
  PARTIALLY_FILLED: 2,
  FILLED: 3,
  CANCELED: 3,
  EXPIRED: 3,
  REJECTED: 3,
};

/**
 * Whether `next` is at least as recent a state of the order as `prev`. REST replies and channel
 * messages can cross, and timestamps written by different services can be skewed: an order
 * never goes back to an earlier status or to a smaller filled quantity; between states of the
 * same rank (an amend, a second fill) the later `updatedAt` wins.
 */
export function isNewer(prev: Order, next: Order): boolean {
  const rank = STATUS_RANK[next.status] - STATUS_RANK[prev.status];
  if (rank !== 0) return rank > 0;
  const filled = cmp(dec(next.filledQuantity), dec(prev.filledQuantity));
  if (filled !== 0) return filled > 0;
  const a = Date.parse(prev.updatedAt);
  const b = Date.parse(next.updatedAt);
  return Number.isNaN(a) || Number.isNaN(b) || b >= a;
}

/**
 * The notice for an amend that risk or the venue refused after its 202, the first time an
 * update shows it; `null` otherwise. The order itself stays as it was, so nothing else tells.
 */
export function refusedAmendText(prev: Order | undefined, next: Order): string | null {
  const a = next.lastAmend;
  if (!a || a.status !== 'REJECTED' || prev?.lastAmend?.amendId === a.amendId) return null;
  return `Amend of order ${next.orderId} refused: ${a.rejectReason ?? 'no reason given'}`;
}

const ORDERS_LOADED = 200;
/** Final orders kept in memory beyond the live ones; older ones are dropped from the history. */
const FINAL_KEPT = 1000;
const ORDER_REFRESH_MS = 250;
/** REST refresh period while the WebSocket is down. */
const POLL_MS = 5_000;
/** Account re-read period after a kill switch, until a read confirms it. */
const KILL_SWITCH_POLL_MS = 1_000;
/** Account re-read period otherwise, so that an operator's halt shows on an idle page. */
export const ACCOUNT_POLL_MS = 30_000;
/** Account re-read period while trading is halted, so that the page sees it lifted soon. */
export const HALTED_POLL_MS = 5_000;

export class AccountFeed {
  /** Orders by id, newest first when listed. */
  readonly orders = new Store<ReadonlyMap<string, Order>>(new Map());
  readonly balances = new Store<Balance[]>([]);
  readonly killSwitch = new Store<KillSwitchView>(KILL_SWITCH_UNKNOWN);
  /** The operators' global kill switch, as last read with the account. */
  readonly globalKillSwitch = new Store<boolean>(false);
  /** Fills of the orders whose rows were expanded (loaded on demand). */
  readonly fills = new Store<ReadonlyMap<string, Fill[]>>(new Map());
  /** Cursor of the next older page of orders: undefined before the first load, null at the end. */
  readonly olderCursor = new Store<string | null | undefined>(undefined);
  /**
   * Counts the moments the account's trade history may have grown: an order update on the
   * channel with a fill or a higher filled quantity, and each reconnect (fills may have been
   * missed meanwhile). The trades tab refetches on it instead of polling.
   */
  readonly fillsChanged = new Store<number>(0);

  private balanceTimer: ReturnType<typeof setTimeout> | null = null;
  private killSwitchTimer: ReturnType<typeof setTimeout> | null = null;
  private pollTimer: ReturnType<typeof setTimeout> | null = null;
  private disposed = false;
  private pending: Order[] = [];
  private pendingTimer: ReturnType<typeof setTimeout> | null = null;
  private lastApplied = 0;
  /** Refused amends already told of: updates wait up to ORDER_REFRESH_MS before they are applied,
   * so a second update of the order in that time would otherwise tell of it again. */
  private toldAmends = new Set<string>();
  /** Refused cancels seen per order: a new one (a later `at`) is told of once, on the channel or in a read. */
  private readonly cancelRejects = new CancelRejectWatch();
  private readonly releases: (() => void)[] = [];

  constructor(socket: MarketSocket) {
    this.releases.push(
      socket.subscribe('orders'),
      socket.onBatch(this.onBatch),
      socket.onOpen((reconnected) => {
        if (!reconnected) return;
        this.refresh();
        this.fillsChanged.update((n) => n + 1);
      }),
      socket.whileDisconnected(() => this.refresh(), POLL_MS),
    );
    this.refresh();
    this.schedulePoll();
  }

  dispose(): void {
    this.disposed = true;
    if (this.pollTimer) clearTimeout(this.pollTimer);
    this.pollTimer = null;
    for (const r of this.releases) r();
    if (this.balanceTimer) clearTimeout(this.balanceTimer);
    if (this.pendingTimer) clearTimeout(this.pendingTimer);
    if (this.killSwitchTimer) clearTimeout(this.killSwitchTimer);
    this.killSwitchTimer = null;
  }

  refresh(): void {
    this.loadOrders();
    this.loadAccount();
  }

  loadOrders(): Promise<void> {
    return api.orders({ limit: ORDERS_LOADED }).then(
      (r) => {
        this.upsert(r.orders);
        // Only the first load sets where older pages start; refreshes must not move it.
        if (this.olderCursor.get() === undefined) this.olderCursor.set(r.nextCursor);
      },
      () => undefined,
    );
  }

  /** The next page of older orders, for the history. */
  loadOlder(): Promise<void> {
    const cursor = this.olderCursor.get();
    if (!cursor) return Promise.resolve();
    return api.orders({ limit: ORDERS_LOADED, cursor }).then((r) => {
      this.upsert(r.orders);
      this.olderCursor.set(r.nextCursor);
    });
  }

  /** Balances and kill switches, from GET /api/accounts/me. */
  loadAccount(): Promise<void> {
    return api.account().then(
      (a) => {
        this.balances.set(a.balances);
        this.killSwitch.update((v) => afterRead(v, a.killSwitch, Date.now()));
        this.globalKillSwitch.set(a.globalKillSwitch === true);
      },
      () => undefined,
    );
  }

  /** Turns the kill switch on or off; shows the state at once, then re-reads until the account agrees. */
  async setKillSwitch(on: boolean): Promise<void> {
    const taken = await api.setKillSwitch(on);
    this.killSwitch.set(afterSwitch(taken, Date.now()));
    if (this.killSwitchTimer) clearTimeout(this.killSwitchTimer);
    this.confirmKillSwitch();
  }

  /** The last read comes after the settle time, so it decides even if the earlier ones lagged. */
  private confirmKillSwitch(): void {
    const timer = setTimeout(() => {
      void this.loadAccount().then(() => {
        // Disposed meanwhile, or a newer switch runs its own reads.
        if (this.killSwitchTimer !== timer) return;
        const r = this.killSwitch.get().requested;
        if (r && Date.now() - r.at <= KILL_SWITCH_SETTLE_MS) this.confirmKillSwitch();
        else this.killSwitchTimer = null;
      });
    }, KILL_SWITCH_POLL_MS);
    this.killSwitchTimer = timer;
  }

  /** Fills of one order; loads them once and keeps them live afterwards. */
  loadFills(orderId: string): Promise<void> {
    return api.fills(orderId).then((fills) => {
      const next = new Map(this.fills.get());
      next.set(orderId, mergeFills(next.get(orderId) ?? [], fills));
      this.fills.set(next);
    });
  }

  /** Takes order states from REST replies (reads and answers), keeping the newest. */
  upsert(list: Order[]): void {
    this.tellCancelRejects(list, false);
    this.apply(list);
  }

  /** Raises a notice for each refused cancel these order states show that the page has not told of. */
  private tellCancelRejects(list: Order[], pushed: boolean): void {
    for (const o of list) {
      const text = this.cancelRejects.take(o, pushed);
      if (text) notify('error', text);
    }
  }

  /** Takes order states from REST replies and channel messages, keeping the newest. */
  private apply(list: Order[]): void {
    if (list.length === 0) return;
    const prev = this.orders.get();
    let next: Map<string, Order> | null = null;
    for (const o of list) {
      const old = (next ?? prev).get(o.orderId);
      if (old && !isNewer(old, o)) continue;
      next ??= new Map(prev);
      next.set(o.orderId, o);
    }
    if (next) this.orders.set(next.size > FINAL_KEPT * 2 ? trimmed(next) : next);
  }

  private onBatch = (batch: WsDataMessage[]): void => {
    const orders: Order[] = [];
    const fills: { orderId: string; fill: Fill }[] = [];
    let filled = false;
    for (const m of batch) {
      if (m.channel !== 'orders') continue;
      const d = m.data as OrdersChannelData;
      if (!d?.order) continue;
      const refused = refusedAmendText(this.orders.get().get(d.order.orderId), d.order);
      const amendId = d.order.lastAmend?.amendId;
      if (refused && amendId && !this.toldAmends.has(amendId)) {
        if (this.toldAmends.size >= 1000) this.toldAmends.clear();
        this.toldAmends.add(amendId);
        notify('error', refused);
      }
      this.tellCancelRejects([d.order], true);
      orders.push(d.order);
      if (d.fill) fills.push({ orderId: d.order.orderId, fill: d.fill });
      filled ||= !!d.fill || filledMore(this.orders.get().get(d.order.orderId), d.order);
    }
    if (orders.length === 0) return;
    this.queueOrders(orders);
    if (filled) this.fillsChanged.update((n) => n + 1);
    const known = this.fills.get();
    const touched = fills.filter((f) => known.has(f.orderId));
    if (touched.length) {
      const next = new Map(known);
      for (const f of touched) next.set(f.orderId, mergeFills(next.get(f.orderId) ?? [], [f.fill]));
      this.fills.set(next);
    }
    // Balances are not on the channel: an order event means they may have moved.
    this.scheduleBalances();
  };

  /**
   * Order updates reach the tables at most every ORDER_REFRESH_MS: a burst of executions (a bot
   * on the same account, a sweep of many levels) then costs a few renders, not one per frame.
   */
  private queueOrders(orders: Order[]): void {
    this.pending.push(...orders);
    if (this.pendingTimer) return;
    const wait = Math.max(0, this.lastApplied + ORDER_REFRESH_MS - Date.now());
    this.pendingTimer = setTimeout(() => {
      this.pendingTimer = null;
      this.lastApplied = Date.now();
      const batch = this.pending;
      this.pending = [];
      this.apply(batch);
    }, wait);
  }

  /** The periodic account re-read: sooner while trading is halted. */
  private schedulePoll(): void {
    if (this.disposed) return;
    const wait = this.globalKillSwitch.get() ? HALTED_POLL_MS : ACCOUNT_POLL_MS;
    this.pollTimer = setTimeout(() => {
      void this.loadAccount().finally(() => this.schedulePoll());
    }, wait);
  }

  private scheduleBalances(): void {
    if (this.balanceTimer) return;
    this.balanceTimer = setTimeout(() => {
      this.balanceTimer = null;
      void this.loadAccount();
    }, 500);
  }
}

/** Whether a channel update shows more filled than the order state known (if any) did. */
function filledMore(known: Order | undefined, next: Order): boolean {
  return cmp(dec(next.filledQuantity), dec(known?.filledQuantity ?? '0')) > 0;
}

/** Keeps every live order and the newest FINAL_KEPT final ones. */
function trimmed(orders: Map<string, Order>): Map<string, Order> {
  const finals = [...orders.values()].filter((o) => !LIVE_STATUSES.has(o.status));
  finals.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  const drop = new Set(finals.slice(FINAL_KEPT).map((o) => o.orderId));
  return new Map([...orders].filter(([id]) => !drop.has(id)));
}

function mergeFills(known: Fill[], incoming: Fill[]): Fill[] {
  const byId = new Map(known.map((f) => [f.tradeId, f]));
  for (const f of incoming) byId.set(f.tradeId, f);
  return [...byId.values()].sort((a, b) => a.tradeId - b.tradeId);
}
