/**
 * rmm's JSON outputs checked against their published schemas (schemas/): the plan, the apply event
 * stream, the status report, a failure. A test that reads rmm's JSON calls these, so every output it sees is one a
 * consumer may rely on.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { expect } from 'vitest';

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
const load = (name: string): ValidateFunction => ajv.compile(JSON.parse(readFileSync(new URL(`../../schemas/${name}`, import.meta.url), 'utf8')) as object);
const applyEvent = load('apply-events.schema.json');
const status = load('status.schema.json');
const plan = load('plan.schema.json'); // after apply-events, whose $defs it uses
const failure = load('error.schema.json');
const watchEvent = load('watch-events.schema.json');
ajv.addSchema(JSON.parse(readFileSync(new URL('../../schemas/outputs.schema.json', import.meta.url), 'utf8')) as object);

/** The commands whose output outputs.schema.json describes, each by a definition of its own. */
export type OutputCommand = 'validate' | 'version' | 'discover' | 'fixup' | 'unlock' | 'repair';

/** `rmm COMMAND -o json`'s standard output (validate, version, discover, fixup, unlock, repair), checked; its value. */
export function expectOutput(command: OutputCommand, stdout: string): Record<string, unknown> {
  const value = JSON.parse(stdout) as Record<string, unknown>;
  expectValid(ajv.getSchema(`urn:rmm:outputs:v1#/$defs/${command}`)!, value, `rmm ${command} -o json`);
  return value;
}

function expectValid(validate: ValidateFunction, value: unknown, what: string): void {
  const ok = validate(value);
  expect(ok, `${what} does not match its schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value).slice(0, 2000)}`).toBe(true);
}

/** `rmm apply -o json`'s standard output: every line an event of the schema, numbered from 0, version first, plan second, summary last. */
export function expectApplyEvents(stdout: string): Record<string, unknown>[] {
  const events = eventLines(stdout, applyEvent, 'event');
  expect(events[1]?.['type']).toBe('plan');
  expect(events.at(-1)?.['type']).toBe('summary');
  expectProgressContract(events);
  return events;
}

/**
 * Progress events: a replica's at most one a second; within a filesystem's copy, bytes, files and
 * percent never go down, never past the filesystem.done event's figures, which a 100% event has.
 */
function expectProgressContract(events: readonly Record<string, unknown>[]): void {
  const lastAt = new Map<string, number>();
  const last = new Map<string, Record<string, unknown>>();
  for (const e of events) {
    const key = `${String(e['replica'])} ${String(e['mountPoint'])}`;
    if (e['type'] === 'progress') {
      const at = Date.parse(String(e['at']));
      const replica = String(e['replica']);
      if (lastAt.has(replica)) expect(at - lastAt.get(replica)!, `progress events of ${replica} less than a second apart`).toBeGreaterThanOrEqual(1000);
      lastAt.set(replica, at);
      const before = last.get(key);
      if (before) {
        expect(before['percent'], `${key}: progress after its final figures`).toBeLessThan(100);
        for (const f of ['bytes', 'files', 'percent']) expect(e[f] as number, `${key}: ${f} went down`).toBeGreaterThanOrEqual(before[f] as number);
      }
      last.set(key, e);
    } else if (e['type'] === 'filesystem.done') {
      const before = last.get(key);
      if (before?.['percent'] === 100) expect([before['bytes'], before['files']], `${key}: final figures`).toEqual([e['bytesTotal'], e['files']]);
      else if (before) {
        expect(before['bytes'] as number).toBeLessThanOrEqual(e['bytesTotal'] as number);
        expect(before['files'] as number).toBeLessThanOrEqual(e['files'] as number);
      }
      last.delete(key);
    }
  }
}

/** `rmm watch -o json`'s standard output so far, checked: every line an event of the schema, numbered from 0, version first; the events. */
export function expectWatchEvents(stdout: string): Record<string, unknown>[] {
  const events = eventLines(stdout, watchEvent, 'watch event');
  expect(events[1]?.['type']).toBe('watch.start');
  expectProgressContract(events);
  return events;
}

/** `rmm plan -o json`'s standard output, checked; the plan. */
export function expectPlan(stdout: string): Record<string, unknown> {
  const value = JSON.parse(stdout) as Record<string, unknown>;
  expectValid(plan, value, 'rmm plan -o json');
  return value;
}

/** What a command that failed under -o json wrote on standard error, checked: one line, one object. */
export function expectError(stderr: string): Record<string, unknown> {
  expect(stderr.trimEnd().split('\n'), stderr).toHaveLength(1);
  const value = JSON.parse(stderr) as Record<string, unknown>;
  expectValid(failure, value, 'a failure under -o json');
  return value;
}

/** An event stream (one JSON object per line): each valid, numbered from 0, the version first. */
function eventLines(stdout: string, validate: ValidateFunction, what: string): Record<string, unknown>[] {
  const events = stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  events.forEach((e, i) => expectValid(validate, e, `${what} ${i}`));
  expect(events.map((e) => e['seq'])).toEqual(events.map((_, i) => i));
  expect(events[0]?.['type']).toBe('version');
  return events;
}

/** `rmm status -o json`'s standard output, checked; its replicas. */
export function expectStatus(stdout: string): Record<string, unknown>[] {
  const report = JSON.parse(stdout) as { replicas: Record<string, unknown>[] };
  expectValid(status, report, 'rmm status -o json');
  return report.replicas;
}
