import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, parseRate } from '../../src/config/units.js';

describe('durations', () => {
  it.each([
    ['30s', 30_000],
    ['15m', 900_000],
    ['90m', 5_400_000],
    ['1h30m', 5_400_000],
    ['2h', 7_200_000],
    ['7d', 604_800_000],
    ['1d2h3m4s', 93_784_000],
    ['0s', 0],
  ])('%s is %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', '30', '1h30', '30 s', '1.5h', '2w', '30m1h', '-5m', 'm', '1H'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it.each([
    [30_000, '30s'],
    [900_000, '15m'],
    [5_400_000, '1h30m'],
    [93_784_000, '1d2h3m4s'],
    [86_400_000, '1d'],
    [0, '0s'],
    [1_499, '1s'],
  ])('%i ms is written %s', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });

  it('reads back what it writes', () => {
    for (const text of ['45s', '15m', '1h30m', '7d', '1d12h', '2d3h4m5s']) expect(formatDuration(parseDuration(text)!)).toBe(text);
  });
});

describe('bandwidth rates', () => {
  it.each([
    ['800KiB/s', 819_200],
    ['50MiB/s', 52_428_800],
    ['1GiB/s', 1_073_741_824],
    ['1GB/s', 1_000_000_000],
    ['200MB/s', 200_000_000],
    ['1.5MB/s', 1_500_000],
    ['512B/s', 512],
    ['10KB/s', 10_000],
  ])('%s is %i bytes per second', (text, rate) => {
    expect(parseRate(text)).toBe(rate);
  });

  it.each(['100Mbps', '50MiB', '50 MiB/s', '50mib/s', '1TB/s', '/s', '.5MB/s', '-1MB/s'])('refuses %j', (text) => {
    expect(parseRate(text)).toBeUndefined();
  });
});
