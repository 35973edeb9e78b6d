import { describe, expect, it } from 'vitest';
import type { Balance, Instrument } from '../api/types';
import { checkTyping, estimateTicket, hasErrors, type TicketInput, toOrderRequest, validateTicket } from './ticket';

const BTC: Instrument = {
  symbol: 'BTC/USD',
  base: 'BTC',
  quote: 'USD',
  tickSize: '0.01',
  stepSize: '0.00001',
  minQuantity: '0.00001',
  maxQuantity: '1000',
  minNotional: '1',
  status: 'TRADING',
  makerFee: '0.001',
  takerFee: '0.002',
  priceBand: '0.1',
};

const NOW = Date.parse('2026-11-25T08:00:00Z');

function ticket(over: Partial<TicketInput> = {}): TicketInput {
  return {
    side: 'BUY',
    orderType: 'LIMIT',
    timeInForce: 'GTC',
    price: '45000.00',
    stopPrice: '',
    quantity: '0.1',
    postOnly: false,
    expireAt: '',
    ...over,
  };
}

const validate = (t: TicketInput, inst = BTC) => validateTicket(t, inst, { now: NOW });

describe('typing filter', () => {
  it('accepts digits up to the increment precision', () => {
    expect(checkTyping('', 2, '0.01').accept).toBe(true);
    expect(checkTyping('45000', 2, '0.01').accept).toBe(true);
    expect(checkTyping('45000.', 2, '0.01').accept).toBe(true);
    expect(checkTyping('45000.1', 2, '0.01').accept).toBe(true);
    expect(checkTyping('45000.12', 2, '0.01').accept).toBe(true);
    expect(checkTyping('.5', 2, '0.01').accept).toBe(true);
  });

  it('rejects extra decimals and shows the constraint', () => {
    const r = checkTyping('45000.123', 2, '0.01');
    expect(r.accept).toBe(false);
    expect(r.reason).toContain('0.01');
    expect(r.reason).toContain('2 decimals');
    expect(checkTyping('0.000001', 5, '0.00001').accept).toBe(false);
    expect(checkTyping('3.', 0, '1').accept).toBe(false);
  });

  it('rejects anything that is not a plain decimal', () => {
    for (const s of ['1e5', '-1', '1,5', '1.2.3', 'abc', ' 1']) {
      expect(checkTyping(s, 5, '0.00001').accept, s).toBe(false);
    }
  });
});

describe('ticket validation', () => {
  it('accepts a valid limit order', () => {
    expect(validate(ticket())).toEqual({});
  });

  it('enforces tick and step', () => {
    expect(validate(ticket({ price: '45000.005' })).price).toMatch(/decimals/);
    expect(validate(ticket({ quantity: '0.000001' })).quantity).toMatch(/decimals/);
    const coarse = { ...BTC, tickSize: '0.5', stepSize: '0.25', minQuantity: '0.25' };
    expect(validate(ticket({ price: '100.2' }), coarse).price).toBe('Must be a multiple of the tick size 0.5');
    expect(validate(ticket({ price: '100.5', quantity: '1.125' }), coarse).quantity).toMatch(/decimals/);
    expect(validate(ticket({ price: '100.5', quantity: '1.3' }), coarse).quantity).toBe(
      'Must be a multiple of the step size 0.25',
    );
    expect(validate(ticket({ price: '100.5', quantity: '1.25' }), coarse)).toEqual({});
  });

  it('enforces min and max quantity and minimum notional', () => {
    const big = { ...BTC, minQuantity: '0.001' };
    expect(validate(ticket({ quantity: '0.0005' }), big).quantity).toBe('Minimum quantity is 0.001');
    expect(validate(ticket({ quantity: '1000.00001' })).quantity).toBe('Maximum quantity is 1000');
    expect(validate(ticket({ quantity: '1000' })).quantity).toBeUndefined();
    expect(validate(ticket({ price: '10.00', quantity: '0.01' })).quantity).toMatch(/below the minimum 1 USD/);
    expect(validate(ticket({ price: '10.00', quantity: '0.1' })).quantity).toBeUndefined();
  });

  it('rejects zero, negative and malformed values', () => {
    expect(validate(ticket({ price: '0' })).price).toBe('Must be greater than 0');
    expect(validate(ticket({ quantity: '0.00000' })).quantity).toBe('Must be greater than 0');
    expect(validate(ticket({ price: 'abc' })).price).toBe('Not a number');
    expect(validate(ticket({ quantity: '-1' })).quantity).toBe('Must be greater than 0');
  });

  it('requires the fields each order type needs', () => {
    expect(validate(ticket({ price: '' })).price).toBe('Required');
    expect(validate(ticket({ quantity: '' })).quantity).toBe('Required');
    const market = ticket({ orderType: 'MARKET', timeInForce: 'IOC', price: '' });
    expect(validate(market)).toEqual({});
    const stop = ticket({ orderType: 'STOP_LIMIT' });
    expect(validate(stop).stopPrice).toBe('Required');
    expect(validate({ ...stop, stopPrice: '44000.00' })).toEqual({});
    expect(validate(ticket({ orderType: 'MARKET', timeInForce: 'GTC' })).timeInForce).toMatch(/IOC or FOK/);
  });

  it('checks GTD expiry and post-only combinations', () => {
    expect(validate(ticket({ timeInForce: 'GTD' })).expireAt).toBe('Required for GTD');
    expect(validate(ticket({ timeInForce: 'GTD', expireAt: '2026-11-25T07:00:00Z' })).expireAt).toBe(
      'Must be in the future',
    );
    expect(validate(ticket({ timeInForce: 'GTD', expireAt: '2026-11-26T08:00:00Z' }))).toEqual({});
    expect(validate(ticket({ postOnly: true }))).toEqual({});
    expect(validate(ticket({ postOnly: true, timeInForce: 'IOC' })).postOnly).toBeDefined();
    expect(validate(ticket({ postOnly: true, orderType: 'STOP_LIMIT', stopPrice: '1.00' })).postOnly).toBeDefined();
    expect(hasErrors(validate(ticket({ postOnly: true, timeInForce: 'FOK' })))).toBe(true);
  });
});

