import { describe, expect, it } from 'vitest';
import { installCommand } from '../../src/observe/packages.js';

describe('installCommand', () => {
  it('uses each family’s package manager, non-interactively', () => {
    expect(installCommand('debian', 'rsync')).toEqual(['env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get', 'install', '-y', '-q', 'rsync']);
    expect(installCommand('rocky rhel centos fedora', 'rsync')?.[0]).toBe('sh');
    expect(installCommand('opensuse-leap suse', 'rsync')).toEqual(['zypper', '--non-interactive', 'install', 'rsync']);
    expect(installCommand('plan9', 'rsync')).toBeUndefined();
  });
});
