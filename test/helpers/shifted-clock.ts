/**
 * A `certfleet serve` whose clock runs ahead, for flows that need time to
 * pass (a certificate lives at least a day): a preload module shifts
 * `Date`, the server's only clock, in the server process alone. The test
 * and every other process it starts (curl, openssl, certfleet-agent) keep
 * the real time unless told otherwise.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serve, type ServerProcess } from './cli.js';

/** The preload module: `new Date()` and `Date.now()` read `shiftMs` ahead; dates built from a value are untouched. */
export function writeShiftedClock(dir: string, shiftMs: number): string {
  const file = join(dir, `shift-clock-${shiftMs}.mjs`);
  writeFileSync(
    file,
    `const shift = ${shiftMs}; const Real = globalThis.Date;
globalThis.Date = class extends Real { constructor(...a) { if (a.length === 0) super(Real.now() + shift); else super(...a); } static now() { return Real.now() + shift; } };\n`,
  );
  return file;
}

/** Starts `certfleet serve` on `data` with its clock `shiftMs` ahead (see serve() in cli.ts for `extra`). */
export function serveShifted(data: string, shiftMs: number, extra: string[] = []): Promise<ServerProcess> {
  const preload = writeShiftedClock(data, shiftMs);
  const saved = process.env.NODE_OPTIONS;
  process.env.NODE_OPTIONS = `${saved ?? ''} --import ${preload}`.trim();
  try {
    // serve() spawns before its first await: only the server inherits the preload.
    return serve(data, extra);
  } finally {
    if (saved === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = saved;
  }
}
