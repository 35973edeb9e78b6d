// The instruments' trading status as the page shows it. An operator can halt a symbol at runtime
// (PUT /api/admin/instruments/status); the page re-reads GET /api/instruments to see it.
//   TRADING      everything is taken
//   CANCEL_ONLY  new orders and amends are refused; cancels work
//   HALTED       new orders, amends and cancels are refused
// Resting orders stay in the book in every status.
import type { Instrument } from '../api/types';

/** How often the page re-reads the instrument list while it is visible. */
export const INSTRUMENTS_POLL_MS = 5_000;

export const TRADING = 'TRADING';

/** Whether the symbol takes new orders (the ticket sends only then). */
export function acceptsOrders(status: string): boolean {
  return status === TRADING;
}

/** Whether the symbol takes amends: as new orders, only while trading. */
export function acceptsAmends(status: string): boolean {
  return status === TRADING;
}

/**
 * Whether the symbol takes cancels: everywhere but HALTED. A status this page does not know
 * keeps its cancels: the server decides, and a cancel hidden in an emergency is worse than one
 * refused.
 */
export function acceptsCancels(status: string): boolean {
  return status !== 'HALTED';
}

/** The status as words: "HALTED", "CANCEL ONLY". */
export function statusText(status: string): string {
  return status.replace(/_/g, ' ');
}

/** The symbol selector's option: "BTC/USD", or "SOL/USD · HALTED" when it is not trading. */
export function symbolOptionText(instrument: Pick<Instrument, 'symbol' | 'status'>): string {
  return acceptsOrders(instrument.status)
    ? instrument.symbol
    : `${instrument.symbol} · ${statusText(instrument.status)}`;
}

/** Why an order's amend is disabled ("BTC/USD is HALTED: amends are refused"); null when it is not. */
export function amendRefusedReason(instrument: Pick<Instrument, 'symbol' | 'status'>): string | null {
  return acceptsAmends(instrument.status) ? null : `${instrument.symbol} is ${instrument.status}: amends are refused`;
}

/** Why an order's cancel is disabled ("BTC/USD is HALTED: cancels are refused"); null when it is not. */
export function cancelRefusedReason(instrument: Pick<Instrument, 'symbol' | 'status'>): string | null {
  return acceptsCancels(instrument.status) ? null : `${instrument.symbol} is ${instrument.status}: cancels are refused`;
}

/** The error notice when the list could not be read; `known` when an earlier read is still shown. */
export function instrumentsFailedText(reason: string, known: boolean): string {
  return known
    ? `Instrument statuses not refreshed: ${reason} (the last ones read are shown)`
    : `Instruments unavailable: ${reason}`;
}

function sameInstrument(a: Instrument, b: Instrument): boolean {
  if (a === b) return true;
  const ka = Object.keys(a) as (keyof Instrument)[];
  return ka.length === Object.keys(b).length && ka.every((k) => Object.is(a[k], b[k]));
}

/**
 * The list to show after a read: `prev` itself when nothing changed (so nothing re-renders),
 * otherwise `next` with every unchanged instrument kept as the object already shown (so only
 * what shows a changed one re-renders).
 */
export function mergeInstruments(prev: Instrument[], next: Instrument[]): Instrument[] {
  const old = new Map(prev.map((i) => [i.symbol, i]));
  let changed = prev.length !== next.length;
  const out = next.map((i, n) => {
    const known = old.get(i.symbol);
    if (known && sameInstrument(known, i)) {
      if (prev[n] !== known) changed = true;
      return known;
    }
    changed = true;
    return i;
  });
  return changed ? out : prev;
}
