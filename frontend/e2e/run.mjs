// End-to-end test of the trading dashboard against a running OMS (`oms serve` with its demo
// market). Drives Debian's Chromium through playwright-core.
//   OMS_URL        base URL of the OMS serving the dashboard (default http://127.0.0.1:8080)
//   OMS_API_KEY    API key of an account with quote and base balances (required)
//   OMS_ADMIN_KEY  an operator key of the server's admin API (required: the global kill switch, an
//                  instrument's trading status, the keys issued)
//   OMS_ARTIFACTS  where screenshots go (default ../test-artifacts)
//   OMS_SYMBOL     symbol to trade (default: the dashboard's first instrument)
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { assert, config, decimal, launch, Runner, sleep, until, waitForServer } from './lib.mjs';

const cfg = config();
const run = new Runner();

if (!cfg.apiKey) {
  console.log('OMS_API_KEY is not set: the browser test needs the API key of a demo account.');
  console.log('0 passed, 1 failed');
  process.exit(1);
}

fs.mkdirSync(cfg.artifacts, { recursive: true });
await waitForServer(cfg.baseUrl);
const browser = await launch(cfg);
const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
const page = await context.newPage();

// Every console error fails the run, except the ones a step announces it provokes on purpose.
const consoleErrors = [];
let allowed = null;
page.on('console', (m) => {
  if (m.type() !== 'error') return;
  if (allowed && allowed.test(m.text())) return;
  consoleErrors.push(m.text());
});
page.on('pageerror', (e) => consoleErrors.push(`uncaught: ${e.message}`));

const S = {}; // state shared between steps
const olderCandleRequests = [];
page.on('request', (r) => {
  if (r.url().includes('/api/marketdata/candles') && new URL(r.url()).searchParams.has('to'))
    olderCandleRequests.push(r.url());
});
// The page's reads of the instrument list, and the status messages its WebSocket receives.
const instrumentReads = [];
const statusFrames = [];
page.on('request', (r) => {
  if (r.method() === 'GET' && new URL(r.url()).pathname === '/api/instruments') instrumentReads.push(r.url());
});
page.on('websocket', (ws) =>
  ws.on('framereceived', ({ payload }) => {
    if (typeof payload === 'string' && payload.includes('"channel":"status:')) statusFrames.push(JSON.parse(payload));
  }),
);
const q = (sel) => page.locator(sel);
const openRow = (id) => q(`[data-testid="open-orders"] tr[data-order-id="${id}"]`);
const historyRow = (id) => q(`[data-testid="order-history"] tr[data-order-id="${id}"]`);

async function chartData() {
  return q('[data-testid="price-chart"]').evaluate((el) => ({ ...el.dataset }));
}

async function balances() {
  await q('[data-testid="tab-balances"]').click();
  await q('[data-testid="balances"]').waitFor();
  const rows = await q('[data-testid="balances"] tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [tr.dataset.asset, tr.querySelector('[data-testid="available"]').dataset.raw]),
  );
  return Object.fromEntries(rows);
}

async function fillTicket({ side, type, price, quantity, tif }) {
  await q(`[data-testid="order-ticket"] [role="radio"]:has-text("${side === 'BUY' ? 'Buy' : 'Sell'}")`).click();
  await q(`[data-testid="type-${type}`.concat('"]')).click();
  if (price !== undefined) await q('#ticket-price').fill(price);
  await q('#ticket-quantity').fill(quantity);
  if (tif) await q('#ticket-timeInForce').selectOption(tif);
}

/** Submits the ticket and returns the order id the server assigned. */
async function submitTicket() {
  const answer = page.waitForResponse((r) => r.url().endsWith('/api/orders') && r.request().method() === 'POST');
  await q('[data-testid="ticket-submit"]').click();
  const res = await answer;
  const body = await res.json();
  assert(res.status() === 202, `POST /api/orders answered ${res.status()}: ${JSON.stringify(body)}`);
  assert(body.orderId, 'the 202 body has no orderId');
  assert(res.request().headers()['x-idempotency-key'], 'the order was sent without X-Idempotency-Key');
  return body;
}

await run.step('sign in with the API key', async () => {
  await page.goto(cfg.baseUrl + '/', { waitUntil: 'load' });
  await q('#api-key')
    .waitFor({ timeout: 10_000 })
    .catch(async () => {
      const text = (await page.textContent('body')) ?? '';
      throw new Error(`no sign-in form at ${cfg.baseUrl}/ (is frontend/dist built?): ${text.slice(0, 200)}`);
    });
  await q('#api-key').fill(cfg.apiKey);
  await q('.signin-card button[type="submit"]').click();
  await q('[data-testid="symbol-select"]').waitFor({ timeout: 15_000 });
  const stored = await page.evaluate(
    () => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }) + document.cookie,
  );
  assert(!stored.includes(cfg.apiKey), 'the API key was left in browser storage or a readable cookie');
  if (cfg.symbol) await q('[data-testid="symbol-select"]').selectOption(cfg.symbol);
  // The selector is drawn before the instruments arrive; its value is empty until then.
  S.symbol = await until('the instruments to load', () => q('[data-testid="symbol-select"]').inputValue());
  const r = await context.request.get(`${cfg.baseUrl}/api/instruments`);
  S.inst = (await r.json()).instruments.find((i) => i.symbol === S.symbol);
  assert(S.inst, `instrument ${S.symbol} not in /api/instruments`);
});

await run.step(
  'the WebSocket connects',
  async () => {
    await until(
      'the WebSocket to connect',
      async () => (await q('[data-testid="connection"]').getAttribute('data-state')) === 'connected',
    );
  },
  { needs: ['sign in with the API key'] },
);

await run.step(
  'chart shows candles for the 1m interval',
  async () => {
    await q('[data-testid="interval-1m"]').click();
    await until('candles on the chart', async () => Number((await chartData()).candles ?? 0) > 0, 30_000);
    assert(await q('[data-testid="price-chart"] canvas').count(), 'the chart drew no canvas');
    S.chartBefore = await chartData();
  },
  { needs: ['sign in with the API key'] },
);

await run.step(
  'scrolling the chart back asks for older candles',
  async () => {
    // Drag the time scale to the right (back in time) until the chart requests the page before
    // its first candle (`to` = that candle's open time). With little history it asks at once.
    const box = await q('[data-testid="price-chart"]').boundingBox();
    for (let i = 0; i < 12 && olderCandleRequests.length === 0; i++) {
      await page.mouse.move(box.x + box.width * 0.2, box.y + box.height * 0.5);
      await page.mouse.down();
      await page.mouse.move(box.x + box.width * 0.9, box.y + box.height * 0.5, { steps: 8 });
      await page.mouse.up();
      await sleep(300);
    }
    assert(olderCandleRequests.length > 0, 'no request for older candles after scrolling back');
    const to = Number(new URL(olderCandleRequests[0]).searchParams.get('to'));
    assert(to > 0 && to <= Number(S.chartBefore.lastOpenTime), `older page asked up to ${to}`);
    await page.mouse.move(0, 0);
    // Back to the newest candles for the steps that watch the last one.
    await q('[data-testid="interval-5m"]').click();
    await q('[data-testid="interval-1m"]').click();
    await until('candles on the chart', async () => Number((await chartData()).candles ?? 0) > 0, 15_000);
  },
  { needs: ['chart shows candles for the 1m interval'] },
);

