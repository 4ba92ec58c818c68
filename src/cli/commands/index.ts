import type { Command } from '../command.js';
import { applyCommand } from './apply.js';
import { completionCommand } from './completion.js';
import { discoverCommand } from './discover.js';
import { fixupCommand } from './fixup.js';
import { watchCommand } from './watch.js';
import { planCommand } from './plan.js';
import { repairCommand } from './repair.js';
import { statusCommand } from './status.js';
import { unlockCommand } from './unlock.js';
import { validateCommand } from './validate.js';
import { versionCommand } from './version.js';

export const commands: readonly Command[] = [validateCommand, planCommand, applyCommand, watchCommand, statusCommand, discoverCommand, unlockCommand, repairCommand, fixupCommand, versionCommand, completionCommand];
