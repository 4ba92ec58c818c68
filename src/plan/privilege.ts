import type { Endpoint, Replica } from '../config/spec.js';

/**
 * rmm needs root on both hosts of a replica: on the origin to snapshot or freeze its filesystems
 * and read every file, on the target to write the copy with its owners, modes and attributes and
 * to keep the replica's record. A login user that is not root gets it only through `sudo -n`, and
 * only when the spec says so (`connection.sudo: true`): rmm never uses sudo on its own. Pure.
 */
export function privilegeProblems(replica: Replica): string[] {
  const problems: string[] = [];
  const check = (side: 'origin' | 'target', endpoint: Endpoint, needs: string) => {
    if (endpoint.user === 'root' || endpoint.sudo) return;
    problems.push(
      `${side} ${endpoint.name} (${endpoint.address}): rmm logs in as ${endpoint.user}, who is not root, and connection.sudo is false; ` +
        `rmm needs root there ${needs}: set connection.sudo: true (with passwordless sudo for ${endpoint.user}: \`${endpoint.user} ALL=(ALL) NOPASSWD: ALL\`) or log in as root`,
    );
  };
  check('origin', replica.origin.endpoint, 'to snapshot its filesystems and read every file');
  check('target', replica.target.endpoint, "to write the copy with its owners and modes and keep the replica's record");
  return problems;
}
