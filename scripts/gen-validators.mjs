// Generates src/config/schema-validators.ts, the schema's validators compiled ahead of time by ajv
// (standalone code), so no run of rmm compiles the schema: that took ~0.15 s of every start.
// `--check` fails when the committed file is out of date (the test suite runs it).
import { readFile } from 'node:fs/promises';
import { writeOrCheck } from './generated.mjs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import standalone from 'ajv/dist/standalone/index.js';

const schemaPath = new URL('../schemas/rmm.schema.json', import.meta.url);
const outPath = new URL('../src/config/schema-validators.ts', import.meta.url);

/** `strict` makes ajv reject a schema it would misread; `verbose` gives src/config/schema.ts each error's data. */
const AJV_OPTIONS = { allErrors: true, strict: true, verbose: true, allowUnionTypes: true };

export async function generateValidators() {
  const schema = JSON.parse(await readFile(schemaPath, 'utf8'));
  const ajv = new Ajv2020({ ...AJV_OPTIONS, code: { source: true, esm: true } });
  ajv.addSchema(schema);
  // One validator per kind, named by it: the schema's $defs `<Kind>Document`.
  const kinds = Object.keys(schema.$defs).filter((name) => name.endsWith('Document')).map((name) => name.slice(0, -'Document'.length));
  const refs = Object.fromEntries(kinds.map((kind) => [kind, `${schema.$id}#/$defs/${kind}Document`]));
  // ajv's ESM output still loads its two runtime helpers with require().
  const code = standalone.default(ajv, refs).replace(/^"use strict";/, '');
  return [
    '/* Generated from schemas/rmm.schema.json by scripts/gen-validators.mjs. Do not edit. */',
    '// @ts-nocheck',
    "import { createRequire } from 'node:module';",
    'const require = createRequire(import.meta.url);',
    code,
    '',
  ].join('\n');
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  await writeOrCheck(outPath, await generateValidators(), { what: 'src/config/schema-validators.ts', command: 'npm run gen:validators' });
}