await run.step(
  'order book, ticker and trades are live',
  async () => {
    await until('a two-sided order book', async () => (await q('[data-testid="spread"] strong').count()) > 0, 30_000);
    S.bestBid = await q('[data-testid="order-book"] .ladder-row.bid').first().getAttribute('data-price');
    S.bestAsk = await q('[data-testid="order-book"] .ladder-row.ask').last().getAttribute('data-price');
    assert(decimal.cmp(S.bestBid, S.bestAsk) < 0, `crossed book: bid ${S.bestBid} ask ${S.bestAsk}`);
    const last = await q('[data-testid="ticker-last"]').textContent();
    assert(last && last !== '—', 'the ticker shows no last price');
    // Clicking a ladder price fills the ticket's price. The demo market requotes all the time,
    // so the row is clicked and its price read in one step in the page.
    const clicked = await page.evaluate(() => {
      const row = document.querySelector('[data-testid="order-book"] .ladder-row.bid');
      row.click();
      return row.getAttribute('data-price');
    });
    await until(
      'the ticket price follows the click',
      async () => (await q('#ticket-price').inputValue()) === clicked,
      5_000,
    );
  },
  { needs: ['the WebSocket connects'] },
);

await run.step(
  'reconnects after the connection drops',
  async () => {
    const seen = page.waitForFunction(
      () => document.querySelector('[data-testid="connection"]')?.getAttribute('data-state') === 'reconnecting',
      null,
      { polling: 'raf', timeout: 5_000 },
    );
    await page.evaluate(() => window.__oms.socket.reconnect());
    await seen;
    await until(
      'the WebSocket to connect again',
      async () => (await q('[data-testid="connection"]').getAttribute('data-state')) === 'connected',
    );
    // The resubscribed depth channel starts with a fresh snapshot: the book is two-sided again.
    await until('a two-sided order book', async () => (await q('[data-testid="spread"] strong').count()) > 0, 15_000);
  },
  { needs: ['order book, ticker and trades are live'] },
);

/**
 * Places a BUY LIMIT 5 % under the best bid through the ticket and waits for it to show
 * REJECTED with `reason` in the order history; returns its price for the next order.
 */
async function expectRefusedBuy(reason) {
  const bid = await q('[data-testid="order-book"] .ladder-row.bid').first().getAttribute('data-price');
  const price = decimal.floorToIncrement(bid, '0.95', S.inst.tickSize);
  await fillTicket({ side: 'BUY', type: 'LIMIT', price, quantity: testQuantity(price), tif: 'GTC' });
  const refused = (await submitTicket()).orderId;
  await q('[data-testid="tab-history"]').click();
  await until(
    `order ${refused} REJECTED in order history`,
    async () => (await historyRow(refused).getAttribute('data-status')) === 'REJECTED',
  );
  const shown = await historyRow(refused).locator('.reason').textContent();
  assert(shown === reason, `order ${refused} shows reject reason "${shown}", not ${reason}`);
  return { price, refused };
}

function testQuantity(price, inst = S.inst) {
  // Enough for a few times the minimum notional, on step, at least the minimum quantity.
  const target = Number(inst.minNotional) * 3;
  const steps = Math.max(Math.ceil(target / Number(price) / Number(inst.stepSize)), 1);
  const qty = decimal.times(inst.stepSize, steps);
  return decimal.cmp(qty, inst.minQuantity) < 0 ? inst.minQuantity : qty;
}

await run.step(
  'a resting limit order shows in open orders',
  async () => {
    // 5% under the best bid: inside the price band, far from the market maker's asks.
    S.restPrice = decimal.floorToIncrement(S.bestBid, '0.95', S.inst.tickSize);
    S.restQty = testQuantity(S.restPrice);
    await fillTicket({ side: 'BUY', type: 'LIMIT', price: S.restPrice, quantity: S.restQty, tif: 'GTC' });
    const order = await submitTicket();
    S.restId = order.orderId;
    await q('[data-testid="tab-open"]').click();
    await openRow(S.restId).waitFor({ timeout: 15_000 });
    await until(
      'the order to be accepted',
      async () => (await openRow(S.restId).getAttribute('data-status')) === 'ACCEPTED',
    );
    const shown = await openRow(S.restId).locator('[data-testid="order-price"]').textContent();
    assert(shown.replace(/,/g, '') === S.restPrice, `open order shows price ${shown}, expected ${S.restPrice}`);
  },
  { needs: ['order book, ticker and trades are live'] },
);

await run.step(
  'amend the open order inline',
  async () => {
    S.amendPrice = decimal.floorToIncrement(S.restPrice, '0.99', S.inst.tickSize);
    const row = openRow(S.restId);
    await row.locator('[data-testid="amend"]').click();
    await row.locator('[data-testid="amend-price"]').fill(S.amendPrice);
    const answer = page.waitForResponse(
      (r) => r.url().includes(`/api/orders/${S.restId}`) && r.request().method() === 'PATCH',
    );
    await row.locator('[data-testid="amend-save"]').click();
    const res = await answer;
    assert(res.status() === 202, `PATCH answered ${res.status()}: ${await res.text()}`);
    await until(
      'the amended price in open orders',
      async () =>
        (await openRow(S.restId).locator('[data-testid="order-price"]').textContent())?.replace(/,/g, '') ===
        S.amendPrice,
    );
  },
  { needs: ['a resting limit order shows in open orders'] },
);

await run.step(
  'cancel the open order',
  async () => {
    const answer = page.waitForResponse(
      (r) => r.url().includes(`/api/orders/${S.restId}`) && r.request().method() === 'DELETE',
    );
    await openRow(S.restId).locator('[data-testid="cancel"]').click();
    const res = await answer;
    assert(res.status() === 202, `DELETE answered ${res.status()}: ${await res.text()}`);
    await until('the order to leave open orders', async () => (await openRow(S.restId).count()) === 0);
    await q('[data-testid="tab-history"]').click();
    await until(
      'CANCELED in order history',
      async () => (await historyRow(S.restId).getAttribute('data-status')) === 'CANCELED',
    );
  },
  { needs: ['a resting limit order shows in open orders'] },
);

await run.step(
  'a marketable order fills and moves the balance and the candle',
  async () => {
    // The server's figures, not the page's: the page refreshes balances shortly after each
    // order event, so it may not show the cancel's released reservation yet.
    const account = await (await context.request.get(`${cfg.baseUrl}/api/accounts/me`)).json();
    const before = Object.fromEntries(account.balances.map((b) => [b.asset, b.available]));
    const chartBefore = await chartData();
    const bestAsk = await q('[data-testid="order-book"] .ladder-row.ask').last().getAttribute('data-price');
    const qty = testQuantity(bestAsk);
    await fillTicket({ side: 'BUY', type: 'MARKET', quantity: qty });
    const order = await submitTicket();
    S.takerId = order.orderId;
    await q('[data-testid="tab-history"]').click();
    const filledRow = historyRow(S.takerId);
    // A market order ends FILLED, or EXPIRED for a remainder the book could not take.
    await until(
      'the market order to finish',
      async () => ['FILLED', 'EXPIRED', 'CANCELED', 'REJECTED'].includes(await filledRow.getAttribute('data-status')),
      20_000,
    );
    const status = await filledRow.getAttribute('data-status');
    const reason = await filledRow.locator('.reason').textContent();
    const filled = (await filledRow.locator('[data-testid="filled"]').textContent()).replace(/,/g, '');
    assert(decimal.cmp(filled, '0') > 0, `the market order did not fill: ${status} ${reason}`);
    S.takerFilled = filled;
    // Its fills expand under the row.
    await filledRow.locator('[data-testid="toggle-fills"]').click();
    await until('the fills table', async () => (await q('[data-testid="fills"] tbody tr').count()) > 0);
    // The base balance grows by exactly the filled quantity (fees are paid in quote).
    const base = S.inst.base;
    const quote = S.inst.quote;
    let after;
    await until(
      `${base} available to grow by the filled ${filled}`,
      async () => {
        after = await balances();
        return decimal.cmp(decimal.sub(after[base], before[base]), filled) === 0;
      },
      15_000,
    ).catch((e) => {
      throw new Error(`${e.message}: moved by ${decimal.sub(after[base], before[base])}`);
    });
    assert(
      decimal.cmp(after[quote], before[quote]) < 0,
      `${quote} available did not fall (${before[quote]} → ${after[quote]})`,
    );
    // The trade reaches the live candle.
    await until(
      'the last candle to take the trade',
      async () => {
        const c = await chartData();
        return (
          c.lastOpenTime !== chartBefore.lastOpenTime ||
          c.lastTrades !== chartBefore.lastTrades ||
          c.lastVolume !== chartBefore.lastVolume
        );
      },
      15_000,
    );
  },
  { needs: ['order book, ticker and trades are live'] },
);

