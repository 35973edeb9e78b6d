// Wire types of the OMS HTTP and WebSocket API. Decimals stay strings end to end.

export type Side = 'BUY' | 'SELL';
export type OrderType = 'LIMIT' | 'MARKET' | 'STOP_LIMIT';
export type TimeInForce = 'GTC' | 'IOC' | 'FOK' | 'GTD';
export type OrderStatus = 'NEW' | 'ACCEPTED' | 'PARTIALLY_FILLED' | 'FILLED' | 'CANCELED' | 'EXPIRED' | 'REJECTED';

export const LIVE_STATUSES: ReadonlySet<OrderStatus> = new Set(['NEW', 'ACCEPTED', 'PARTIALLY_FILLED']);

export const INTERVALS = ['1s', '1m', '5m', '15m', '1h', '1d'] as const;
export type Interval = (typeof INTERVALS)[number];

/** What the session's API key may do: `TRADE` everything, `READ` only read (its changes answer `403 READ_ONLY_KEY`). */
export type KeyScope = 'TRADE' | 'READ';

export interface Session {
  accountId: number;
  name: string;
  /** The scope of the key the session was opened with. */
  scope: KeyScope;
}

export interface Instrument {
  symbol: string;
  base: string;
  quote: string;
  tickSize: string;
  stepSize: string;
  minQuantity: string;
  maxQuantity: string;
  minNotional: string;
  status: string;
  makerFee: string;
  takerFee: string;
  priceBand: string;
}

export interface Order {
  orderId: string;
  clientOrderId: string | null;
  accountId: number;
  symbol: string;
  side: Side;
  orderType: OrderType;
  timeInForce: TimeInForce;
  postOnly: boolean;
  price: string | null;
  stopPrice: string | null;
  quantity: string;
  filledQuantity: string;
  /** Sum of price × quantity over the order's fills, exact, in the quote asset ("0" before any fill). */
  executedNotional: string;
  /** `executedNotional` / `filledQuantity`, rounded; null before any fill. */
  averageFillPrice: string | null;
  fees: string;
  status: OrderStatus;
  rejectReason: string | null;
  /** Why a CANCELED order was cancelled, e.g. USER_REQUESTED or CANCEL_AFTER (its dead man's switch). */
  cancelReason: string | null;
  expireAt: string | null;
  createdAt: string;
  updatedAt: string;
  /** What became of the newest decided amend (PATCH): refused ones leave the order as it was. */
  lastAmend?: LastAmend | null;
  /** The newest refusal of a cancel (DELETE answered 202, then refused): the order stays as it was. */
  lastCancelReject: CancelReject | null;
}

export interface CancelReject {
  /** INSTRUMENT_HALTED, ORDER_NOT_LIVE, UNKNOWN_ORDER, …: the order-reject codes. */
  rejectReason: string;
  /** When risk or the venue refused it (RFC 3339, ms). */
  at: string;
}

export interface LastAmend {
  amendId: string;
  status: 'APPLIED' | 'REJECTED';
  rejectReason: string | null;
}

export interface Fill {
  tradeId: number;
  price: string;
  quantity: string;
  liquidity: 'MAKER' | 'TAKER';
  fee: string;
  feeAsset: string;
  at: string;
  orderId?: string;
}

/** One fill of the account's trade history (`GET /api/fills`), across all its orders. */
export interface AccountFill {
  orderId: string;
  symbol: string;
  side: Side;
  tradeId: number;
  price: string;
  quantity: string;
  liquidity: 'MAKER' | 'TAKER';
  fee: string;
  feeAsset: string;
  /** Null for fills recorded before fills carried their time. */
  at: string | null;
}

/** Filters and paging of `GET /api/fills`; every field is optional. */
export interface AccountFillsQuery {
  symbol?: string;
  side?: Side;
  /** Trade time at or after this: epoch ms or RFC 3339. */
  from?: number | string | Date;
  /** Trade time at or before this: epoch ms or RFC 3339. */
  to?: number | string | Date;
  /** 1..500; the server's default is 100. */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

/** A page of the trade history, newest first; `nextCursor` is null on the last page. */
export interface AccountFillsPage {
  fills: AccountFill[];
  nextCursor: string | null;
}

export interface Balance {
  asset: string;
  available: string;
  reserved: string;
  total: string;
}

export interface Account {
  accountId: number;
  name: string;
  balances: Balance[];
  /** While on, risk rejects the account's new orders and amends (`ACCOUNT_KILL_SWITCH`); cancels still pass. */
  killSwitch: boolean;
  /** An operator's halt of every account: risk rejects new orders and amends (`GLOBAL_KILL_SWITCH`); cancels still pass. */
  globalKillSwitch: boolean;
  /** The dead man's switch (`PUT /api/accounts/me/cancel-after`) as last recorded. */
  cancelAfter: CancelAfter;
}

export interface CancelAfter {
  /** Armed and not yet fired. */
  enabled: boolean;
  /** The newest setting's deadline; null when switched off or never set. */
  triggerTime: string | null;
  /** The deadline passed and the switch cancelled the account's live orders. */
  triggered: boolean;
}

export interface Candle {
  openTime: number;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  quoteVolume: string;
  trades: number;
}

export interface Ticker {
  symbol: string;
  last: string | null;
  bestBid: string | null;
  bestAsk: string | null;
  open24h: string | null;
  high24h: string | null;
  low24h: string | null;
  change24h: string | null;
  changePercent24h: string | null;
  volume24h: string | null;
  quoteVolume24h: string | null;
}

/** [price, quantity] */
export type DepthLevel = [string, string];

export interface Depth {
  symbol: string;
  seq: number;
  bids: DepthLevel[];
  asks: DepthLevel[];
}

export interface Trade {
  tradeId: number;
  price: string;
  quantity: string;
  takerSide: Side;
  at: string | number;
}

export interface NewOrderRequest {
  symbol: string;
  side: Side;
  orderType: OrderType;
  timeInForce: TimeInForce;
  quantity: string;
  price: string | null;
  stopPrice: string | null;
  postOnly: boolean;
  expireAt: string | null;
  clientOrderId: string;
}

/** Which open orders `DELETE /api/orders` cancels; no field means every symbol or side. */
export interface CancelAllFilter {
  symbol?: string;
  side?: Side;
}

export interface ProblemFieldError {
  field: string;
  code: string;
  detail: string;
}

/** RFC 9457 problem body as the OMS sends it. */
export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  code?: string;
  detail?: string;
  field?: string;
  instance?: string;
  requestId?: string;
  errors?: ProblemFieldError[];
}

// ---- WebSocket ----

export interface DepthUpdate {
  seq: number;
  side: Side;
  price: string;
  quantity: string;
}

export interface OrdersChannelData {
  order: Order;
  fill?: Fill;
}

export interface WsDataMessage {
  channel: string;
  seq?: number;
  type?: 'snapshot' | 'update';
  data: unknown;
  code?: undefined;
}

export interface WsControlMessage {
  type: 'heartbeat' | 'error' | 'subscribed' | 'unsubscribed' | 'pong' | 'authenticated';
  /** Errors about one channel name it. */
  channel?: string;
  ts?: number;
  code?: string;
  message?: string;
  channels?: string[];
}

export type WsMessage = WsDataMessage | WsControlMessage;
