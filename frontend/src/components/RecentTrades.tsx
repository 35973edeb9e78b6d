import { memo } from 'react';
import type { Instrument, Trade } from '../api/types';
import { formatPrice, formatSize, formatTime } from '../lib/format';
import type { MarketFeed } from '../state/market';
import { useStore } from '../state/store';

export function RecentTrades({ market, instrument }: { market: MarketFeed; instrument: Instrument }) {
  const trades = useStore(market.trades);
  return (
    <section className="panel trades" aria-labelledby="trades-title" data-testid="recent-trades">
      <h2 id="trades-title" className="panel-title">
        Recent trades
      </h2>
      <div className="ladder-head" aria-hidden="true">
        <span>Price</span>
        <span>Size</span>
        <span>Time</span>
      </div>
      <ol className="trade-list">
        {trades.map((t) => (
          <TradeRow key={t.tradeId} t={t} tickSize={instrument.tickSize} stepSize={instrument.stepSize} />
        ))}
        {trades.length === 0 && <li className="muted empty">No trades yet</li>}
      </ol>
    </section>
  );
}

const TradeRow = memo(function TradeRow({ t, tickSize, stepSize }: { t: Trade; tickSize: string; stepSize: string }) {
  return (
    <li className="trade-row" data-trade-id={t.tradeId}>
      <span className={t.takerSide === 'BUY' ? 'up' : 'down'}>{formatPrice(t.price, tickSize)}</span>
      <span>{formatSize(t.quantity, stepSize)}</span>
      <span className="muted">{formatTime(t.at)}</span>
    </li>
  );
});