await run.step(
  'the trades tab lists the fills of the filled order',
  async () => {
    // What was traded, as the server recorded it against the order.
    const r = await context.request.get(`${cfg.baseUrl}/api/orders/${S.takerId}/fills`);
    assert(r.status() === 200, `GET /api/orders/${S.takerId}/fills answered ${r.status()}: ${await r.text()}`);
    const traded = (await r.json()).fills;
    assert(traded.length > 0, `order ${S.takerId} has no fills`);
    const total = traded.reduce((sum, f) => decimal.add(sum, f.quantity), '0');
    assert(decimal.cmp(total, S.takerFilled) === 0, `its fills add up to ${total}, the history shows ${S.takerFilled}`);
    const plain = (text) => text.replace(/,/g, '').trim().split(' ')[0];

    // The order history shows what the fills came to: the order's executed notional, exact.
    const spent = traded.reduce((sum, f) => decimal.add(sum, decimal.mul(f.price, f.quantity)), '0');
    await q('[data-testid="tab-history"]').click();
    const notionalCell = historyRow(S.takerId).locator('[data-testid="order-notional"]');
    const raw = await notionalCell.getAttribute('data-raw');
    const notionalText = await notionalCell.textContent();
    assert(decimal.cmp(raw, spent) === 0, `order ${S.takerId} has executed notional ${raw}, its fills ${spent}`);
    const notionalTitle = await notionalCell.getAttribute('title');
    assert(
      decimal.cmp(plain(notionalText), spent) === 0 && notionalTitle === `${notionalText} ${S.inst.quote} traded`,
      `order ${S.takerId} shows notional "${notionalText}" ("${notionalTitle}"), its fills ${spent} ${S.inst.quote}`,
    );

    // Opening the tab reads the first page of the account's fills.
    const isFirstPage = (res) => {
      const u = new URL(res.url());
      return u.pathname === '/api/fills' && !u.searchParams.has('cursor') && res.request().method() === 'GET';
    };
    const answer = page.waitForResponse(isFirstPage);
    const tab = q('[data-testid="tab-trades"]');
    await tab.click();
    const res = await answer;
    assert(res.status() === 200, `GET /api/fills answered ${res.status()}: ${await res.text()}`);
    const asked = new URL(res.url()).searchParams;
    assert(asked.get('limit') === '100', `the first page was asked as ?${asked}`);
    assert((await tab.getAttribute('aria-selected')) === 'true', 'the trades tab is not selected');
    assert(
      (await q('#tabpanel-trades').getAttribute('aria-labelledby')) === 'tab-trades',
      'no tab panel labelled by the trades tab',
    );

    // Every fill of the order shows once, with what was traded.
    const rows = q(`#tabpanel-trades [data-testid="trade-row"][data-order-id="${S.takerId}"]`);
    await until(
      `the ${traded.length} fills of order ${S.takerId} in the trades tab`,
      async () => (await rows.count()) === traded.length,
    ).catch(async (e) => {
      throw new Error(`${e.message}: ${await rows.count()} rows of it shown`);
    });
    const shown = await rows.evaluateAll((trs) =>
      trs.map((tr) => {
        const cell = (id) => tr.querySelector(`[data-testid="${id}"]`);
        return {
          tradeId: tr.dataset.tradeId,
          symbol: cell('trade-symbol').textContent,
          side: cell('trade-side').textContent,
          price: cell('trade-price').dataset.raw,
          priceText: cell('trade-price').textContent,
          quantity: cell('trade-quantity').dataset.raw,
          quantityText: cell('trade-quantity').textContent,
          notional: cell('trade-notional').dataset.raw,
          notionalText: cell('trade-notional').textContent,
          liquidity: cell('trade-liquidity').textContent,
          orderId: cell('trade-order').textContent,
        };
      }),
    );
    for (const f of traded) {
      const row = shown.find((x) => x.tradeId === String(f.tradeId));
      const what = `trade ${f.tradeId} of order ${S.takerId}`;
      assert(row, `${what} is not in the trades tab (rows: ${shown.map((x) => x.tradeId)})`);
      assert(row.orderId === S.takerId, `${what} shows order ${row.orderId}`);
      assert(row.symbol === S.symbol && row.side === 'BUY', `${what} shows ${row.side} ${row.symbol}`);
      for (const [name, raw, text, want] of [
        ['price', row.price, row.priceText, f.price],
        ['quantity', row.quantity, row.quantityText, f.quantity],
        ['notional', row.notional, row.notionalText, decimal.mul(f.price, f.quantity)],
      ]) {
        assert(decimal.cmp(raw, want) === 0, `${what} has ${name} ${raw}, traded ${want}`);
        assert(decimal.cmp(plain(text), want) === 0, `${what} shows ${name} "${text}", traded ${want}`);
      }
      const liquidity = f.liquidity === 'MAKER' ? 'Maker' : 'Taker';
      assert(row.liquidity === liquidity, `${what} shows ${row.liquidity}, not ${liquidity}`);
    }
    // Newest first: nothing of this account traded after this order.
    const first = await q('#tabpanel-trades [data-testid="trade-row"]').first().getAttribute('data-order-id');
    assert(first === S.takerId, `the newest trade shown is of order ${first}, not ${S.takerId}`);

    // The export link gives the whole history as CSV, the order's fills in it with their notional.
    const href = await q('[data-testid="trades-export"]').getAttribute('href');
    const csv = await context.request.get(`${cfg.baseUrl}${href}`);
    assert(csv.status() === 200, `GET ${href} answered ${csv.status()}`);
    assert(
      csv.headers()['content-type'] === 'text/csv; charset=utf-8',
      `GET ${href} is ${csv.headers()['content-type']}`,
    );
    const lines = (await csv.text()).trim().split('\r\n');
    assert(lines[0].startsWith('time,orderId,symbol,side,tradeId,price'), `the CSV header is "${lines[0]}"`);
    for (const f of traded) {
      const line = lines.find((l) => l.split(',')[1] === S.takerId && l.split(',')[4] === String(f.tradeId));
      assert(line, `trade ${f.tradeId} of order ${S.takerId} is not in the export`);
      const notional = line.split(',')[7];
      const want = decimal.mul(f.price, f.quantity);
      assert(
        decimal.cmp(notional, want) === 0,
        `the export's notional of trade ${f.tradeId} is ${notional}, not ${want}`,
      );
    }

    const file = path.join(cfg.artifacts, 'trades-tab.png');
    await page.screenshot({ path: file });
    assert(fs.statSync(file).size > 10_000, `${file} looks empty`);
  },
  { needs: ['a marketable order fills and moves the balance and the candle'] },
);

