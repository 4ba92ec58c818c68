import { RmmError } from '../errors.js';

export class SnapshotError extends RmmError {}

export class InsufficientSnapshotSpaceError extends SnapshotError {
  constructor(
    readonly facts: { host: string; mountPoint: string; freePercent: number; requiredPercent: number; availableBytes: number; sizeBytes: number },
  ) {
    super(
      'snapshot.space',
      `${facts.host}: ${facts.mountPoint} has ${facts.freePercent.toFixed(1)}% free (${facts.availableBytes} of ${facts.sizeBytes} bytes); ` +
        `a snapshot needs at least ${facts.requiredPercent}% (policy snapshot.minFreePercent). Free some space or lower the setting.`,
    );
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), ...this.facts };
  }
}
