import { lazy, Suspense, useEffect, useMemo, useState } from 'react';
import { api, loadInstruments } from '../api/http';
import { MarketSocket } from '../api/socket';
import { type Instrument, type Interval, INTERVALS, type Session } from '../api/types';
import { isReadOnly } from '../lib/session';
import { AccountFeed } from '../state/account';
import { watchInstruments } from '../state/instruments';
import { MarketFeed } from '../state/market';
import { clearNotices, notify } from '../state/notices';
import { Banner } from './Banner';
import { Header, KillSwitchBanner } from './Header';
import { OrderBook } from './OrderBook';
import { OrdersPanel } from './OrdersPanel';
import { OrderTicket, pickPrice } from './OrderTicket';
import { RecentTrades } from './RecentTrades';

// The chart library is the largest dependency: it loads while the rest of the screen paints.
const PriceChart = lazy(() => import('./PriceChart'));

const SYMBOL_KEY = 'oms.symbol';
const INTERVAL_KEY = 'oms.interval';

function savedInterval(): Interval {
  const v = localStorage.getItem(INTERVAL_KEY);
  return (INTERVALS as readonly string[]).includes(v ?? '') ? (v as Interval) : '1m';
}

interface Feeds {
  socket: MarketSocket;
  market: MarketFeed;
  account: AccountFeed;
}

export function TradingScreen(props: { session: Session; onSignOut: () => void }) {
  // Created in an effect (not during render) so that mounting twice never shares a disposed feed.
  const [feeds, setFeeds] = useState<Feeds | null>(null);
  useEffect(() => {
    const socket = new MarketSocket();
    const market = new MarketFeed(socket);
    const account = new AccountFeed(socket);
    // Server-side feed errors (a refused channel, a slow-consumer cut) go to the banner.
    const offControl = socket.onControl((m) => {
      if (m.type === 'error') notify('error', `Live feed: ${m.message ?? m.code}${m.channel ? ` (${m.channel})` : ''}`);
      // The server ended the private channel: the key was revoked or the session expired. A
      // request now answers 401, which signs the page out rather than leave it half working.
      if (m.type === 'error' && m.code === 'UNAUTHORIZED' && m.channel === 'orders') {
        api.account().catch(() => undefined);
      }
    });
    socket.start();
    // A handle for the browser tests and the performance probe (drop the connection, count
    // streamed trades); it holds no credentials.
    (window as unknown as { __oms?: Feeds }).__oms = { socket, market, account };
    setFeeds({ socket, market, account });
    return () => {
      offControl();
      market.dispose();
      account.dispose();
      socket.stop();
      // Signed out (or signed in as another key): this session's messages go with it.
      clearNotices();
    };
  }, []);
  if (!feeds) return <div className="app" />;
  return <Screen {...props} {...feeds} />;
}

function Screen({ session, onSignOut, socket, market, account }: { session: Session; onSignOut: () => void } & Feeds) {
  const [instruments, setInstruments] = useState<Instrument[]>([]);
  const [symbol, setSymbol] = useState<string | null>(null);
  const [interval, setIntervalState] = useState<Interval>(savedInterval);

  // Read once, then kept current by the pushed statuses: an operator may halt a symbol meanwhile.
  useEffect(
    () =>
      watchInstruments({
        socket,
        load: loadInstruments,
        onList: (list) => {
          setInstruments(list);
          setSymbol((s) => {
            if (s !== null) return s;
            const saved = localStorage.getItem(SYMBOL_KEY);
            return list.some((i) => i.symbol === saved) ? saved : (list[0]?.symbol ?? null);
          });
        },
      }),
    [socket],
  );

  useEffect(() => {
    market.select(symbol);
    if (symbol) localStorage.setItem(SYMBOL_KEY, symbol);
  }, [market, symbol]);

  const byId = useMemo(() => new Map(instruments.map((i) => [i.symbol, i])), [instruments]);
  // A read-only key sees everything but has no control that would send a change.
  const readOnly = isReadOnly(session);
  const instrument = symbol ? (byId.get(symbol) ?? null) : null;

  const chooseInterval = (i: Interval) => {
    setIntervalState(i);
    localStorage.setItem(INTERVAL_KEY, i);
  };

  return (
    <div className="app">
      <Header
        session={session}
        instruments={instruments}
        instrument={instrument}
        onSelect={setSymbol}
        market={market}
        account={account}
        socket={socket}
        onSignOut={onSignOut}
      />
      <KillSwitchBanner account={account} />
      <Banner />
      {instrument ? (
        <main className="layout">
          <section className="panel chart" aria-label={`${instrument.symbol} chart`}>
            <div className="chart-toolbar" role="group" aria-label="Candle interval">
              {INTERVALS.map((i) => (
                <button
                  key={i}
                  type="button"
                  className={`seg small ${i === interval ? 'on' : ''}`}
                  aria-pressed={i === interval}
                  onClick={() => chooseInterval(i)}
                  data-testid={`interval-${i}`}
                >
                  {i}
                </button>
              ))}
            </div>
            <Suspense fallback={<div className="chart-overlay">Loading chart…</div>}>
              <PriceChart socket={socket} instrument={instrument} interval={interval} />
            </Suspense>
          </section>
          <OrderBook market={market} instrument={instrument} onPick={pickPrice} />
          <RecentTrades market={market} instrument={instrument} />
          <OrderTicket instrument={instrument} market={market} account={account} readOnly={readOnly} />
          <OrdersPanel account={account} instruments={byId} readOnly={readOnly} />
        </main>
      ) : (
        <main className="layout-empty muted">{instruments.length ? 'Choose a symbol' : 'Loading instruments…'}</main>
      )}
    </div>
  );
}
