// The trades tab: the account's own fills across all its orders (`GET /api/fills`), newest
// first, a page at a time. It lives only while the tab is shown: opening the tab reads the first
// page again, and so does a fill reported by the private `orders` channel (no polling).
import { memo, useCallback, useEffect, useRef, useState } from 'react';
import { api, errorText } from '../api/http';
import type { AccountFill, Instrument } from '../api/types';
import { formatDateTime, formatPrice, formatSize } from '../lib/format';
import {
  applyFirstPage,
  applyOlderPage,
  exportHref,
  fillKey,
  formatNotional,
  liquidityLabel,
  notional,
  TRADES_PAGE,
  type TradesView,
} from '../lib/trades';
import type { AccountFeed } from '../state/account';
import { notify } from '../state/notices';

/**
 * Wait after a fill before reading the history again: the fills of one sweep arrive together,
 * and the read model stores a fill moments after the channel reports it.
 */
const FILL_REFRESH_MS = 300;
/**
 * And read once more this long after the last fill reported: the channel reads the log, the
 * history the order store, which a busy processor may write seconds later.
 */
const FILL_SETTLE_MS = 3_000;

interface TradeHistory {
  /** Null until the first page arrives. */
  view: TradesView | null;
  /** Why the first page could not be read, while nothing is shown. */
  error: string | null;
  loadingMore: boolean;
  loadMore: () => void;
}

/** The history of `symbol` ('' for all), kept fresh while mounted. */
function useTradeHistory(account: AccountFeed, symbol: string): TradeHistory {
  const [view, setView] = useState<TradesView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loadingMore, setLoadingMore] = useState(false);
  // Bumped by each new filter, so that an answer for a previous one is dropped.
  const generation = useRef(0);

  useEffect(() => {
    const gen = ++generation.current;
    const live = () => generation.current === gen;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let settle: ReturnType<typeof setTimeout> | null = null;
    let inFlight = false;
    let again = false;
    setView(null);
    setError(null);
    setLoadingMore(false);

    // One read at a time; fills reported during it get one more read after it.
    const load = () => {
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = true;
      api
        .accountFills({ symbol: symbol || undefined, limit: TRADES_PAGE })
        .then(
          (page) => {
            if (!live()) return;
            setView((prev) => applyFirstPage(prev, page));
            setError(null);
          },
          (e: unknown) => {
            if (live()) setError(errorText(e));
          },
        )
        .finally(() => {
          inFlight = false;
          if (live() && again) {
            again = false;
            load();
          }
        });
    };
    // Throttled rather than debounced: a bot filling all the time must not starve the tab.
    const soon = () => {
      timer ??= setTimeout(() => {
        timer = null;
        load();
      }, FILL_REFRESH_MS);
      if (settle) clearTimeout(settle);
      settle = setTimeout(() => {
        settle = null;
        load();
      }, FILL_SETTLE_MS);
    };

    load();
    const off = account.fillsChanged.subscribe(soon);
    return () => {
      generation.current++;
      off();
      if (timer) clearTimeout(timer);
      if (settle) clearTimeout(settle);
    };
  }, [account, symbol]);

  const cursor = view?.nextCursor ?? null;
  const loadMore = useCallback(() => {
    if (!cursor) return;
    const gen = generation.current;
    setLoadingMore(true);
    api
      .accountFills({ symbol: symbol || undefined, limit: TRADES_PAGE, cursor })
      .then(
        (page) => {
          if (generation.current === gen) setView((prev) => applyOlderPage(prev, cursor, page));
        },
        (e: unknown) => notify('error', `Older trades: ${errorText(e)}`),
      )
      .finally(() => {
        if (generation.current === gen) setLoadingMore(false);
      });
  }, [cursor, symbol]);

  return { view, error, loadingMore, loadMore };
}

interface Props {
  account: AccountFeed;
  instruments: ReadonlyMap<string, Instrument>;
  /** '' for every symbol. */
  symbol: string;
}

