import type { ConnState, MarketSocket } from '../api/socket';
import type { Instrument, Session } from '../api/types';
import { decimalsOf, formatCompact, formatPercent, formatPrice, formatSigned, signOf } from '../lib/format';
import type { MarketFeed } from '../state/market';
import { useStore } from '../state/store';

interface Props {
  session: Session;
  instruments: Instrument[];
  instrument: Instrument | null;
  onSelect: (symbol: string) => void;
  market: MarketFeed;
  socket: MarketSocket;
  onSignOut: () => void;
}

export function Header({ session, instruments, instrument, onSelect, market, socket, onSignOut }: Props) {
  return (
    <header className="app-header">
      <div className="brand" aria-hidden="true">
        crypto-oms
      </div>
      <label className="visually-hidden" htmlFor="symbol-select">
        Symbol
      </label>
      <select
        id="symbol-select"
        className="symbol-select"
        value={instrument?.symbol ?? ''}
        onChange={(e) => onSelect(e.target.value)}
        data-testid="symbol-select"
      >
        {instruments.map((i) => (
          <option key={i.symbol} value={i.symbol}>
            {i.symbol}
            {i.status !== 'TRADING' ? ` (${i.status})` : ''}
          </option>
        ))}
      </select>
      {instrument && <TickerStrip market={market} instrument={instrument} />}
      <div className="header-right">
        <Connection socket={socket} />
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
