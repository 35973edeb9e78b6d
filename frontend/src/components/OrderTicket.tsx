import { type FormEvent, useEffect, useMemo, useRef, useState } from 'react';
import { ApiError, api, errorText } from '../api/http';
import type { Instrument, Order, OrderType, Side, TimeInForce } from '../api/types';
import { decimalsOf, formatDecimal } from '../lib/format';
import { acceptsOrders, ticketRefusedText } from '../lib/instruments';
import { GLOBAL_KILL_SWITCH_TICKET_HINT, KILL_SWITCH_TICKET_HINT } from '../lib/killSwitch';
import { READ_ONLY_TICKET_NOTE } from '../lib/session';
import {
  checkTyping,
  constraintHint,
  estimateTicket,
  hasErrors,
  needsPrice,
  needsStopPrice,
  postOnlyAllowed,
  type TicketErrors,
  type TicketField,
  type TicketInput,
  TIFS_FOR,
  toOrderRequest,
  validateTicket,
} from '../lib/ticket';
import { uuidv4 } from '../lib/uuid';
import type { AccountFeed } from '../state/account';
import type { MarketFeed } from '../state/market';
import { notify } from '../state/notices';
import { Store, useSelector, useStore } from '../state/store';

/** A price picked in the order book, handed to the ticket. `n` makes repeated picks distinct. */
export const pickedPrice = new Store<{ price: string; n: number } | null>(null);
let picks = 0;
export function pickPrice(price: string): void {
  pickedPrice.set({ price, n: ++picks });
}

const TICKET_FIELDS: TicketField[] = ['price', 'stopPrice', 'quantity', 'timeInForce', 'postOnly', 'expireAt'];
const ORDER_TYPES: { value: OrderType; label: string }[] = [
  { value: 'LIMIT', label: 'Limit' },
  { value: 'MARKET', label: 'Market' },
  { value: 'STOP_LIMIT', label: 'Stop limit' },
];

const INITIAL: TicketInput = {
  side: 'BUY',
  orderType: 'LIMIT',
  timeInForce: 'GTC',
  price: '',
  stopPrice: '',
  quantity: '',
  postOnly: false,
  expireAt: '',
};

interface Props {
  instrument: Instrument;
  market: MarketFeed;
  account: AccountFeed;
  /** A read-only key: the ticket still prices and estimates, but cannot send. */
  readOnly: boolean;
}

