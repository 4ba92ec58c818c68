import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  appendKnownHost,
  checkHostKey,
  fingerprint,
  parseKnownHosts,
  verifyHostKey,
} from '../../src/transport/known-hosts.js';

// Real keys made with ssh-keygen; fingerprints as `ssh-keygen -lf` printed them.
const A = 'AAAAC3NzaC1lZDI1NTE5AAAAIL9LEUyom487WL4t6HVKbP5iTCoBXeEjYGOvwZd6XCKw';
const A_FP = 'SHA256:YRtQb/HX0YCy68K4G5x7NiSE/eLuQJA6e2tyA/TIHbQ';
const B = 'AAAAC3NzaC1lZDI1NTE5AAAAIFC4aH+k/8Mdd5egHnAOTB7Oez+TpF2eG58g07/dmxjV';
const B_FP = 'SHA256:3HutH22+P4JKd5bdQ/Zdim8TyaStdOFkG75RGWgIiD4';
const C = 'AAAAC3NzaC1lZDI1NTE5AAAAIA0Iy8ROnjDddIX25VIMA38GdueYpuPVkISGKwDyoki7';
const E =
  'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBOVD2XKuz1Yx7ps8VrZPDgIiZcj9+7xjdmZjoGV93uHDUHYifgdGoxyXGjThjQPP0tOPSM8TE6eM88JpVVMkN28=';
const E_FP = 'SHA256:82bWIuotZgecJ/SAELDTcl9i99pIaOLDDg29ay2Jp/s';
const blob = (b64: string) => Buffer.from(b64, 'base64');

// Hashed lines made by `ssh-keygen -H`: the first is [198.18.0.10]:2222 with A, the second origin.example with B.
const KNOWN_HOSTS = `# rmm test fixture

198.18.0.20,target.example ssh-ed25519 ${A} target
|1|801CIPQdvrudWTeMYEc2NSAVFQ0=|IYFTryOFSMgWUpObFmK9AKK4n/c= ssh-ed25519 ${A}
|1|BeWNXi5c1etmeMObsNLoAU9ukmg=|4NsNlZqpHBKm5Xw3ogMikfhkZOw= ssh-ed25519 ${B}
*.dr.example,!legacy.dr.example ssh-ed25519 ${C}
198.18.1.? ecdsa-sha2-nistp256 ${E}
[198.18.0.30]:2200 ssh-ed25519 ${B}
this line is not a key
@cert-authority *.example ssh-ed25519 ${C}
@revoked * ssh-ed25519 ${B}
@bogus-marker * ssh-ed25519 ${A}
198.18.0.40 ssh-rsa ${A}
`;
const entries = parseKnownHosts(KNOWN_HOSTS);
const check = (host: string, port: number, key: string) => checkHostKey(entries, host, port, blob(key));

describe('fingerprint', () => {
  it('is the OpenSSH SHA256 form, with the key type', () => {
    expect(fingerprint(blob(A))).toEqual({ keyType: 'ssh-ed25519', sha256: A_FP });
    expect(fingerprint(blob(E))).toEqual({ keyType: 'ecdsa-sha2-nistp256', sha256: E_FP });
  });
});

describe('parseKnownHosts', () => {
  it('skips comments, blank and malformed lines and keeps line numbers', () => {
    expect(entries.map((e) => [e.line, e.marker ?? ''])).toEqual([
      [3, ''],
      [4, ''],
      [5, ''],
      [6, ''],
      [7, ''],
      [8, ''],
      [10, 'cert-authority'],
      [11, 'revoked'],
    ]);
  });

  it('drops a line whose key type disagrees with its key', () => {
    expect(entries.some((e) => e.line === 13)).toBe(false);
  });
});

