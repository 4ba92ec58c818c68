import { spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { keyOptions } from '../../src/sync/channel.js';
import { forcedCommand, GATE, GateError, gateFolder, printedCommand, rsyncServerLine } from '../../src/sync/gate.js';
import { shellJoin } from '../../src/transport/quote.js';

const GATE_CMD = forcedCommand(gateFolder('web-01', 'mir2k3abc123'));

describe('the one-run key', () => {
  it('runs only its gate, and expires by itself a week on where the target sshd reads expiry-time in UTC (OpenSSH 9.1 and later)', () => {
    const now = new Date('2026-12-06T09:05:07.123Z');
    const forced = 'restrict,command="/bin/sh /run/rmm-gate.web-01.mir2k3abc123/gate"';
    expect(keyOptions('OpenSSH_9.2p1 Debian-2+deb12u3', now, GATE_CMD)).toBe(`${forced},expiry-time="20261213090507Z"`);
    expect(keyOptions('OpenSSH_9.1p1', now, GATE_CMD)).toBe(`${forced},expiry-time="20261213090507Z"`);
    expect(keyOptions('OpenSSH_10.0p2', now, GATE_CMD)).toBe(`${forced},expiry-time="20261213090507Z"`);
    // 8.2 to 9.0 skip a key whose time ends in Z.
    expect(keyOptions('OpenSSH_8.9p1 Ubuntu-3', now, GATE_CMD)).toBe(forced);
    expect(keyOptions('OpenSSH_9.0p1', now, GATE_CMD)).toBe(forced);
    expect(keyOptions('OpenSSH_7.4', now, GATE_CMD)).toBe(forced);
    expect(keyOptions('OpenSSH_8.1p1', now, GATE_CMD)).toBe(forced);
    expect(keyOptions(undefined, now, GATE_CMD)).toBe(forced);
  });

  it('never writes a forced command that authorized_keys would read differently', () => {
    expect(() => keyOptions(undefined, new Date(), '/bin/sh "x"')).toThrow(RangeError);
    expect(() => keyOptions(undefined, new Date(), '/bin/sh x\\')).toThrow(RangeError);
    expect(() => forcedCommand('/run/rmm gate')).toThrow(RangeError);
  });
});

describe("the one-run key's gate", () => {
  const ALLOWED = [
    shellJoin(['sudo', '-n', 'tar', '-x', '-b', '2048', '--xattrs-include=*', '-C', '/srv/replicas/web 01/points/.partial', '-f', '-']),
    'sudo -n rsync --server -lHogDtpAXrxSe.iLsfxCIvu --timeout=300 . /srv/replicas/web\\ 01/points/.partial/',
  ];
  const dir = mkdtempSync(path.join(tmpdir(), 'rmm-gate-'));
  writeFileSync(path.join(dir, 'gate'), GATE);
  writeFileSync(path.join(dir, 'allowed'), ALLOWED.map((l) => `${l}\n`).join(''));
  mkdirSync(path.join(dir, 'used'));
  // The gate runs what it allows; `sudo` here is a stand-in that says what it was asked.
  writeFileSync(path.join(dir, 'sudo'), '#!/bin/sh\nprintf "ran:"; printf " [%s]" "$@"; echo; exec cat\n', { mode: 0o755 });
  const ask = (command: string | undefined) => {
    const env = { PATH: `${dir}:/usr/bin:/bin`, ...(command === undefined ? {} : { SSH_ORIGINAL_COMMAND: command }) };
    return spawnSync('/bin/sh', [path.join(dir, 'gate')], { env, encoding: 'utf8', input: 'the archive\n' });
  };

  it('runs an allowed line, as the shell reads it, on the copy\'s stdin', () => {
    const tar = ask(ALLOWED[0]);
    expect(tar.status).toBe(0);
    // Its stdin is the copy's: the gate's list is not in it.
    expect(tar.stdout).toBe('ran: [-n] [tar] [-x] [-b] [2048] [--xattrs-include=*] [-C] [/srv/replicas/web 01/points/.partial] [-f] [-]\nthe archive\n');
    expect(ask(ALLOWED[1]).stdout).toContain('[/srv/replicas/web 01/points/.partial/]');
  });

  it('refuses anything else, byte for byte, and says so on stderr', () => {
    for (const command of [
      'id',
      '',
      `${ALLOWED[0]}; id`,
      `${ALLOWED[0]} `,
      ` ${ALLOWED[0]}`,
      `id\n${ALLOWED[0]}`,
      `${ALLOWED[0]}\nid`,
      'sudo -n rsync --server -lHogDtpAXrxSe.iLsfxCIvu --timeout=300 . /tmp/',
      'sudo -n tar -x -C / -f -',
      'sh -c id',
    ]) {
      const r = ask(command);
      expect(r.status, command).toBe(1);
      expect(r.stdout, command).toBe('');
      expect(r.stderr, command).toMatch(/^rmm: refused: the one-run key of this copy runs only its receiving commands/);
    }
    expect(ask(undefined).status).toBe(1); // a login without a command: a shell
    expect(readFileSync(path.join(dir, 'allowed'), 'utf8')).toBe(ALLOWED.map((l) => `${l}\n`).join(''));
  });

  it('runs each allowed line once: a second session cannot run a copy again over the first', () => {
    // The first test ran both lines.
    const again = ask(ALLOWED[0]);
    expect(again.status).toBe(1);
    expect(again.stdout).toBe('');
    // rmm allows a line again for each copy it starts.
    appendFileSync(path.join(dir, 'allowed'), `${ALLOWED[0]}\n`);
    expect(ask(ALLOWED[0]).status).toBe(0);
    expect(ask(ALLOWED[0]).status).toBe(1);
  });
});

describe('the rsync server command the one-run key allows', () => {
  const dest = '/srv/replicas/web 01/points/.partial/';
  const argv = [
    'rsync', '-aHAXS', '--numeric-ids', '--one-file-system', '--delete', '--stats', '--info=progress2', '--timeout=300', '--bwlimit=100',
    '--link-dest=/srv/replicas/web 01/points/20261206T000000Z/', '-e', 'ssh -i /run/.rmm-web-01.x/key', '--rsync-path', 'sudo -n rsync', '--mkpath',
    '/run/.rmm-snap/', `rmm@198.18.4.20:${dest}`,
  ];
  // What rsync 3.2.7 gave its remote shell for argv (lab, printed by RSH_PRINTER).
  const printed = 'rmm-rsh-args\0-l\0rmm\x00198.18.4.20\0sudo -n rsync\0--server\0-lHogDtpAXrxSe.iLsfxCIvu\0--timeout=300\0--bwlimit=100\0--delete\0--stats\0--numeric-ids\0--link-dest\0/srv/replicas/web\\ 01/points/20261206T000000Z/\0--mkpath\0.\0/srv/replicas/web\\ 01/points/.partial/\nrsync: connection unexpectedly closed (0 bytes received so far) [sender]\n';
  const reported = printedCommand(printed)!;
  const line = (words: string[]) => rsyncServerLine(words, argv, dest);

  it("is the line the origin's rsync sends, when every word is one rmm's options give", () => {
    expect(reported[0]).toBe('sudo -n rsync');
    expect(line(reported)).toBe(
      'sudo -n rsync --server -lHogDtpAXrxSe.iLsfxCIvu --timeout=300 --bwlimit=100 --delete --stats --numeric-ids --link-dest /srv/replicas/web\\ 01/points/20261206T000000Z/ --mkpath . /srv/replicas/web\\ 01/points/.partial/',
    );
    expect(line(reported.map((w) => (w === '--link-dest' ? '--link-dest=/srv/replicas/web\\ 01/points/20261206T000000Z/' : w)).filter((w, i) => reported[i - 1] !== '--link-dest'))).toContain('--link-dest=');
    // An rsync older than 3.2.4 escapes nothing.
    expect(rsyncServerLine(['rsync', '--server', '-logDtpre.iLsf', '.', '/srv/r/'], ['rsync', '-a', '-e', 'ssh', 'h:/srv/r/'], '/srv/r/')).toBe('rsync --server -logDtpre.iLsf . /srv/r/');
  });

  it('refuses a command a compromised origin would rather run', () => {
    const swap = (from: string, to: string) => reported.map((w) => (w === from ? to : w));
    const refused = [
      ['sh', '-c', 'id'],
      swap('sudo -n rsync', 'sudo -n sh'),
      swap('--server', '--daemon'),
      [...reported.slice(0, 2), '--sender', ...reported.slice(2)], // reads instead of writes
      swap('-lHogDtpAXrxSe.iLsfxCIvu', '-lHogDtpAXrxSKe.iLsfxCIvu'), // follows a symlink out of the copy
      swap('-lHogDtpAXrxSe.iLsfxCIvu', '-lHogDtpAXrxSTe.iLsfxCIvu'),
      swap('--stats', '--log-file=/etc/cron.d/x'),
      swap('--stats', '--temp-dir=/etc'),
      swap('--timeout=300', '--timeout=0'),
      swap('/srv/replicas/web\\ 01/points/20261206T000000Z/', '/'),
      swap('/srv/replicas/web\\ 01/points/.partial/', '/etc/'),
      swap('/srv/replicas/web\\ 01/points/.partial/', '/srv/replicas/web\\ 01/points/.partial/../../../../etc/'),
      swap('/srv/replicas/web\\ 01/points/.partial/', '/srv/replicas/web 01/points/.partial/'), // two words to sh
      swap('/srv/replicas/web\\ 01/points/.partial/', '/srv/replicas/web\\ 01/points/.partial/;id'),
      swap('/srv/replicas/web\\ 01/points/.partial/', '$(id)'),
      swap('--mkpath', '`id`'),
      [...reported, 'extra'],
      reported.slice(0, 3),
    ];
    for (const words of refused) expect(() => line(words), words.join(' ')).toThrow(GateError);
  });

  it("allows a disks replica's delayed updates only when rmm's own rsync was given them", () => {
    const delayed = [...reported.slice(0, 3), '--delay-updates', '--delete-delay', ...reported.slice(3)];
    expect(() => line(delayed)).toThrow(GateError);
    expect(rsyncServerLine(delayed, [...argv, '--delay-updates', '--delete-delay'], dest)).toContain(' --delay-updates --delete-delay ');
    // In place only into a copy rmm made a snapshot of (its own rsync given --inplace), never otherwise.
    const inPlace = [...reported.slice(0, 3), '--inplace', ...reported.slice(3)];
    expect(() => rsyncServerLine(inPlace, argv, dest)).toThrow(GateError);
    expect(rsyncServerLine(inPlace, [...argv, '--inplace'], dest)).toContain(' --inplace ');
    const deleteExcluded = [...reported.slice(0, 3), '--delete-excluded', ...reported.slice(3)];
    expect(() => rsyncServerLine(deleteExcluded, argv, dest)).toThrow(GateError);
    expect(rsyncServerLine(deleteExcluded, [...argv, '--delete-excluded'], dest)).toContain(' --delete-excluded ');
  });

  it("allows -R and -I only to a copy of listed entries (rmm's own rsync given --files-from)", () => {
    const listed = reported.map((w) => (w === '-lHogDtpAXrxSe.iLsfxCIvu' ? '-lHogDtpAXRIxSe.iLsfxCIvu' : w)).filter((w) => w !== '--delete');
    expect(() => line(listed)).toThrow(GateError);
    expect(rsyncServerLine(listed, [...argv, '--files-from=/run/.rmm-web-01.x/files-from-_', '--from0', '--ignore-times'], dest)).toContain(' -lHogDtpAXRIxSe.iLsfxCIvu ');
    // The xattr filters rmm hands the receiver, as rsync 3.2.7 escapes them, only when given.
    const filtered = [...listed.slice(0, -2), '--filter=-x\\ trusted.SGI_ACL_\\*', ...listed.slice(-2)];
    const listArgv = [...argv, '--files-from=/run/x', '--from0'];
    expect(() => rsyncServerLine(filtered, listArgv, dest)).toThrow(GateError);
    expect(rsyncServerLine(filtered, [...listArgv, '-M--filter=-x trusted.SGI_ACL_*'], dest)).toContain(' --filter=-x\\ trusted.SGI_ACL_\\* ');
    expect(() => rsyncServerLine([...listed.slice(0, -2), '--filter=+\\ /etc', ...listed.slice(-2)], [...listArgv, '-M--filter=+ /etc'], dest)).toThrow(GateError);
    // Still no other flag with it.
    const follow = listed.map((w) => (w === '-lHogDtpAXRIxSe.iLsfxCIvu' ? '-lHogDtpAXRIKxSe.iLsfxCIvu' : w));
    expect(() => rsyncServerLine(follow, [...argv, '--files-from=/run/x', '--from0'], dest)).toThrow(GateError);
  });

  it('finds nothing where the remote shell printed nothing', () => {
    expect(printedCommand('rsync: command not found\n')).toBeUndefined();
  });
});
