// Order-ticket rules: what may be typed, what must be filled in for each order type, the
// instrument's tick/step/min/max/notional filters, and the cost estimate. All exact decimals.
import type { Balance, Instrument, NewOrderRequest, OrderType, Side, TimeInForce } from '../api/types';
import {
  add,
  cmp,
  dec,
  type Dec,
  fractionDigits,
  isMultipleOf,
  isPositive,
  mul,
  parseDec,
  sub,
  toFixed,
  ZERO,
} from './decimal';
import { decimalsOf, formatDecimal } from './format';

export interface TicketInput {
  side: Side;
  orderType: OrderType;
  timeInForce: TimeInForce;
  price: string;
  stopPrice: string;
  quantity: string;
  postOnly: boolean;
  /** datetime-local value ("2026-11-25T08:00") or any Date-parsable text; GTD only. */
  expireAt: string;
}

export type TicketField = 'price' | 'stopPrice' | 'quantity' | 'timeInForce' | 'postOnly' | 'expireAt';
export type TicketErrors = Partial<Record<TicketField, string>>;

export const TIFS_FOR: Record<OrderType, TimeInForce[]> = {
  LIMIT: ['GTC', 'IOC', 'FOK', 'GTD'],
  MARKET: ['IOC', 'FOK'],
  STOP_LIMIT: ['GTC', 'IOC', 'FOK', 'GTD'],
};

export function needsPrice(t: OrderType): boolean {
  return t !== 'MARKET';
}

export function needsStopPrice(t: OrderType): boolean {
  return t === 'STOP_LIMIT';
}

export function postOnlyAllowed(t: OrderType, tif: TimeInForce): boolean {
  return t === 'LIMIT' && (tif === 'GTC' || tif === 'GTD');
}

const TYPING = /^\d*\.?\d*$/;

export interface InputCheck {
  accept: boolean;
  /** Why a keystroke was refused, to show next to the field. */
  reason?: string;
}

/**
 * Decides whether the text a user is typing into a price or quantity box may stand: digits with
 * at most one point and at most `maxDecimals` fraction digits (the tick's or step's precision).
 */
export function checkTyping(next: string, maxDecimals: number, increment: string): InputCheck {
  if (next === '') return { accept: true };
  if (!TYPING.test(next)) return { accept: false, reason: 'Digits and one decimal point only' };
  const dot = next.indexOf('.');
  const decimals = dot < 0 ? 0 : next.length - dot - 1;
  if (maxDecimals === 0 && dot >= 0) return { accept: false, reason: `Whole numbers only (step ${increment})` };
  if (decimals > maxDecimals) {
    return { accept: false, reason: `At most ${maxDecimals} decimals (increment ${increment})` };
  }
  return { accept: true };
}

function checkIncrement(text: string, increment: string, what: 'tick' | 'step'): { value?: Dec; error?: string } {
  const t = text.trim();
  if (t === '') return { error: 'Required' };
  const d = parseDec(t);
  if (!d) return { error: 'Not a number' };
  if (!isPositive(d)) return { error: 'Must be greater than 0' };
  const inc = dec(increment);
  if (fractionDigits(d) > fractionDigits(inc)) {
    return { error: `At most ${fractionDigits(inc)} decimals (${what} ${increment})` };
  }
  if (!isMultipleOf(d, inc)) return { error: `Must be a multiple of the ${what} size ${increment}` };
  return { value: d };
}

export interface ValidationContext {
  /** Epoch ms, for the GTD expiry check. */
  now: number;
}

/** Field-level problems of a ticket; an empty object means it may be sent. */
export function validateTicket(input: TicketInput, inst: Instrument, ctx: ValidationContext): TicketErrors {
  const errors: TicketErrors = {};
  let price: Dec | undefined;

  if (needsPrice(input.orderType)) {
    const r = checkIncrement(input.price, inst.tickSize, 'tick');
    if (r.error) errors.price = r.error;
    price = r.value;
  }
  if (needsStopPrice(input.orderType)) {
    const r = checkIncrement(input.stopPrice, inst.tickSize, 'tick');
    if (r.error) errors.stopPrice = r.error;
  }

  const q = checkIncrement(input.quantity, inst.stepSize, 'step');
  if (q.error) {
    errors.quantity = q.error;
  } else if (q.value) {
    if (cmp(q.value, dec(inst.minQuantity)) < 0) errors.quantity = `Minimum quantity is ${inst.minQuantity}`;
    else if (cmp(q.value, dec(inst.maxQuantity)) > 0) errors.quantity = `Maximum quantity is ${inst.maxQuantity}`;
    else if (price) {
      const notional = mul(price, q.value);
      if (cmp(notional, dec(inst.minNotional)) < 0) {
        errors.quantity = `Order value ${toFixed(notional, decimalsOf(inst.tickSize))} ${inst.quote} is below the minimum ${inst.minNotional} ${inst.quote}`;
      }
    }
  }

  if (!TIFS_FOR[input.orderType].includes(input.timeInForce)) {
    errors.timeInForce = `${input.orderType} orders take ${TIFS_FOR[input.orderType].join(' or ')}`;
  }
  if (input.postOnly && !postOnlyAllowed(input.orderType, input.timeInForce)) {
    errors.postOnly = 'Post-only needs a LIMIT order with GTC or GTD';
  }
  if (input.timeInForce === 'GTD') {
    const at = parseExpiry(input.expireAt);
    if (at === null) errors.expireAt = 'Required for GTD';
    else if (at <= ctx.now) errors.expireAt = 'Must be in the future';
  }
  return errors;
}

