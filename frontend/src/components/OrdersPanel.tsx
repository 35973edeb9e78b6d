import { type KeyboardEvent, memo, useCallback, useMemo, useRef, useState } from 'react';
import { ApiError, api, errorText } from '../api/http';
import { type CancelAllFilter, type Fill, type Instrument, LIVE_STATUSES, type Order } from '../api/types';
import { cancelAllButton, cancelAllScope, cancelRequestedText, haltedNote } from '../lib/cancelAll';
import { cmp, dec } from '../lib/decimal';
import { decimalsOf, formatDateTime, formatDecimal, formatPrice, formatSize, formatTime } from '../lib/format';
import { amendRefusedReason, cancelRefusedReason } from '../lib/instruments';
import { formatExecutedNotional } from '../lib/orders';
import { readOnlyReason } from '../lib/session';
import { checkTyping, validateTicket } from '../lib/ticket';
import { uuidv4 } from '../lib/uuid';
import type { AccountFeed } from '../state/account';
import { notify } from '../state/notices';
import { useStore } from '../state/store';
import { Trades, TradeSymbolFilter } from './Trades';
import { useArmed } from './useArmed';

type Tab = 'open' | 'history' | 'trades' | 'balances';
const TABS: { id: Tab; label: string }[] = [
  { id: 'open', label: 'Open orders' },
  { id: 'history', label: 'Order history' },
  { id: 'trades', label: 'Trades' },
  { id: 'balances', label: 'Balances' },
];

interface Props {
  account: AccountFeed;
  instruments: ReadonlyMap<string, Instrument>;
  /** A read-only key: orders show, but cancel, amend and cancel all are disabled. */
  readOnly: boolean;
}

/** ISO timestamps order as text; equal ones fall back to the (increasing) numeric order id. */
function newestFirst(a: Order, b: Order): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? 1 : -1;
  return b.orderId.length - a.orderId.length || (a.orderId < b.orderId ? 1 : a.orderId > b.orderId ? -1 : 0);
}

export function OrdersPanel({ account, instruments, readOnly }: Props) {
  const [tab, setTab] = useState<Tab>('open');
  // Kept here, not in the tab, so that the filter outlives switching tabs.
  const [tradeSymbol, setTradeSymbol] = useState('');
  const orders = useStore(account.orders);
  const tabRefs = useRef<(HTMLButtonElement | null)[]>([]);
  const { open, history } = useMemo(() => {
    const all = [...orders.values()].sort(newestFirst);
    return { open: all.filter((o) => LIVE_STATUSES.has(o.status)), history: all };
  }, [orders]);

  // Arrow keys move between tabs (WAI-ARIA tabs pattern).
  const onTabKey = (e: KeyboardEvent, i: number) => {
    const d = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
    if (!d) return;
    e.preventDefault();
    const next = (i + d + TABS.length) % TABS.length;
    setTab(TABS[next].id);
    tabRefs.current[next]?.focus();
  };

  return (
    <section className="panel orders" aria-label="Orders and balances">
      <div className="orders-head">
        <div className="tabs" role="tablist">
          {TABS.map((x, i) => (
            <button
              key={x.id}
              ref={(el) => {
                tabRefs.current[i] = el;
              }}
              type="button"
              role="tab"
              id={`tab-${x.id}`}
              aria-selected={tab === x.id}
              aria-controls={`tabpanel-${x.id}`}
              tabIndex={tab === x.id ? 0 : -1}
              className={`tab ${tab === x.id ? 'on' : ''}`}
              onClick={() => setTab(x.id)}
              onKeyDown={(e) => onTabKey(e, i)}
              data-testid={`tab-${x.id}`}
            >
              {x.label}
              {x.id === 'open' && <span className="count">{open.length}</span>}
            </button>
          ))}
        </div>
        {tab === 'open' && (
          <CancelAll
            filter={OPEN_TAB_FILTER}
            open={open}
            instruments={instruments}
            account={account}
            readOnly={readOnly}
          />
        )}
        {tab === 'trades' && (
          <TradeSymbolFilter value={tradeSymbol} onChange={setTradeSymbol} instruments={instruments} />
        )}
      </div>
      <div className="tabpanel" role="tabpanel" id={`tabpanel-${tab}`} aria-labelledby={`tab-${tab}`}>
        {tab === 'open' && <OpenOrders orders={open} instruments={instruments} account={account} readOnly={readOnly} />}
        {tab === 'history' && <History orders={history} instruments={instruments} account={account} />}
        {tab === 'trades' && <Trades account={account} instruments={instruments} symbol={tradeSymbol} />}
        {tab === 'balances' && <Balances account={account} />}
      </div>
    </section>
  );
}

