import { describe, expect, it } from 'vitest';
import { parseKernels } from '../../src/apply/kernels.js';

describe('parseKernels', () => {
  it('gives the versions of vmlinuz-* lines, sorted, once each', () => {
    expect(parseKernels('vmlinuz-6.1.0-2-amd64\nvmlinuz-6.1.0-1-amd64\nvmlinuz-6.1.0-1-amd64\n')).toEqual(['6.1.0-1-amd64', '6.1.0-2-amd64']);
    expect(parseKernels('vmlinuz-5.14.0-362.8.1.el9_3.x86_64\n')).toEqual(['5.14.0-362.8.1.el9_3.x86_64']);
  });

  it('drops what is not a plain version: it would become a path in the replica', () => {
    expect(parseKernels('vmlinuz-\nvmlinuz-../../etc\nvmlinuz-a b\nvmlinuz-.hidden\nvmlinuz\nother\n')).toEqual([]);
  });
});
