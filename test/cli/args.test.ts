import { describe, expect, it } from 'vitest';
import { rmm } from '../support/cli.js';

describe('the command line', () => {
  it('refuses a stray argument with usage and exit 2, before reading any file', async () => {
    const { code, err } = await rmm('plan', '-f', 'examples/migration-p2v.yaml', 'extra-arg');
    expect(code).toBe(2);
    expect(err).toContain("rmm plan: unexpected argument 'extra-arg' (files go after -f)");
    expect(err).toContain('Usage: rmm plan');
    expect((await rmm('validate', '-f', 'examples/migration-p2v.yaml', 'a', 'b')).err).toContain("unexpected arguments 'a' 'b'");
    expect((await rmm('validate', '-f', 'examples/migration-p2v.yaml')).code).toBe(0);
  });
});