// ---- open orders ----

/** The open tab lists the live orders of every symbol, so its cancel-all takes no filter. */
const OPEN_TAB_FILTER: CancelAllFilter = {};

/**
 * Cancels every open order in `filter`; the first click only arms it, the second one sends. The
 * orders on halted symbols stay (the venue refuses clients' cancels there): the armed button
 * says which, and it is disabled when they are all it would cover.
 */
function CancelAll({
  filter,
  open,
  instruments,
  account,
  readOnly,
}: {
  filter: CancelAllFilter;
  open: Order[];
  instruments: ReadonlyMap<string, Instrument>;
  account: AccountFeed;
  readOnly: boolean;
}) {
  const [armed, setArmed] = useArmed();
  const [busy, setBusy] = useState(false);
  const covers = useMemo(() => cancelAllScope(filter, open, instruments), [filter, open, instruments]);
  const { count, refused } = covers;
  const confirming = armed && count > 0 && !readOnly && !refused;
  const note = haltedNote(covers);

  const click = async () => {
    if (readOnly || refused) return;
    if (!confirming) {
      setArmed(true);
      return;
    }
    setArmed(false);
    setBusy(true);
    try {
      const orders = await api.cancelAllOrders(filter);
      account.upsert(orders);
      // Told against the statuses now: orders left open by a halt stay in the banner until dismissed.
      const answered = cancelAllScope(filter, orders, instruments);
      notify('info', cancelRequestedText(answered), answered.left ? 0 : undefined);
    } catch (e) {
      notify('error', `Cancel all failed: ${errorText(e)}`);
    } finally {
      setBusy(false);
    }
  };

  const { text, label } = cancelAllButton(filter, count, confirming);
  return (
    <div className="head-tools cancel-all-tools">
      {confirming && note && (
        <span id="cancel-all-note" className="warn" data-testid="cancel-all-note">
          {note}
        </span>
      )}
      <button
        type="button"
        className={`small danger ${confirming ? 'armed' : ''}`}
        onClick={click}
        disabled={busy || count === 0 || readOnly || refused !== null}
        aria-label={label}
        aria-describedby={confirming && note ? 'cancel-all-note' : undefined}
        title={(readOnly ? readOnlyReason('cancelling orders') : (refused ?? note)) ?? undefined}
        data-testid="cancel-all"
      >
        {busy ? 'Cancelling…' : text}
      </button>
    </div>
  );
}

function OpenOrders({
  orders,
  instruments,
  account,
  readOnly,
}: {
  orders: Order[];
  instruments: ReadonlyMap<string, Instrument>;
  account: AccountFeed;
  readOnly: boolean;
}) {
  if (orders.length === 0) return <p className="muted empty">No open orders</p>;
  return (
    <table className="grid tight" data-testid="open-orders">
      <thead>
        <tr>
          <th>Time</th>
          <th>Symbol</th>
          <th>Side</th>
          <th>Type</th>
          <th className="num">Price</th>
          <th className="num">Quantity</th>
          <th className="num">Filled</th>
          <th className="num">Notional</th>
          <th>Status</th>
          <th className="actions">Actions</th>
        </tr>
      </thead>
      <tbody>
        {orders.map((o) => (
          <OpenRow key={o.orderId} order={o} inst={instruments.get(o.symbol)} account={account} readOnly={readOnly} />
        ))}
      </tbody>
    </table>
  );
}