await run.step(
  "an invalid quantity shows the server's message by the field",
  async () => {
    // The ticket refuses off-step input as it is typed, so the request is altered on its way out
    // to carry one decimal too many: the message must come from the server, next to its field.
    const offStep = S.inst.minQuantity.includes('.') ? `${S.inst.minQuantity}1` : `${S.inst.minQuantity}.1`;
    await page.route('**/api/orders', async (route) => {
      if (route.request().method() !== 'POST') return route.continue();
      const body = JSON.parse(route.request().postData());
      body.quantity = offStep;
      await route.continue({ postData: JSON.stringify(body) });
    });
    allowed = /status of 400/;
    try {
      await fillTicket({ side: 'BUY', type: 'LIMIT', price: S.restPrice, quantity: S.restQty, tif: 'GTC' });
      const answer = page.waitForResponse((r) => r.url().endsWith('/api/orders') && r.request().method() === 'POST');
      await q('[data-testid="ticket-submit"]').click();
      const res = await answer;
      const problem = await res.json();
      assert(res.status() === 400, `expected 400 for quantity ${offStep}, got ${res.status()}`);
      assert(
        (res.headers()['content-type'] ?? '').includes('application/problem+json'),
        'the error is not problem+json',
      );
      const fieldMessage =
        problem.field === 'quantity' ? problem.detail : problem.errors?.find((e) => e.field === 'quantity')?.detail;
      assert(fieldMessage, `the problem names no quantity field: ${JSON.stringify(problem)}`);
      const shown = await q('[data-testid="ticket-quantity-error"]').textContent({ timeout: 5_000 });
      assert(shown === fieldMessage, `shown "${shown}", server said "${fieldMessage}"`);
    } finally {
      await page.unroute('**/api/orders');
      await sleep(200);
      allowed = null;
    }
  },
  { needs: ['order book, ticker and trades are live'] },
);

await run.step(
  'cancel all open orders after a confirming click',
  async () => {
    // A BUY 5 % under the best bid and a SELL 5 % over the best ask: both rest until canceled.
    const bid = await q('[data-testid="order-book"] .ladder-row.bid').first().getAttribute('data-price');
    const ask = await q('[data-testid="order-book"] .ladder-row.ask').last().getAttribute('data-price');
    const ids = [];
    for (const [side, price] of [
      ['BUY', decimal.floorToIncrement(bid, '0.95', S.inst.tickSize)],
      ['SELL', decimal.floorToIncrement(ask, '1.05', S.inst.tickSize)],
    ]) {
      await fillTicket({ side, type: 'LIMIT', price, quantity: testQuantity(price), tif: 'GTC' });
      ids.push((await submitTicket()).orderId);
    }
    await q('[data-testid="tab-open"]').click();
    for (const id of ids) {
      await openRow(id).waitFor({ timeout: 15_000 });
      await until(
        `order ${id} to be accepted`,
        async () => (await openRow(id).getAttribute('data-status')) === 'ACCEPTED',
      );
    }
    const shown = await q('[data-testid="open-orders"] tbody tr').count();
    const button = q('[data-testid="cancel-all"]');
    // The open tab lists every symbol's orders, so the button covers all of them, unfiltered.
    const label = await button.getAttribute('aria-label');
    assert(label === 'Cancel all open orders', `the button is labelled "${label}"`);

    const isCancelAll = (r) => r.method() === 'DELETE' && new URL(r.url()).pathname === '/api/orders';
    const sent = [];
    const onRequest = (r) => isCancelAll(r) && sent.push(r.url());
    page.on('request', onRequest);
    try {
      await button.click();
      await until(
        'the button to ask for confirmation',
        async () => (await button.textContent()) === `Confirm cancel all (${shown})`,
        2_000,
      );
      await sleep(300);
      assert(sent.length === 0, 'the first click sent the cancel without waiting for the confirmation');
      const answer = page.waitForResponse((r) => isCancelAll(r.request()));
      await button.click();
      const res = await answer;
      const body = await res.json();
      assert(res.status() === 202, `DELETE /api/orders answered ${res.status()}: ${JSON.stringify(body)}`);
      assert(new URL(res.url()).search === '', `the cancel of all open orders was filtered: ${res.url()}`);
      const requested = body.orders.map((o) => o.orderId);
      for (const id of ids) assert(requested.includes(id), `order ${id} is not in the answer: ${requested}`);
      assert(requested.length === shown, `the server canceled ${requested.length} orders, the panel showed ${shown}`);
      assert(sent.length === 1, `${sent.length} cancel-all requests were sent`);
    } finally {
      page.off('request', onRequest);
    }

    await until('the count notice', async () =>
      (await q('[data-testid="banner-info"] span').allTextContents()).includes(`Cancel requested for ${shown} orders`),
    );
    for (const id of ids) {
      await until(`order ${id} to leave open orders`, async () => (await openRow(id).count()) === 0);
    }
    await until('Cancel all to be disabled with no open order left', () => button.isDisabled());
    await q('[data-testid="tab-history"]').click();
    for (const id of ids) {
      await until(
        `order ${id} CANCELED in order history`,
        async () => (await historyRow(id).getAttribute('data-status')) === 'CANCELED',
      );
    }
  },
  { needs: ['order book, ticker and trades are live'] },
);

await run.step(
  'the kill switch refuses new orders until it is turned off',
  async () => {
    const toggle = q('[data-testid="kill-switch"]');
    const banner = q('[data-testid="kill-switch-banner"]');
    const isSwitch = (r) => r.method() === 'PUT' && new URL(r.url()).pathname === '/api/accounts/me/kill-switch';
    const sent = [];
    const onRequest = (r) => isSwitch(r) && sent.push(r.postDataJSON());
    page.on('request', onRequest);
    try {
      await until('the kill switch to show off', async () => (await toggle.getAttribute('data-state')) === 'off');
      assert((await toggle.getAttribute('aria-pressed')) === 'false', 'the kill switch is off but shows pressed');
      assert((await banner.count()) === 0, 'the kill switch banner shows while the switch is off');
      const name = await toggle.getAttribute('aria-label');
      assert(name === 'Kill switch', `the toggle is labelled "${name}"`);

      // On: the safety action takes one click.
      const on = page.waitForResponse((r) => isSwitch(r.request()));
      await toggle.click();
      const onRes = await on;
      const onBody = await onRes.json();
      assert(onRes.status() === 202, `PUT kill-switch on answered ${onRes.status()}: ${JSON.stringify(onBody)}`);
      assert(onBody.killSwitch === true, `PUT kill-switch on answered ${JSON.stringify(onBody)}`);
      assert(JSON.stringify(sent) === '[{"enabled":true}]', `sent ${JSON.stringify(sent)}`);
      await until('the toggle to show on', async () => (await toggle.getAttribute('aria-pressed')) === 'true', 2_000);
      const bannerText = await banner.textContent({ timeout: 2_000 });
      assert(bannerText.startsWith('Kill switch on: new orders'), `the banner says "${bannerText}"`);
      await q('[data-testid="ticket-kill-switch"]').waitFor({ timeout: 2_000 });

      // A resting limit order placed now is refused by risk, and the history says why.
      const { price } = await expectRefusedBuy('ACCOUNT_KILL_SWITCH');
      // Still on: the toggle did not fall back to a lagging read of the account.
      assert((await toggle.getAttribute('aria-pressed')) === 'true', 'the toggle no longer shows on');

      // Off: the first click only asks for confirmation, the second one sends.
      sent.length = 0;
      await toggle.click();
      await until(
        'the toggle to ask for confirmation',
        async () => (await toggle.textContent()).startsWith('Confirm kill switch off'),
        2_000,
      );
      await sleep(300);
      assert(sent.length === 0, 'the first click turned the kill switch off without waiting for the confirmation');
      assert((await toggle.getAttribute('aria-pressed')) === 'true', 'the armed toggle no longer shows on');
      const off = page.waitForResponse((r) => isSwitch(r.request()));
      await toggle.click();
      const offRes = await off;
      const offBody = await offRes.json();
      assert(offRes.status() === 202, `PUT kill-switch off answered ${offRes.status()}: ${JSON.stringify(offBody)}`);
      assert(offBody.killSwitch === false, `PUT kill-switch off answered ${JSON.stringify(offBody)}`);
      assert(JSON.stringify(sent) === '[{"enabled":false}]', `sent ${JSON.stringify(sent)}`);
      await until('the toggle to show off', async () => (await toggle.getAttribute('aria-pressed')) === 'false', 2_000);
      await until('the banner to go', async () => (await banner.count()) === 0, 2_000);
      assert((await q('[data-testid="ticket-kill-switch"]').count()) === 0, 'the ticket still warns of the switch');
      let account;
      await until(
        'GET /api/accounts/me to report the kill switch off',
        async () => {
          account = await (await context.request.get(`${cfg.baseUrl}/api/accounts/me`)).json();
          return account.killSwitch === false;
        },
        10_000,
      ).catch((e) => {
        throw new Error(`${e.message}: killSwitch ${JSON.stringify(account?.killSwitch)}`);
      });

      // Orders pass again: the same kind of order now rests.
      await fillTicket({ side: 'BUY', type: 'LIMIT', price, quantity: testQuantity(price), tif: 'GTC' });
      const passed = (await submitTicket()).orderId;
      await until(
        `order ${passed} to leave NEW`,
        async () => !['NEW', null].includes(await historyRow(passed).getAttribute('data-status')),
      );
      const status = await historyRow(passed).getAttribute('data-status');
      const passedReason = await historyRow(passed).locator('.reason').textContent();
      assert(status === 'ACCEPTED', `order ${passed} is ${status} ${passedReason} with the kill switch off`);
      await q('[data-testid="tab-open"]').click();
      await openRow(passed).locator('[data-testid="cancel"]').click();
      await until(`order ${passed} to leave open orders`, async () => (await openRow(passed).count()) === 0);
    } finally {
      page.off('request', onRequest);
      // Whatever failed above, the account must not be left refusing orders.
      const r = await context.request.put(`${cfg.baseUrl}/api/accounts/me/kill-switch`, { data: { enabled: false } });
      assert(r.status() === 202, `turning the kill switch off through the API answered ${r.status()}`);
    }
  },
  { needs: ['order book, ticker and trades are live'] },
);

