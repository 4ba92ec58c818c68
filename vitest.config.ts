import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 600_000,
    // Lab tests share one set of namespaces and loop devices: run files one at a time.
    fileParallelism: false,
  },
});
