// The dashboard's single WebSocket to /ws: reference-counted channel subscriptions, automatic
// reconnect with capped exponential backoff and jitter, a silence watchdog, and delivery of
// incoming messages in batches in an animation frame, at most every `minFlushMs` (so hundreds
// of messages a second cost a few renders a second, not one per message).
import { Store } from '../state/store';
import type { WsControlMessage, WsDataMessage, WsMessage } from './types';

export type ConnState = 'connecting' | 'connected' | 'reconnecting' | 'offline';

export interface SocketOptions {
  url?: string;
  /** First retry delay; doubles per failed attempt up to maxDelayMs. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Reconnect when nothing (not even a heartbeat) arrived for this long. */
  silenceMs?: number;
  pingMs?: number;
  /** Consecutive failed attempts after which the indicator says offline (retries go on). */
  offlineAfter?: number;
  /** Least time between two batch deliveries. */
  minFlushMs?: number;
}

type BatchListener = (batch: WsDataMessage[]) => void;
type ControlListener = (msg: WsControlMessage) => void;

/** Data messages carry a channel and data; control messages (which may name a channel too,
 * like a per-channel error) carry a type of their own. */
function isData(m: WsMessage): m is WsDataMessage {
  return typeof m.channel === 'string' && (m.type === undefined || m.type === 'snapshot' || m.type === 'update');
}
type OpenListener = (reconnected: boolean) => void;