describe('estimate', () => {
  const balances: Balance[] = [
    { asset: 'USD', available: '4509.00', reserved: '0', total: '4509.00' },
    { asset: 'BTC', available: '0.05', reserved: '0', total: '0.05' },
  ];

  it('prices a buy with the fee against the quote balance', () => {
    const e = estimateTicket(ticket(), BTC, balances, {});
    expect(e.payAsset).toBe('USD');
    expect(e.notional).toBe('4500.00');
    expect(e.fee).toBe('9.00');
    expect(e.need).toBe('4509.00');
    expect(e.sufficient).toBe(true);
    expect(estimateTicket(ticket({ price: '45000.01' }), BTC, balances, {}).sufficient).toBe(false);
  });

  it('needs base for a sell and shows proceeds after fee', () => {
    const e = estimateTicket(ticket({ side: 'SELL', quantity: '0.06' }), BTC, balances, {});
    expect(e.payAsset).toBe('BTC');
    expect(e.need).toBe('0.06');
    expect(e.sufficient).toBe(false);
    expect(e.proceeds).toBe('2694.60');
  });

  it('uses the opposite best for market orders', () => {
    const buy = ticket({ orderType: 'MARKET', timeInForce: 'IOC', price: '', quantity: '0.01' });
    const e = estimateTicket(buy, BTC, balances, { bestAsk: '45100.00', bestBid: '45000.00', last: '45050.00' });
    expect(e.price).toBe('45100.00');
    expect(e.need).toBe('451.90');
    const none = estimateTicket(buy, BTC, balances, {});
    expect(none.notional).toBeNull();
  });

  it('is exact where floats are not', () => {
    const e = estimateTicket(
      ticket({ price: '0.10', quantity: '0.3' }),
      { ...BTC, takerFee: '0', makerFee: '0' },
      balances,
      {},
    );
    expect(e.notional).toBe('0.03');
  });
});

describe('order request', () => {
  it('sends canonical decimal strings and only the fields the type uses', () => {
    const body = toOrderRequest(ticket({ price: '45000.', quantity: '.5' }), 'BTC/USD', 'cid-1');
    expect(body).toEqual({
      symbol: 'BTC/USD',
      side: 'BUY',
      orderType: 'LIMIT',
      timeInForce: 'GTC',
      quantity: '0.5',
      price: '45000',
      stopPrice: null,
      postOnly: false,
      expireAt: null,
      clientOrderId: 'cid-1',
    });
    const market = toOrderRequest(ticket({ orderType: 'MARKET', timeInForce: 'IOC', postOnly: true }), 'BTC/USD', 'x');
    expect(market.price).toBeNull();
    expect(market.postOnly).toBe(false);
    const gtd = toOrderRequest(ticket({ timeInForce: 'GTD', expireAt: '2026-11-26T08:00:00Z' }), 'BTC/USD', 'x');
    expect(gtd.expireAt).toBe('2026-11-26T08:00:00.000Z');
  });
});
