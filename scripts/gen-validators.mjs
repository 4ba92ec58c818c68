// Generates src/config/schema-validators.ts and src/record/schema-validator.ts, the schemas'
// validators compiled ahead of time by ajv (standalone code), so no run of rmm compiles a schema:
// that took ~0.15 s of every start.
// `--check` fails when a committed file is out of date (the test suite runs it).
import { readFile } from 'node:fs/promises';
import { writeOrCheck } from './generated.mjs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import standalone from 'ajv/dist/standalone/index.js';

const schemaPath = new URL('../schemas/rmm.schema.json', import.meta.url);
const outPath = new URL('../src/config/schema-validators.ts', import.meta.url);
const recordSchemaPath = new URL('../schemas/record.schema.json', import.meta.url);
const recordOutPath = new URL('../src/record/schema-validator.ts', import.meta.url);

/** `strict` makes ajv reject a schema it would misread; `verbose` gives src/config/schema.ts each error's data. */
const AJV_OPTIONS = { allErrors: true, strict: true, verbose: true, allowUnionTypes: true };

export async function generateValidators() {
  const schema = JSON.parse(await readFile(schemaPath, 'utf8'));
  const ajv = new Ajv2020({ ...AJV_OPTIONS, code: { source: true, esm: true } });
  ajv.addSchema(schema);
  // One validator per kind, named by it: the schema's $defs `<Kind>Document`.
  const kinds = Object.keys(schema.$defs).filter((name) => name.endsWith('Document')).map((name) => name.slice(0, -'Document'.length));
  const refs = Object.fromEntries(kinds.map((kind) => [kind, `${schema.$id}#/$defs/${kind}Document`]));
  return moduleText('schemas/rmm.schema.json', standalone.default(ajv, refs));
}

/** One validator, `validateRecord`; it stops at the first error, the one src/record/record.ts reports. */
export async function generateRecordValidator() {
  const schema = JSON.parse(await readFile(recordSchemaPath, 'utf8'));
  const ajv = new Ajv2020({ strict: true, code: { source: true, esm: true } });
  ajv.addSchema(schema);
  return moduleText('schemas/record.schema.json', standalone.default(ajv, { validateRecord: schema.$id }));
}

function moduleText(schemaFile, code) {
  return [
    `/* Generated from ${schemaFile} by scripts/gen-validators.mjs. Do not edit. */`,
    '// @ts-nocheck',
    // ajv's ESM output still loads its runtime helpers with require().
    "import { createRequire } from 'node:module';",
    'const require = createRequire(import.meta.url);',
    code.replace(/^"use strict";/, ''),
    '',
  ].join('\n');
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  const command = 'npm run gen:validators';
  await writeOrCheck(outPath, await generateValidators(), { what: 'src/config/schema-validators.ts', command });
  await writeOrCheck(recordOutPath, await generateRecordValidator(), { what: 'src/record/schema-validator.ts', command });
}
