import { describe, expect, it } from 'vitest';
import { formatCountdown, formatElapsed, parseAt } from '../../src/format';

describe('formatElapsed', () => {
  it.each([
    [0, '0 s'],
    [-5000, '0 s'],
    [42_900, '42 s'],
    [60_000, '1 min'],
    [5 * 60_000 + 59_000, '5 min'],
    [3600_000, '1 h'],
    [2 * 3600_000 + 5 * 60_000, '2 h 5 min'],
    [24 * 3600_000, '1 d'],
    [3 * 24 * 3600_000 + 4 * 3600_000, '3 d 4 h'],
  ])('%i ms -> %s', (ms, text) => {
    expect(formatElapsed(ms)).toBe(text);
  });
});

describe('formatCountdown', () => {
  it.each([
    [0, '0 s'],
    [400, '1 s'],
    [42_000, '42 s'],
    [60_000, '1 min'],
    [260_000, '4 min 20 s'],
    [3600_000, '1 h'],
    [3720_000, '1 h 2 min'],
  ])('%i ms -> %s', (ms, text) => {
    expect(formatCountdown(ms)).toBe(text);
  });
});

describe('parseAt', () => {
  it('parses RFC 3339 with millis and rejects garbage', () => {
    expect(parseAt('2026-11-24T06:10:00.123Z')).toBe(Date.UTC(2026, 10, 24, 6, 10, 0, 123));
    expect(parseAt('yesterday-ish')).toBeNull();
    expect(parseAt(null)).toBeNull();
  });
});
