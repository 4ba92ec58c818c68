// Generates src/config/schema-validators.ts, the schema's validators compiled ahead of time by ajv
// (standalone code), so no run of rmm compiles the schema: that took ~0.15 s of every start.
// `node scripts/gen-validators.mjs --check` fails when the committed file is out of date (the test suite runs it).
import { readFile, writeFile } from 'node:fs/promises';
import { Ajv2020 } from 'ajv/dist/2020.js';
import standalone from 'ajv/dist/standalone/index.js';

const schemaPath = new URL('../schemas/rmm.schema.json', import.meta.url);
const outPath = new URL('../src/config/schema-validators.ts', import.meta.url);
const KINDS = ['Defaults', 'Origin', 'Environment', 'Policy', 'Replica'];

/** The same options src/config/schema.ts documents; `strict` makes ajv reject a schema it would misread. */
export const AJV_OPTIONS = { allErrors: true, strict: true, verbose: true, allowUnionTypes: true };

export async function generateValidators() {
  const schema = JSON.parse(await readFile(schemaPath, 'utf8'));
  const ajv = new Ajv2020({ ...AJV_OPTIONS, code: { source: true, esm: true } });
  ajv.addSchema(schema);
  const refs = Object.fromEntries(KINDS.map((kind) => [kind, `${schema.$id}#/$defs/${kind}Document`]));
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
  const generated = await generateValidators();
  if (process.argv.includes('--check')) {
    const committed = await readFile(outPath, 'utf8').catch(() => '');
    if (committed !== generated) {
      console.error('src/config/schema-validators.ts is out of date: run npm run gen:validators');
      process.exit(1);
    }
  } else {
    await writeFile(outPath, generated);
  }
}
