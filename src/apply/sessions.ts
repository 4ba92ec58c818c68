import { readFileSync } from 'node:fs';
import type { Endpoint } from '../config/spec.js';
import { InputError } from '../errors.js';
import type { SessionOptions, SessionPool, SshSession } from '../transport/index.js';

/** Opens (or reuses) the SSH session for an endpoint of the spec. */
export function endpointSession(pool: SessionPool, endpoint: Endpoint, trustNewHostKeys: boolean): Promise<SshSession> {
  return pool.get(sessionOptions(endpoint, trustNewHostKeys));
}

export function sessionOptions(endpoint: Endpoint, trustNewHostKeys: boolean): SessionOptions {
  return {
    host: endpoint.address,
    port: endpoint.port,
    user: endpoint.user,
    auth: authOptions(endpoint),
    knownHostsFile: endpoint.knownHostsFile,
    trustNewHostKeys,
    ciphers: endpoint.ciphers,
    sudo: endpoint.sudo,
    connectTimeoutMs: endpoint.connectTimeoutMs,
    // One bound for silence both ways: the host lets go of what rmm holds after heartbeatTimeout
    // without hearing it, and rmm gives the host up after as long without an answer to its
    // keepalives (a slow host, such as a VM under emulation, is given a longer timeout).
    keepaliveIntervalMs: KEEPALIVE_MS,
    keepaliveCountMax: Math.max(3, Math.ceil(endpoint.heartbeatTimeoutMs / KEEPALIVE_MS)),
  };
}

const KEEPALIVE_MS = 10_000;

function authOptions(endpoint: Endpoint): SessionOptions['auth'] {
  const auth = endpoint.auth;
  switch (auth.kind) {
    case 'keyFile':
      return { keyFile: auth.path, ...(auth.passphraseEnv ? { passphraseEnv: auth.passphraseEnv } : {}) };
    case 'keyEnv':
      return { keyEnv: auth.variable, ...(auth.passphraseEnv ? { passphraseEnv: auth.passphraseEnv } : {}) };
    case 'agent':
      return { agent: auth.socket ?? true };
    case 'default':
      return defaultAuth(endpoint);
  }
}

function defaultAuth(endpoint: Endpoint): SessionOptions['auth'] {
  if (process.env.SSH_AUTH_SOCK) return { agent: true };
  const home = process.env.HOME ?? '';
  for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
    const file = `${home}/.ssh/${name}`;
    try {
      readFileSync(file);
      return { keyFile: file };
    } catch {
      // try the next one
    }
  }
  throw new InputError('auth.none', `no SSH credentials for ${endpoint.name} (${endpoint.address}): set connection.auth, or run an ssh-agent`);
}