await run.step(
  "an operator's global kill switch shows on the page and refuses the account's orders",
  async () => {
    assert(cfg.adminKey, 'OMS_ADMIN_KEY is not set: this step needs an operator key of the admin API');
    const globalSwitch = (on) =>
      context.request.put(`${cfg.baseUrl}/api/admin/kill-switch`, {
        data: { enabled: on },
        headers: { 'X-Admin-Key': cfg.adminKey },
      });
    const banner = q('[data-testid="global-kill-switch-banner"]');
    assert((await banner.count()) === 0, 'the global kill switch banner shows before any switch');
    try {
      const r = await globalSwitch(true);
      assert(r.status() === 202, `PUT /api/admin/kill-switch answered ${r.status()}: ${await r.text()}`);
      const { price } = await expectRefusedBuy('GLOBAL_KILL_SWITCH');
      // The refusal's update re-reads the account, which carries the operators' switch.
      const text = await banner.textContent({ timeout: 5_000 });
      assert(text.startsWith('Trading halted by an operator'), `the banner says "${text}"`);
      const hint = await q('[data-testid="ticket-kill-switch"]').textContent({ timeout: 2_000 });
      assert(hint.includes('GLOBAL_KILL_SWITCH'), `the ticket says "${hint}"`);
      // The account's own switch is untouched, and this page cannot lift the operators'.
      const toggle = q('[data-testid="kill-switch"]');
      assert((await toggle.getAttribute('aria-pressed')) === 'false', "the account's own switch shows on");

      const off = await globalSwitch(false);
      assert(off.status() === 202, `PUT /api/admin/kill-switch off answered ${off.status()}`);
      await fillTicket({ side: 'BUY', type: 'LIMIT', price, quantity: testQuantity(price), tif: 'GTC' });
      const passed = (await submitTicket()).orderId;
      await until(
        `order ${passed} ACCEPTED in order history`,
        async () => (await historyRow(passed).getAttribute('data-status')) === 'ACCEPTED',
      );
      await until('the global banner to go', async () => (await banner.count()) === 0, 5_000);
      await q('[data-testid="tab-open"]').click();
      await openRow(passed).locator('[data-testid="cancel"]').click();
      await until(`order ${passed} to leave open orders`, async () => (await openRow(passed).count()) === 0);
    } finally {
      // Whatever failed above, the server must not be left refusing every order.
      const r = await globalSwitch(false);
      assert(r.status() === 202, `turning the global kill switch off answered ${r.status()}`);
    }
  },
  { needs: ['order book, ticker and trades are live'] },
);