export function Trades({ account, instruments, symbol }: Props) {
  const { view, error, loadingMore, loadMore } = useTradeHistory(account, symbol);
  // A failed background read keeps the rows shown; only an empty tab says why it is empty.
  if (!view) return <p className="muted empty">{error ? `Trades unavailable: ${error}` : 'Loading trades…'}</p>;
  if (view.fills.length === 0) {
    return <p className="muted empty">{symbol ? `No ${symbol} trades yet` : 'No trades yet'}</p>;
  }
  return (
    <>
      <table className="grid" data-testid="trades">
        <thead>
          <tr>
            <th>Time</th>
            <th>Symbol</th>
            <th>Side</th>
            <th className="num">Price</th>
            <th className="num">Quantity</th>
            <th className="num">Notional</th>
            <th className="num">Fee</th>
            <th>Liquidity</th>
            <th>Order</th>
          </tr>
        </thead>
        <tbody>
          {view.fills.map((f) => (
            <TradeRow key={fillKey(f)} fill={f} inst={instruments.get(f.symbol)} />
          ))}
        </tbody>
      </table>
      {view.nextCursor && (
        <p className="more">
          <button
            type="button"
            className="small ghost"
            onClick={loadMore}
            disabled={loadingMore}
            data-testid="trades-more"
          >
            {loadingMore ? 'Loading…' : 'Load more'}
          </button>
        </p>
      )}
    </>
  );
}

/** Which symbol the trades tab lists; the server filters (`symbol=`), so pages stay full. */
export function TradeSymbolFilter({
  value,
  onChange,
  instruments,
}: {
  value: string;
  onChange: (symbol: string) => void;
  instruments: ReadonlyMap<string, Instrument>;
}) {
  return (
    <span className="head-tools">
      <select
        className="head-select"
        aria-label="Symbol of the trades shown"
        aria-controls="tabpanel-trades"
        value={value}
        onChange={(e) => onChange(e.target.value)}
        data-testid="trades-symbol"
      >
        <option value="">All symbols</option>
        {[...instruments.keys()].map((s) => (
          <option key={s} value={s}>
            {s}
          </option>
        ))}
      </select>
      {/* The whole history of the filter, not just the pages shown: the server streams it. */}
      <a
        className="head-link"
        href={exportHref(value)}
        download="fills.csv"
        title="Every trade of this filter as CSV"
        data-testid="trades-export"
      >
        Export CSV
      </a>
    </span>
  );
}

const TradeRow = memo(function TradeRow({ fill: f, inst }: { fill: AccountFill; inst?: Instrument }) {
  const tick = inst?.tickSize ?? '0.00000001';
  const step = inst?.stepSize ?? '0.00000001';
  const value = notional(f.price, f.quantity);
  // The exact server values ride along in data-raw: the display is grouped and padded.
  return (
    <tr data-testid="trade-row" data-order-id={f.orderId} data-trade-id={f.tradeId}>
      <td>{formatDateTime(f.at)}</td>
      <td data-testid="trade-symbol">{f.symbol}</td>
      <td className={f.side === 'BUY' ? 'up' : 'down'} data-testid="trade-side">
        {f.side}
      </td>
      <td className="num" data-testid="trade-price" data-raw={f.price}>
        {formatPrice(f.price, tick)}
      </td>
      <td className="num" data-testid="trade-quantity" data-raw={f.quantity}>
        {formatSize(f.quantity, step)}
      </td>
      <td className="num" data-testid="trade-notional" data-raw={value}>
        {formatNotional(value, tick)} {inst?.quote}
      </td>
      <td className="num">
        {f.fee} {f.feeAsset}
      </td>
      <td data-testid="trade-liquidity">{liquidityLabel(f.liquidity)}</td>
      <td data-testid="trade-order">{f.orderId}</td>
    </tr>
  );
});
