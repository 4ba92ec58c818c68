/**
 * OpenSSH known_hosts: parse, look up a host's key, and append a new one (sshd(8) "SSH_KNOWN_HOSTS
 * FILE FORMAT"). Only what host-key verification needs; certificates are not supported, so
 * `@cert-authority` lines are ignored.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface HostKeyFingerprint {
  /** The key's type as written in known_hosts, e.g. `ssh-ed25519`. */
  keyType: string;
  /** As OpenSSH prints it: `SHA256:` + unpadded base64 of sha256(key blob). */
  sha256: string;
}

export interface KnownHostEntry {
  /** 1-based line number in the file. */
  line: number;
  marker: 'revoked' | 'cert-authority' | undefined;
  hosts: HostPatterns;
  keyType: string;
  key: Buffer;
}

type HostPatterns =
  | { hashed: true; salt: Buffer; hash: Buffer }
  | { hashed: false; patterns: string[] };

export type HostKeyCheck =
  | { status: 'match'; line: number }
  | { status: 'unknown'; fingerprint: HostKeyFingerprint }
  | { status: 'mismatch'; fingerprint: HostKeyFingerprint; expected: HostKeyFingerprint[]; line: number }
  | { status: 'revoked'; fingerprint: HostKeyFingerprint; line: number };

export function fingerprint(keyBlob: Buffer): HostKeyFingerprint {
  const sha256 = createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
  return { keyType: keyTypeOf(keyBlob), sha256: `SHA256:${sha256}` };
}

/** The type name at the start of an SSH public key blob (a uint32-length-prefixed string). */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return 'unknown';
  const len = keyBlob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > keyBlob.length) return 'unknown';
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

/** The name known_hosts uses for a host: `host` on port 22, else `[host]:port`. */
export function knownHostName(host: string, port: number): string {
  const name = host.toLowerCase();
  return port === 22 ? name : `[${name}]:${port}`;
}

/** Malformed lines are skipped, as OpenSSH does. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split('\n').forEach((raw, i) => {
    const entry = parseLine(raw.trim(), i + 1);
    if (entry) entries.push(entry);
  });
  return entries;
}

function parseLine(line: string, lineNo: number): KnownHostEntry | undefined {
  if (line === '' || line.startsWith('#')) return undefined;
  const fields = line.split(/\s+/);
  let marker: KnownHostEntry['marker'];
  if (fields[0]?.startsWith('@')) {
    const name = fields.shift();
    if (name === '@revoked') marker = 'revoked';
    else if (name === '@cert-authority') marker = 'cert-authority';
    else return undefined;
  }
  const [hostField, keyType, keyBase64] = fields;
  if (!hostField || !keyType || !keyBase64) return undefined;
  const hosts = parseHosts(hostField);
  const key = Buffer.from(keyBase64, 'base64');
  if (!hosts || keyTypeOf(key) !== keyType) return undefined;
  return { line: lineNo, marker, hosts, keyType, key };
}

function parseHosts(field: string): HostPatterns | undefined {
  if (!field.startsWith('|')) {
    return { hashed: false, patterns: field.toLowerCase().split(',').filter((p) => p !== '') };
  }
  const [, magic, salt, hash] = field.split('|');
  if (magic !== '1' || !salt || !hash) return undefined;
  return { hashed: true, salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') };
}

export function hostMatches(hosts: HostPatterns, name: string): boolean {
  if (hosts.hashed) {
    const hash = createHmac('sha1', hosts.salt).update(name).digest();
    return hash.length === hosts.hash.length && timingSafeEqual(hash, hosts.hash);
  }
  let matched = false;
  for (const pattern of hosts.patterns) {
    const negated = pattern.startsWith('!');
    if (!globMatch(negated ? pattern.slice(1) : pattern, name)) continue;
    // A matching negated pattern rules the line out, whatever else matches.
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function globMatch(pattern: string, name: string): boolean {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`).test(name);
}

/** Looks `host`'s key up in parsed entries; a pure function, for tests and for `verifyHostKey`. */
export function checkHostKey(entries: readonly KnownHostEntry[], host: string, port: number, keyBlob: Buffer): HostKeyCheck {
  const name = knownHostName(host, port);
  const forHost = entries.filter((e) => e.marker !== 'cert-authority' && hostMatches(e.hosts, name));
  const revoked = forHost.find((e) => e.marker === 'revoked' && e.key.equals(keyBlob));
  if (revoked) return { status: 'revoked', fingerprint: fingerprint(keyBlob), line: revoked.line };
  const known = forHost.filter((e) => e.marker === undefined);
  const match = known.find((e) => e.key.equals(keyBlob));
  if (match) return { status: 'match', line: match.line };
  const first = known[0];
  if (!first) return { status: 'unknown', fingerprint: fingerprint(keyBlob) };
  // Stricter than OpenSSH, which calls a key of a type it has no entry for "new": a host we
  // know that shows a key we have never seen is treated as changed. openSession prefers the
  // known key types, so this only happens when the server no longer offers them.
  return {
    status: 'mismatch',
    fingerprint: fingerprint(keyBlob),
    expected: known.map((e) => fingerprint(e.key)),
    line: first.line,
  };
}

export async function readKnownHosts(file: string): Promise<KnownHostEntry[]> {
  try {
    return parseKnownHosts(await readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export async function verifyHostKey(file: string, host: string, port: number, keyBlob: Buffer): Promise<HostKeyCheck> {
  return checkHostKey(await readKnownHosts(file), host, port, keyBlob);
}

/** Key types known_hosts holds for this host, so the client can ask the server for those first. */
export function knownKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const name = knownHostName(host, port);
  const types = entries.filter((e) => e.marker === undefined && hostMatches(e.hosts, name)).map((e) => e.keyType);
  return [...new Set(types)];
}

/** Trusts a host key explicitly: appends an OpenSSH-format line, creating the file with mode 0600. */
export async function appendKnownHost(file: string, host: string, port: number, keyBlob: Buffer): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const handle = await open(file, 'a+', 0o600);
  try {
    const { size } = await handle.stat();
    let prefix = '';
    if (size > 0) {
      const last = Buffer.alloc(1);
      await handle.read(last, 0, 1, size - 1);
      if (last[0] !== 0x0a) prefix = '\n';
    }
    const line = `${knownHostName(host, port)} ${keyTypeOf(keyBlob)} ${keyBlob.toString('base64')}\n`;
    await handle.appendFile(prefix + line);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
