/**
 * rmm's JSON outputs checked against their published schemas (schemas/): the apply event stream,
 * the status report. A test that reads rmm's JSON calls these, so every output it sees is one a
 * consumer may rely on.
 */
import { readFileSync } from 'node:fs';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { expect } from 'vitest';

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
const load = (name: string): ValidateFunction => ajv.compile(JSON.parse(readFileSync(new URL(`../../schemas/${name}`, import.meta.url), 'utf8')) as object);
const applyEvent = load('apply-events.schema.json');
const status = load('status.schema.json');

function expectValid(validate: ValidateFunction, value: unknown, what: string): void {
  const ok = validate(value);
  expect(ok, `${what} does not match its schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(value).slice(0, 2000)}`).toBe(true);
}

/** `rmm apply -o json`'s standard output: every line an event of the schema, numbered from 0, version first, plan second, summary last. */
export function expectApplyEvents(stdout: string): Record<string, unknown>[] {
  const events = stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  events.forEach((e, i) => expectValid(applyEvent, e, `event ${i}`));
  expect(events.map((e) => e['seq'])).toEqual(events.map((_, i) => i));
  expect(events[0]?.['type']).toBe('version');
  expect(events[1]?.['type']).toBe('plan');
  expect(events.at(-1)?.['type']).toBe('summary');
  return events;
}

/** `rmm status -o json`'s standard output, checked; its replicas. */
export function expectStatus(stdout: string): Record<string, unknown>[] {
  const report = JSON.parse(stdout) as { replicas: Record<string, unknown>[] };
  expectValid(status, report, 'rmm status -o json');
  return report.replicas;
}
