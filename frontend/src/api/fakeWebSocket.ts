// Test helper (not part of the app): an in-memory browser WebSocket driven by the test, and the
// globals MarketSocket needs, so tests run the real socket without a server.
import { vi } from 'vitest';

export class FakeWs {
  static OPEN = 1;
  static all: FakeWs[] = [];
  readyState = 0;
  sent: unknown[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(readonly url: string) {
    FakeWs.all.push(this);
  }
  send(text: string) {
    this.sent.push(JSON.parse(text));
  }
  close() {
    this.readyState = 3;
    this.onclose?.();
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  receive(msg: object) {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
  drop() {
    this.readyState = 3;
    this.onclose?.();
  }
}

/** The newest socket opened. */
export const lastWs = () => FakeWs.all[FakeWs.all.length - 1];

/** Fake timers and the browser globals of MarketSocket; undo with `uninstallFakeBrowser`. */
export function installFakeBrowser(): void {
  vi.useFakeTimers();
  FakeWs.all = [];
  vi.stubGlobal('WebSocket', FakeWs);
  vi.stubGlobal('window', { addEventListener: vi.fn(), removeEventListener: vi.fn() });
  vi.stubGlobal('navigator', { onLine: true });
  vi.stubGlobal('location', { protocol: 'http:', host: 'oms.test' });
  vi.stubGlobal('requestAnimationFrame', (fn: () => void) => setTimeout(fn, 16) as unknown as number);
  vi.stubGlobal('cancelAnimationFrame', (id: number) => clearTimeout(id));
}

export function uninstallFakeBrowser(): void {
  vi.useRealTimers();
  vi.unstubAllGlobals();
}
