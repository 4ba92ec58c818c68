import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { lateStream, type TarStream } from '../../src/sync/copy.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('a tar stream opened on its first entry', () => {
  it('is done at once when never opened', async () => {
    const s = lateStream(() => Promise.reject(new Error('never called')), () => {});
    s.names.end();
    await expect(s.done).resolves.toBeUndefined();
  });

  it('hands over the names that waited, then the rest', async () => {
    const sink = new PassThrough();
    let end!: () => void;
    const opened: TarStream = { names: sink, done: new Promise<void>((r) => (end = r)) };
    const s = lateStream(async () => opened, () => {});
    s.names.write('./a\0');
    s.start();
    s.names.end('./b\0');
    await tick();
    expect(sink.read()?.toString()).toBe('./a\0./b\0');
    end();
    await expect(s.done).resolves.toBeUndefined();
  });

  it('reports a failure to open, and one of its tar later, so the copy ends instead of waiting', async () => {
    const failures: unknown[] = [];
    const refused = lateStream(() => Promise.reject(new Error('no channel')), (err) => failures.push(err));
    refused.start();
    await expect(refused.done).rejects.toThrow('no channel');
    let die!: (err: Error) => void;
    const dying = lateStream(async () => ({ names: new PassThrough(), done: new Promise((_, reject) => (die = reject)) }), (err) => failures.push(err));
    dying.start();
    await tick();
    die(new Error('tar exited 2'));
    await expect(dying.done).rejects.toThrow('tar exited 2');
    expect(failures.map((e) => (e as Error).message)).toEqual(['no channel', 'tar exited 2']);
  });

  it("closes its tar's stdin when the copy failed while it opened", async () => {
    const sink = new PassThrough();
    let open!: (s: TarStream) => void;
    const s = lateStream(() => new Promise<TarStream>((r) => (open = r)), () => {});
    s.start();
    s.names.destroy();
    open({ names: sink, done: Promise.resolve() });
    await s.done;
    expect(sink.destroyed).toBe(true);
  });
});
