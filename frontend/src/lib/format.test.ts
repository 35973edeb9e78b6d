import { describe, expect, it } from 'vitest';
import {
  decimalsOf,
  formatCompact,
  formatDecimal,
  formatPercent,
  formatPrice,
  formatSigned,
  formatSize,
  signOf,
} from './format';

describe('format', () => {
  it('derives precision from the increment', () => {
    expect(decimalsOf('0.01')).toBe(2);
    expect(decimalsOf('0.00001')).toBe(5);
    expect(decimalsOf('0.50')).toBe(1);
    expect(decimalsOf('1')).toBe(0);
  });

  it('formats prices at tick precision with grouping', () => {
    expect(formatPrice('45000', '0.01')).toBe('45,000.00');
    expect(formatPrice('1234567.891', '0.01')).toBe('1,234,567.89');
    expect(formatPrice('999.995', '0.01')).toBe('1,000.00');
    expect(formatPrice('-1234.5', '0.1')).toBe('-1,234.5');
    expect(formatPrice(null, '0.01')).toBe('—');
  });

  it('formats sizes at step precision exactly (no float noise)', () => {
    expect(formatSize('0.1', '0.00001')).toBe('0.10000');
    expect(formatSize('0.30000000000000004', '0.00001')).toBe('0.30000');
    expect(formatSize('12345678901234567.12345', '0.00001')).toBe('12,345,678,901,234,567.12345');
  });

  it('formats without grouping when asked', () => {
    expect(formatDecimal('45000.1', 2, false)).toBe('45000.10');
  });

  it('formats compact volumes and signed percents', () => {
    expect(formatCompact('1234567.8')).toBe('1.23M');
    expect(formatCompact('950')).toBe('950.00');
    expect(formatCompact('0.012345')).toBe('0.01235');
    expect(formatCompact('2500000000')).toBe('2.50B');
    expect(formatPercent('1.234')).toBe('+1.23%');
    expect(formatPercent('-0.5')).toBe('-0.50%');
    expect(formatPercent('0')).toBe('0.00%');
    expect(formatSigned('12.5', 2)).toBe('+12.50');
    expect(formatSigned('-1200', 2)).toBe('-1,200.00');
  });

  it('tells the sign of a decimal', () => {
    expect(signOf('0.00')).toBe(0);
    expect(signOf('-0.01')).toBe(-1);
    expect(signOf('3')).toBe(1);
    expect(signOf(null)).toBe(0);
  });
});
