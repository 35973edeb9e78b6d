import { describe, expect, it } from 'vitest';
import {
  afterRead,
  afterSwitch,
  KILL_SWITCH_SETTLE_MS,
  KILL_SWITCH_UNKNOWN,
  killSwitchButton,
  killSwitchFailedText,
} from './killSwitch';

const T0 = 1_000_000;

describe('kill switch state', () => {
  it('is unknown until the first read, then shows the read', () => {
    expect(KILL_SWITCH_UNKNOWN.on).toBeNull();
    expect(afterRead(KILL_SWITCH_UNKNOWN, false, T0)).toEqual({ on: false, requested: null });
    expect(afterRead(KILL_SWITCH_UNKNOWN, true, T0)).toEqual({ on: true, requested: null });
  });

  it('keeps the same view when a read changes nothing', () => {
    const off = afterRead(KILL_SWITCH_UNKNOWN, false, T0);
    expect(afterRead(off, false, T0 + 1)).toBe(off);
  });

  it('shows a switch the server took at once', () => {
    const off = afterRead(KILL_SWITCH_UNKNOWN, false, T0);
    expect(afterSwitch(true, T0 + 5)).toEqual({ on: true, requested: { on: true, at: T0 + 5 } });
    expect(afterRead(off, false, T0 + 5).on).toBe(false);
  });

  it('ignores reads that still report the previous state within the settle time', () => {
    const on = afterSwitch(true, T0);
    expect(afterRead(on, false, T0 + 1)).toBe(on);
    expect(afterRead(on, false, T0 + KILL_SWITCH_SETTLE_MS - 1)).toBe(on);
  });

  it('settles on the first read that agrees', () => {
    const on = afterSwitch(true, T0);
    const confirmed = afterRead(on, true, T0 + 800);
    expect(confirmed).toEqual({ on: true, requested: null });
    // Settled: a later change (another client turning it off) shows at once.
    expect(afterRead(confirmed, false, T0 + 900)).toEqual({ on: false, requested: null });
  });

  it("takes the server's state once the settle time has passed", () => {
    const off = afterSwitch(false, T0);
    expect(afterRead(off, true, T0 + KILL_SWITCH_SETTLE_MS)).toEqual({ on: true, requested: null });
  });
});

describe('kill switch words', () => {
  it('keeps its name and shows its state in a tag', () => {
    expect(killSwitchButton(false, false)).toEqual({ text: 'Kill switch', state: 'OFF', label: 'Kill switch' });
    expect(killSwitchButton(true, false)).toEqual({ text: 'Kill switch', state: 'ON', label: 'Kill switch' });
    expect(killSwitchButton(null, false).state).toBe('…');
  });

  it('says what the confirming click does', () => {
    expect(killSwitchButton(true, true)).toEqual({
      text: 'Confirm kill switch off',
      state: 'ON',
      label: 'Confirm: turn the kill switch off and allow new orders',
    });
  });

  it('names the failed direction and the reason', () => {
    expect(killSwitchFailedText(true, 'Service unavailable')).toBe(
      'Turning the kill switch on failed: Service unavailable',
    );
    expect(killSwitchFailedText(false, 'Forbidden')).toBe('Turning the kill switch off failed: Forbidden');
  });
});
