import { describe, expect, it } from 'vitest';
import { loadSources } from '../../src/config/load.js';
import { privilegeProblems } from '../../src/plan/privilege.js';

function replicaWith(origin: string, target: string) {
  const text = `
apiVersion: rmm/v1
kind: Origin
metadata: { name: web }
spec: { address: 192.0.2.10, connection: ${origin} }
---
apiVersion: rmm/v1
kind: Environment
metadata: { name: dr }
spec: { hosts: [{ name: t, address: 192.0.2.20, path: /srv/replicas, connection: ${target} }] }
---
apiVersion: rmm/v1
kind: Replica
metadata: { name: web-dr }
spec: { origin: web, environment: dr }
`;
  const { spec, diagnostics } = loadSources([{ name: 'privilege.yaml', baseDir: '/tmp', text }]);
  if (!spec) throw new Error(diagnostics.map((d) => d.message).join('\n'));
  return spec.replicas[0]!;
}

describe('root on both hosts: root, or sudo when the spec allows it, never sudo on its own', () => {
  it('lets root and a user with connection.sudo through', () => {
    expect(privilegeProblems(replicaWith('{ user: root }', '{ user: rmm, sudo: true }'))).toEqual([]);
    expect(privilegeProblems(replicaWith('{}', '{}'))).toEqual([]); // the default user is root
  });

  it('names each host whose login is not root without sudo, what rmm needs there and what to set', () => {
    const problems = privilegeProblems(replicaWith('{ user: backup }', '{ user: rmm, sudo: false }'));
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^origin web \(192\.0\.2\.10\): rmm logs in as backup, who is not root, and connection\.sudo is false; rmm needs root there to snapshot its filesystems and read every file: set connection\.sudo: true \(with passwordless sudo for backup: `backup ALL=\(ALL\) NOPASSWD: ALL`\) or log in as root$/);
    expect(problems[1]).toMatch(/^target t \(192\.0\.2\.20\): rmm logs in as rmm, .* keep the replica's record/);
  });
});
