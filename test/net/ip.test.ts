import { describe, expect, it } from 'vitest';
import { cidrContains, cidrsOverlap, formatCidr, formatIp, ipProblem, parseCidr, parseIp, type Cidr } from '../../src/net/ip.js';

function cidr(text: string): Cidr {
  const { cidr: parsed, problem } = parseCidr(text);
  if (!parsed) throw new Error(`${text}: ${problem}`);
  return parsed;
}

describe('parseIp and formatIp', () => {
  it.each([
    ['0.0.0.0', 0n],
    ['10.1.3.11', 0x0a01030bn],
    ['255.255.255.255', 0xffffffffn],
  ])('reads IPv4 %s', (text, value) => {
    expect(parseIp(text)).toEqual({ family: 4, value });
    expect(formatIp({ family: 4, value })).toBe(text);
  });

  it.each([
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['2001:db8::1', '2001:db8::1'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:0db8:0000:0000:0001:0000:0000:0001', '2001:db8::1:0:0:1'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'],
    ['fe80:0:0:0:1::', 'fe80::1:0:0:0'],
    ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
    ['::ffff:a00:1', '::ffff:10.0.0.1'],
    ['64:ff9b::192.0.2.33', '64:ff9b::c000:221'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
  ])('reads IPv6 %s and writes it as %s (RFC 5952)', (text, canonical) => {
    const ip = parseIp(text);
    expect(ip?.family).toBe(6);
    expect(formatIp(ip!)).toBe(canonical);
    expect(parseIp(canonical)).toEqual(ip);
  });

  it('reads the value of an IPv6 address group by group', () => {
    expect(parseIp('2001:db8::ff00:42:8329')?.value).toBe(0x20010db8000000000000ff0000428329n);
    expect(parseIp('::ffff:192.0.2.1')?.value).toBe(0xffffc0000201n);
  });

  it.each([
    '',
    '10.1.3',
    '10.1.3.11.5',
    '10.1.3.256',
    '10.01.3.11',
    '10.1.3.-1',
    '10.1.3.1a',
    ' 10.1.3.11',
    ':',
    ':::',
    '1::2::3',
    ':1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:',
    '1:2:3:4:5:6:7',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7::8',
    '12345::1',
    'g::1',
    'fe80::1%eth0',
    '::1.2.3',
    '::1.2.3.4:5',
    '1:2:3:4:5:6:7:1.2.3.4',
    'web-01.example.com',
  ])('refuses %j', (text) => {
    expect(parseIp(text)).toBeUndefined();
    expect(ipProblem(text)).toEqual(expect.any(String));
  });

  it('says why an address is refused', () => {
    expect(ipProblem('10.1.3.256')).toBe('256 is more than 255');
    expect(ipProblem('10.01.3.11')).toBe('01 has a leading zero, which some tools read as octal');
    expect(ipProblem('10.1.3')).toBe('IPv4 has 4 numbers, not 3');
    expect(ipProblem('1::2::3')).toBe("'::' may appear only once");
    expect(ipProblem('fe80::1%eth0')).toBe('zone ids such as %eth0 are not allowed');
    expect(ipProblem('10.1.3.11')).toBeUndefined();
  });
});

describe('parseCidr', () => {
  it('reads networks of both families', () => {
    expect(parseCidr('10.1.0.0/16')).toEqual({ cidr: { family: 4, network: 0x0a010000n, prefix: 16 } });
    expect(parseCidr('0.0.0.0/0')).toEqual({ cidr: { family: 4, network: 0n, prefix: 0 } });
    expect(parseCidr('10.1.3.11/32')).toEqual({ cidr: { family: 4, network: 0x0a01030bn, prefix: 32 } });
    expect(formatCidr(cidr('2001:db8:20::/48'))).toBe('2001:db8:20::/48');
    expect(formatCidr(cidr('::/0'))).toBe('::/0');
    expect(cidr('2001:db8::1/128').prefix).toBe(128);
  });

  it('refuses host bits and names the network that was probably meant', () => {
    expect(parseCidr('10.1.3.0/16')).toEqual({ problem: 'host bits are set after the first 16 bits (did you mean 10.1.0.0/16?)' });
    expect(parseCidr('10.1.3.1/31').problem).toContain('did you mean 10.1.3.0/31?');
    expect(parseCidr('2001:db8::1/64').problem).toContain('did you mean 2001:db8::/64?');
    expect(parseCidr('128.0.0.0/0').problem).toContain('did you mean 0.0.0.0/0?');
  });

  it('refuses prefixes out of range and malformed text', () => {
    expect(parseCidr('10.0.0.0/33').problem).toBe('the prefix /33 is out of range for IPv4 (0 to 32)');
    expect(parseCidr('::/129').problem).toBe('the prefix /129 is out of range for IPv6 (0 to 128)');
    expect(parseCidr('10.0.0.0/08').problem).toContain('out of range');
    expect(parseCidr('10.0.0.0/').problem).toContain('out of range');
    expect(parseCidr('10.0.0.0').problem).toBe('it has no /prefix');
    expect(parseCidr('10.0.300.0/24').problem).toBe("'10.0.300.0' is not an IPv4 or IPv6 address (300 is more than 255)");
  });
});

describe('containment and overlap', () => {
  it('tells whether a network holds an address', () => {
    const net = cidr('10.1.0.0/16');
    expect(cidrContains(net, parseIp('10.1.255.255')!)).toBe(true);
    expect(cidrContains(net, parseIp('10.1.0.0')!)).toBe(true);
    expect(cidrContains(net, parseIp('10.2.0.0')!)).toBe(false);
    expect(cidrContains(cidr('0.0.0.0/0'), parseIp('192.0.2.1')!)).toBe(true);
    expect(cidrContains(cidr('2001:db8::/32'), parseIp('2001:db8:ffff::1')!)).toBe(true);
    expect(cidrContains(cidr('2001:db8::/32'), parseIp('2001:db9::1')!)).toBe(false);
  });

  it('never mixes families', () => {
    expect(cidrContains(cidr('::/0'), parseIp('10.0.0.1')!)).toBe(false);
    expect(cidrContains(cidr('0.0.0.0/0'), parseIp('::ffff:10.0.0.1')!)).toBe(false);
    expect(cidrsOverlap(cidr('0.0.0.0/0'), cidr('::/0'))).toBe(false);
  });

  it.each([
    ['10.1.0.0/16', '10.1.3.0/24', true],
    ['10.1.3.0/24', '10.1.0.0/16', true],
    ['10.1.0.0/16', '10.1.0.0/16', true],
    ['10.1.0.0/16', '10.2.0.0/16', false],
    ['10.0.0.0/8', '11.0.0.0/8', false],
    ['10.1.3.0/25', '10.1.3.128/25', false],
    ['0.0.0.0/0', '192.0.2.0/24', true],
    ['2001:db8::/32', '2001:db8:1::/48', true],
    ['2001:db8::/48', '2001:db8:1::/48', false],
  ])('%s and %s overlap: %s', (a, b, overlap) => {
    expect(cidrsOverlap(cidr(a), cidr(b))).toBe(overlap);
  });
});