describe('checkHostKey', () => {
  it('matches plain hosts in a comma list, by address or name, case-insensitively', () => {
    expect(check('198.18.0.20', 22, A)).toEqual({ status: 'match', line: 3 });
    expect(check('Target.Example', 22, A)).toEqual({ status: 'match', line: 3 });
  });

  it('keeps ports apart: [host]:port entries match only that port', () => {
    expect(check('198.18.0.30', 2200, B)).toEqual({ status: 'revoked', fingerprint: { keyType: 'ssh-ed25519', sha256: B_FP }, line: 11 });
    expect(check('198.18.0.20', 2222, A).status).toBe('unknown');
    expect(check('198.18.0.30', 22, C).status).toBe('unknown');
  });

  it('matches hashed entries made by ssh-keygen -H', () => {
    expect(check('198.18.0.10', 2222, A)).toEqual({ status: 'match', line: 4 });
    expect(check('198.18.0.10', 22, A).status).toBe('unknown');
  });

  it('matches a hashed entry computed here with HMAC-SHA1', () => {
    const salt = randomBytes(20);
    const hash = createHmac('sha1', salt).update('[198.18.0.50]:2022').digest();
    const own = parseKnownHosts(`|1|${salt.toString('base64')}|${hash.toString('base64')} ssh-ed25519 ${C}\n`);
    expect(checkHostKey(own, '198.18.0.50', 2022, blob(C))).toEqual({ status: 'match', line: 1 });
    expect(checkHostKey(own, '198.18.0.51', 2022, blob(C)).status).toBe('unknown');
  });

  it('honours wildcards and negation', () => {
    expect(check('a.dr.example', 22, C).status).toBe('match');
    expect(check('legacy.dr.example', 22, C).status).toBe('unknown');
    expect(check('198.18.1.7', 22, E).status).toBe('match');
    expect(check('198.18.1.17', 22, E).status).toBe('unknown');
  });

  it('reports a different key for a known host as a mismatch, naming the line and the expected keys', () => {
    expect(check('198.18.0.20', 22, C)).toEqual({
      status: 'mismatch',
      fingerprint: fingerprint(blob(C)),
      expected: [{ keyType: 'ssh-ed25519', sha256: A_FP }],
      line: 3,
    });
  });

  it('refuses a revoked key even where a plain line lists it', () => {
    expect(check('origin.example', 22, B).status).toBe('revoked');
  });

  it('ignores @cert-authority lines', () => {
    expect(check('ca.example', 22, C).status).toBe('unknown');
  });

  it('reports an unknown host with the fingerprint to verify', () => {
    expect(check('198.18.9.9', 22, A)).toEqual({ status: 'unknown', fingerprint: { keyType: 'ssh-ed25519', sha256: A_FP } });
  });
});

describe('known_hosts files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rmm-kh-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('treats a missing file as knowing no host', async () => {
    expect((await verifyHostKey(join(dir, 'missing'), '198.18.0.10', 22, blob(A))).status).toBe('unknown');
  });

  it('appends in OpenSSH format, creating the file with mode 0600', async () => {
    const file = join(dir, 'sub', 'known_hosts');
    await appendKnownHost(file, '198.18.0.10', 2222, blob(A));
    await appendKnownHost(file, '198.18.0.20', 22, blob(E));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).toBe(`[198.18.0.10]:2222 ssh-ed25519 ${A}\n198.18.0.20 ecdsa-sha2-nistp256 ${E}\n`);
    expect(await verifyHostKey(file, '198.18.0.10', 2222, blob(A))).toEqual({ status: 'match', line: 1 });
    // OpenSSH agrees: ssh-keygen -F finds both entries.
    expect(execFileSync('ssh-keygen', ['-F', '[198.18.0.10]:2222', '-f', file]).toString()).toContain(A);
    expect(execFileSync('ssh-keygen', ['-F', '198.18.0.20', '-f', file]).toString()).toContain(E);
  });

  it('starts a new line when the file does not end with one', async () => {
    const file = join(dir, 'no-newline');
    writeFileSync(file, `198.18.0.20 ssh-ed25519 ${A}`);
    await appendKnownHost(file, '198.18.0.21', 22, blob(B));
    expect(readFileSync(file, 'utf8')).toBe(`198.18.0.20 ssh-ed25519 ${A}\n198.18.0.21 ssh-ed25519 ${B}\n`);
  });
});
