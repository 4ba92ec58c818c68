import { describe, expect, it } from 'vitest';
import { findArgs, prunable } from '../../src/sync/manifest.js';

describe('manifest scans', () => {
  it('prunes only exclusion patterns that find matches exactly as rsync does', () => {
    expect(prunable('/var/tmp/*')).toEqual(['-path', './var/tmp/*']);
    expect(prunable('/var/tmp/**')).toEqual(['-path', './var/tmp/*']);
    expect(prunable('/var/cache/')).toEqual(['(', '-path', './var/cache', '-type', 'd', ')']);
    expect(prunable('/swapfile')).toEqual(['-path', './swapfile']);
    // Unanchored or wildcard patterns are not pruned: the manifest then sees more, never less.
    expect(prunable('*.tmp')).toBeUndefined();
    expect(prunable('/var/*/cache')).toBeUndefined();
    expect(prunable('/home/*/.cache/')).toBeUndefined();
    expect(prunable('/a[b]')).toBeUndefined();
  });

  it("names mount points and btrfs subvolume roots without their attributes, and skips only this run's own snapshot", () => {
    const args = findArgs({ dir: '/', fsType: 'btrfs', mountPoints: ['proc', 'srv/da*ta'], excludePaths: ['/var/tmp/*', '*.swp'], ownSnapshot: '.rmm-snap.web.run1' });
    const text = args.join(' ');
    expect(text).toContain('-path ./.rmm-snap.web.run1 -o -path ./var/tmp/* ) -prune');
    expect(text).toContain('( -path ./proc -o -path ./srv/da\\*ta -o ( -type d ( -inum 256 -o -inum 2 ) ) -o -false ) -printf mount %p\\0 -prune');
    expect(text).not.toContain('swp');
    const xfs = findArgs({ dir: '/srv', fsType: 'xfs', mountPoints: [], excludePaths: [] }).join(' ');
    expect(xfs).toContain('( -false ) -printf mount');
    expect(xfs).toContain('-o ( -false ) -prune');
  });
});
