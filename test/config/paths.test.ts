import { describe, expect, it } from 'vitest';
import { landingFolderProblem, normalizeFolder } from '../../src/config/paths.js';

describe('landingFolderProblem', () => {
  it.each(['/srv/replicas', '/srv//replicas/', '/var/lib/rmm', '/home/replicas', '/root/replicas', '/mnt/dr', '/data', '/backup/images', '/usrdata', '/etcetera'])(
    'allows %s',
    (folder) => expect(landingFolderProblem(folder, 'replicas')).toBeUndefined(),
  );

  it.each([
    ['/srv/replicas/../../etc', "'/srv/replicas/../../etc' has a '..' component; write the folder itself, without '.' or '..'"],
    ['/srv/./replicas', "'/srv/./replicas' has a '.' component; write the folder itself, without '.' or '..'"],
    ['/srv/re\x7fplicas', "'/srv/re\x7fplicas' holds a control character (0x7f); a folder name must be printable"],
    ['/srv/a\nb', "'/srv/a\\nb' holds a control character (0x0a); a folder name must be printable"],
    ['srv/replicas', "'srv/replicas' is not an absolute path"],
    ['//', "'/' would put replicas over the landing host's own root; use a folder such as /srv/replicas"],
    ['/etc/', "'/etc/' is a system folder of the landing host; use a folder such as /srv/replicas"],
    ['/var', "'/var' is a system folder of the landing host; use a folder such as /srv/replicas"],
    ['/lib64', "'/lib64' is a system folder of the landing host; use a folder such as /srv/replicas"],
    ['/proc/1/root', "'/proc/1/root' is inside /proc, a system folder of the landing host; use a folder such as /srv/replicas"],
    ['/lib/replicas', "'/lib/replicas' is inside /lib, a system folder of the landing host; use a folder such as /srv/replicas"],
  ])('refuses %j', (folder, message) => expect(landingFolderProblem(folder, 'replicas')).toBe(message));
});

describe('normalizeFolder', () => {
  it.each([
    ['/srv//replicas/', '/srv/replicas'],
    ['//srv/replicas//', '/srv/replicas'],
    ['/', '/'],
    ['///', '/'],
  ])('%s is %s', (folder, normal) => expect(normalizeFolder(folder)).toBe(normal));
});