function defaultUrl(): string {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/ws`;
}

export class MarketSocket {
  readonly status = new Store<ConnState>('connecting');
  private ws: WebSocket | null = null;
  private readonly channels = new Map<string, number>();
  private readonly batchListeners = new Set<BatchListener>();
  private readonly openListeners = new Set<OpenListener>();
  private readonly controlListeners = new Set<ControlListener>();
  private queue: WsDataMessage[] = [];
  private frame = 0;
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private flushPending = false;
  private lastFlush = -Infinity;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private failures = 0;
  private everOpened = false;
  private lastMessageAt = 0;
  private stopped = true;
  private readonly opts: Required<SocketOptions>;

  constructor(opts: SocketOptions = {}) {
    this.opts = {
      url: opts.url ?? defaultUrl(),
      baseDelayMs: opts.baseDelayMs ?? 500,
      maxDelayMs: opts.maxDelayMs ?? 10_000,
      silenceMs: opts.silenceMs ?? 30_000,
      pingMs: opts.pingMs ?? 15_000,
      offlineAfter: opts.offlineAfter ?? 5,
      minFlushMs: opts.minFlushMs ?? 100,
    };
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener('online', this.onBrowserOnline);
    window.addEventListener('offline', this.onBrowserOffline);
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.removeEventListener('online', this.onBrowserOnline);
    window.removeEventListener('offline', this.onBrowserOffline);
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      ws.close(1000, 'bye');
    }
    this.queue = [];
  }

  /** Adds a reference to `channel`; subscribes on the wire for the first one. */
  subscribe(channel: string): () => void {
    const n = this.channels.get(channel) ?? 0;
    this.channels.set(channel, n + 1);
    if (n === 0) this.send({ op: 'subscribe', channels: [channel] });
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.release(channel);
    };
  }

  private release(channel: string): void {
    const n = this.channels.get(channel) ?? 0;
    if (n <= 1) {
      this.channels.delete(channel);
      this.send({ op: 'unsubscribe', channels: [channel] });
    } else {
      this.channels.set(channel, n - 1);
    }
  }

  /** Unsubscribes and subscribes again: the server then starts the channel afresh (depth snapshot). */
  resubscribe(channel: string): void {
    if (!this.channels.has(channel)) return;
    this.send({ op: 'unsubscribe', channels: [channel] });
    this.send({ op: 'subscribe', channels: [channel] });
  }

  onBatch(fn: BatchListener): () => void {
    this.batchListeners.add(fn);
    return () => this.batchListeners.delete(fn);
  }

  /** Control messages (heartbeats, errors, acknowledgements), as they arrive. */
  onControl(fn: ControlListener): () => void {
    this.controlListeners.add(fn);
    return () => this.controlListeners.delete(fn);
  }

  /** Called after every successful open; `reconnected` is true after the first one. */
  onOpen(fn: OpenListener): () => void {
    this.openListeners.add(fn);
    return () => this.openListeners.delete(fn);
  }

  /**
   * Runs `fn` every `everyMs` while the socket is not connected (REST polling as a fallback,
   * so a dashboard without its live feed still moves). Returns the stopper.
   */
  whileDisconnected(fn: () => void, everyMs: number): () => void {
    let timer: ReturnType<typeof setInterval> | null = null;
    const sync = () => {
      const down = !this.stopped && this.status.get() !== 'connected';
      if (down && !timer) timer = setInterval(fn, everyMs);
      if (!down && timer) {
        clearInterval(timer);
        timer = null;
      }
    };
    const off = this.status.subscribe(sync);
    sync();
    return () => {
      off();
      if (timer) clearInterval(timer);
    };
  }

  /** Drops the connection now and reconnects (used by the silence watchdog and tests). */
  reconnect(): void {
    if (this.ws) this.ws.close(4000, 'reconnect');
  }

  private send(msg: object): void {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private connect(): void {
    if (this.stopped) return;
    this.status.set(
      this.failures >= this.opts.offlineAfter ? 'offline' : this.everOpened ? 'reconnecting' : 'connecting',
    );
    let ws: WebSocket;
    try {
      ws = new WebSocket(this.opts.url);
    } catch {
      this.scheduleRetry();
      return;
    }
    this.ws = ws;
    ws.onopen = () => {
      const reconnected = this.everOpened;
      this.everOpened = true;
      this.failures = 0;
      this.lastMessageAt = Date.now();
      this.status.set('connected');
      if (this.channels.size > 0) this.send({ op: 'subscribe', channels: [...this.channels.keys()] });
      this.pingTimer = setInterval(this.keepAlive, this.opts.pingMs);
      for (const l of this.openListeners) l(reconnected);
    };
    ws.onmessage = (ev) => {
      this.lastMessageAt = Date.now();
      let msg: WsMessage;
      try {
        msg = JSON.parse(typeof ev.data === 'string' ? ev.data : '') as WsMessage;
      } catch {
        return;
      }
      if (!isData(msg)) {
        for (const l of this.controlListeners) l(msg);
        return;
      }
      this.queue.push(msg);
      this.scheduleFlush();
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.pingTimer) clearInterval(this.pingTimer);
      this.pingTimer = null;
      // Deliver what arrived before the close, in order, before any resync starts.
      this.flush();
      this.failures++;
      this.scheduleRetry();
    };
    ws.onerror = () => {
      // onclose follows and schedules the retry.
    };
  }

  private keepAlive = (): void => {
    if (Date.now() - this.lastMessageAt > this.opts.silenceMs) {
      this.reconnect();
      return;
    }
    this.send({ op: 'ping' });
  };

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    const offline = this.failures >= this.opts.offlineAfter || navigator.onLine === false;
    this.status.set(offline ? 'offline' : 'reconnecting');
    const exp = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** Math.max(0, this.failures - 1));
    const delay = exp / 2 + Math.random() * (exp / 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  private onBrowserOnline = (): void => {
    // Retry at once rather than waiting out the backoff.
    if (this.ws || this.stopped) return;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.connect();
  };

  private onBrowserOffline = (): void => {
    this.status.set('offline');
  };

  private scheduleFlush(): void {
    if (this.flushPending) return;
    this.flushPending = true;
    const wait = Math.max(0, this.lastFlush + this.opts.minFlushMs - performance.now());
    this.flushTimer = setTimeout(() => {
      this.frame = requestAnimationFrame(this.flush);
      // rAF pauses in background tabs; this timer bounds the queue there.
      this.flushTimer = setTimeout(this.flush, 250);
    }, wait);
  }

  private flush = (): void => {
    if (this.frame) cancelAnimationFrame(this.frame);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.frame = 0;
    this.flushTimer = null;
    this.flushPending = false;
    this.lastFlush = performance.now();
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    for (const l of this.batchListeners) {
      try {
        l(batch);
      } catch (e) {
        console.warn('websocket batch handler failed', e);
      }
    }
  };

  private clearTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    if (this.frame) cancelAnimationFrame(this.frame);
    this.retryTimer = this.pingTimer = this.flushTimer = null;
    this.frame = 0;
    this.flushPending = false;
  }
}
