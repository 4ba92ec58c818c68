import { describe, expect, it } from 'vitest';
import type { NicIdentity } from '../../src/fixup/types.js';
import { fixupPersistentNetRules } from '../../src/fixup/udev.js';
import { expectFixture, readFixture } from './fixtures.js';

function nics(names: Record<string, string>, macs: Record<string, string | undefined>): NicIdentity {
  return { names: new Map(Object.entries(names)), macs: new Map(Object.entries(macs)) };
}

const cases: { file: string; nics: NicIdentity; what: string }[] = [
  {
    file: '70-persistent-net.rules',
    nics: nics({ eth0: 'ens3', eth1: 'ens4' }, { '74:d0:2b:98:17:f1': '52:54:00:00:00:03', '74:d0:2b:98:17:f0': undefined }),
    what: "Debian's generated rules: one NIC moved to the target's MAC and name, one commented out",
  },
  {
    file: '70-persistent-net-centos6.rules',
    nics: nics({}, { '00:0c:29:a3:d8:a7': '52:54:00:a3:d8:a7' }),
    what: "CentOS 6's rules: the MAC moves, the name stays when the spec keeps it, the other NIC's rule is not the spec's",
  },
  { file: '85-persistent-net-cloud-init.rules', nics: nics({ eth0: 'enp1s0' }, { 'fa:16:3e:ed:9a:59': '52:54:00:ed:9a:59' }), what: "cloud-init's rule" },
  {
    file: '70-persistent-net-forklift.rules',
    nics: nics({ ens192: 'enp6s18' }, { '00:50:56:8e:1a:2b': '52:54:00:8e:1a:2b', '00:50:56:8e:1a:2c': undefined }),
    what: "Forklift's compact rules: an upper-case MAC stays upper case",
  },
  {
    file: '10-network-odd.rules',
    nics: nics({ lan0: 'enp1s0', lan1: 'enp2s0' }, { '52:54:00:12:34:56': undefined, '52:54:00:12:34:99': '52:54:00:aa:bb:99' }),
    what: 'a rule over two lines commented out whole; a PCI-path rule untouched',
  },
];

describe('fixupPersistentNetRules on real files', () => {
  for (const c of cases) {
    it(`${c.file}: ${c.what}`, () => {
      expectFixture('udev', c.file, (text) => fixupPersistentNetRules(text, c.nics));
    });
  }
});

describe('fixupPersistentNetRules', () => {
  it('reports a rule it cannot read and rewrites nothing', () => {
    expect(fixupPersistentNetRules(readFixture('udev', 'broken.rules'), nics({}, { '52:54:00:12:34:56': undefined }))).toMatchObject({ kind: 'unparsable', line: 1 });
  });

  it('leaves rules on MACs the spec does not name', () => {
    const text = readFixture('udev', '70-persistent-net.rules');
    expect(fixupPersistentNetRules(text, nics({ eth0: 'ens3' }, {}))).toEqual({ kind: 'unchanged', text });
  });
});