function parseExpiry(text: string): number | null {
  if (!text.trim()) return null;
  const t = new Date(text).getTime();
  return Number.isNaN(t) ? null : t;
}

export function hasErrors(e: TicketErrors): boolean {
  return Object.keys(e).length > 0;
}

export interface MarketReference {
  last?: string | null;
  bestBid?: string | null;
  bestAsk?: string | null;
}

export interface Estimate {
  /** Price the estimate uses (limit price, or the opposite best / last for MARKET). */
  price: string | null;
  notional: string | null;
  fee: string | null;
  /** BUY: quote to pay including fee. SELL: base to deliver. */
  need: string | null;
  /** SELL only: quote received after fee. */
  proceeds: string | null;
  payAsset: string;
  available: string;
  sufficient: boolean | null;
}

/**
 * What the order would cost at its limit price (or the current opposite best for a market
 * order), with the taker fee as an upper bound, against the paying asset's available balance.
 */
export function estimateTicket(
  input: TicketInput,
  inst: Instrument,
  balances: Balance[],
  ref: MarketReference,
): Estimate {
  const payAsset = input.side === 'BUY' ? inst.quote : inst.base;
  const availableText = balances.find((b) => b.asset === payAsset)?.available ?? '0';
  const available = parseDec(availableText) ?? ZERO;
  const priceText =
    input.orderType === 'MARKET'
      ? ((input.side === 'BUY' ? ref.bestAsk : ref.bestBid) ?? ref.last ?? null)
      : input.price.trim() || null;
  const price = priceText ? parseDec(priceText) : null;
  const qty = parseDec(input.quantity.trim());
  const quoteDecimals = decimalsOf(inst.tickSize);
  const base: Estimate = {
    price: priceText,
    notional: null,
    fee: null,
    need: null,
    proceeds: null,
    payAsset,
    available: availableText,
    sufficient: null,
  };
  if (!qty || !isPositive(qty)) return base;
  if (input.side === 'SELL') {
    base.need = toFixed(qty);
    base.sufficient = cmp(available, qty) >= 0;
  }
  if (!price || !isPositive(price)) return base;
  const notional = mul(price, qty);
  const feeRate = cmp(dec(inst.takerFee), dec(inst.makerFee)) >= 0 ? dec(inst.takerFee) : dec(inst.makerFee);
  const fee = mul(notional, feeRate);
  base.notional = toFixed(notional, quoteDecimals);
  base.fee = toFixed(fee, quoteDecimals);
  if (input.side === 'BUY') {
    const need = add(notional, fee);
    base.need = toFixed(need, quoteDecimals);
    base.sufficient = cmp(available, need) >= 0;
  } else {
    base.proceeds = toFixed(sub(notional, fee), quoteDecimals);
  }
  return base;
}

/** Canonical text of a typed decimal: "45000." → "45000", ".5" → "0.5". */
function canonical(text: string): string {
  const d = parseDec(text.trim());
  return d ? toFixed(d) : text.trim();
}

/** The POST /api/orders body of a validated ticket. */
export function toOrderRequest(input: TicketInput, symbol: string, clientOrderId: string): NewOrderRequest {
  const gtd = input.timeInForce === 'GTD';
  const expiry = gtd ? parseExpiry(input.expireAt) : null;
  return {
    symbol,
    side: input.side,
    orderType: input.orderType,
    timeInForce: input.timeInForce,
    quantity: canonical(input.quantity),
    price: needsPrice(input.orderType) ? canonical(input.price) : null,
    stopPrice: needsStopPrice(input.orderType) ? canonical(input.stopPrice) : null,
    postOnly: input.postOnly && postOnlyAllowed(input.orderType, input.timeInForce),
    expireAt: expiry === null ? null : new Date(expiry).toISOString(),
    clientOrderId,
  };
}

/** One-line summary of the instrument's filters, shown under the ticket fields. */
export function constraintHint(inst: Instrument): { price: string; quantity: string } {
  return {
    price: `Tick ${inst.tickSize} ${inst.quote}`,
    quantity: `Step ${inst.stepSize} · min ${inst.minQuantity} · max ${formatDecimal(inst.maxQuantity, decimalsOf(inst.maxQuantity))} · min value ${inst.minNotional} ${inst.quote}`,
  };
}
