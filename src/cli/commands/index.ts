import type { Command } from '../command.js';
import { watchCommand } from './pending.js';
import { validateCommand } from './validate.js';
import { versionCommand } from './version.js';

export const commands: readonly Command[] = [validateCommand, watchCommand, versionCommand];
