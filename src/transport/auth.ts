/**
 * Turns the spec's auth settings (paths and env var names, never secrets) into what ssh2 needs,
 * failing early with an AuthenticationError that names the path or variable, never its content.
 */
import { readFile, stat } from 'node:fs/promises';
import ssh2 from 'ssh2';
import { AuthenticationError, type AuthFailureReason } from './errors.js';

export interface AuthOptions {
  keyFile?: string;
  /** Name of an env var holding a private key's path. */
  keyEnv?: string;
  /** Agent socket path; `true` means $SSH_AUTH_SOCK. */
  agent?: string | true;
  /** Name of an env var holding the key's passphrase. */
  passphraseEnv?: string;
}

export interface ResolvedAuth {
  privateKey?: Buffer;
  passphrase?: string;
  agent?: string;
  /** For messages: `publickey (PATH)`, `agent (PATH)`. */
  methods: string[];
}

interface Who {
  host: string;
  port: number;
  user: string;
}

export async function resolveAuth(auth: AuthOptions, who: Who): Promise<ResolvedAuth> {
  const fail = (reason: AuthFailureReason, methods: string[], detail?: string): never => {
    throw new AuthenticationError({ ...who, reason, methods, ...(detail ? { detail } : {}) });
  };
  const resolved: ResolvedAuth = { methods: [] };

  const keyPath = auth.keyFile ?? (auth.keyEnv !== undefined ? process.env[auth.keyEnv] : undefined);
  if (auth.keyFile === undefined && auth.keyEnv !== undefined && !keyPath) {
    fail('key-unreadable', [], `$${auth.keyEnv} is not set`);
  }
  if (keyPath) {
    resolved.methods.push(`publickey (${keyPath})`);
    const data = await readFile(keyPath).catch((err: NodeJS.ErrnoException) =>
      fail('key-unreadable', resolved.methods, `${keyPath}: ${err.code ?? err.message}`),
    );
    const passphrase = auth.passphraseEnv !== undefined ? process.env[auth.passphraseEnv] : undefined;
    if (auth.passphraseEnv !== undefined && passphrase === undefined) {
      fail('passphrase-needed', resolved.methods, `$${auth.passphraseEnv} is not set`);
    }
    const parsed = ssh2.utils.parseKey(data, passphrase);
    if (parsed instanceof Error) {
      // ssh2's parse errors describe the format ("no passphrase given", "bad decrypt"), never the key.
      const reason = /no passphrase/i.test(parsed.message) ? 'passphrase-needed' : 'key-invalid';
      fail(reason, resolved.methods, `${keyPath}: ${parsed.message}`);
    }
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    if (!key?.isPrivateKey()) fail('key-invalid', resolved.methods, `${keyPath} holds no private key`);
    resolved.privateKey = data;
    if (passphrase !== undefined) resolved.passphrase = passphrase;
  }

  if (auth.agent !== undefined) {
    const socket = auth.agent === true ? process.env.SSH_AUTH_SOCK : auth.agent;
    resolved.methods.push(`agent (${socket ?? '$SSH_AUTH_SOCK'})`);
    const isSocket = socket ? await stat(socket).then((s) => s.isSocket(), () => false) : false;
    if (!socket || !isSocket) fail('agent-unavailable', resolved.methods, socket ? `${socket} is not a socket` : undefined);
    resolved.agent = socket;
  }

  if (resolved.methods.length === 0) fail('no-method', []);
  return resolved;
}
