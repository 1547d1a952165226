/** Crash-safe file writes for batch output: temp file, fsync, rename; or many files, then one flush. */
import { execFile } from 'node:child_process';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Writes DATA to PATH so that after a kill PATH is either absent, the old
 * content or the whole new content, never a torn file. The temp file is
 * created with MODE, so a key is never readable by others, not even briefly.
 */
export function writeAtomic(path: string, data: string, mode = 0o644): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
  const fd = openSync(tmp, 'wx', mode);
  try {
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Makes everything written under DIR durable with one flush: syncfs(2) on its
 * file system, through coreutils' `sync --file-system` (Node has no binding
 * for it). That flushes a whole chunk of devices (their files and the
 * directory entries) for the price of one fsync instead of one per file.
 * Where `sync -f` is missing, each of FILES and their directories is fsynced.
 */
export async function syncDirectory(dir: string, files: readonly string[]): Promise<void> {
  if (syncfsWorks !== false) {
    const ok = await new Promise<boolean>((done) => execFile('sync', ['-f', dir], (err) => done(!err)));
    if (ok) {
      syncfsWorks = true;
      return;
    }
    syncfsWorks = false;
  }
  const dirs = new Set<string>();
  for (const f of files) {
    fsyncPath(f);
    dirs.add(dirname(f));
  }
  for (const d of dirs) fsyncPath(d);
  fsyncPath(dir);
}

let syncfsWorks: boolean | undefined;

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
