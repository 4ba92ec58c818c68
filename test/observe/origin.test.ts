import { describe, expect, it } from 'vitest';
import { parseDiscovery } from '../../src/observe/origin.js';

const node = (target: string, source: string, fstype: string, children: unknown[] = []) => ({ target, source, fstype, options: 'rw', size: '1000', avail: '500', used: '500', uuid: null, children });

describe('discovering an origin', () => {
  it("leaves out rmm's own views: the LVM snapshots and bind views a run holds, or a killed run left, below /run/.rmm-snap", () => {
    const findmnt = JSON.stringify({
      filesystems: [
        node('/', '/dev/vda1', 'ext4', [
          node('/srv/app', '/dev/mapper/vg_app-lv_data', 'xfs'),
          node('/run', 'tmpfs', 'tmpfs', [
            node('/run/.rmm-snap/app01-dr.run1/rmm-freeze_', '/dev/vda1', 'ext4'),
            node('/run/.rmm-snap/app01-dr.run1/rmm-snap.app01-dr.run1.lv_data', '/dev/mapper/vg_app-rmm--snap.app01--dr.run1.lv_data', 'xfs'),
          ]),
        ]),
      ],
    });
    const facts = parseDiscovery(`\n@@rmm:findmnt\n${findmnt}\n@@rmm:end\n`, '/');
    expect(facts.filesystems.map((f) => f.mountPoint)).toEqual(['/', '/srv/app']);
  });
});