export function OrderTicket({ instrument, market, account, readOnly }: Props) {
  const [t, setT] = useState<TicketInput>(INITIAL);
  const [touched, setTouched] = useState<Partial<Record<TicketField, boolean>>>({});
  const [attempted, setAttempted] = useState(false);
  const [typing, setTyping] = useState<Partial<Record<TicketField, string>>>({});
  const [server, setServer] = useState<TicketErrors>({});
  const [busy, setBusy] = useState(false);
  const [last, setLast] = useState<Order | null>(null);
  const balances = useStore(account.balances);
  // Only the figures the estimate needs, so a streaming book does not re-render the ticket.
  const lastPrice = useSelector(market.ticker, (x) => x?.last ?? null);
  const tickerBid = useSelector(market.ticker, (x) => x?.bestBid ?? null);
  const tickerAsk = useSelector(market.ticker, (x) => x?.bestAsk ?? null);
  const bookBid = useSelector(market.book, (b) => b.bestBid);
  const bookAsk = useSelector(market.book, (b) => b.bestAsk);
  const picked = useStore(pickedPrice);
  const killSwitch = useSelector(account.killSwitch, (v) => v.on === true);
  const globalKillSwitch = useStore(account.globalKillSwitch);
  // The operators' halt outranks the account's own switch: it is the one to lift first.
  const halted = globalKillSwitch ? GLOBAL_KILL_SWITCH_TICKET_HINT : killSwitch ? KILL_SWITCH_TICKET_HINT : null;

  // A new symbol starts a clean ticket.
  useEffect(() => {
    setT((p) => ({ ...INITIAL, side: p.side, orderType: p.orderType, timeInForce: p.timeInForce }));
    setTouched({});
    setAttempted(false);
    setServer({});
    setTyping({});
    setLast(null);
  }, [instrument.symbol]);

  // Only picks made while this ticket is shown (not one left from an earlier screen).
  const seenPick = useRef(picked?.n ?? 0);
  useEffect(() => {
    if (!picked || picked.n <= seenPick.current) return;
    seenPick.current = picked.n;
    setT((p) => ({ ...p, price: picked.price, orderType: p.orderType === 'MARKET' ? 'LIMIT' : p.orderType }));
    setServer((s) => ({ ...s, price: undefined }));
    setTouched((x) => ({ ...x, price: true }));
  }, [picked]);

  const errors = useMemo(() => validateTicket(t, instrument, { now: Date.now() }), [t, instrument]);
  const estimate = useMemo(
    () =>
      estimateTicket(t, instrument, balances, {
        last: lastPrice,
        bestBid: bookBid ?? tickerBid,
        bestAsk: bookAsk ?? tickerAsk,
      }),
    [t, instrument, balances, lastPrice, bookBid, bookAsk, tickerBid, tickerAsk],
  );
  const hints = constraintHint(instrument);
  const priceDecimals = decimalsOf(instrument.tickSize);
  const qtyDecimals = decimalsOf(instrument.stepSize);
  const lastState = useSelector(account.orders, (m) => (last ? (m.get(last.orderId) ?? last) : null));

  const set = <K extends keyof TicketInput>(key: K, value: TicketInput[K]) => {
    setT((p) => {
      const next = { ...p, [key]: value };
      if (key === 'orderType' && !TIFS_FOR[next.orderType].includes(next.timeInForce)) {
        next.timeInForce = TIFS_FOR[next.orderType][0];
      }
      if (!postOnlyAllowed(next.orderType, next.timeInForce)) next.postOnly = false;
      return next;
    });
    if (key in server) setServer((s) => ({ ...s, [key]: undefined }));
  };

  const typeDecimal = (key: 'price' | 'stopPrice' | 'quantity', raw: string) => {
    const decimals = key === 'quantity' ? qtyDecimals : priceDecimals;
    const increment = key === 'quantity' ? instrument.stepSize : instrument.tickSize;
    const value = raw.replace(',', '.');
    const check = checkTyping(value, decimals, increment);
    if (!check.accept) {
      setTyping((x) => ({ ...x, [key]: check.reason }));
      return;
    }
    setTyping((x) => ({ ...x, [key]: undefined }));
    set(key, value);
  };

  const shown = (f: TicketField): string | undefined =>
    server[f] ?? typing[f] ?? (attempted || touched[f] ? errors[f] : undefined);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setAttempted(true);
    setTyping({});
    if (hasErrors(errors) || busy || readOnly || !acceptsOrders(instrument.status)) return;
    setBusy(true);
    setServer({});
    try {
      const order = await api.placeOrder(toOrderRequest(t, instrument.symbol, `web-${uuidv4()}`), uuidv4());
      account.upsert([order]);
      setLast(order);
      setAttempted(false);
      setTouched({});
    } catch (err) {
      const byField = err instanceof ApiError ? err.fieldErrors() : {};
      const mine: TicketErrors = {};
      for (const f of TICKET_FIELDS) if (byField[f]) mine[f] = byField[f];
      setServer(mine);
      if (!hasErrors(mine)) notify('error', `Order not placed: ${errorText(err)}`);
    } finally {
      setBusy(false);
    }
  };

  const field = (f: TicketField) => {
    const msg = shown(f);
    return {
      id: `ticket-${f}`,
      'aria-invalid': msg ? true : undefined,
      'aria-describedby': `ticket-${f}-hint${msg ? ` ticket-${f}-error` : ''}`,
    };
  };

  const errorLine = (f: TicketField) => {
    const msg = shown(f);
    return msg ? (
      <p id={`ticket-${f}-error`} className="field-error" role="alert" data-testid={`ticket-${f}-error`}>
        {msg}
      </p>
    ) : null;
  };

  const buy = t.side === 'BUY';
  // The symbol's status is pushed as it changes: an operator's halt disables the ticket at once.
  const disabled = !acceptsOrders(instrument.status);
  const notes = [readOnly && 'ticket-read-only', halted && 'ticket-kill-switch', disabled && 'ticket-status']
    .filter(Boolean)
    .join(' ');

  return (
    <section className="panel ticket" aria-labelledby="ticket-title" data-testid="order-ticket">
      <h2 id="ticket-title" className="panel-title">
        Place order · {instrument.symbol}
      </h2>
      <form onSubmit={submit} noValidate>
        <div className="segmented side" role="radiogroup" aria-label="Side">
          {(['BUY', 'SELL'] as Side[]).map((s) => (
            <button
              key={s}
              type="button"
              role="radio"
              aria-checked={t.side === s}
              className={`seg ${s === 'BUY' ? 'buy' : 'sell'} ${t.side === s ? 'on' : ''}`}
              onClick={() => set('side', s)}
            >
              {s === 'BUY' ? 'Buy' : 'Sell'}
            </button>
          ))}
        </div>
        <div className="segmented" role="radiogroup" aria-label="Order type">
          {ORDER_TYPES.map((o) => (
            <button
              key={o.value}
              type="button"
              role="radio"
              aria-checked={t.orderType === o.value}
              className={`seg ${t.orderType === o.value ? 'on' : ''}`}
              onClick={() => set('orderType', o.value)}
              data-testid={`type-${o.value}`}
            >
              {o.label}
            </button>
          ))}
        </div>

        {needsStopPrice(t.orderType) && (
          <div className="field">
            <label htmlFor="ticket-stopPrice">Stop price ({instrument.quote})</label>
            <input
              {...field('stopPrice')}
              inputMode="decimal"
              autoComplete="off"
              value={t.stopPrice}
              onChange={(e) => typeDecimal('stopPrice', e.target.value)}
              onBlur={() => setTouched((x) => ({ ...x, stopPrice: true }))}
            />
            <p id="ticket-stopPrice-hint" className="hint">
              {hints.price}
            </p>
            {errorLine('stopPrice')}
          </div>
        )}

        {needsPrice(t.orderType) ? (
          <div className="field">
            <label htmlFor="ticket-price">
              {t.orderType === 'STOP_LIMIT' ? 'Limit price' : 'Price'} ({instrument.quote})
            </label>
            <input
              {...field('price')}
              inputMode="decimal"
              autoComplete="off"
              value={t.price}
              onChange={(e) => typeDecimal('price', e.target.value)}
              onBlur={() => setTouched((x) => ({ ...x, price: true }))}
            />
            <p id="ticket-price-hint" className="hint">
              {hints.price}
            </p>
            {errorLine('price')}
          </div>
        ) : (
          <p className="hint market-note">Fills at the best available prices now; any rest is cancelled.</p>
        )}

        <div className="field">
          <label htmlFor="ticket-quantity">Quantity ({instrument.base})</label>
          <input
            {...field('quantity')}
            inputMode="decimal"
            autoComplete="off"
            value={t.quantity}
            onChange={(e) => typeDecimal('quantity', e.target.value)}
            onBlur={() => setTouched((x) => ({ ...x, quantity: true }))}
          />
          <p id="ticket-quantity-hint" className="hint">
            {hints.quantity}
          </p>
          {errorLine('quantity')}
        </div>

        <div className="field-row">
          <div className="field">
            <label htmlFor="ticket-timeInForce">Time in force</label>
            <select
              {...field('timeInForce')}
              value={t.timeInForce}
              onChange={(e) => set('timeInForce', e.target.value as TimeInForce)}
            >
              {TIFS_FOR[t.orderType].map((v) => (
                <option key={v} value={v}>
                  {v}
                </option>
              ))}
            </select>
            <p id="ticket-timeInForce-hint" className="visually-hidden">
              GTC good till cancelled, IOC immediate or cancel, FOK fill or kill, GTD good till date
            </p>
            {errorLine('timeInForce')}
          </div>
          <div className="field check">
            <input
              {...field('postOnly')}
              type="checkbox"
              checked={t.postOnly}
              disabled={!postOnlyAllowed(t.orderType, t.timeInForce)}
              onChange={(e) => set('postOnly', e.target.checked)}
            />
            <label htmlFor="ticket-postOnly">Post-only</label>
            <p id="ticket-postOnly-hint" className="visually-hidden">
              Rejected instead of taking liquidity; limit GTC or GTD only
            </p>
            {errorLine('postOnly')}
          </div>
        </div>

        {t.timeInForce === 'GTD' && (
          <div className="field">
            <label htmlFor="ticket-expireAt">Expires at (local time)</label>
            <input
              {...field('expireAt')}
              type="datetime-local"
              value={t.expireAt}
              onChange={(e) => set('expireAt', e.target.value)}
              onBlur={() => setTouched((x) => ({ ...x, expireAt: true }))}
            />
            <p id="ticket-expireAt-hint" className="visually-hidden">
              The order is cancelled at this time if still open
            </p>
            {errorLine('expireAt')}
          </div>
        )}

        <dl className="estimate" data-testid="ticket-estimate">
          <div>
            <dt>{t.orderType === 'MARKET' ? 'Est. value' : 'Value'}</dt>
            <dd>
              {estimate.notional ? `${formatDecimal(estimate.notional, priceDecimals)} ${instrument.quote}` : '—'}
            </dd>
          </div>
          <div>
            <dt>Max fee</dt>
            <dd>{estimate.fee ? `${formatDecimal(estimate.fee, priceDecimals)} ${instrument.quote}` : '—'}</dd>
          </div>
          <div>
            <dt>{buy ? 'Est. cost' : 'Est. proceeds'}</dt>
            <dd>
              {buy
                ? estimate.need
                  ? `${formatDecimal(estimate.need, priceDecimals)} ${instrument.quote}`
                  : '—'
                : estimate.proceeds
                  ? `${formatDecimal(estimate.proceeds, priceDecimals)} ${instrument.quote}`
                  : '—'}
            </dd>
          </div>
          <div>
            <dt>Available</dt>
            <dd data-testid="ticket-available">
              {formatDecimal(estimate.available, buy ? priceDecimals : qtyDecimals)} {estimate.payAsset}
            </dd>
          </div>
        </dl>
        {estimate.sufficient === false && (
          <p className="warn" role="status">
            Not enough {estimate.payAsset} available for this order.
          </p>
        )}

        <button
          type="submit"
          className={`submit ${buy ? 'buy' : 'sell'}`}
          disabled={busy || disabled || readOnly}
          aria-describedby={notes || undefined}
          title={readOnly ? READ_ONLY_TICKET_NOTE : undefined}
          data-testid="ticket-submit"
        >
          {busy ? 'Sending…' : `${buy ? 'Buy' : 'Sell'} ${instrument.base}`}
        </button>
        {readOnly && (
          <p id="ticket-read-only" className="warn" data-testid="ticket-read-only">
            {READ_ONLY_TICKET_NOTE}
          </p>
        )}
        {/* The order is still sent: the server decides, and its rejection shows below. */}
        {halted && (
          <p id="ticket-kill-switch" className="warn" data-testid="ticket-kill-switch">
            {halted}
          </p>
        )}
        {disabled && (
          <p id="ticket-status" className="warn" data-testid="ticket-status" data-status={instrument.status}>
            {ticketRefusedText(instrument)}
          </p>
        )}
        {lastState && (
          <p className="last-order" role="status" data-testid="ticket-last-order" data-status={lastState.status}>
            Order {lastState.orderId}: {lastState.status.replace('_', ' ')}
            {lastState.rejectReason ? ` — ${lastState.rejectReason}` : ''}
          </p>
        )}
      </form>
    </section>
  );
}
