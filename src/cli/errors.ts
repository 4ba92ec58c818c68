import { InputError } from '../errors.js';

/** The command line itself is wrong: shown with the command's usage. Exit code 2. */
export class UsageError extends InputError {
  constructor(message: string) {
    super('cli.usage', message);
  }
}
