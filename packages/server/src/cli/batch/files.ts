/** Crash-safe file writes for batch output: temp file, fsync, rename. */
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