await run.step(
  "an operator's halt of the symbol is pushed to the ticket, the header and the open orders",
  async () => {
    assert(cfg.adminKey, 'OMS_ADMIN_KEY is not set: this step needs an operator key of the admin API');
    const setStatus = async (status) => {
      const r = await context.request.put(`${cfg.baseUrl}/api/admin/instruments/status`, {
        data: { symbol: S.symbol, status },
        headers: { 'X-Admin-Key': cfg.adminKey },
      });
      const text = await r.text();
      assert(r.status() === 202, `PUT /api/admin/instruments/status ${status} answered ${r.status()}: ${text}`);
      const body = JSON.parse(text);
      assert(body.symbol === S.symbol && body.status === status, `PUT ${status} answered ${text}`);
    };
    // The page read the instruments once, at sign-in; every status since comes by its WebSocket.
    const reads = instrumentReads.length;
    assert(reads === 1, `the page read GET /api/instruments ${reads} times before this step, not once`);
    const pushed = (status) =>
      statusFrames.some((f) => f.channel === `status:${S.symbol}` && f.data?.status === status);
    const select = q('[data-testid="symbol-select"]');
    const shownOption = select.locator('option:checked');
    const submit = q('[data-testid="ticket-submit"]');
    const note = q('[data-testid="ticket-status"]');
    const ticketShows = (status) =>
      until(
        `the ticket to show ${S.symbol} ${status}`,
        async () => (await note.getAttribute('data-status', { timeout: 500 })) === status,
      );
    assert((await select.getAttribute('data-status')) === 'TRADING', `${S.symbol} is not shown TRADING at first`);
    assert((await note.count()) === 0, `the ticket shows a status note while ${S.symbol} is trading`);
    assert(pushed('TRADING'), `the page's WebSocket received no status:${S.symbol} message (did it subscribe?)`);

    // A resting order of the symbol, for the open orders' controls.
    const bid = await q('[data-testid="order-book"] .ladder-row.bid').first().getAttribute('data-price');
    const price = decimal.floorToIncrement(bid, '0.95', S.inst.tickSize);
    const quantity = testQuantity(price);
    await fillTicket({ side: 'BUY', type: 'LIMIT', price, quantity, tif: 'GTC' });
    const restingId = (await submitTicket()).orderId;
    let resting = true;
    let otherId = null;
    await q('[data-testid="tab-open"]').click();
    const row = openRow(restingId);
    await row.waitFor({ timeout: 15_000 });
    await until(
      `order ${restingId} to be accepted`,
      async () => (await row.getAttribute('data-status')) === 'ACCEPTED',
    );
    const amend = row.locator('[data-testid="amend"]');
    const cancel = row.locator('[data-testid="cancel"]');
    const cancelAll = q('[data-testid="cancel-all"]');
    assert((await amend.isEnabled()) && (await cancel.isEnabled()), 'amend or cancel is disabled while trading');

    try {
      // Halted: new orders, amends and cancels are all refused.
      await setStatus('HALTED');
      await ticketShows('HALTED');
      assert(pushed('HALTED'), `the page shows ${S.symbol} halted, but no status message said so`);
      const said = await note.textContent();
      assert(said === `${S.symbol} is halted: new orders are refused.`, `the ticket says "${said}"`);
      assert(await submit.isDisabled(), `the ticket submit button is enabled while ${S.symbol} is HALTED`);
      assert((await select.getAttribute('data-status')) === 'HALTED', 'the symbol selector does not mark HALTED');
      const halted = await shownOption.textContent();
      assert(halted === `${S.symbol} · Halted`, `the symbol selector shows "${halted}"`);
      assert((await row.getAttribute('data-symbol-status')) === 'HALTED', 'the open order row does not know HALTED');
      assert(await amend.isDisabled(), `the amend is enabled while ${S.symbol} is HALTED`);
      assert(await cancel.isDisabled(), `the cancel is enabled while ${S.symbol} is HALTED`);
      const amendWhy = await amend.getAttribute('title');
      assert(amendWhy === `${S.symbol} is halted: amends are refused`, `the amend says "${amendWhy}"`);
      const cancelWhy = await cancel.getAttribute('title');
      assert(cancelWhy === `${S.symbol} is halted: cancels are refused`, `the cancel says "${cancelWhy}"`);
      // Cancel all covers only that order: there is nothing it could cancel.
      const shownOpen = await q('[data-testid="open-orders"] tbody tr').count();
      assert(shownOpen === 1, `${shownOpen} open orders shown, not only order ${restingId}`);
      assert(await cancelAll.isDisabled(), `Cancel all is enabled while its only order is on halted ${S.symbol}`);
      const allWhy = await cancelAll.getAttribute('title');
      assert(allWhy === `${S.symbol} is halted: cancels are refused`, `Cancel all says "${allWhy}"`);
      const file = path.join(cfg.artifacts, 'instrument-halted-1280x800.png');
      await page.screenshot({ path: file });
      assert(fs.statSync(file).size > 10_000, `${file} looks empty`);

      // A cancel sent anyway (the page's own session, past its disabled button) is answered 202,
      // then refused by the halted book: the order says so, stays open, and the page tells of it.
      const refusedText = `Cancel of ${S.symbol} buy ${decimal.plain(quantity)} @ ${decimal.plain(price)} refused: the symbol is halted`;
      const errorNotices = () => q('[data-testid="banner-error"] span').allTextContents();
      const readOrder = async () => (await context.request.get(`${cfg.baseUrl}/api/orders/${restingId}`)).json();
      const before = await readOrder();
      assert(
        before.lastCancelReject === null,
        `order ${restingId} shows a refused cancel before any: ${JSON.stringify(before)}`,
      );
      assert(!(await errorNotices()).includes(refusedText), `the page tells of a refused cancel before any was sent`);
      const deleted = await page.evaluate(
        async (id) => (await fetch(`/api/orders/${id}`, { method: 'DELETE' })).status,
        restingId,
      );
      assert(deleted === 202, `DELETE /api/orders/${restingId} from the page answered ${deleted}`);
      await until('the notice of the refused cancel', async () => (await errorNotices()).includes(refusedText)).catch(
        async (e) => {
          throw new Error(`${e.message}: the banner shows ${JSON.stringify(await errorNotices())}`);
        },
      );
      let after;
      await until(`GET /api/orders/${restingId} to show the refused cancel`, async () => {
        after = await readOrder();
        return after.lastCancelReject !== null;
      });
      assert(
        after.status === 'ACCEPTED' && after.lastCancelReject.rejectReason === 'INSTRUMENT_HALTED',
        `after the refused cancel, order ${restingId} is ${JSON.stringify(after)}`,
      );
      assert((await row.getAttribute('data-status')) === 'ACCEPTED', `order ${restingId} left open orders`);
      await q('[data-testid="banner-error"]')
        .filter({ hasText: refusedText })
        .getByRole('button', { name: 'Dismiss' })
        .click();

      // With an order of another symbol open, Cancel all cancels that one and says the halted one stays.
      const instruments = (await (await context.request.get(`${cfg.baseUrl}/api/instruments`)).json()).instruments;
      const other = instruments.find((i) => i.symbol !== S.symbol && i.status === 'TRADING');
      assert(other, `no other trading symbol than ${S.symbol} in /api/instruments`);
      // The demo maker requotes by cancelling then placing: a read can fall between the two.
      const otherBid = await until(`a bid in the ${other.symbol} book`, async () => {
        const depth = await context.request.get(
          `${cfg.baseUrl}/api/marketdata/depth?symbol=${encodeURIComponent(other.symbol)}&levels=1`,
        );
        return (await depth.json()).bids?.[0]?.[0];
      });
      const otherPrice = decimal.floorToIncrement(otherBid, '0.95', other.tickSize);
      const placed = await context.request.post(`${cfg.baseUrl}/api/orders`, {
        headers: { 'X-API-Key': cfg.apiKey, 'X-Idempotency-Key': randomUUID() },
        data: {
          symbol: other.symbol,
          side: 'BUY',
          orderType: 'LIMIT',
          timeInForce: 'GTC',
          price: otherPrice,
          quantity: testQuantity(otherPrice, other),
          clientOrderId: `e2e-${randomUUID()}`,
        },
      });
      assert(placed.status() === 202, `POST /api/orders answered ${placed.status()}: ${await placed.text()}`);
      otherId = (await placed.json()).orderId;
      await until(
        `order ${otherId} to be accepted`,
        async () => (await openRow(otherId).getAttribute('data-status', { timeout: 500 })) === 'ACCEPTED',
      );
      const stays = `1 order on halted ${S.symbol} will not be cancelled`;
      await until('Cancel all to be enabled', () => cancelAll.isEnabled());
      assert(
        (await cancelAll.getAttribute('title')) === stays,
        `Cancel all says "${await cancelAll.getAttribute('title')}"`,
      );
      await cancelAll.click();
      await until(
        'Cancel all to ask for confirmation',
        async () => (await cancelAll.textContent()) === 'Confirm cancel all (1)',
        2_000,
      );
      const allNote = await q('[data-testid="cancel-all-note"]').textContent();
      assert(allNote === stays, `the confirmation says "${allNote}"`);
      const answer = page.waitForResponse(
        (r) => r.request().method() === 'DELETE' && new URL(r.url()).pathname === '/api/orders',
      );
      await cancelAll.click();
      const res = await answer;
      assert(res.status() === 202, `DELETE /api/orders answered ${res.status()}: ${await res.text()}`);
      await until('the notice of what stays', async () =>
        (await q('[data-testid="banner-info"] span').allTextContents()).includes(
          `Cancel requested for 1 order; ${stays}`,
        ),
      );
      await until(`order ${otherId} to leave open orders`, async () => (await openRow(otherId).count()) === 0);
      otherId = null;
      // The venue refused the cancel of the halted symbol's order: it is still open.
      const still = await context.request.get(`${cfg.baseUrl}/api/orders/${restingId}`);
      const stillStatus = (await still.json()).status;
      assert(stillStatus === 'ACCEPTED', `order ${restingId} is ${stillStatus} after Cancel all on halted ${S.symbol}`);
      assert((await row.getAttribute('data-status')) === 'ACCEPTED', `order ${restingId} left open orders`);
      // Cancel all asked for its cancel too: that second refusal (a later `at`) is told of anew.
      await until(
        `the refusal of Cancel all's cancel of order ${restingId}`,
        async () => (await readOrder()).lastCancelReject?.at !== after.lastCancelReject.at,
      );
      await until('the notice of the second refused cancel', async () => (await errorNotices()).includes(refusedText));
      await q('[data-testid="banner-error"]')
        .filter({ hasText: refusedText })
        .getByRole('button', { name: 'Dismiss' })
        .click();

      // Cancel-only: new orders and amends still refused, cancels work again.
      await setStatus('CANCEL_ONLY');
      await ticketShows('CANCEL_ONLY');
      assert(await submit.isDisabled(), `the ticket submit button is enabled while ${S.symbol} is CANCEL_ONLY`);
      const cancelOnly = await shownOption.textContent();
      assert(cancelOnly === `${S.symbol} · Cancel only`, `the symbol selector shows "${cancelOnly}"`);
      const said2 = await note.textContent();
      assert(said2 === `${S.symbol} is cancel only: new orders are refused.`, `the ticket says "${said2}"`);
      assert(await amend.isDisabled(), `the amend is enabled while ${S.symbol} is CANCEL_ONLY`);
      const amendWhy2 = await amend.getAttribute('title');
      assert(amendWhy2 === `${S.symbol} is cancel only: amends are refused`, `the amend says "${amendWhy2}"`);
      assert(await cancel.isEnabled(), `the cancel is disabled while ${S.symbol} is CANCEL_ONLY`);
      assert((await cancel.getAttribute('title')) === null, 'the enabled cancel still explains a refusal');
      const cancelled = page.waitForResponse(
        (r) => r.url().includes(`/api/orders/${restingId}`) && r.request().method() === 'DELETE',
      );
      await cancel.click();
      const cancelRes = await cancelled;
      assert(cancelRes.status() === 202, `DELETE answered ${cancelRes.status()}: ${await cancelRes.text()}`);
      await until(`order ${restingId} to leave open orders`, async () => (await row.count()) === 0);
      resting = false;
      await q('[data-testid="tab-history"]').click();
      await until(
        `order ${restingId} CANCELED in order history`,
        async () => (await historyRow(restingId).getAttribute('data-status')) === 'CANCELED',
      );

      // Trading again: the ticket takes orders.
      await setStatus('TRADING');
      await until(
        'the ticket to take orders again',
        async () => (await note.count()) === 0 && (await submit.isEnabled()),
      );
      assert((await select.getAttribute('data-status')) === 'TRADING', 'the symbol selector does not show TRADING');
      const trading = await shownOption.textContent();
      assert(trading === S.symbol, `the symbol selector shows "${trading}"`);
      // Every change above came by the push: the page never read the list again.
      const again = instrumentReads.slice(reads);
      assert(again.length === 0, `the page read the instruments again: ${again.join(', ')}`);
      assert(pushed('CANCEL_ONLY'), `no status message said ${S.symbol} is cancel-only`);
    } finally {
      // Whatever failed above, the symbol trades again for the steps after this one.
      await setStatus('TRADING');
      let status;
      await until(
        `GET /api/instruments to show ${S.symbol} TRADING`,
        async () => {
          const r = await context.request.get(`${cfg.baseUrl}/api/instruments`);
          status = (await r.json()).instruments.find((i) => i.symbol === S.symbol)?.status;
          return status === 'TRADING';
        },
        10_000,
      ).catch((e) => {
        throw new Error(`${e.message}: ${status}`);
      });
      for (const id of [resting && restingId, otherId].filter(Boolean)) {
        const r = await context.request.delete(`${cfg.baseUrl}/api/orders/${id}`);
        assert(r.status() === 202, `cancelling order ${id} answered ${r.status()}`);
      }
    }
  },
  { needs: ['order book, ticker and trades are live'] },
);

