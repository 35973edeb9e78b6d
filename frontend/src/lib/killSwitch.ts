// The account's kill switch as the page shows it, and its words. The server takes a switch at
// once, but GET /api/accounts/me reads it from a store written asynchronously: for a moment
// after a switch, a read can still report the previous state.

/** How long a read disagreeing with the last switch is taken for the store lagging behind. */
export const KILL_SWITCH_SETTLE_MS = 10_000;

export interface KillSwitchView {
  /** The state shown; null until the account is first read. */
  on: boolean | null;
  /** The last switch the server took, until a read confirms it or the settle time passes. */
  requested: { on: boolean; at: number } | null;
}

export const KILL_SWITCH_UNKNOWN: KillSwitchView = { on: null, requested: null };

/** After the server took a switch: the requested state shows at once. */
export function afterSwitch(on: boolean, now: number): KillSwitchView {
  return { on, requested: { on, at: now } };
}

/**
 * After a read of the account. A read disagreeing with a recent switch is ignored; once one
 * agrees, or the settle time has passed, the server's state is the one shown (it may have been
 * switched elsewhere since).
 */
export function afterRead(view: KillSwitchView, on: boolean, now: number): KillSwitchView {
  const r = view.requested;
  if (r && r.on !== on && now - r.at < KILL_SWITCH_SETTLE_MS) return view;
  return view.on === on && !r ? view : { on, requested: null };
}

/**
 * Visible text, state tag and accessible name of the toggle. Its state is in `aria-pressed`, so
 * the name stays "Kill switch" except while it waits for the click that turns it off.
 */
export function killSwitchButton(
  on: boolean | null,
  confirming: boolean,
): { text: string; state: string; label: string } {
  const state = on === null ? '…' : on ? 'ON' : 'OFF';
  return confirming
    ? { text: 'Confirm kill switch off', state, label: 'Confirm: turn the kill switch off and allow new orders' }
    : { text: 'Kill switch', state, label: 'Kill switch' };
}

export const KILL_SWITCH_BANNER = 'Kill switch on: new orders and amends are refused; cancels still work.';

export const KILL_SWITCH_TICKET_HINT = 'Kill switch on: this order will be rejected (ACCOUNT_KILL_SWITCH).';

// The global kill switch is an operator's, not the account's: the page only shows it.
export const GLOBAL_KILL_SWITCH_BANNER =
  'Trading halted by an operator: new orders and amends are refused for every account; cancels still work.';

export const GLOBAL_KILL_SWITCH_TICKET_HINT = 'Trading halted: this order will be rejected (GLOBAL_KILL_SWITCH).';

/** The error notice when the server refused a switch. */
export function killSwitchFailedText(on: boolean, reason: string): string {
  return `Turning the kill switch ${on ? 'on' : 'off'} failed: ${reason}`;
}
