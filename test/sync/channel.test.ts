import { describe, expect, it } from 'vitest';
import { keyOptions } from '../../src/sync/channel.js';

describe('the one-run key', () => {
  it('expires by itself a week on, where the target sshd knows expiry-time (OpenSSH 8.2 and later)', () => {
    const now = new Date('2026-12-06T09:05:07.123Z');
    expect(keyOptions('OpenSSH_9.2p1 Debian-2+deb12u3', now)).toBe('restrict,expiry-time="20261213090507Z"');
    expect(keyOptions('OpenSSH_8.2p1', now)).toBe('restrict,expiry-time="20261213090507Z"');
    expect(keyOptions('OpenSSH_7.4', now)).toBe('restrict');
    expect(keyOptions('OpenSSH_8.1p1', now)).toBe('restrict');
    expect(keyOptions(undefined, now)).toBe('restrict');
  });
});
