import { defineConfig } from 'vitest/config';

// The two boot tests spend most of their time in guests under software emulation, each on a boot lab
// of its own (state directory and ports): they run side by side, first. Every other file runs after
// them, one at a time, since the lab tests share one set of namespaces and loop devices.
const BIOS_BOOT_TEST = 'test/replication/disks-boot.test.ts';
const UEFI_BOOT_TEST = 'test/replication/disks-boot-uefi.test.ts';

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 600_000,
    projects: [
      {
        extends: true,
        test: { name: 'boot-bios', include: [BIOS_BOOT_TEST], maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      {
        extends: true,
        test: {
          name: 'boot-uefi',
          include: [UEFI_BOOT_TEST],
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
          env: { RMM_BOOT_DIR: '/var/tmp/rmm-boot-uefi', RMM_BOOT_ORIGIN_PORT: '2241', RMM_BOOT_LANDING_PORT: '2242', RMM_BOOT_REPLICA_PORT: '2243' },
        },
      },
      {
        extends: true,
        test: { name: 'rest', include: ['test/**/*.test.ts'], exclude: [BIOS_BOOT_TEST, UEFI_BOOT_TEST], fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
