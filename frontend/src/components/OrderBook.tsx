import { type CSSProperties, type KeyboardEvent, memo } from 'react';
import type { Instrument } from '../api/types';
import { formatPrice, formatSize } from '../lib/format';
import type { LadderRow } from '../lib/orderBook';
import type { MarketFeed } from '../state/market';
import { useStore } from '../state/store';

interface Props {
  market: MarketFeed;
  instrument: Instrument;
  onPick: (price: string) => void;
}

/** Arrow keys move between ladder rows, so the whole ladder is a single Tab stop. */
function onLadderKey(e: KeyboardEvent<HTMLElement>) {
  if (e.key !== 'ArrowUp' && e.key !== 'ArrowDown') return;
  const rows = [...e.currentTarget.querySelectorAll<HTMLButtonElement>('.ladder-row')];
  const i = rows.indexOf(document.activeElement as HTMLButtonElement);
  if (i < 0) return;
  e.preventDefault();
  rows[Math.max(0, Math.min(rows.length - 1, i + (e.key === 'ArrowDown' ? 1 : -1)))].focus();
}

/** Bid/ask ladder: asks above (best at the bottom), bids below; click a price for the ticket. */
export function OrderBook({ market, instrument, onPick }: Props) {
  const view = useStore(market.book);
  const max = Number(view.maxCumulative) || 1;
  const { tickSize, stepSize } = instrument;
  const asks = view.asks.slice().reverse();
  return (
    <section className="panel book" aria-labelledby="book-title" data-testid="order-book" onKeyDown={onLadderKey}>
      <h2 id="book-title" className="panel-title">
        Order book
      </h2>
      <div className="ladder-head" aria-hidden="true">
        <span>Price ({instrument.quote})</span>
        <span>Size ({instrument.base})</span>
        <span>Total</span>
      </div>
      <div className="ladder asks" role="list" aria-label="Asks">
        {asks.map((r, i) => (
          <Row
            key={r.price}
            row={r}
            side="ask"
            max={max}
            tickSize={tickSize}
            stepSize={stepSize}
            onPick={onPick}
            tabStop={view.bids.length === 0 && i === asks.length - 1}
          />
        ))}
      </div>
      <div className="spread" data-testid="spread">
        {view.spread !== null ? (
          <>
            Spread <strong>{formatPrice(view.spread, tickSize)}</strong>
          </>
        ) : (
          <span className="muted">{view.bids.length || view.asks.length ? 'One-sided book' : 'Empty book'}</span>
        )}
      </div>
      <div className="ladder bids" role="list" aria-label="Bids">
        {view.bids.map((r, i) => (
          <Row
            key={r.price}
            row={r}
            side="bid"
            max={max}
            tickSize={tickSize}
            stepSize={stepSize}
            onPick={onPick}
            tabStop={i === 0}
          />
        ))}
      </div>
    </section>
  );
}

interface RowProps {
  row: LadderRow;
  side: 'bid' | 'ask';
  max: number;
  tickSize: string;
  stepSize: string;
  onPick: (price: string) => void;
  /** The one row reached with Tab (the best bid); the others by arrow keys. */
  tabStop: boolean;
}

const Row = memo(function Row({ row, side, max, tickSize, stepSize, onPick, tabStop }: RowProps) {
  const pct = Math.min(100, (Number(row.cumulative) / max) * 100);
  return (
    <button
      type="button"
      role="listitem"
      className={`ladder-row ${side}`}
      style={{ '--depth': `${pct.toFixed(1)}%` } as CSSProperties}
      tabIndex={tabStop ? 0 : -1}
      onClick={() => onPick(row.price)}
      title={`Use ${row.price} as the ticket price`}
      aria-label={`${side === 'bid' ? 'Bid' : 'Ask'} ${formatPrice(row.price, tickSize)}, size ${formatSize(row.quantity, stepSize)}`}
      data-price={row.price}
    >
      <span className="px">{formatPrice(row.price, tickSize)}</span>
      <span>{formatSize(row.quantity, stepSize)}</span>
      <span className="muted">{formatSize(row.cumulative, stepSize)}</span>
    </button>
  );
});