await run.step(
  'screenshots at 1280×800 and 1920×1080',
  async () => {
    await q('[data-testid="tab-history"]').click();
    await page.mouse.move(0, 0);
    for (const [w, h] of [
      [1280, 800],
      [1920, 1080],
    ]) {
      await page.setViewportSize({ width: w, height: h });
      await sleep(400);
      const file = path.join(cfg.artifacts, `dashboard-${w}x${h}.png`);
      await page.screenshot({ path: file });
      assert(fs.statSync(file).size > 10_000, `${file} looks empty`);
    }
    await page.setViewportSize({ width: 1280, height: 800 });
  },
  { needs: ['sign in with the API key'] },
);

await run.step(
  'sign out clears the session',
  async () => {
    await q('button:has-text("Sign out")').click();
    await q('#api-key').waitFor({ timeout: 10_000 });
    const r = await context.request.get(`${cfg.baseUrl}/api/session`);
    assert(r.status() === 401, `GET /api/session after sign-out answered ${r.status()}`);
  },
  { needs: ['sign in with the API key'] },
);

await run.step(
  "an operator revoking the page's key signs it out",
  async () => {
    assert(cfg.adminKey, 'OMS_ADMIN_KEY is not set: this step needs an operator key of the admin API');
    const admin = { 'X-Admin-Key': cfg.adminKey };
    const me = await context.request.get(`${cfg.baseUrl}/api/accounts/me`, { headers: { 'X-API-Key': cfg.apiKey } });
    assert(me.status() === 200, `GET /api/accounts/me answered ${me.status()}`);
    const keys = `${cfg.baseUrl}/api/admin/accounts/${(await me.json()).accountId}/api-keys`;
    const issued = await context.request.post(keys, { headers: admin });
    assert(issued.status() === 201, `POST ${keys} answered ${issued.status()}: ${await issued.text()}`);
    const { apiKey, keyId } = await issued.json();

    await q('#api-key').fill(apiKey);
    await q('.signin-card button[type="submit"]').click();
    await q('[data-testid="symbol-select"]').waitFor({ timeout: 15_000 });
    await until('the live feed to connect', async () => (await q('text=Connected').count()) > 0);
    // The page's next request answers 401 once the server ends its private channel.
    allowed = /status of 401/;
    const revoked = await context.request.delete(`${keys}/${keyId}`, { headers: admin });
    assert(revoked.status() === 204, `DELETE ${keys}/${keyId} answered ${revoked.status()}`);
    // The server checks an open connection's key every 10 s; the page then finds itself signed
    // out. (Its own re-read of the account, every 30 s, would find it only later.)
    await q('#api-key').waitFor({ timeout: 20_000 });
    const r = await context.request.get(`${cfg.baseUrl}/api/accounts/me`, { headers: { 'X-API-Key': apiKey } });
    assert(r.status() === 401, `the revoked key still answers ${r.status()}`);
  },
  { needs: ['sign out clears the session'] },
);

