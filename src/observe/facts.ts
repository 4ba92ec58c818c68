/** What rmm knows about an origin server after `discover`: read-only facts, no judgement. */
export interface OriginFacts {
  readonly hostname: string;
  readonly machineId: string;
  readonly os: { readonly id: string; readonly versionId: string; readonly prettyName: string };
  readonly kernel: string;
  readonly arch: string;
  /** Filesystems mounted at or below the origin's root, root first. */
  readonly filesystems: readonly Filesystem[];
  /** Every mount point at or below the origin's root, of any type (proc, tmpfs, bind mounts too). */
  readonly mountPoints: readonly string[];
  readonly blockDevices: readonly BlockDevice[];
  readonly logicalVolumes: readonly LogicalVolume[];
  /** Tools rmm may need, and whether each is on the PATH of the (sudo) shell. */
  readonly tools: Readonly<Record<string, boolean>>;
  /** Network configuration files found (paths relative to the root). */
  readonly networkConfigFiles: readonly string[];
}

export interface Filesystem {
  /** Mount point as the server sees it (e.g. /srv/data). */
  readonly mountPoint: string;
  readonly source: string;
  readonly fsType: string;
  readonly uuid?: string;
  readonly sizeBytes: number;
  readonly availableBytes: number;
  readonly usedBytes: number;
  readonly options: string;
  /** `vg/lv` when the source is an LVM logical volume. */
  readonly lvmName?: string;
}

export interface BlockDevice {
  readonly path: string;
  readonly type: string;
  readonly sizeBytes: number;
  readonly fsType?: string;
  readonly mountPoint?: string;
  readonly parent?: string;
}

export interface LogicalVolume {
  readonly vg: string;
  readonly lv: string;
  readonly path: string;
  readonly sizeBytes: number;
  readonly vgFreeBytes: number;
}

/** Filesystem types that hold files worth copying; everything else (proc, tmpfs, nfs…) is skipped. */
export const LOCAL_FS_TYPES = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'vfat', 'f2fs', 'jfs', 'reiserfs']);
