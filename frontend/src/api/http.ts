// REST client for the same-origin OMS API. The session is an HttpOnly cookie set by
// POST /api/session, so requests carry credentials and the API key is never kept by the page.
import { type SessionWire, toSession } from '../lib/session';
import { fillsQuery } from '../lib/trades';
import type {
  Account,
  AccountFillsPage,
  AccountFillsQuery,
  CancelAllFilter,
  Candle,
  Depth,
  Fill,
  Instrument,
  Interval,
  NewOrderRequest,
  Order,
  Problem,
  Session,
  Ticker,
  Trade,
} from './types';

/** A non-2xx answer, with the problem+json body when the server sent one. */
export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;

  constructor(status: number, problem: Problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.problem = problem;
  }

  /** Field → message, from `field` and from `errors[]`. */
  fieldErrors(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const e of this.problem.errors ?? []) {
      if (e.field && !out[e.field]) out[e.field] = e.detail || e.code;
    }
    if (this.problem.field && !out[this.problem.field]) out[this.problem.field] = this.message;
    return out;
  }
}

type UnauthorizedListener = () => void;
let onUnauthorized: UnauthorizedListener | null = null;

/** Called when any request answers 401 (expired or cleared session). */
export function setUnauthorizedHandler(fn: UnauthorizedListener | null): void {
  onUnauthorized = fn;
}

async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<T> {
  const init: RequestInit = {
    method,
    credentials: 'same-origin',
    headers: { Accept: 'application/json, application/problem+json', ...headers },
    signal,
  };
  if (body !== undefined) {
    (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown = undefined;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
  }
  if (!res.ok) {
    const problem: Problem =
      json && typeof json === 'object' ? (json as Problem) : { status: res.status, title: res.statusText || text };
    // Only a 401 means the credential is gone. A 403 (a read-only key's READ_ONLY_KEY) refuses
    // this request alone: it is thrown like any other error and shown in the banner.
    if (res.status === 401 && path !== '/api/session') onUnauthorized?.();
    throw new ApiError(res.status, problem);
  }
  return json as T;
}

function qs(params: Record<string, string | number | undefined | null>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export const api = {
  signIn: (apiKey: string) => request<void>('POST', '/api/session', { apiKey }),
  signOut: () => request<void>('DELETE', '/api/session'),
  /** The signed-in account and its key's scope (`TRADE` when an older server sends none). */
  session: (): Promise<Session> => request<SessionWire>('GET', '/api/session').then(toSession),
  /** Every instrument, each with the trading status the order processor last recorded. */
  instruments: () => request<{ instruments: Instrument[] }>('GET', '/api/instruments').then((r) => r.instruments),
  account: () => request<Account>('GET', '/api/accounts/me'),
  /**
   * Turns the account's kill switch on or off; answers the state requested. It applies to every
   * order placed after the answer, but `account().killSwitch` may show it only moments later.
   */
  setKillSwitch: (enabled: boolean) =>
    request<{ killSwitch: boolean }>('PUT', '/api/accounts/me/kill-switch', { enabled }).then((r) => r.killSwitch),
  orders: (params: { symbol?: string; status?: string; limit?: number; cursor?: string } = {}) =>
    request<{ orders: Order[]; nextCursor: string | null }>('GET', `/api/orders${qs(params)}`),
  order: (id: string) => request<Order>('GET', `/api/orders/${encodeURIComponent(id)}`),
  fills: (id: string) =>
    request<{ fills: Fill[] }>('GET', `/api/orders/${encodeURIComponent(id)}/fills`).then((r) => r.fills),
  /** The account's fills across all its orders (its trade history), newest first. */
  accountFills: (query: AccountFillsQuery = {}) => request<AccountFillsPage>('GET', `/api/fills${fillsQuery(query)}`),
  placeOrder: (body: NewOrderRequest, idempotencyKey: string) =>
    request<Order>('POST', '/api/orders', body, { 'X-Idempotency-Key': idempotencyKey }),
  cancelOrder: (id: string) => request<Order>('DELETE', `/api/orders/${encodeURIComponent(id)}`),
  /** Requests the cancel of every open order matching `filter`; answers those orders as they were before it. */
  cancelAllOrders: (filter: CancelAllFilter = {}) =>
    request<{ orders: Order[] }>('DELETE', `/api/orders${qs({ symbol: filter.symbol, side: filter.side })}`).then(
      (r) => r.orders,
    ),
  amendOrder: (id: string, body: { price?: string; quantity?: string }, idempotencyKey: string) =>
    request<Order>('PATCH', `/api/orders/${encodeURIComponent(id)}`, body, { 'X-Idempotency-Key': idempotencyKey }),
  candles: (
    symbol: string,
    interval: Interval,
    opts: { from?: number; to?: number; limit?: number } = {},
    signal?: AbortSignal,
  ) =>
    request<{ candles: Candle[] }>(
      'GET',
      `/api/marketdata/candles${qs({ symbol, interval, ...opts })}`,
      undefined,
      {},
      signal,
    ).then((r) => r.candles),
  ticker: (symbol: string) => request<Ticker>('GET', `/api/marketdata/ticker${qs({ symbol })}`),
  depth: (symbol: string, levels = 50) => request<Depth>('GET', `/api/marketdata/depth${qs({ symbol, levels })}`),
  trades: (symbol: string, limit = 50) =>
    request<{ trades: Trade[] }>('GET', `/api/marketdata/trades${qs({ symbol, limit })}`).then((r) => r.trades),
};

let instrumentsOnce: Promise<Instrument[]> | null = null;

/**
 * The instrument list, fetched once per page: the symbols change only with the server's
 * configuration. Its statuses may be old by the time it is used; the `status:{symbol}` channels
 * correct them (see state/instruments.ts). A returning user's page starts it alongside the
 * session check.
 */
export function loadInstruments(): Promise<Instrument[]> {
  instrumentsOnce ??= api.instruments().catch((e: unknown) => {
    instrumentsOnce = null;
    throw e;
  });
  return instrumentsOnce;
}

/** Human text of any error thrown by the client. */
export function errorText(e: unknown): string {
  if (e instanceof ApiError) {
    const p = e.problem;
    const head = p.title && p.detail && p.title !== p.detail ? `${p.title}: ${p.detail}` : e.message;
    return p.code ? `${head} (${p.code})` : head;
  }
  if (e instanceof Error) return e.message;
  return String(e);
}
