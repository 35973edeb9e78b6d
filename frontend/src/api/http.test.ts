import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError, api, errorText, setUnauthorizedHandler } from './http';
import { testOrder } from './testOrder';
import type { NewOrderRequest, Order } from './types';

const ORDER: Order = testOrder({
  orderId: '42',
  clientOrderId: null,
  side: 'SELL',
  price: '50000.00',
  quantity: '0.10000',
  filledQuantity: '0.00000',
  status: 'ACCEPTED',
  createdAt: '2026-11-25T08:00:00Z',
  updatedAt: '2026-11-25T08:00:00Z',
});

let fetchMock: ReturnType<typeof vi.fn>;

function answer(status: number, body: unknown, type = 'application/json') {
  fetchMock.mockResolvedValueOnce(new Response(JSON.stringify(body), { status, headers: { 'Content-Type': type } }));
}

beforeEach(() => {
  fetchMock = vi.fn();
  vi.stubGlobal('fetch', fetchMock);
});

afterEach(() => {
  vi.unstubAllGlobals();
});

describe('cancelAllOrders', () => {
  it('without a filter deletes every open order of the account', async () => {
    answer(202, { orders: [ORDER] });
    await expect(api.cancelAllOrders()).resolves.toEqual([ORDER]);
    const [url, init] = fetchMock.mock.calls[0] as [string, RequestInit];
    expect(url).toBe('/api/orders');
    expect(init.method).toBe('DELETE');
    expect(init.credentials).toBe('same-origin');
    expect(init.body).toBeUndefined();
  });

  it('sends the symbol URL-encoded and the side as query parameters', async () => {
    answer(202, { orders: [] });
    await expect(api.cancelAllOrders({ symbol: 'BTC/USD', side: 'SELL' })).resolves.toEqual([]);
    expect(fetchMock.mock.calls[0][0]).toBe('/api/orders?symbol=BTC%2FUSD&side=SELL');
    answer(202, { orders: [] });
    await api.cancelAllOrders({ side: 'BUY' });
    expect(fetchMock.mock.calls[1][0]).toBe('/api/orders?side=BUY');
  });

  it('turns a problem answer into an ApiError with its text', async () => {
    answer(
      400,
      { title: 'Invalid request', status: 400, code: 'VALIDATION', detail: 'unknown symbol "DOGE/USD"' },
      'application/problem+json',
    );
    const err = await api.cancelAllOrders({ symbol: 'DOGE/USD' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(400);
    expect(errorText(err)).toBe('Invalid request: unknown symbol "DOGE/USD" (VALIDATION)');
  });
});

describe('setKillSwitch', () => {
  it('puts the requested state and answers the state the server took', async () => {
    answer(202, { killSwitch: true });
    await expect(api.setKillSwitch(true)).resolves.toBe(true);
    const [url, init] = fetchMock.mock.calls[0] as [string, RequestInit];
    expect(url).toBe('/api/accounts/me/kill-switch');
    expect(init.method).toBe('PUT');
    expect(init.credentials).toBe('same-origin');
    expect(JSON.parse(init.body as string)).toEqual({ enabled: true });
    expect((init.headers as Record<string, string>)['Content-Type']).toBe('application/json');

    answer(202, { killSwitch: false });
    await expect(api.setKillSwitch(false)).resolves.toBe(false);
    expect(JSON.parse((fetchMock.mock.calls[1][1] as RequestInit).body as string)).toEqual({ enabled: false });
  });

  it('turns a problem answer into an ApiError with its text', async () => {
    answer(
      503,
      {
        title: 'Service unavailable',
        status: 503,
        code: 'SERVICE_UNAVAILABLE',
        detail: 'the event log is not reachable',
      },
      'application/problem+json',
    );
    const err = await api.setKillSwitch(true).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(503);
    expect(errorText(err)).toBe('Service unavailable: the event log is not reachable (SERVICE_UNAVAILABLE)');
  });
});

describe('accountFills', () => {
  it('gets the trade history page with the session cookie and the query', async () => {
    const page = {
      fills: [
        {
          orderId: '1234',
          symbol: 'BTC/USD',
          side: 'BUY',
          tradeId: 17,
          price: '45000.00',
          quantity: '0.1',
          liquidity: 'MAKER',
          fee: '4.5',
          feeAsset: 'USD',
          at: null,
        },
      ],
      nextCursor: 'next',
    };
    answer(200, page);
    await expect(api.accountFills({ symbol: 'BTC/USD', limit: 100, cursor: 'abc' })).resolves.toEqual(page);
    const [url, init] = fetchMock.mock.calls[0] as [string, RequestInit];
    expect(url).toBe('/api/fills?symbol=BTC%2FUSD&limit=100&cursor=abc');
    expect(init.method).toBe('GET');
    expect(init.credentials).toBe('same-origin');
  });

  it('turns a problem answer into an ApiError naming its field', async () => {
    answer(
      400,
      { title: 'Invalid request', status: 400, code: 'INVALID_CURSOR', detail: 'cursor is not valid', field: 'cursor' },
      'application/problem+json',
    );
    const err = await api.accountFills({ cursor: 'junk' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).fieldErrors()).toEqual({ cursor: 'cursor is not valid' });
  });
});

describe('session', () => {
  it('takes a session without a scope (an older server) for a trading key', async () => {
    answer(200, { accountId: 3, name: 'desk1' });
    await expect(api.session()).resolves.toEqual({ accountId: 3, name: 'desk1', scope: 'TRADE' });
    const [url, init] = fetchMock.mock.calls[0] as [string, RequestInit];
    expect(url).toBe('/api/session');
    expect(init.method).toBe('GET');
    expect(init.credentials).toBe('same-origin');
  });

  it("keeps a read-only key's scope", async () => {
    answer(200, { accountId: 3, name: 'desk1', scope: 'READ' });
    await expect(api.session()).resolves.toEqual({ accountId: 3, name: 'desk1', scope: 'READ' });
    answer(200, { accountId: 3, name: 'desk1', scope: 'TRADE' });
    await expect(api.session()).resolves.toEqual({ accountId: 3, name: 'desk1', scope: 'TRADE' });
  });
});

describe('a read-only key', () => {
  const ORDER_REQUEST: NewOrderRequest = {
    symbol: 'BTC/USD',
    side: 'BUY',
    orderType: 'LIMIT',
    timeInForce: 'GTC',
    quantity: '0.1',
    price: '45000',
    stopPrice: null,
    postOnly: false,
    expireAt: null,
    clientOrderId: 'web-1',
  };
  const READ_ONLY = {
    title: 'Forbidden',
    status: 403,
    code: 'READ_ONLY_KEY',
    field: 'X-API-Key',
    detail: 'this API key may only read',
  };
  let signedOut: ReturnType<typeof vi.fn>;

  beforeEach(() => {
    signedOut = vi.fn();
    setUnauthorizedHandler(signedOut);
  });

  afterEach(() => {
    setUnauthorizedHandler(null);
  });

  it("is refused with the server's message and does not sign out", async () => {
    for (const send of [
      () => api.placeOrder(ORDER_REQUEST, 'idem-1'),
      () => api.cancelOrder('42'),
      () => api.amendOrder('42', { price: '44000' }, 'idem-2'),
      () => api.cancelAllOrders(),
      () => api.setKillSwitch(true),
    ]) {
      answer(403, READ_ONLY, 'application/problem+json');
      const err = await send().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiError);
      expect((err as ApiError).status).toBe(403);
      expect(errorText(err)).toBe('Forbidden: this API key may only read (READ_ONLY_KEY)');
      // Not a field of the ticket or of an amend: the error goes to the banner.
      expect((err as ApiError).fieldErrors()).toEqual({ 'X-API-Key': 'this API key may only read' });
    }
    expect(signedOut).not.toHaveBeenCalled();
  });

  it('is signed out by a 401 only', async () => {
    answer(401, { title: 'Unauthorized', status: 401, code: 'UNAUTHORIZED' }, 'application/problem+json');
    await api.cancelOrder('42').catch(() => undefined);
    expect(signedOut).toHaveBeenCalledTimes(1);
  });
});
