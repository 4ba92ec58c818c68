/**
 * SSH ciphers in rmm's order of preference, for every connection and for the origin's own ssh in a
 * direct copy. AES-GCM first: with AES-NI it is the fastest (measured ~25% over ctr and chacha20
 * on the lab).
 */
export const DEFAULT_CIPHERS: readonly string[] = [
  'aes128-gcm@openssh.com',
  'aes256-gcm@openssh.com',
  'aes128-ctr',
  'aes256-ctr',
  'chacha20-poly1305@openssh.com',
];
