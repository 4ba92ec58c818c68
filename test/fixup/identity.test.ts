import { describe, expect, it } from 'vitest';
import type { IpRemap } from '../../src/config/spec.js';
import { fixupHostname, fixupHosts } from '../../src/fixup/identity.js';
import { AddressRemap } from '../../src/fixup/remap.js';
import { expectFixture } from './fixtures.js';

const networks: IpRemap['networks'] = [
  { from: '10.0.2.0/24', to: '10.9.2.0/24' },
  { from: 'fd00:10::/64', to: 'fd00:99::/64' },
  { from: '192.168.122.0/24', to: '10.122.0.0/24' },
];

function remap(hostname?: string): AddressRemap {
  return new AddressRemap({ networks, addresses: [], ...(hostname === undefined ? {} : { hostname }) });
}

describe('fixupHostname on real files', () => {
  it('hostname-debian: a short name renamed', () => {
    expectFixture('identity', 'hostname-debian', (text) => fixupHostname(text, 'web01-dr'));
  });
  it('hostname-rhel: a fully qualified name renamed', () => {
    expectFixture('identity', 'hostname-rhel', (text) => fixupHostname(text, 'rhel9-dr.dr.example'));
  });
  it('hostname-comment: the comment kept', () => {
    expectFixture('identity', 'hostname-comment', (text) => fixupHostname(text, 'web01-dr'));
  });
});

describe('fixupHostname', () => {
  it('changes nothing when the spec keeps the name, or the file names none', () => {
    expect(fixupHostname('web01\n', undefined).kind).toBe('unchanged');
    expect(fixupHostname('web01\n', 'web01').kind).toBe('unchanged');
    expect(fixupHostname('', 'web01-dr').kind).toBe('unchanged');
  });
  it('reports a file with more than a name on its line', () => {
    expect(fixupHostname('web01 extra\n', 'web01-dr')).toMatchObject({ kind: 'unparsable', line: 1 });
  });
});

describe('fixupHosts on real files', () => {
  it("hosts-cloud-init-debian: Debian's 127.0.1.1 line renamed, its loopback address kept", () => {
    expectFixture('identity', 'hosts-cloud-init-debian', (text) => fixupHosts(text, remap('web01-dr'), 'web01'));
  });
  it('hosts-cloud-init-redhat: the name on 127.0.0.1 and ::1 renamed to a new FQDN', () => {
    expectFixture('identity', 'hosts-cloud-init-redhat', (text) => fixupHosts(text, remap('web01-dr.dr.example.com'), 'web01.example.com'));
  });
  it("hosts-debian-static: the host's own addresses move (IPv4 and IPv6); other hosts' lines and look-alike names stay", () => {
    expectFixture('identity', 'hosts-debian-static', (text) => fixupHosts(text, remap('web01-dr'), 'web01.example.com'));
  });
  it('hosts-rhel: only the address moves when the spec keeps the name', () => {
    expectFixture('identity', 'hosts-rhel', (text) => fixupHosts(text, remap(), 'rhel9.lab.example'));
  });
});

describe('fixupHosts', () => {
  it('reports an address with no name', () => {
    expect(fixupHosts('127.0.0.1 localhost\n10.0.2.15\n', remap('x'), 'web01')).toMatchObject({ kind: 'unparsable', line: 2 });
  });
});
