// Level-2 order book kept from a snapshot plus sequenced level updates. An update carries the
// new total of one price level (0 removes it) and seq = previous seq + 1; anything else after
// the snapshot is a gap, and the book must be rebuilt from a fresh snapshot.
import type { DepthLevel, DepthUpdate, Side } from '../api/types';
import { add, cmp, type Dec, isZero, normalize, parseDec, sub, toFixed, toStr, ZERO } from './decimal';

interface Level {
  price: string;
  quantity: string;
  p: Dec;
  q: Dec;
}

export interface BookState {
  /** Seq of the last snapshot or update applied; null before the first snapshot. */
  seq: number | null;
  bids: Map<string, Level>;
  asks: Map<string, Level>;
  /** Bumped on every change, so views can memoise on it. */
  version: number;
}

export type UpdateResult = 'applied' | 'stale' | 'gap' | 'no-snapshot';

export function createBook(): BookState {
  return { seq: null, bids: new Map(), asks: new Map(), version: 0 };
}

function setLevel(side: Map<string, Level>, price: string, quantity: string): void {
  const p = parseDec(price);
  const q = parseDec(quantity);
  if (!p || !q) return;
  const key = toStr(normalize(p));
  if (isZero(q)) side.delete(key);
  else side.set(key, { price, quantity, p, q });
}

/** Replaces the whole book. */
export function applySnapshot(book: BookState, seq: number, bids: DepthLevel[], asks: DepthLevel[]): void {
  book.bids.clear();
  book.asks.clear();
  for (const [p, q] of bids) setLevel(book.bids, p, q);
  for (const [p, q] of asks) setLevel(book.asks, p, q);
  book.seq = seq;
  book.version++;
}

/**
 * Applies one level update. Old or repeated seqs are ignored ('stale'); a seq that skips ahead
 * leaves the book untouched and reports 'gap' so the caller resynchronises.
 */
export function applyUpdate(book: BookState, u: DepthUpdate): UpdateResult {
  if (book.seq === null) return 'no-snapshot';
  if (u.seq <= book.seq) return 'stale';
  if (u.seq !== book.seq + 1) return 'gap';
  setLevel(sideOf(book, u.side), u.price, u.quantity);
  book.seq = u.seq;
  book.version++;
  return 'applied';
}

function sideOf(book: BookState, side: Side): Map<string, Level> {
  return side === 'BUY' ? book.bids : book.asks;
}

export function clearBook(book: BookState): void {
  book.bids.clear();
  book.asks.clear();
  book.seq = null;
  book.version++;
}

export interface LadderRow {
  price: string;
  quantity: string;
  /** Sum of sizes from the best price to this one. */
  cumulative: string;
}

export interface BookView {
  bids: LadderRow[];
  asks: LadderRow[];
  bestBid: string | null;
  bestAsk: string | null;
  spread: string | null;
  /** Largest cumulative size on either side: scales the depth bars. */
  maxCumulative: string;
}

function topLevels(side: Map<string, Level>, depth: number, descending: boolean): LadderRow[] {
  const levels = [...side.values()];
  levels.sort((a, b) => (descending ? cmp(b.p, a.p) : cmp(a.p, b.p)));
  const rows: LadderRow[] = [];
  let cum: Dec = ZERO;
  for (let i = 0; i < levels.length && i < depth; i++) {
    cum = add(cum, levels[i].q);
    rows.push({ price: levels[i].price, quantity: levels[i].quantity, cumulative: toStr(cum) });
  }
  return rows;
}

/** Best `depth` levels per side, best first, with cumulative sizes and the spread. */
export function bookView(book: BookState, depth: number): BookView {
  const bids = topLevels(book.bids, depth, true);
  const asks = topLevels(book.asks, depth, false);
  const bestBid = bids[0]?.price ?? null;
  const bestAsk = asks[0]?.price ?? null;
  let spread: string | null = null;
  if (bestBid !== null && bestAsk !== null) {
    const bb = parseDec(bestBid)!;
    const ba = parseDec(bestAsk)!;
    spread = toFixed(sub(ba, bb), Math.max(bb.scale, ba.scale));
  }
  const lastBid = bids.at(-1)?.cumulative ?? '0';
  const lastAsk = asks.at(-1)?.cumulative ?? '0';
  const maxCumulative = cmp(parseDec(lastBid)!, parseDec(lastAsk)!) >= 0 ? lastBid : lastAsk;
  return { bids, asks, bestBid, bestAsk, spread, maxCumulative };
}
