// The session's key scope and the words of the read-only view. A READ key reads everything a
// TRADE key does (orders, fills, balances, market data, the private orders channel), but the
// server refuses its orders, amends, cancels and kill switch (403 READ_ONLY_KEY).
import type { KeyScope, Session } from '../api/types';

/** `GET /api/session` as the server sends it: a server from before key scopes sends no scope. */
export interface SessionWire {
  accountId: number;
  name: string;
  scope?: string | null;
}

/**
 * The session with its scope made explicit. No scope (an older server) is a trading key, and so
 * is a scope this page does not know: the server decides in any case, and hiding controls from a
 * key that may use them (cancels in an emergency) would be worse than a refusal in the banner.
 */
export function toSession(wire: SessionWire): Session {
  const scope: KeyScope = wire.scope === 'READ' ? 'READ' : 'TRADE';
  return { accountId: wire.accountId, name: wire.name, scope };
}

/** Whether the page shows the account without its trading controls. */
export function isReadOnly(session: Pick<Session, 'scope'>): boolean {
  return session.scope === 'READ';
}

export const READ_ONLY_BADGE = 'Read-only key';

export const READ_ONLY_BADGE_TITLE =
  'Signed in with a read-only API key: orders, trades and balances show as usual, but orders cannot be ' +
  'placed, amended or cancelled and the kill switch cannot be changed.';

export const READ_ONLY_TICKET_NOTE = 'Read-only key: placing orders needs a trading key.';

/** Why a control is disabled: "Read-only key: cancelling orders needs a trading key". */
export function readOnlyReason(action: string): string {
  return `Read-only key: ${action} needs a trading key`;
}
