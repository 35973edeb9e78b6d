// What the orders panel's "Cancel all" covers and its words: the button names its scope, since
// a mass cancel cannot be undone, and its confirmation states how many orders are about to go.
// The venue refuses clients' cancels on a HALTED symbol: those orders stay open, and the button
// says so (or is disabled when nothing else is left to cancel) rather than fail silently.
import type { CancelAllFilter, Instrument, Order } from '../api/types';
import { acceptsCancels } from './instruments';

const orders = (count: number) => (count === 1 ? 'order' : 'orders');

/** "BTC/USD", "BTC/USD and SOL/USD", "BTC/USD, ETH/USD and SOL/USD". */
function names(symbols: string[]): string {
  return symbols.length < 2 ? symbols.join('') : `${symbols.slice(0, -1).join(', ')} and ${symbols.at(-1)}`;
}

/** "open orders", "open BTC/USD order", "open BTC/USD buy orders". */
function scope(filter: CancelAllFilter, noun: string): string {
  return ['open', filter.symbol, filter.side?.toLowerCase(), noun].filter(Boolean).join(' ');
}

export interface CancelAllScope {
  /** The open orders in the filter that the venue will cancel. */
  count: number;
  /** The open orders in the filter on halted symbols: they stay open. */
  left: number;
  /** Those halted symbols, sorted. */
  halted: string[];
  /** Why the button is disabled by a halt (its symbol, or every order it covers, is halted); else null. */
  refused: string | null;
}

/** Splits the open orders `filter` covers into those the venue will cancel and those it will not. */
export function cancelAllScope(
  filter: CancelAllFilter,
  open: readonly Pick<Order, 'symbol' | 'side'>[],
  instruments: ReadonlyMap<string, Pick<Instrument, 'status'>>,
): CancelAllScope {
  const isHalted = (symbol: string) => {
    const status = instruments.get(symbol)?.status;
    return status !== undefined && !acceptsCancels(status);
  };
  const covered = open.filter(
    (o) => (!filter.symbol || o.symbol === filter.symbol) && (!filter.side || o.side === filter.side),
  );
  const stay = covered.filter((o) => isHalted(o.symbol));
  const halted = [...new Set(stay.map((o) => o.symbol))].sort();
  const count = covered.length - stay.length;
  const blocking = filter.symbol && isHalted(filter.symbol) ? [filter.symbol] : count === 0 ? halted : [];
  const refused = blocking.length
    ? `${names(blocking)} ${blocking.length === 1 ? 'is' : 'are'} halted: cancels are refused`
    : null;
  return { count, left: stay.length, halted, refused };
}

/** "2 orders on halted BTC/USD will not be cancelled"; null when none will be left. */
export function haltedNote({ left, halted }: Pick<CancelAllScope, 'left' | 'halted'>): string | null {
  return left ? `${left} ${orders(left)} on halted ${names(halted)} will not be cancelled` : null;
}

/** Visible text and accessible name of the button, before and during its confirmation. */
export function cancelAllButton(
  filter: CancelAllFilter,
  count: number,
  confirming: boolean,
): { text: string; label: string } {
  return confirming
    ? { text: `Confirm cancel all (${count})`, label: `Confirm: cancel ${count} ${scope(filter, orders(count))}` }
    : { text: 'Cancel all', label: `Cancel all ${scope(filter, 'orders')}` };
}

/** The notice after the server took the request: `s` splits the orders it answered. */
export function cancelRequestedText(s: Pick<CancelAllScope, 'count' | 'left' | 'halted'>): string {
  const note = haltedNote(s);
  return `Cancel requested for ${s.count} ${orders(s.count)}${note ? `; ${note}` : ''}`;
}
