// Public market data of the selected symbol: ticker, order book and recent trades, loaded over
// REST and then kept live from the WebSocket. Views are recomputed once per delivered batch.
import { api } from '../api/http';
import type { MarketSocket } from '../api/socket';
import type { Depth, DepthLevel, DepthUpdate, Ticker, Trade, WsDataMessage } from '../api/types';
import { applySnapshot, applyUpdate, type BookView, bookView, clearBook, createBook } from '../lib/orderBook';
import { Store } from './store';

const LADDER_DEPTH = 14;
/** Enough rows to fill the trades panel at 1920×1080. */
const TRADES_KEPT = 24;
const POLL_MS = 5_000;

const EMPTY_VIEW: BookView = { bids: [], asks: [], bestBid: null, bestAsk: null, spread: null, maxCumulative: '0' };

export class MarketFeed {
  readonly ticker = new Store<Ticker | null>(null);
  readonly book = new Store<BookView>(EMPTY_VIEW);
  readonly trades = new Store<Trade[]>([]);
  /** Count of trade messages received, for the performance probe. */
  tradeCount = 0;

  private readonly state = createBook();
  private symbol: string | null = null;
  private releases: (() => void)[] = [];
  private resyncing = false;
  private bookShown = false;
  private readonly offBatch: () => void;
  private readonly offOpen: () => void;
  private readonly offPoll: () => void;

  constructor(private readonly socket: MarketSocket) {
    this.offBatch = socket.onBatch(this.onBatch);
    this.offOpen = socket.onOpen((reconnected) => {
      // The server re-sends a depth snapshot on subscribe; REST fills what the gap missed. The
      // old seq is forgotten: a restarted server may number its book afresh.
      if (reconnected && this.symbol) {
        this.state.seq = null;
        this.loadRest(this.symbol);
      }
    });
    // Without the live feed, REST snapshots every few seconds keep the screen from freezing.
    this.offPoll = socket.whileDisconnected(() => {
      if (this.symbol) this.loadRest(this.symbol);
    }, POLL_MS);
  }

  dispose(): void {
    this.select(null);
    this.offBatch();
    this.offOpen();
    this.offPoll();
  }

  select(symbol: string | null): void {
    if (symbol === this.symbol) return;
    for (const r of this.releases) r();
    this.releases = [];
    this.symbol = symbol;
    clearBook(this.state);
    this.resyncing = false;
    this.ticker.set(null);
    this.book.set(EMPTY_VIEW);
    this.trades.set([]);
    if (!symbol) return;
    this.releases = [`ticker:${symbol}`, `trades:${symbol}`, `depth:${symbol}`].map((c) => this.socket.subscribe(c));
    this.loadRest(symbol);
  }

  private loadRest(symbol: string): void {
    api.ticker(symbol).then(
      (t) => symbol === this.symbol && this.ticker.set(t),
      () => undefined,
    );
    api.trades(symbol, TRADES_KEPT).then(
      (t) => symbol === this.symbol && this.mergeTrades(t),
      () => undefined,
    );
    api.depth(symbol, 50).then(
      (d) => symbol === this.symbol && this.snapshot(d.seq, d.bids, d.asks) && this.publishBook(),
      () => undefined,
    );
  }

  /** Applies a snapshot unless the book already holds a newer state. */
  private snapshot(seq: number, bids: DepthLevel[], asks: DepthLevel[]): boolean {
    if (this.state.seq !== null && seq < this.state.seq) return false;
    applySnapshot(this.state, seq, bids, asks);
    this.resyncing = false;
    return true;
  }

  private resync(): void {
    if (this.resyncing || !this.symbol) return;
    this.resyncing = true;
    const symbol = this.symbol;
    this.socket.resubscribe(`depth:${symbol}`);
    api.depth(symbol, 50).then(
      (d: Depth) => symbol === this.symbol && this.snapshot(d.seq, d.bids, d.asks) && this.publishBook(),
      () => undefined,
    );
  }

  private publishBook(): void {
    const view = bookView(this.state, LADDER_DEPTH);
    if (!this.bookShown && (view.bids.length || view.asks.length)) {
      this.bookShown = true;
      performance.mark('oms:book-ready');
    }
    this.book.set(view);
  }

  private mergeTrades(incoming: Trade[]): void {
    if (incoming.length === 0) return;
    const seen = new Set<number>();
    const all = [...incoming, ...this.trades.get()].filter((t) => !seen.has(t.tradeId) && seen.add(t.tradeId));
    all.sort((a, b) => b.tradeId - a.tradeId);
    this.trades.set(all.slice(0, TRADES_KEPT));
  }

  private onBatch = (batch: WsDataMessage[]): void => {
    const symbol = this.symbol;
    if (!symbol) return;
    const depthCh = `depth:${symbol}`;
    const tradesCh = `trades:${symbol}`;
    const tickerCh = `ticker:${symbol}`;
    const bookVersion = this.state.version;
    const newTrades: Trade[] = [];
    let ticker: Ticker | null = null;
    for (const m of batch) {
      if (m.channel === depthCh) this.onDepth(m);
      else if (m.channel === tradesCh) newTrades.push(m.data as Trade);
      else if (m.channel === tickerCh) ticker = m.data as Ticker;
    }
    if (this.state.version !== bookVersion) this.publishBook();
    if (newTrades.length) {
      this.tradeCount += newTrades.length;
      this.mergeTrades(newTrades);
    }
    if (ticker) this.ticker.set(ticker);
  };

  private onDepth(msg: WsDataMessage): void {
    if (msg.type === 'snapshot') {
      const d = msg.data as { seq?: number; bids: DepthLevel[]; asks: DepthLevel[] };
      const seq = msg.seq ?? d.seq;
      if (typeof seq === 'number') this.snapshot(seq, d.bids ?? [], d.asks ?? []);
      return;
    }
    const u = msg.data as DepthUpdate;
    if (typeof u.seq !== 'number' && typeof msg.seq === 'number') u.seq = msg.seq;
    const r = applyUpdate(this.state, u);
    if (r === 'gap') this.resync();
  }
}
