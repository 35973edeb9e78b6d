// The account's trade history (`GET /api/fills`): its query string, the exact notional of a
// fill, and the list kept newest first as pages arrive. A fill is unique by (order id, trade
// id): trade ids are numbered per symbol, so the trade id alone may repeat across symbols.
import type { AccountFill, AccountFillsPage, AccountFillsQuery } from '../api/types';
import { dec, mul, toStr } from './decimal';
import { decimalsOf, formatDecimal } from './format';

/** Rows of one page; also the page size the server allows by default. */
export const TRADES_PAGE = 100;
/** The server refuses a larger page. */
export const TRADES_MAX_PAGE = 500;

/** The identity of a fill in the history. */
export function fillKey(f: Pick<AccountFill, 'orderId' | 'tradeId'>): string {
  return `${f.orderId}:${f.tradeId}`;
}

function time(t: number | string | Date): string {
  return t instanceof Date ? t.toISOString() : String(t);
}

/**
 * `?symbol=BTC%2FUSD&limit=100…` for `GET /api/fills`, without the fields left out (or empty),
 * with `limit` clamped into the 1..500 the server accepts rather than sent to be refused.
 */
export function fillsQuery(q: AccountFillsQuery = {}): string {
  const p = new URLSearchParams();
  if (q.symbol) p.set('symbol', q.symbol);
  if (q.side) p.set('side', q.side);
  if (q.from !== undefined && q.from !== '') p.set('from', time(q.from));
  if (q.to !== undefined && q.to !== '') p.set('to', time(q.to));
  if (q.limit !== undefined && Number.isFinite(q.limit)) {
    p.set('limit', String(Math.min(TRADES_MAX_PAGE, Math.max(1, Math.trunc(q.limit)))));
  }
  if (q.cursor) p.set('cursor', q.cursor);
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** `GET /api/fills/export` of one symbol ('' for all): every fill as CSV, newest first. */
export function exportHref(symbol: string): string {
  return symbol ? `/api/fills/export?symbol=${encodeURIComponent(symbol)}` : '/api/fills/export';
}

/** price × quantity, exact (in the quote asset), without trailing zeros: 0.1 × 45000.01 = "4500.001". */
export function notional(price: string, quantity: string): string {
  return toStr(mul(dec(price), dec(quantity)));
}

/**
 * A notional for display: grouped, at least at the price's precision so that a column lines up,
 * and never rounded (a product has more decimals than either factor).
 */
export function formatNotional(value: string, tickSize: string): string {
  return formatDecimal(value, Math.max(decimalsOf(tickSize), decimalsOf(value)));
}

export function liquidityLabel(l: AccountFill['liquidity']): string {
  return l === 'MAKER' ? 'Maker' : 'Taker';
}

/** The loaded history: fills newest first, and the cursor of the next older page (null at the end). */
export interface TradesView {
  fills: AccountFill[];
  nextCursor: string | null;
}

/** `first`, then the fills of `rest` not in it: the server's order, each fill once (its first copy). */
function concatUnique(first: AccountFill[], rest: AccountFill[]): AccountFill[] {
  const seen = new Set<string>();
  const out: AccountFill[] = [];
  for (const f of [...first, ...rest]) {
    const k = fillKey(f);
    if (seen.has(k)) continue;
    seen.add(k);
    out.push(f);
  }
  return out;
}

/**
 * A fresh first page (on opening the tab, after a fill). When it reaches back into the fills
 * already shown, the older pages loaded stay, with their cursor; when it does not (more new
 * fills than a page since the last read), what lies between is unknown, so the list starts
 * over from this page rather than show a hole.
 */
export function applyFirstPage(view: TradesView | null, page: AccountFillsPage): TradesView {
  const restart = { fills: concatUnique(page.fills, []), nextCursor: page.nextCursor };
  // The last page holds the whole history.
  if (!view || page.nextCursor === null) return restart;
  const known = new Set(view.fills.map(fillKey));
  if (!page.fills.some((f) => known.has(fillKey(f)))) return restart;
  return { fills: concatUnique(page.fills, view.fills), nextCursor: view.nextCursor };
}

/**
 * The page after `cursor` ("Load more"), appended. Ignored when the list moved on meanwhile (a
 * restart from a fresh first page, another filter): it would continue a list no longer shown.
 */
export function applyOlderPage(view: TradesView | null, cursor: string, page: AccountFillsPage): TradesView | null {
  if (!view || view.nextCursor !== cursor) return view;
  return { fills: concatUnique(view.fills, page.fills), nextCursor: page.nextCursor };
}
