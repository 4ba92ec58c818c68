import { readFileSync } from 'node:fs';
import { EXIT, OUTPUT_HELP, writeJson, type Command } from '../command.js';

export function rmmVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export const versionCommand: Command = {
  name: 'version',
  summary: 'print the version of rmm and of the configuration language',
  usage: 'rmm version [-o json]',
  details: OUTPUT_HELP,
  options: {},
  async run(ctx) {
    const facts = { rmm: rmmVersion(), apiVersion: 'rmm/v1', node: process.version };
    if (ctx.output === 'json') writeJson(ctx, { formatVersion: 1, ...facts });
    else ctx.stdout.write(`rmm ${facts.rmm} (configuration ${facts.apiVersion}, node ${facts.node})\n`);
    return EXIT.ok;
  },
};
