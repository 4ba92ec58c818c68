// Deterministic bench data: "many small files" (log-normal sizes in a few hundred folders) and
// "few large files", written from a seeded PRNG (sizes) and AES-CTR keystreams (contents, which
// can be regenerated at any offset). A manifest next to the lab's state says what a filesystem
// holds, so a reused lab keeps its data and a modified file can be put back exactly.
import { createCipheriv, createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, rmSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';

const MiB = 1024 * 1024;
/** Generated files' mtimes: fixed, so a restored file is byte- and time-identical to the original. */
const BASE_MTIME = Date.UTC(2025, 0, 1) / 1000;

export function dataParams({ scale = 1, quick = false, seed = 20261124 } = {}) {
  const smallFiles = quick ? 5000 : Math.round(100_000 * scale);
  const smallBytes = quick ? 50 * MiB : Math.round(1024 * MiB * scale);
  const largeBytes = quick ? 32 * MiB : Math.max(MiB, Math.round((512 * MiB * scale) / MiB) * MiB);
  return {
    seed,
    small: { files: smallFiles, bytes: smallBytes, top: quick ? 5 : 20, sub: quick ? 10 : 15, sigma: 1.5 },
    large: { files: 4, bytes: largeBytes },
  };
}

export function totalBytes(params) {
  return params.small.bytes + params.large.files * params.large.bytes;
}

// ---------------------------------------------------------------------------------- sizes, paths

function sfc32(a, b, c, d) {
  return () => {
    a |= 0; b |= 0; c |= 0; d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
}

function seededRandom(seed, label) {
  const h = createHash('sha256').update(`rmm-bench:${seed}:${label}`).digest();
  const rand = sfc32(h.readUInt32LE(0), h.readUInt32LE(4), h.readUInt32LE(8), h.readUInt32LE(12));
  for (let i = 0; i < 15; i++) rand();
  return rand;
}

/** File sizes of the small set: log-normal, scaled so that they add up to small.bytes. */
export function smallSizes(params) {
  const { files, bytes, sigma } = params.small;
  const rand = seededRandom(params.seed, 'sizes');
  const raw = new Float64Array(files);
  let sum = 0;
  for (let i = 0; i < files; i++) {
    const u1 = rand() || 1e-12;
    const u2 = rand();
    const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
    raw[i] = Math.exp(sigma * z);
    sum += raw[i];
  }
  const sizes = new Array(files);
  let total = 0;
  for (let i = 0; i < files; i++) {
    sizes[i] = Math.floor((raw[i] * bytes) / sum);
    total += sizes[i];
  }
  sizes[0] += bytes - total; // exact total
  return sizes;
}

export function smallDir(params, i) {
  const { top, sub } = params.small;
  const leaf = i % (top * sub);
  return `small/d${String(Math.floor(leaf / sub)).padStart(2, '0')}/s${String(leaf % sub).padStart(2, '0')}`;
}

export function smallPath(params, i) {
  return `${smallDir(params, i)}/f${String(i).padStart(6, '0')}.dat`;
}

export function largePath(k) {
  return `large/big-${k}.bin`;
}

// ------------------------------------------------------------------------------------- contents

const keys = new Map();
function key(seed) {
  if (!keys.has(seed)) keys.set(seed, createHash('sha256').update(`rmm-bench-content:${seed}`).digest().subarray(0, 16));
  return keys.get(seed);
}

let zeros = Buffer.alloc(0);

/** `length` bytes of file `stream`'s content in `version`, from `offset` (a multiple of 16). */
export function content(seed, stream, version, offset, length) {
  if (offset % 16 !== 0) throw new RangeError('offset must be a multiple of 16');
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(stream), 0);
  iv.writeUInt32BE(version, 8);
  iv.writeUInt32BE(offset / 16, 12);
  if (zeros.length < length) zeros = Buffer.alloc(Math.max(length, 1 << 20));
  return createCipheriv('aes-128-ctr', key(seed), iv).update(zeros.subarray(0, length));
}

const LARGE_STREAM_BASE = 1e12; // content streams of the large files, apart from the small ones'

function writeSmall(root, params, i, size, version) {
  const file = path.join(root, smallPath(params, i));
  writeFileSync(file, content(params.seed, i, version, 0, size));
  const mtime = version === 0 ? BASE_MTIME + i : Date.now() / 1000;
  utimesSync(file, Date.now() / 1000, mtime); // atime after mtime: relatime leaves it alone on reads
}

function writeLargeRange(root, params, k, version, offset, length) {
  const fd = openSync(path.join(root, largePath(k)), existsSync(path.join(root, largePath(k))) ? 'r+' : 'w');
  try {
    const CHUNK = 8 * MiB;
    for (let at = offset; at < offset + length; at += CHUNK) {
      const n = Math.min(CHUNK, offset + length - at);
      writeSync(fd, content(params.seed, LARGE_STREAM_BASE + k, version, at, n), 0, n, at);
    }
  } finally {
    closeSync(fd);
  }
  const mtime = version === 0 ? BASE_MTIME - 1000 - k : Date.now() / 1000;
  utimesSync(path.join(root, largePath(k)), Date.now() / 1000, mtime);
}

// ---------------------------------------------------------------------------- generate, manifest

function manifestFile(stateDir, name) {
  return path.join(stateDir, 'bench-data', `${name}.json`);
}

function readManifest(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

function writeManifest(file, manifest) {
  mkdirSync(path.dirname(file), { recursive: true });
  const fd = openSync(`${file}.tmp`, 'w');
  writeSync(fd, JSON.stringify(manifest, null, 1));
  fsyncSync(fd);
  closeSync(fd);
  writeFileSync(file, readFileSync(`${file}.tmp`));
  rmSync(`${file}.tmp`);
}

function generate(root, params, sets, log) {
  rmSync(path.join(root, 'small'), { recursive: true, force: true });
  rmSync(path.join(root, 'large'), { recursive: true, force: true });
  const folders = new Set();
  if (sets.includes('small')) {
    const sizes = smallSizes(params);
    const dirs = new Set();
    for (let i = 0; i < params.small.files; i++) dirs.add(smallDir(params, i));
    for (const d of dirs) mkdirSync(path.join(root, d), { recursive: true });
    const started = Date.now();
    for (let i = 0; i < params.small.files; i++) {
      writeSmall(root, params, i, sizes[i], 0);
      if (i > 0 && i % 25000 === 0) log(`  ${i} small files (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    }
    folders.add('small');
    for (const d of dirs) folders.add(d).add(path.dirname(d));
  }
  if (sets.includes('large')) {
    mkdirSync(path.join(root, 'large'), { recursive: true });
    for (let k = 0; k < params.large.files; k++) writeLargeRange(root, params, k, 0, 0, params.large.bytes);
    folders.add('large');
  }
  // Folders last, with fixed times too.
  for (const d of folders) utimesSync(path.join(root, d), BASE_MTIME - 10, BASE_MTIME - 10);
}

/**
 * Makes `root` (a bench filesystem, seen from this machine) hold the data of `params`: reuses what
 * the manifest says is there, puts back files a modification run changed, or generates it all.
 */
export function ensureData(stateDir, name, root, params, sets, log = () => {}) {
  const file = manifestFile(stateDir, name);
  const manifest = readManifest(file);
  const same = manifest && JSON.stringify(manifest.params) === JSON.stringify(params) && JSON.stringify(manifest.sets) === JSON.stringify(sets);
  if (same && !manifest.dirty) {
    log(`data ${name}: reused (${root})`);
    return 'reused';
  }
  if (same && manifest.dirty && manifest.modified) {
    restore(root, params, manifest.modified);
    writeManifest(file, { params, sets, dirty: false });
    log(`data ${name}: restored ${manifest.modified.small.length} small and ${manifest.modified.large.length} large changes`);
    return 'restored';
  }
  writeManifest(file, { params, sets, dirty: true });
  const started = Date.now();
  const what = [...(sets.includes('small') ? [`${params.small.files} small files (${mib(params.small.bytes)})`] : []), ...(sets.includes('large') ? [`${params.large.files} x ${mib(params.large.bytes)}`] : [])];
  log(`data ${name}: generating ${what.join(' and ')} in ${root}`);
  generate(root, params, sets, log);
  writeManifest(file, { params, sets, dirty: false });
  log(`data ${name}: generated in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return 'generated';
}

/** The changes of modification run `run`: one in `every` of the small files (1%), and 1 MiB inside large file 0. */
export function changeSet(params, runIndex, every = 100) {
  const small = [];
  for (let i = runIndex % every; i < params.small.files; i += every) small.push(i);
  const slots = Math.max(1, params.large.bytes / MiB - 1);
  const large = [{ file: 0, offset: ((runIndex * 37 + 5) % slots) * MiB, length: MiB }];
  return { small, large };
}

/** Applies a change set (new contents, same sizes, new mtimes); the manifest says so first. */
export function modify(stateDir, name, root, params, runIndex, every = 100) {
  const file = manifestFile(stateDir, name);
  const manifest = readManifest(file);
  const changes = changeSet(params, runIndex, every);
  const modified = manifest.modified ?? { small: [], large: [] };
  modified.small = [...new Set([...modified.small, ...changes.small])];
  modified.large = [...modified.large, ...changes.large];
  writeManifest(file, { ...manifest, dirty: true, modified });
  const sizes = smallSizes(params);
  for (const i of changes.small) writeSmall(root, params, i, sizes[i], runIndex + 1);
  for (const c of changes.large) writeLargeRange(root, params, c.file, runIndex + 1, c.offset, c.length);
  return { files: changes.small.length + changes.large.length, bytes: changes.small.reduce((s, i) => s + sizes[i], 0) + changes.large.reduce((s, c) => s + c.length, 0) };
}

function restore(root, params, modified) {
  const sizes = smallSizes(params);
  for (const i of modified.small) writeSmall(root, params, i, sizes[i], 0);
  for (const c of modified.large) writeLargeRange(root, params, c.file, 0, c.offset, c.length);
}

/** Puts back every change made by modify(), so the data is the generated one again. */
export function restoreData(stateDir, name, root, params) {
  const file = manifestFile(stateDir, name);
  const manifest = readManifest(file);
  if (!manifest?.dirty || !manifest.modified) return;
  restore(root, params, manifest.modified);
  writeManifest(file, { params, sets: manifest.sets, dirty: false });
}

/** A few small files for the fixed-cost scenario. */
export function ensureTinyData(root, seed) {
  const dir = path.join(root, 'app');
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < 20; i++) {
    const f = path.join(dir, `file-${i}.txt`);
    if (!existsSync(f)) writeFileSync(f, content(seed, 9e12 + i, 0, 0, 512 + i * 100));
    utimesSync(f, Date.now() / 1000, BASE_MTIME + i);
  }
}

export function mib(bytes) {
  return bytes >= 1024 * MiB ? `${(bytes / 1024 / MiB).toFixed(2)} GiB` : `${(bytes / MiB).toFixed(0)} MiB`;
}
