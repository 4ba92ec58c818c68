export { shellJoin, shellQuote } from './quote.js';
export {
  appendKnownHost,
  checkHostKey,
  fingerprint,
  parseKnownHosts,
  verifyHostKey,
  type HostKeyCheck,
  type HostKeyFingerprint,
  type KnownHostEntry,
} from './known-hosts.js';
export * from './errors.js';
export { exitCodeMeaning } from './exit-codes.js';
export type { AuthOptions } from './auth.js';
export {
  DEFAULT_CIPHERS,
  openSession,
  SshSession,
  type CommandOptions,
  type RemoteHost,
  type ReverseTunnel,
  type ExecOptions,
  type ExecResult,
  type ExitStatus,
  type RemoteProcess,
  type SessionInfo,
  type SessionOptions,
} from './session.js';
export { createSessionPool, type SessionPool } from './pool.js';
export { HEARTBEAT_MS, keepAlive, RMM_ALIVE, seconds } from './heartbeat.js';
export { HostWrapper } from './host.js';
