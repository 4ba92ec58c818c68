import { describe, expect, it } from 'vitest';
import { keyOptions } from '../../src/sync/channel.js';

describe('the one-run key', () => {
  it('expires by itself a week on, where the target sshd reads expiry-time in UTC (OpenSSH 9.1 and later)', () => {
    const now = new Date('2026-12-06T09:05:07.123Z');
    expect(keyOptions('OpenSSH_9.2p1 Debian-2+deb12u3', now)).toBe('restrict,expiry-time="20261213090507Z"');
    expect(keyOptions('OpenSSH_9.1p1', now)).toBe('restrict,expiry-time="20261213090507Z"');
    expect(keyOptions('OpenSSH_10.0p2', now)).toBe('restrict,expiry-time="20261213090507Z"');
    // 8.2 to 9.0 skip a key whose time ends in Z.
    expect(keyOptions('OpenSSH_8.9p1 Ubuntu-3', now)).toBe('restrict');
    expect(keyOptions('OpenSSH_9.0p1', now)).toBe('restrict');
    expect(keyOptions('OpenSSH_7.4', now)).toBe('restrict');
    expect(keyOptions('OpenSSH_8.1p1', now)).toBe('restrict');
    expect(keyOptions(undefined, now)).toBe('restrict');
  });
});
