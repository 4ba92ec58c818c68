import { RmmError } from '../errors.js';

export class SnapshotError extends RmmError {}

export class InsufficientSnapshotSpaceError extends SnapshotError {
  constructor(
    readonly facts: {
      host: string;
      mountPoint: string;
      /** Set for LVM: the volume group whose free extents hold the snapshot. */
      volumeGroup?: string;
      freePercent: number;
      requiredPercent: number;
      availableBytes: number;
      sizeBytes: number;
    },
  ) {
    const where = facts.volumeGroup
      ? `volume group ${facts.volumeGroup} of ${facts.mountPoint} has ${facts.availableBytes} bytes free, ${facts.freePercent.toFixed(1)}% of the volume's ${facts.sizeBytes} bytes`
      : `${facts.mountPoint} has ${facts.freePercent.toFixed(1)}% free (${facts.availableBytes} of ${facts.sizeBytes} bytes)`;
    super(
      'snapshot.space',
      `${facts.host}: ${where}; a snapshot needs at least ${facts.requiredPercent}% (policy snapshot.minFreePercent). Free some space or lower the setting.`,
    );
  }

  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), ...this.facts };
  }
}