const OpenRow = memo(function OpenRow({
  order,
  inst,
  account,
  readOnly,
}: {
  order: Order;
  inst?: Instrument;
  account: AccountFeed;
  readOnly: boolean;
}) {
  const [editing, setEditing] = useState(false);
  const [price, setPrice] = useState('');
  const [qty, setQty] = useState('');
  const [errors, setErrors] = useState<{ price?: string; quantity?: string }>({});
  const [busy, setBusy] = useState(false);
  const tick = inst?.tickSize ?? '0.00000001';
  const step = inst?.stepSize ?? '0.00000001';
  // The symbol's trading status: halted or cancel-only refuses amends, halted refuses cancels.
  const amendRefused = inst ? amendRefusedReason(inst) : null;
  const cancelRefused = inst ? cancelRefusedReason(inst) : null;

  const startEdit = () => {
    setPrice(order.price ?? '');
    setQty(order.quantity);
    setErrors({});
    setEditing(true);
  };

  const type = (which: 'price' | 'quantity', raw: string) => {
    const inc = which === 'price' ? tick : step;
    const c = checkTyping(raw, decimalsOf(inc), inc);
    if (!c.accept) {
      setErrors((e) => ({ ...e, [which]: c.reason }));
      return;
    }
    setErrors((e) => ({ ...e, [which]: undefined }));
    (which === 'price' ? setPrice : setQty)(raw);
  };

  const save = async () => {
    // Enter in a field while the symbol refuses amends: the disabled Save says why.
    if (amendRefused) return;
    const body: { price?: string; quantity?: string } = {};
    if (order.price !== null && price !== '' && cmp(dec(price), dec(order.price)) !== 0) body.price = price;
    if (qty !== '' && cmp(dec(qty), dec(order.quantity)) !== 0) body.quantity = qty;
    if (!body.price && !body.quantity) {
      setEditing(false);
      return;
    }
    const local: { price?: string; quantity?: string } = {};
    if (inst) {
      const v = validateTicket(
        {
          side: order.side,
          orderType: order.orderType === 'MARKET' ? 'MARKET' : 'LIMIT',
          timeInForce: order.orderType === 'MARKET' ? 'IOC' : 'GTC',
          price: price || order.price || '',
          stopPrice: '',
          quantity: qty || order.quantity,
          postOnly: false,
          expireAt: '',
        },
        inst,
        { now: Date.now() },
      );
      if (v.price) local.price = v.price;
      if (v.quantity) local.quantity = v.quantity;
    }
    if (!local.quantity && body.quantity && cmp(dec(body.quantity), dec(order.filledQuantity)) <= 0) {
      local.quantity = `Must be above the filled ${order.filledQuantity}`;
    }
    if (local.price || local.quantity) {
      setErrors(local);
      return;
    }
    setBusy(true);
    try {
      const updated = await api.amendOrder(order.orderId, body, uuidv4());
      account.upsert([updated]);
      setEditing(false);
    } catch (e) {
      const f = e instanceof ApiError ? e.fieldErrors() : {};
      if (f.price || f.quantity) setErrors({ price: f.price, quantity: f.quantity });
      else notify('error', `Amend of order ${order.orderId} failed: ${errorText(e)}`);
    } finally {
      setBusy(false);
    }
  };

  const cancel = async () => {
    setBusy(true);
    try {
      account.upsert([await api.cancelOrder(order.orderId)]);
    } catch (e) {
      notify('error', `Cancel of order ${order.orderId} failed: ${errorText(e)}`);
    } finally {
      setBusy(false);
    }
  };

  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Enter') {
      e.preventDefault();
      void save();
    } else if (e.key === 'Escape') {
      setEditing(false);
    }
  };

  const sideCls = order.side === 'BUY' ? 'up' : 'down';
  return (
    <tr data-order-id={order.orderId} data-status={order.status} data-symbol-status={inst?.status}>
      <td>{formatTime(order.createdAt)}</td>
      <td>{order.symbol}</td>
      <td className={sideCls}>{order.side}</td>
      <td>{order.orderType.replace('_', ' ')}</td>
      <td className="num">
        {editing && order.price !== null ? (
          <span className="cell-edit">
            <input
              aria-label={`New price of order ${order.orderId}`}
              inputMode="decimal"
              value={price}
              onChange={(e) => type('price', e.target.value)}
              onKeyDown={onKey}
              autoFocus
              data-testid="amend-price"
            />
            {errors.price && (
              <span className="field-error" role="alert" data-testid="amend-price-error">
                {errors.price}
              </span>
            )}
          </span>
        ) : (
          <span data-testid="order-price">{order.price ? formatPrice(order.price, tick) : 'MARKET'}</span>
        )}
      </td>
      <td className="num">
        {editing ? (
          <span className="cell-edit">
            <input
              aria-label={`New quantity of order ${order.orderId}`}
              inputMode="decimal"
              value={qty}
              onChange={(e) => type('quantity', e.target.value)}
              onKeyDown={onKey}
              autoFocus={order.price === null}
              data-testid="amend-quantity"
            />
            {errors.quantity && (
              <span className="field-error" role="alert" data-testid="amend-quantity-error">
                {errors.quantity}
              </span>
            )}
          </span>
        ) : (
          <span data-testid="order-quantity">{formatSize(order.quantity, step)}</span>
        )}
      </td>
      <td className="num">{formatSize(order.filledQuantity, step)}</td>
      <NotionalCell order={order} inst={inst} tick={tick} />
      <td>
        <StatusBadge status={order.status} />
      </td>
      <td className="actions">
        {editing ? (
          <>
            <button
              type="button"
              className="small primary"
              onClick={save}
              disabled={busy || amendRefused !== null}
              title={amendRefused ?? undefined}
              data-testid="amend-save"
            >
              Save
            </button>
            <button type="button" className="small ghost" onClick={() => setEditing(false)} disabled={busy}>
              Discard
            </button>
          </>
        ) : (
          <>
            <button
              type="button"
              className="small ghost"
              onClick={startEdit}
              disabled={busy || order.orderType === 'MARKET' || readOnly || amendRefused !== null}
              aria-label={`Amend order ${order.orderId}`}
              title={readOnly ? readOnlyReason('amending orders') : (amendRefused ?? undefined)}
              data-testid="amend"
            >
              Amend
            </button>
            <button
              type="button"
              className="small danger"
              onClick={cancel}
              disabled={busy || readOnly || cancelRefused !== null}
              aria-label={`Cancel order ${order.orderId}`}
              title={readOnly ? readOnlyReason('cancelling orders') : (cancelRefused ?? undefined)}
              data-testid="cancel"
            >
              Cancel
            </button>
          </>
        )}
      </td>
    </tr>
  );
});

