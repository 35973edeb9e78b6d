// An order's refused cancels in words, which of them the page has yet to tell of, and its
// executed notional for the tables.
import type { CancelReject, Order } from '../api/types';
import { isZero, parseDec, toStr } from './decimal';
import { formatNotional } from './trades';

/** Why a cancel was refused, in words; an unknown code is shown as it is. */
const CANCEL_REJECT_WORDS: Readonly<Record<string, string>> = {
  INSTRUMENT_HALTED: 'the symbol is halted',
  ORDER_NOT_LIVE: 'the order had already ended',
  UNKNOWN_ORDER: 'the venue no longer had the order',
  UNKNOWN_INSTRUMENT: 'the symbol is not traded',
};

export function cancelRejectWords(reason: string | null | undefined): string {
  if (!reason) return 'no reason given';
  return CANCEL_REJECT_WORDS[reason] ?? reason;
}

/** A decimal without its trailing zeros ("0.10000" → "0.1"); text that is not one stays as it is. */
function plain(value: string): string {
  const d = parseDec(value);
  return d ? toStr(d) : value;
}

/** "BTC/USD buy 0.1 @ 45000" (a market order: "BTC/USD sell 0.1 at market"). */
export function orderWords(o: Pick<Order, 'symbol' | 'side' | 'quantity' | 'price'>): string {
  const what = `${o.symbol} ${o.side.toLowerCase()} ${plain(o.quantity)}`;
  return o.price ? `${what} @ ${plain(o.price)}` : `${what} at market`;
}

/** "Cancel of BTC/USD buy 0.1 @ 45000 refused: the symbol is halted"; null without a refusal. */
export function cancelRejectText(o: Order): string | null {
  const r = o.lastCancelReject;
  if (!r) return null;
  return `Cancel of ${orderWords(o)} refused: ${cancelRejectWords(r.rejectReason)}`;
}

/** Whether refusal time `a` is later than `b`; times that do not parse count as later when they differ. */
function later(a: string, b: string): boolean {
  const x = Date.parse(a);
  const y = Date.parse(b);
  return Number.isNaN(x) || Number.isNaN(y) ? a !== b : x > y;
}

/** Orders remembered; past it the oldest half is forgotten (a forgotten order is as if new). */
const REMEMBERED = 5_000;

/**
 * The refusals of cancels the page has seen, by order, so that each is told of once: when an
 * order state shows one newer (by its `at`) than the order showed before. Refusals already
 * there when an order is first seen are not told of: the page's first read of its orders and
 * the pages of older orders bring those. An order first seen on the `orders` channel (the
 * channel sends changes only) is told of when the refusal is that update's change.
 */
export class CancelRejectWatch {
  /** Order id → `at` of the newest refusal seen, or null: seen without one. */
  private readonly seen = new Map<string, string | null>();

  /**
   * Takes an order state; answers the notice to raise for it, if any. `pushed`: it came on the
   * `orders` channel, rather than in a REST answer.
   */
  take(o: Order, pushed: boolean): string | null {
    const r: CancelReject | null | undefined = o.lastCancelReject;
    const known = this.seen.has(o.orderId);
    const before = this.seen.get(o.orderId) ?? null;
    if (!r) {
      if (!known) this.remember(o.orderId, null);
      return null;
    }
    if (before !== null && !later(r.at, before)) return null;
    this.remember(o.orderId, r.at);
    const tell = known || (pushed && !later(o.updatedAt, r.at));
    return tell ? cancelRejectText(o) : null;
  }

  private remember(orderId: string, at: string | null): void {
    if (!this.seen.has(orderId) && this.seen.size >= REMEMBERED) {
      let drop = REMEMBERED / 2;
      for (const id of this.seen.keys()) {
        if (drop-- <= 0) break;
        this.seen.delete(id);
      }
    }
    this.seen.set(orderId, at);
  }
}

/**
 * The executed notional (price × quantity summed over the fills) for a table: "—" before any
 * fill, otherwise exact and grouped, at least at the price's precision like the trades tab's.
 */
export function formatExecutedNotional(value: string | null | undefined, tickSize: string): string {
  if (value == null || value === '') return '—';
  const d = parseDec(value);
  if (!d) return value;
  return isZero(d) ? '—' : formatNotional(value, tickSize);
}
