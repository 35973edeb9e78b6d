// The instruments' trading status as the page shows it. An operator can halt a symbol at runtime
// (PUT /api/admin/instruments/status); the venue pushes each change on `status:{symbol}`.
//   TRADING      everything is taken
//   CANCEL_ONLY  new orders and amends are refused; cancels work
//   HALTED       new orders, amends and clients' cancels are refused
// Resting orders stay in the book in every status.
import type { Instrument, WsDataMessage } from '../api/types';

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

/** The status in words: "Trading", "Cancel only", "Halted" (any other enum name alike). */
export function statusText(status: string): string {
  return status.charAt(0) + status.slice(1).toLowerCase().replace(/_/g, ' ');
}

type Named = Pick<Instrument, 'symbol' | 'status'>;

/** "BTC/USD is halted", "BTC/USD is cancel only". */
function isStatus(instrument: Named): string {
  return `${instrument.symbol} is ${statusText(instrument.status).toLowerCase()}`;
}

/** The symbol selector's option: "BTC/USD", or "SOL/USD · Halted" when it is not trading. */
export function symbolOptionText(instrument: Named): string {
  return acceptsOrders(instrument.status)
    ? instrument.symbol
    : `${instrument.symbol} · ${statusText(instrument.status)}`;
}

/** The ticket's note while the symbol refuses new orders: "SOL/USD is halted: new orders are refused." */
export function ticketRefusedText(instrument: Named): string {
  return `${isStatus(instrument)}: new orders are refused.`;
}

/** Why an order's amend is disabled ("BTC/USD is halted: amends are refused"); null when it is not. */
export function amendRefusedReason(instrument: Named): string | null {
  return acceptsAmends(instrument.status) ? null : `${isStatus(instrument)}: amends are refused`;
}

/** Why an order's cancel is disabled ("BTC/USD is halted: cancels are refused"); null when it is not. */
export function cancelRefusedReason(instrument: Named): string | null {
  return acceptsCancels(instrument.status) ? null : `${isStatus(instrument)}: cancels are refused`;
}

/** The error notice while the list cannot be read. */
export function instrumentsFailedText(reason: string): string {
  return `Instruments unavailable: ${reason} (retrying)`;
}

const STATUS_PREFIX = 'status:';

/** The WebSocket channel of a symbol's trading status. */
export function statusChannel(symbol: string): string {
  return STATUS_PREFIX + symbol;
}

/**
 * The list after a message of the socket: a `status:{symbol}` message changes that instrument's
 * status. Anything else (another channel, a symbol not in the list, data that does not name the
 * channel's symbol or carries no status) leaves the list, the same object, as it was; so does a
 * status already shown. Unchanged instruments stay the objects shown, so only what shows the
 * changed one re-renders.
 */
export function applyStatusMessage(list: Instrument[], msg: WsDataMessage): Instrument[] {
  if (!msg.channel.startsWith(STATUS_PREFIX)) return list;
  const symbol = msg.channel.slice(STATUS_PREFIX.length);
  const data = msg.data as { symbol?: unknown; status?: unknown } | null;
  if (!data || data.symbol !== symbol || typeof data.status !== 'string' || !data.status) return list;
  const status = data.status;
  const at = list.findIndex((i) => i.symbol === symbol);
  if (at < 0 || list[at].status === status) return list;
  return list.map((i, n) => (n === at ? { ...i, status } : i));
}
