import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CopyMeter, type CopyProgress } from '../../src/sync/progress.js';
import { archiveCost } from '../../src/sync/tar.js';

/** A meter on a clock the test moves. */
function meterOf(estimate: ConstructorParameters<typeof CopyMeter>[0]) {
  let now = 0;
  const seen: { at: number; p: CopyProgress }[] = [];
  const meter = new CopyMeter(estimate, (p) => seen.push({ at: now, p }), 250, () => now);
  return { meter, seen, tick: (ms: number) => (now += ms) };
}

describe('a copy meter', () => {
  it('shows the estimate at once, then the share of the listing that tar streams sent, then the final figures', () => {
    const { meter, seen, tick } = meterOf({ bytes: 1_000_000 });
    meter.start();
    expect(seen[0]!.p).toEqual({ bytes: 0, bytesTotal: 1_000_000, files: 0, filesTotal: null, percent: 0, bytesPerSecond: 0, etaSeconds: null });
    // Ten files of 100,000 bytes listed: the archive is theirs with headers and padding.
    const archive = 10 * archiveCost(100_000);
    meter.listed({ bytes: 1_000_000, files: 10, archiveBytes: archive, complete: true });
    for (let i = 1; i <= 4; i++) {
      tick(1000);
      meter.sent((archive * i) / 5);
    }
    const last = seen.at(-1)!.p;
    expect(last).toMatchObject({ bytes: 800_000, bytesTotal: 1_000_000, files: 8, filesTotal: 10, percent: 80 });
    // 200,000 bytes a second over the last seconds: one second left.
    expect(last.bytesPerSecond).toBe(200_000);
    expect(last.etaSeconds).toBe(1);
    tick(1000);
    meter.sent(archive + 1_048_576); // the end of each stream is padded to a whole record
    expect(seen.at(-1)!.p.percent).toBe(99);
    meter.finish({ bytes: 1_000_000, files: 10 });
    expect(seen.at(-1)!.p).toMatchObject({ bytes: 1_000_000, files: 10, filesTotal: 10, percent: 100, etaSeconds: 0 });
  });

  it("counts a sync of changes from what the last point holds: rsync's figures are of the entries sent", () => {
    const { meter, seen, tick } = meterOf({ bytes: 10_000_000, files: 1000, heldBytes: 9_000_000, heldFiles: 990 });
    meter.start();
    expect(seen[0]!.p).toMatchObject({ bytes: 9_000_000, files: 990, filesTotal: 1000, percent: 90 });
    tick(1000);
    meter.rsync({ bytes: 500_000, percent: 50, rate: '1MB/s', eta: '0:00:01', bytesPerSecond: 1 << 20, etaSeconds: 1, files: 4, listed: true });
    expect(seen.at(-1)!.p).toMatchObject({ bytes: 9_500_000, files: 994, percent: 95 });
  });

  it("takes the total from rsync's own figures once rsync has listed every file, when the plan only estimated it (exclusions)", () => {
    const { meter, seen, tick } = meterOf({ bytes: 260_000_000 });
    meter.start();
    tick(1000);
    // Still walking: 90% of the little it found so far is no total.
    meter.rsync({ bytes: 900, percent: 90, rate: '', eta: '', bytesPerSecond: 1000, etaSeconds: 3, files: 2, listed: false });
    expect(seen.at(-1)!.p).toMatchObject({ bytes: 900, bytesTotal: 260_000_000, percent: 0 });
    tick(1000);
    meter.rsync({ bytes: 1000, percent: 25, rate: '', eta: '', bytesPerSecond: 1000, etaSeconds: 3, files: 2, listed: true });
    expect(seen.at(-1)!.p).toMatchObject({ bytes: 1000, bytesTotal: 4000, percent: 25 });
  });

  it('counts the entries rsync checked, the unchanged ones too (a copy over an earlier one)', () => {
    const { meter, seen, tick } = meterOf({ bytes: 1_000_000 });
    meter.start();
    tick(1000);
    meter.rsync({ bytes: 0, percent: 0, rate: '', eta: '', bytesPerSecond: 0, etaSeconds: 0, files: 0, listed: false, checked: 300, listedEntries: 900 });
    expect(seen.at(-1)!.p).toMatchObject({ files: 300, filesTotal: null });
    tick(1000);
    meter.rsync({ bytes: 10, percent: 0, rate: '', eta: '', bytesPerSecond: 0, etaSeconds: 0, files: 1, listed: true, checked: 700, listedEntries: 1000 });
    expect(seen.at(-1)!.p).toMatchObject({ files: 700, filesTotal: 1000 });
  });

  it('says no more than four times a second, and never goes back, whatever the processes say', () => {
    const step = fc.oneof(
      fc.record({ kind: fc.constant('listed' as const), bytes: fc.nat(1e9), files: fc.nat(1e5), archiveBytes: fc.nat(2e9), complete: fc.boolean() }),
      fc.record({ kind: fc.constant('sent' as const), bytes: fc.nat(2e9) }),
      fc.record({ kind: fc.constant('rsync' as const), bytes: fc.nat(1e9), files: fc.nat(1e5), percent: fc.nat(100), listed: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.nat(1e9), fc.array(fc.tuple(fc.nat(2000), step), { maxLength: 60 }), (estimate, steps) => {
        const { meter, seen, tick } = meterOf({ bytes: estimate });
        meter.start();
        for (const [ms, s] of steps) {
          tick(ms);
          if (s.kind === 'listed') meter.listed(s);
          else if (s.kind === 'sent') meter.sent(s.bytes);
          else meter.rsync({ bytes: s.bytes, files: s.files, percent: s.percent, rate: '', eta: '', bytesPerSecond: 0, etaSeconds: 0, listed: s.listed });
        }
        meter.finish({ bytes: 5, files: 5 });
        const during = seen.slice(0, -1);
        for (let i = 1; i < during.length; i++) {
          const [a, b] = [during[i - 1]!, during[i]!];
          expect(b.at - a.at).toBeGreaterThanOrEqual(250);
          expect(b.p.bytes).toBeGreaterThanOrEqual(a.p.bytes);
          expect(b.p.files).toBeGreaterThanOrEqual(a.p.files);
          expect(b.p.percent).toBeGreaterThanOrEqual(a.p.percent);
        }
        expect(during.every((s) => s.p.percent < 100 && s.p.bytes <= s.p.bytesTotal)).toBe(true);
        expect(seen.at(-1)!.p).toMatchObject({ bytes: 5, bytesTotal: 5, files: 5, filesTotal: 5, percent: 100 });
      }),
    );
  });
});
