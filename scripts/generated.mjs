// The generators' shared ending: write the generated text, or with `--check` fail when the
// committed file differs from it (the test suite runs each generator with --check).
import { readFile, writeFile } from 'node:fs/promises';

/** `what` names the file in the message; `command` regenerates it. */
export async function writeOrCheck(url, generated, { what, command }) {
  if (!process.argv.includes('--check')) {
    await writeFile(url, generated);
    return;
  }
  const committed = await readFile(url, 'utf8').catch(() => '');
  if (committed !== generated) {
    console.error(`${what} is out of date: run ${command}`);
    process.exit(1);
  }
}
