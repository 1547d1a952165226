/**
 * Durable, atomic file writes for state a device must not lose on a power
 * cut: the bytes go to a fresh temporary file (O_CREAT|O_EXCL, so a stale or
 * planted file is never reused), are fsynced, then appear under their final
 * name in one rename(2) or link(2), and the directory is fsynced so the new
 * name itself survives (rename is atomic, but only durable once the
 * directory entry is on disk).
 */
import { randomBytes } from 'node:crypto';
import { link, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { crashPoint } from './crash-points.js';
import { AgentError } from './errors.js';

/** Temporary files carry this marker, so recovery can sweep what a crash left. */
export const TEMP_MARKER = '.tmp-';

export interface WriteOptions {
  /** File mode; 0o600 for anything secret. */
  readonly mode: number;
  /** false: fail with 'key-exists' if the name is taken (link(2) never replaces). */
  readonly overwrite: boolean;
  /** Prefix for crash points (`<label>:temp-written`, `<label>:published`). */
  readonly crashLabel?: string;
}

export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function writeFileDurable(path: string, data: string | Uint8Array, opts: WriteOptions): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}${TEMP_MARKER}${randomBytes(6).toString('hex')}`);
  // 'wx' = O_WRONLY|O_CREAT|O_EXCL; the mode applies at creation, so a key is
  // never readable by others, not even for the instant before a chmod.
  const fh = await open(temp, 'wx', opts.mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  const label = opts.crashLabel ?? basename(path);
  crashPoint(`${label}:temp-written`);
  try {
    if (opts.overwrite) {
      await rename(temp, path);
    } else {
      // link(2) fails with EEXIST instead of replacing: "create, never clobber", atomically.
      try {
        await link(temp, path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new AgentError('key-exists', `${path} already exists`);
        throw err;
      }
      await unlink(temp);
    }
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
  crashPoint(`${label}:published`);
  await fsyncDir(dir);
}

/**
 * Removes temporary files a crash left in `dir` (never anything else): only
 * those of `forFile` if given, and only those older than `minAgeMs`, so an
 * observer (the CLI) never sweeps away a write the agent is making now.
 */
export async function sweepTemporaries(dir: string, opts: { forFile?: string; minAgeMs?: number } = {}): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const stale: string[] = [];
  for (const n of names) {
    if (!n.includes(TEMP_MARKER) || (opts.forFile !== undefined && !n.startsWith(`.${opts.forFile}${TEMP_MARKER}`))) continue;
    const age = await stat(join(dir, n)).then((s) => Date.now() - s.mtimeMs, () => -1);
    if (age >= (opts.minAgeMs ?? 0)) stale.push(n);
  }
  for (const n of stale) await rm(join(dir, n), { recursive: true, force: true });
  if (stale.length > 0) await fsyncDir(dir);
  return stale;
}

/** Reads a file, or undefined if it does not exist. */
export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}