/**
 * What the order's fills came to (price × quantity), in the quote asset; "—" before any fill.
 * Like the price beside it, the cell carries no unit (the tables stay narrow): its tooltip does.
 */
function NotionalCell({ order, inst, tick }: { order: Order; inst?: Instrument; tick: string }) {
  const text = formatExecutedNotional(order.executedNotional, tick);
  return (
    <td
      className="num"
      data-testid="order-notional"
      data-raw={order.executedNotional}
      title={text !== '—' && inst ? `${text} ${inst.quote} traded` : undefined}
    >
      {text}
    </td>
  );
}

function StatusBadge({ status }: { status: Order['status'] }) {
  return <span className={`badge s-${status.toLowerCase()}`}>{status.replace('_', ' ')}</span>;
}

// ---- history ----

function History({
  orders,
  instruments,
  account,
}: {
  orders: Order[];
  instruments: ReadonlyMap<string, Instrument>;
  account: AccountFeed;
}) {
  const [open, setOpen] = useState<ReadonlySet<string>>(new Set());
  const [loadingOlder, setLoadingOlder] = useState(false);
  const fills = useStore(account.fills);
  const cursor = useStore(account.olderCursor);
  const toggle = useCallback(
    (id: string) => {
      setOpen((prev) => {
        const next = new Set(prev);
        if (next.has(id)) next.delete(id);
        else next.add(id);
        return next;
      });
      if (!account.fills.get().has(id)) {
        account.loadFills(id).catch((e) => notify('error', `Fills of order ${id}: ${errorText(e)}`));
      }
    },
    [account],
  );
  if (orders.length === 0) return <p className="muted empty">No orders yet</p>;

  const older = () => {
    setLoadingOlder(true);
    account
      .loadOlder()
      .catch((e) => notify('error', `Older orders: ${errorText(e)}`))
      .finally(() => setLoadingOlder(false));
  };

  return (
    <>
      <table className="grid" data-testid="order-history">
        <thead>
          <tr>
            <th aria-label="Fills" />
            <th>Created</th>
            <th>Symbol</th>
            <th>Side</th>
            <th>Type</th>
            <th className="num">Price</th>
            <th className="num">Quantity</th>
            <th className="num">Filled</th>
            <th className="num">Avg price</th>
            <th className="num">Notional</th>
            <th className="num">Fees</th>
            <th>Status</th>
            <th>Reason</th>
          </tr>
        </thead>
        <tbody>
          {orders.map((o) => (
            <HistoryRow
              key={o.orderId}
              order={o}
              inst={instruments.get(o.symbol)}
              expanded={open.has(o.orderId)}
              fills={open.has(o.orderId) ? fills.get(o.orderId) : undefined}
              onToggle={toggle}
            />
          ))}
        </tbody>
      </table>
      {cursor && (
        <p className="more">
          <button type="button" className="small ghost" onClick={older} disabled={loadingOlder}>
            {loadingOlder ? 'Loading…' : 'Load older orders'}
          </button>
        </p>
      )}
    </>
  );
}

