// Words of the orders panel's "Cancel all": the button names what it covers, since a mass
// cancel cannot be undone, and its confirmation states how many orders are about to go.
import type { CancelAllFilter } from '../api/types';

const orders = (count: number) => (count === 1 ? 'order' : 'orders');

/** "open orders", "open BTC/USD order", "open BTC/USD buy orders". */
function scope(filter: CancelAllFilter, noun: string): string {
  return ['open', filter.symbol, filter.side?.toLowerCase(), noun].filter(Boolean).join(' ');
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

/** The notice after the server took the request. */
export function cancelRequestedText(count: number): string {
  return `Cancel requested for ${count} ${orders(count)}`;
}
