import type { Filesystem, OriginFacts } from '../../src/observe/facts.js';

export function filesystem(mountPoint: string, fsType: string, extra: Partial<Filesystem> = {}): Filesystem {
  return {
    mountPoint,
    source: `/dev/${mountPoint === '/' ? 'sda1' : mountPoint.replace(/\W/g, '')}`,
    fsType,
    sizeBytes: 100 * 1024 ** 3,
    availableBytes: 50 * 1024 ** 3,
    usedBytes: 50 * 1024 ** 3,
    options: 'rw',
    ...extra,
  };
}

export function originFacts(filesystems: Filesystem[], tools: Record<string, boolean> = {}): OriginFacts {
  return {
    hostname: 'web-01',
    machineId: '0123456789abcdef0123456789abcdef',
    os: { id: 'debian', versionId: '12', prettyName: 'Debian GNU/Linux 12 (bookworm)' },
    kernel: '6.1.0-18-amd64',
    arch: 'x86_64',
    filesystems,
    mountPoints: filesystems.map((f) => f.mountPoint),
    blockDevices: [],
    logicalVolumes: [],
    tools: { rsync: true, btrfs: true, fsfreeze: true, lvcreate: true, flock: true, ssh: true, 'ssh-keygen': true, ...tools },
    networkConfigFiles: [],
  };
}