interface HistoryRowProps {
  order: Order;
  inst?: Instrument;
  expanded: boolean;
  fills?: Fill[];
  onToggle: (id: string) => void;
}

const HistoryRow = memo(function HistoryRow({ order: o, inst, expanded, fills, onToggle }: HistoryRowProps) {
  const tick = inst?.tickSize ?? '0.00000001';
  const step = inst?.stepSize ?? '0.00000001';
  return (
    <>
      <tr data-order-id={o.orderId} data-status={o.status}>
        <td>
          <button
            type="button"
            className="icon-btn"
            aria-expanded={expanded}
            aria-label={`${expanded ? 'Hide' : 'Show'} fills of order ${o.orderId}`}
            onClick={() => onToggle(o.orderId)}
            data-testid="toggle-fills"
          >
            {expanded ? '▾' : '▸'}
          </button>
        </td>
        <td>{formatDateTime(o.createdAt)}</td>
        <td>{o.symbol}</td>
        <td className={o.side === 'BUY' ? 'up' : 'down'}>{o.side}</td>
        <td>
          {o.orderType.replace('_', ' ')} · {o.timeInForce}
          {o.postOnly ? ' · post' : ''}
        </td>
        <td className="num">{o.price ? formatPrice(o.price, tick) : 'MARKET'}</td>
        <td className="num">{formatSize(o.quantity, step)}</td>
        <td className="num" data-testid="filled">
          {formatSize(o.filledQuantity, step)}
        </td>
        <td className="num">{o.averageFillPrice ? formatDecimal(o.averageFillPrice, decimalsOf(tick) + 2) : '—'}</td>
        <NotionalCell order={o} inst={inst} tick={tick} />
        <td className="num">{o.fees}</td>
        <td>
          <StatusBadge status={o.status} />
        </td>
        <td className="reason">{o.rejectReason ?? o.cancelReason ?? ''}</td>
      </tr>
      {expanded && (
        <tr className="fills-row">
          <td />
          <td colSpan={12}>
            <FillsTable fills={fills} tick={tick} step={step} />
          </td>
        </tr>
      )}
    </>
  );
});

function FillsTable({ fills, tick, step }: { fills?: Fill[]; tick: string; step: string }) {
  if (!fills) return <p className="muted">Loading fills…</p>;
  if (fills.length === 0) return <p className="muted">No fills</p>;
  return (
    <table className="grid sub" data-testid="fills">
      <thead>
        <tr>
          <th>Trade</th>
          <th>Time</th>
          <th className="num">Price</th>
          <th className="num">Quantity</th>
          <th>Liquidity</th>
          <th className="num">Fee</th>
        </tr>
      </thead>
      <tbody>
        {fills.map((f) => (
          <tr key={f.tradeId}>
            <td>{f.tradeId}</td>
            <td>{formatDateTime(f.at)}</td>
            <td className="num">{formatPrice(f.price, tick)}</td>
            <td className="num">{formatSize(f.quantity, step)}</td>
            <td>{f.liquidity}</td>
            <td className="num">
              {f.fee} {f.feeAsset}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

// ---- balances ----

function Balances({ account }: { account: AccountFeed }) {
  const balances = useStore(account.balances);
  if (balances.length === 0) return <p className="muted empty">No balances</p>;
  return (
    <table className="grid" data-testid="balances">
      <thead>
        <tr>
          <th>Asset</th>
          <th className="num">Available</th>
          <th className="num">Reserved</th>
          <th className="num">Total</th>
        </tr>
      </thead>
      <tbody>
        {balances.map((b) => {
          const places = Math.max(2, decimalsOf(b.total), decimalsOf(b.available), decimalsOf(b.reserved));
          return (
            <tr key={b.asset} data-asset={b.asset}>
              <td>{b.asset}</td>
              <td className="num" data-testid="available" data-raw={b.available}>
                {formatDecimal(b.available, places)}
              </td>
              <td className="num">{formatDecimal(b.reserved, places)}</td>
              <td className="num">{formatDecimal(b.total, places)}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}
