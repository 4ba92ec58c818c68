import { describe, expect, it } from 'vitest';
import { AddressRemap } from '../../src/fixup/remap.js';

const remap = new AddressRemap({
  networks: [
    { from: '10.0.2.0/24', to: '10.9.2.0/24' },
    { from: '2001:db8:1::/64', to: '2001:db8:9::/64' },
  ],
  addresses: [{ from: '10.0.2.5', to: '192.168.5.5' }],
  gateway: '10.9.2.254',
});

describe('AddressRemap', () => {
  it('keeps the host bits under a network rule, and lets an address rule win', () => {
    expect(remap.address('10.0.2.7')?.to).toBe('10.9.2.7');
    expect(remap.address('10.0.2.5')?.to).toBe('192.168.5.5');
    expect(remap.address('2001:db8:1::7')?.to).toBe('2001:db8:9::7');
    expect(remap.cidr('10.0.2.7/24')?.to).toBe('10.9.2.7/24');
  });

  it('never moves loopback, the unspecified address, netmasks or addresses outside the rules', () => {
    for (const text of ['127.0.0.1', '0.0.0.0', '::1', '::', '255.255.255.0', '110.0.2.5', '10.0.3.1', 'fe80::1']) expect(remap.address(text)).toBeUndefined();
  });

  it('rewrites whole addresses inside a value and nothing that merely contains one', () => {
    expect(remap.inText('address1=10.0.2.7/24,10.0.2.1').text).toBe('address1=10.9.2.7/24,10.9.2.1');
    expect(remap.inText('110.0.2.5 10.0.2.50 255.255.255.0 0.0.0.0/0 127.0.0.1').text).toBe('110.0.2.5 10.9.2.50 255.255.255.0 0.0.0.0/0 127.0.0.1');
    expect(remap.inText('dns=10.0.2.2;10.0.2.3;').text).toBe('dns=10.9.2.2;10.9.2.3;');
    expect(remap.inText('Address=2001:db8:1::7/64').text).toBe('Address=2001:db8:9::7/64');
    for (const text of ['mac 52:54:00:12:34:56', 'x10.0.2.7', '10.0.2.7.5', 'host-10.0.2.7']) expect(remap.inText(text).text).toBe(text);
  });

  it("uses the spec's gateway for a gateway of the same family, and the rules for the other", () => {
    expect(remap.gateway('10.0.2.1')?.to).toBe('10.9.2.254');
    expect(remap.gateway('2001:db8:1::1')?.to).toBe('2001:db8:9::1');
  });
});
