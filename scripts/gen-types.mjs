// Generates src/config/schema-types.ts from schemas/rmm.schema.json, the single source of truth.
// `node scripts/gen-types.mjs --check` fails when the committed file is out of date (the test suite runs it).
import { readFile } from 'node:fs/promises';
import { writeOrCheck } from './generated.mjs';
import { compile } from 'json-schema-to-typescript';

const schemaPath = new URL('../schemas/rmm.schema.json', import.meta.url);
const outPath = new URL('../src/config/schema-types.ts', import.meta.url);

export async function generateTypes() {
  const schema = JSON.parse(await readFile(schemaPath, 'utf8'));
  // The top-level if/then dispatch is for editors; the per-kind $defs become the types.
  const { allOf: _dispatch, ...forTypes } = schema;
  return compile(forTypes, 'RmmDocumentHeader', {
    bannerComment: '/* Generated from schemas/rmm.schema.json by scripts/gen-types.mjs. Do not edit. */',
    additionalProperties: false,
    unreachableDefinitions: true,
    format: true,
    style: { singleQuote: true, printWidth: 120 },
  });
}

if (process.argv[1] && new URL(import.meta.url).pathname === process.argv[1]) {
  await writeOrCheck(outPath, await generateTypes(), { what: 'src/config/schema-types.ts', command: 'npm run gen:types' });
}
