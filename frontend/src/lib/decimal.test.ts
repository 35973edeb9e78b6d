import { describe, expect, it } from 'vitest';
import {
  add,
  cmp,
  dec,
  fractionDigits,
  isMultipleOf,
  mul,
  normalize,
  parseDec,
  round,
  sub,
  toFixed,
  toStr,
} from './decimal';

describe('decimal', () => {
  it('parses plain decimals only', () => {
    expect(parseDec('12.340')).toEqual({ units: 12340n, scale: 3 });
    expect(parseDec('-0.5')).toEqual({ units: -5n, scale: 1 });
    expect(parseDec('.5')).toEqual({ units: 5n, scale: 1 });
    expect(parseDec('3.')).toEqual({ units: 3n, scale: 0 });
    for (const bad of ['', '.', '1e5', '1,000', 'abc', '1.2.3', 'NaN', '- 1']) {
      expect(parseDec(bad), bad).toBeNull();
    }
  });

  it('adds, subtracts and multiplies exactly', () => {
    expect(toStr(add(dec('0.1'), dec('0.2')))).toBe('0.3');
    expect(toStr(sub(dec('45000.00'), dec('44999.99')))).toBe('0.01');
    expect(toStr(mul(dec('45000.01'), dec('0.00003')))).toBe('1.3500003');
    expect(toStr(mul(dec('123456789012345678.9'), dec('10')))).toBe('1234567890123456789');
  });

  it('compares across scales', () => {
    expect(cmp(dec('1.10'), dec('1.1'))).toBe(0);
    expect(cmp(dec('1.09'), dec('1.1'))).toBe(-1);
    expect(cmp(dec('-2'), dec('-10'))).toBe(1);
  });

  it('checks multiples of an increment', () => {
    expect(isMultipleOf(dec('45000.01'), dec('0.01'))).toBe(true);
    expect(isMultipleOf(dec('45000.015'), dec('0.01'))).toBe(false);
    expect(isMultipleOf(dec('2.5'), dec('0.5'))).toBe(true);
    expect(isMultipleOf(dec('2.25'), dec('0.5'))).toBe(false);
    expect(isMultipleOf(dec('100'), dec('25'))).toBe(true);
    expect(isMultipleOf(dec('110'), dec('25'))).toBe(false);
    expect(isMultipleOf(dec('1'), dec('0'))).toBe(false);
  });

  it('normalizes and counts fraction digits', () => {
    expect(normalize(dec('1.2300'))).toEqual({ units: 123n, scale: 2 });
    expect(fractionDigits(dec('0.010'))).toBe(2);
    expect(fractionDigits(dec('100'))).toBe(0);
  });

  it('rounds half away from zero, down and up', () => {
    expect(toFixed(round(dec('1.005'), 2))).toBe('1.01');
    expect(toFixed(round(dec('-1.005'), 2))).toBe('-1.01');
    expect(toFixed(round(dec('1.004'), 2))).toBe('1.00');
    expect(toFixed(round(dec('1.009'), 2, 'down'))).toBe('1.00');
    expect(toFixed(round(dec('1.001'), 2, 'up'))).toBe('1.01');
  });

  it('prints with a fixed number of decimals', () => {
    expect(toFixed(dec('5'), 2)).toBe('5.00');
    expect(toFixed(dec('0.00001'))).toBe('0.00001');
    expect(toFixed(dec('-0.5'), 0)).toBe('-1');
    expect(toFixed(dec('0.0449'), 2)).toBe('0.04');
  });
});
