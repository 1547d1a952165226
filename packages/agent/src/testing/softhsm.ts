/**
 * A throwaway SoftHSM2 token for tests: its own config and token directory
 * in a temp dir (SoftHSM reads SOFTHSM2_CONF when the module is
 * initialised), initialised with softhsm2-util. `skip` says why there is
 * none, so tests can skip with that message instead of failing.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SOFTHSM2_LIBRARIES } from '../pkcs11/token.js';

export interface TestToken {
  readonly library: string;
  readonly tokenLabel: string;
  readonly pin: string;
  readonly dir: string;
  remove(): void;
}

export const softhsmLibrary = (): string | undefined => SOFTHSM2_LIBRARIES.find((p) => existsSync(p));

/** Why no SoftHSM token can be made here, or undefined when one can. */
export function softhsmMissing(): string | undefined {
  if (!softhsmLibrary()) return `SoftHSM2 is not installed (no libsofthsm2.so in ${SOFTHSM2_LIBRARIES.join(', ')}); apt-get install softhsm2`;
  try {
    execFileSync('softhsm2-util', ['--version'], { stdio: 'ignore' });
  } catch {
    return 'softhsm2-util is not on PATH; apt-get install softhsm2';
  }
  return undefined;
}

/**
 * One config per process (the module reads it once, at C_Initialize); each
 * call adds a fresh token to that process's token directory.
 */
let shared: { dir: string; conf: string } | undefined;

export function makeTestToken(label = `t${Math.random().toString(36).slice(2, 10)}`, pin = '1234'): TestToken {
  const library = softhsmLibrary();
  if (!library) throw new Error(softhsmMissing());
  if (!shared) {
    const dir = mkdtempSync(join(tmpdir(), 'certfleet-softhsm-'));
    mkdirSync(join(dir, 'tokens'), { mode: 0o700 });
    const conf = join(dir, 'softhsm2.conf');
    writeFileSync(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`);
    process.env.SOFTHSM2_CONF = conf;
    shared = { dir, conf };
  }
  const env = { ...process.env, SOFTHSM2_CONF: shared.conf };
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', `so-${pin}`], { env, stdio: 'pipe' });
  const dir = shared.dir;
  return { library, tokenLabel: label, pin, dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