await run.step(
  'a read-only key shows the account without trading controls',
  async () => {
    assert(cfg.adminKey, 'OMS_ADMIN_KEY is not set: this step needs an operator key of the admin API');
    const admin = { 'X-Admin-Key': cfg.adminKey };
    const trader = { 'X-API-Key': cfg.apiKey };
    // The step before leaves the page at the sign-in form; should it have failed, sign out.
    if (!(await q('#api-key').isVisible())) {
      await q('button:has-text("Sign out")').click();
      await q('#api-key').waitFor({ timeout: 10_000 });
    }
    const me = await context.request.get(`${cfg.baseUrl}/api/accounts/me`, { headers: trader });
    assert(me.status() === 200, `GET /api/accounts/me answered ${me.status()}`);
    const keys = `${cfg.baseUrl}/api/admin/accounts/${(await me.json()).accountId}/api-keys`;
    const issued = await context.request.post(keys, { headers: admin, data: { scope: 'READ' } });
    assert(
      issued.status() === 201,
      `POST ${keys} {"scope":"READ"} answered ${issued.status()}: ${await issued.text()}`,
    );
    const { apiKey, keyId, scope } = await issued.json();

    // The page must send no change at all: every control that would is disabled.
    const changes = [];
    const onRequest = (r) => {
      const u = new URL(r.url());
      if (r.method() !== 'GET' && u.pathname.startsWith('/api/') && u.pathname !== '/api/session')
        changes.push(`${r.method()} ${u.pathname}`);
    };
    let restingId = null;
    try {
      assert(scope === 'READ', `the key was issued with scope ${JSON.stringify(scope)}`);
      // A resting order, placed with the trading key, for the open orders tab to show.
      // The demo maker requotes by cancelling then placing: a read can fall between the two.
      const bid = await until(`a bid in the ${S.symbol} book`, async () => {
        const depth = await context.request.get(
          `${cfg.baseUrl}/api/marketdata/depth?symbol=${encodeURIComponent(S.symbol)}&levels=1`,
        );
        return (await depth.json()).bids?.[0]?.[0];
      });
      const price = decimal.floorToIncrement(bid, '0.95', S.inst.tickSize);
      const order = {
        symbol: S.symbol,
        side: 'BUY',
        orderType: 'LIMIT',
        timeInForce: 'GTC',
        price,
        quantity: testQuantity(price),
        clientOrderId: `e2e-${randomUUID()}`,
      };
      const placed = await context.request.post(`${cfg.baseUrl}/api/orders`, {
        headers: { ...trader, 'X-Idempotency-Key': randomUUID() },
        data: order,
      });
      assert(placed.status() === 202, `POST /api/orders answered ${placed.status()}: ${await placed.text()}`);
      restingId = (await placed.json()).orderId;
      let resting;
      await until(`order ${restingId} to be accepted`, async () => {
        const r = await context.request.get(`${cfg.baseUrl}/api/orders/${restingId}`, { headers: trader });
        resting = await r.json();
        return resting.status === 'ACCEPTED';
      }).catch((e) => {
        throw new Error(`${e.message}: ${resting?.status} ${resting?.rejectReason ?? ''}`);
      });

      page.on('request', onRequest);
      await q('#api-key').fill(apiKey);
      await q('.signin-card button[type="submit"]').click();
      await q('[data-testid="symbol-select"]').waitFor({ timeout: 15_000 });
      const badge = q('[data-testid="read-only-badge"]');
      await badge.waitFor({ timeout: 5_000 });
      const why = await badge.getAttribute('title');
      assert(why?.includes('read-only'), `the read-only badge explains "${why}"`);
      // The previous session's messages (its revocation) went with it.
      const stale = await q('text=no longer valid').count();
      assert(stale === 0, 'a message of the previous session is still shown');
      // The private orders channel reads as before.
      await until(
        'the WebSocket to connect',
        async () => (await q('[data-testid="connection"]').getAttribute('data-state')) === 'connected',
      );

      // The ticket prices and estimates, but cannot send: not by its button, nor by Enter.
      await q('[data-testid="ticket-read-only"]').waitFor({ timeout: 10_000 });
      const submit = q('[data-testid="ticket-submit"]');
      assert(await submit.isDisabled(), 'the ticket submit button is enabled for a read-only key');
      await fillTicket({ side: 'BUY', type: 'LIMIT', price, quantity: order.quantity, tif: 'GTC' });
      await q('#ticket-quantity').press('Enter');
      assert(await submit.isDisabled(), 'the ticket submit button is enabled once the ticket is valid');

      // The kill switch shows its state but cannot be switched.
      const toggle = q('[data-testid="kill-switch"]');
      await until('the kill switch to show off', async () => (await toggle.getAttribute('data-state')) === 'off');
      assert(await toggle.isDisabled(), 'the kill switch toggle is enabled for a read-only key');
      assert((await toggle.getAttribute('aria-pressed')) === 'false', 'the kill switch is off but shows pressed');

      // Open orders list the account's order, with no cancel, amend or cancel all to click.
      await q('[data-testid="tab-open"]').click();
      await openRow(restingId).waitFor({ timeout: 15_000 });
      const enabledCancels = await q('[data-testid="cancel"]:enabled').count();
      assert(enabledCancels === 0, `${enabledCancels} cancel buttons are enabled for a read-only key`);
      assert(await openRow(restingId).locator('[data-testid="cancel"]').isDisabled(), 'the cancel is enabled');
      assert(await openRow(restingId).locator('[data-testid="amend"]').isDisabled(), 'the amend is enabled');
      assert(await q('[data-testid="cancel-all"]').isDisabled(), 'Cancel all is enabled for a read-only key');
      const file = path.join(cfg.artifacts, 'read-only-1280x800.png');
      await page.screenshot({ path: file });
      assert(fs.statSync(file).size > 10_000, `${file} looks empty`);

      // The history and the trades tab read as before.
      await q('[data-testid="tab-history"]').click();
      await historyRow(restingId).waitFor({ timeout: 10_000 });
      if (S.takerId) await historyRow(S.takerId).waitFor({ timeout: 10_000 });
      await q('[data-testid="tab-trades"]').click();
      const trades = q('#tabpanel-trades [data-testid="trade-row"]');
      await until('rows in the trades tab', async () => (await trades.count()) > 0, 10_000);
      if (S.takerId) {
        const rows = q(`#tabpanel-trades [data-testid="trade-row"][data-order-id="${S.takerId}"]`);
        await until(`the fills of order ${S.takerId} in the trades tab`, async () => (await rows.count()) > 0);
      }
      assert(changes.length === 0, `the read-only page sent ${changes.join(', ')}`);

      // The server refuses the key's changes: a valid order, and the cancel of the resting one.
      const refused = [
        [
          'POST /api/orders',
          await context.request.post(`${cfg.baseUrl}/api/orders`, {
            headers: { 'X-API-Key': apiKey, 'X-Idempotency-Key': randomUUID() },
            data: { ...order, clientOrderId: `e2e-${randomUUID()}` },
          }),
        ],
        [
          `DELETE /api/orders/${restingId}`,
          await context.request.delete(`${cfg.baseUrl}/api/orders/${restingId}`, { headers: { 'X-API-Key': apiKey } }),
        ],
      ];
      for (const [request, r] of refused) {
        const what = `${request} with the read-only key`;
        const text = await r.text();
        assert(r.status() === 403, `${what} answered ${r.status()}: ${text}`);
        assert(JSON.parse(text).code === 'READ_ONLY_KEY', `${what} answered ${text}`);
      }
      const after = await context.request.get(`${cfg.baseUrl}/api/orders/${restingId}`, { headers: trader });
      const status = (await after.json()).status;
      assert(status === 'ACCEPTED', `order ${restingId} is ${status} after the read-only key's cancel`);
    } finally {
      page.off('request', onRequest);
      try {
        if (await q('button:has-text("Sign out")').isVisible()) {
          await q('button:has-text("Sign out")').click();
          await q('#api-key').waitFor({ timeout: 10_000 });
        }
      } finally {
        // Whatever failed above, the order goes and the read-only key is revoked.
        const problems = [];
        if (restingId) {
          const r = await context.request.delete(`${cfg.baseUrl}/api/orders/${restingId}`, { headers: trader });
          if (r.status() !== 202) problems.push(`cancelling order ${restingId} answered ${r.status()}`);
        }
        const revoked = await context.request.delete(`${keys}/${keyId}`, { headers: admin });
        if (revoked.status() !== 204) problems.push(`DELETE ${keys}/${keyId} answered ${revoked.status()}`);
        assert(problems.length === 0, problems.join('; '));
      }
    }
  },
  { needs: ['sign out clears the session'] },
);

await run.step('no console errors', async () => {
  assert(consoleErrors.length === 0, `console errors:\n  ${consoleErrors.join('\n  ')}`);
});

await browser.close();
console.log(`${run.passed} passed, ${run.failed} failed`);
process.exit(run.failed ? 1 : 0);
