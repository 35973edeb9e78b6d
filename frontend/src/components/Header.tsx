import { useState } from 'react';
import { errorText } from '../api/http';
import type { ConnState, MarketSocket } from '../api/socket';
import type { Instrument, Session } from '../api/types';
import { decimalsOf, formatCompact, formatPercent, formatPrice, formatSigned, signOf } from '../lib/format';
import { acceptsOrders, symbolOptionText } from '../lib/instruments';
import {
  GLOBAL_KILL_SWITCH_BANNER,
  KILL_SWITCH_BANNER,
  killSwitchButton,
  killSwitchFailedText,
} from '../lib/killSwitch';
import { isReadOnly, READ_ONLY_BADGE, READ_ONLY_BADGE_TITLE, readOnlyReason } from '../lib/session';
import type { AccountFeed } from '../state/account';
import type { MarketFeed } from '../state/market';
import { notify } from '../state/notices';
import { useSelector, useStore } from '../state/store';
import { useArmed } from './useArmed';

interface Props {
  session: Session;
  instruments: Instrument[];
  instrument: Instrument | null;
  onSelect: (symbol: string) => void;
  market: MarketFeed;
  account: AccountFeed;
  socket: MarketSocket;
  onSignOut: () => void;
}

export function Header({ session, instruments, instrument, onSelect, market, account, socket, onSignOut }: Props) {
  const readOnly = isReadOnly(session);
  return (
    <header className="app-header">
      <div className="brand" aria-hidden="true">
        crypto-oms
      </div>
      <label className="visually-hidden" htmlFor="symbol-select">
        Symbol
      </label>
      {/* A symbol that is not trading is marked in its option, and so in the closed selector. */}
      <select
        id="symbol-select"
        className={`symbol-select ${instrument && !acceptsOrders(instrument.status) ? 'not-trading' : ''}`}
        value={instrument?.symbol ?? ''}
        onChange={(e) => onSelect(e.target.value)}
        data-testid="symbol-select"
        data-status={instrument?.status}
      >
        {instruments.map((i) => (
          <option key={i.symbol} value={i.symbol} data-status={i.status}>
            {symbolOptionText(i)}
          </option>
        ))}
      </select>
      {instrument && <TickerStrip market={market} instrument={instrument} />}
      <div className="header-right">
        <KillSwitch account={account} readOnly={readOnly} />
        <Connection socket={socket} />
        {readOnly && (
          <span className="read-only-badge" title={READ_ONLY_BADGE_TITLE} data-testid="read-only-badge">
            {READ_ONLY_BADGE}
          </span>
        )}
        <span className="account" title={`Account ${session.accountId}`}>
          {session.name}
        </span>
        <button type="button" className="ghost" onClick={onSignOut}>
          Sign out
        </button>
      </div>
    </header>
  );
}

function TickerStrip({ market, instrument }: { market: MarketFeed; instrument: Instrument }) {
  const t = useStore(market.ticker);
  const tick = instrument.tickSize;
  const dir = signOf(t?.change24h);
  const cls = dir > 0 ? 'up' : dir < 0 ? 'down' : '';
  return (
    <dl className="ticker" data-testid="ticker" aria-label={`${instrument.symbol} ticker`}>
      <div className="ticker-last">
        <dt className="visually-hidden">Last price</dt>
        <dd className={cls} data-testid="ticker-last">
          {formatPrice(t?.last, tick)}
        </dd>
      </div>
      <div>
        <dt>24h change</dt>
        <dd className={cls}>
          {formatSigned(t?.change24h, decimalsOf(tick))}{' '}
          {t?.changePercent24h != null && `(${formatPercent(t.changePercent24h)})`}
        </dd>
      </div>
      <div>
        <dt>24h high</dt>
        <dd>{formatPrice(t?.high24h, tick)}</dd>
      </div>
      <div>
        <dt>24h low</dt>
        <dd>{formatPrice(t?.low24h, tick)}</dd>
      </div>
      <div>
        <dt>24h volume ({instrument.base})</dt>
        <dd>{formatCompact(t?.volume24h)}</dd>
      </div>
    </dl>
  );
}

/**
 * The account's kill switch. Turning it on is the safety action: one click. Turning it off lets
 * orders through again, so the first click only arms it and a second one sends. With a
 * read-only key it only shows the state.
 */
function KillSwitch({ account, readOnly }: { account: AccountFeed; readOnly: boolean }) {
  const on = useSelector(account.killSwitch, (v) => v.on);
  const [armed, setArmed] = useArmed();
  const [busy, setBusy] = useState(false);
  const confirming = armed && on === true;

  const click = async () => {
    if (readOnly) return;
    // Not known yet counts as off: turning it on needs no knowledge of the current state.
    const next = on !== true;
    if (!next && !confirming) {
      setArmed(true);
      return;
    }
    setArmed(false);
    setBusy(true);
    try {
      await account.setKillSwitch(next);
    } catch (e) {
      notify('error', killSwitchFailedText(next, errorText(e)));
    } finally {
      setBusy(false);
    }
  };

  const { text, state, label } = killSwitchButton(on, confirming);
  return (
    <button
      type="button"
      className={`small kill-switch ${on ? 'on' : ''} ${confirming ? 'armed' : ''}`}
      onClick={click}
      disabled={busy || readOnly}
      aria-pressed={on === true}
      aria-label={label}
      title={readOnly ? readOnlyReason('turning the kill switch on or off') : undefined}
      data-testid="kill-switch"
      data-state={on === null ? 'unknown' : on ? 'on' : 'off'}
    >
      {text}
      <span className="kill-switch-state" aria-hidden="true">
        {state}
      </span>
    </button>
  );
}

/** The strip under the header while a kill switch is on (the operators' global one first). */
export function KillSwitchBanner({ account }: { account: AccountFeed }) {
  const on = useSelector(account.killSwitch, (v) => v.on);
  const global = useStore(account.globalKillSwitch);
  if (global) {
    return (
      <div className="kill-banner" role="status" data-testid="global-kill-switch-banner">
        {GLOBAL_KILL_SWITCH_BANNER}
      </div>
    );
  }
  if (!on) return null;
  return (
    <div className="kill-banner" role="status" data-testid="kill-switch-banner">
      {KILL_SWITCH_BANNER}
    </div>
  );
}

const CONN_LABEL: Record<ConnState, string> = {
  connecting: 'Connecting',
  connected: 'Connected',
  reconnecting: 'Reconnecting',
  offline: 'Offline',
};

function Connection({ socket }: { socket: MarketSocket }) {
  const s = useStore(socket.status);
  return (
    <span className={`conn conn-${s}`} role="status" aria-live="polite" data-testid="connection" data-state={s}>
      <span className="conn-dot" aria-hidden="true" />
      {CONN_LABEL[s]}
    </span>
  );
}
