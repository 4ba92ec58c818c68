/**
 * Opens an authenticated ssh2 connection. Every connection goes through a known_hosts decision:
 * the host verifier is always installed, and only `match` (or an explicit trust-on-first-use of
 * an unknown key) lets the handshake finish.
 */
import ssh2 from 'ssh2';
import type { CipherAlgorithm, Client, ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2';
import { InputError, RmmError } from '../errors.js';
import { resolveAuth, type AuthOptions } from './auth.js';
import {
  AuthenticationError,
  ConnectError,
  HostKeyChangedError,
  HostKeyRevokedError,
  HostKeyUnknownError,
  type ConnectFailureReason,
  type HostKeyFacts,
} from './errors.js';
import { DEFAULT_CIPHERS } from './ciphers.js';
import {
  appendKnownHost,
  fingerprint,
  knownKeyTypes,
  readKnownHosts,
  verifyHostKey,
  type HostKeyFingerprint,
} from './known-hosts.js';

export interface SessionOptions {
  host: string;
  port?: number;
  user: string;
  auth: AuthOptions;
  knownHostsFile: string;
  /** Append unknown host keys to knownHostsFile (trust on first use). A changed key is always refused. */
  trustNewHostKeys?: boolean;
  /** Told of each key trustNewHostKeys added, so the operator sees what was trusted. */
  onNewHostKey?: (key: HostKeyFacts) => void;
  /** Cipher preference, most preferred first. */
  ciphers?: readonly string[];
  /** Run commands with `sudo -n --` when the user is not root (each call may override). */
  sudo?: boolean;
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  keepaliveCountMax?: number;
}

export interface SessionInfo {
  host: string;
  port: number;
  user: string;
  /** Client-to-server cipher negotiated at the last key exchange. */
  cipher: string | undefined;
  /** The server's software version from its ident line, e.g. `OpenSSH_9.2p1`. */
  serverIdent: string | undefined;
  hostKey: HostKeyFingerprint;
}

export { DEFAULT_CIPHERS } from './ciphers.js';

const HOST_KEY_ALGORITHMS: Readonly<Record<string, readonly ServerHostKeyAlgorithm[]>> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** Like OpenSSH: ask for the key types known_hosts already has, so a known host is not "unknown". */
function hostKeyPreference(knownTypes: readonly string[]): ServerHostKeyAlgorithm[] {
  const all = Object.values(HOST_KEY_ALGORITHMS).flat();
  const known = knownTypes.flatMap((t) => HOST_KEY_ALGORITHMS[t] ?? []);
  return [...new Set([...known, ...all])];
}

export const DEFAULTS = { port: 22, connectTimeoutMs: 15_000, keepaliveIntervalMs: 10_000, keepaliveCountMax: 3 };

export async function connect(opts: SessionOptions): Promise<{ client: Client; info: SessionInfo }> {
  if (typeof opts.knownHostsFile !== 'string' || opts.knownHostsFile === '') {
    throw new InputError('ssh.no_known_hosts', `no known_hosts file given for ${opts.host}: rmm never connects without checking the host key`);
  }
  const host = opts.host;
  const port = opts.port ?? DEFAULTS.port;
  const who = { host, port, user: opts.user };
  const auth = await resolveAuth(opts.auth, who);
  const knownTypes = knownKeyTypes(await readKnownHosts(opts.knownHostsFile), host, port);

  const client = new ssh2.Client();
  let refusal: RmmError | undefined;
  let hostKey: HostKeyFingerprint | undefined;
  let cipher: string | undefined;

  const decide = async (key: Buffer): Promise<boolean> => {
    const facts = { host, port, fingerprint: fingerprint(key), knownHostsFile: opts.knownHostsFile };
    const check = await verifyHostKey(opts.knownHostsFile, host, port, key);
    switch (check.status) {
      case 'match':
        break;
      case 'unknown':
        if (!opts.trustNewHostKeys) throw new HostKeyUnknownError(facts);
        await appendKnownHost(opts.knownHostsFile, host, port, key);
        opts.onNewHostKey?.(facts);
        break;
      case 'mismatch':
        throw new HostKeyChangedError({ ...facts, expected: check.expected, line: check.line });
      case 'revoked':
        throw new HostKeyRevokedError({ ...facts, line: check.line });
    }
    hostKey = facts.fingerprint;
    return true;
  };

  const config: ConnectConfig = {
    host,
    port,
    username: opts.user,
    ...(auth.privateKey ? { privateKey: auth.privateKey } : {}),
    ...(auth.passphrase !== undefined ? { passphrase: auth.passphrase } : {}),
    ...(auth.agent ? { agent: auth.agent } : {}),
    hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
      decide(key).then(verify, (err: unknown) => {
        refusal =
          err instanceof RmmError
            ? err
            : new ConnectError({ host, port, reason: 'other', detail: `cannot update ${opts.knownHostsFile}: ${String(err)}` });
        verify(false);
      });
    },
    algorithms: {
      cipher: [...(opts.ciphers ?? DEFAULT_CIPHERS)] as CipherAlgorithm[],
      serverHostKey: hostKeyPreference(knownTypes),
    },
    readyTimeout: opts.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    keepaliveInterval: opts.keepaliveIntervalMs ?? DEFAULTS.keepaliveIntervalMs,
    keepaliveCountMax: opts.keepaliveCountMax ?? DEFAULTS.keepaliveCountMax,
  };

  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (err: RmmError) => {
      if (settled) return;
      settled = true;
      client.destroy();
      reject(err);
    };
    // ssh2 may emit several errors for one failure (protocol, then socket): the listener stays.
    client.on('error', (err: Error & { level?: string; code?: string }) => fail(refusal ?? connectFailure(err, who, auth.methods)));
    client.once('close', () => fail(refusal ?? new ConnectError({ host, port, reason: 'closed', detail: 'before login finished' })));
    client.on('handshake', (negotiated) => (cipher = negotiated.cs.cipher));
    client.once('ready', () => {
      settled = true;
      resolve();
    });
    try {
      client.connect(config);
      // From the first packet: Nagle and delayed ACKs add ~40 ms to the login (its service request
      // waits for the ACK of NEWKEYS; a login took 80-90 ms, 38-50 ms without) and ~45 ms to every
      // remote command after it (bench/experiments/remote-command-latency.mjs).
      client.setNoDelay(true);
    } catch (err) {
      // ssh2 validates options synchronously, e.g. "Unsupported algorithm: aes999-ctr".
      fail(new InputError('ssh.bad_option', `invalid SSH options for ${host}: ${(err as Error).message}`, { cause: err }));
    }
  });

  // ssh2 keeps the server's ident only in a private field; it has been there since 0.x.
  const serverIdent = (client as unknown as { _remoteVer?: string })._remoteVer;
  const info: SessionInfo = {
    host,
    port,
    user: opts.user,
    get cipher() {
      return cipher;
    },
    serverIdent,
    hostKey: hostKey ?? { keyType: 'unknown', sha256: 'unknown' },
  };
  return { client, info };
}

function connectFailure(
  err: Error & { level?: string; code?: string },
  who: { host: string; port: number; user: string },
  methods: string[],
): RmmError {
  if (err.level === 'client-authentication') {
    return new AuthenticationError({ ...who, reason: 'rejected', methods }, { cause: err });
  }
  const { host, port } = who;
  const byCode: Record<string, ConnectFailureReason> = {
    ECONNREFUSED: 'refused',
    ETIMEDOUT: 'timeout',
    EHOSTUNREACH: 'unreachable',
    ENETUNREACH: 'unreachable',
    ENOTFOUND: 'dns',
    EAI_AGAIN: 'dns',
    ECONNRESET: 'closed',
  };
  let reason: ConnectFailureReason = 'other';
  if (err.level === 'client-timeout') reason = 'timeout';
  else if (err.level === 'handshake') reason = 'handshake';
  else if (err.code && byCode[err.code]) reason = byCode[err.code] ?? 'other';
  return new ConnectError({ host, port, reason, detail: err.message }, { cause: err });
}
