/**
 * A logged-in session on one PKCS#11 token (a secure element, a TPM behind
 * tpm2-pkcs11, an HSM, SoftHSM in tests), through pkcs11js.
 *
 * A module is loaded and C_Initialize'd once per process and library path:
 * PKCS#11 v2.40 §5.4 makes a second C_Initialize an error
 * (CKR_CRYPTOKI_ALREADY_INITIALIZED), and login state belongs to the
 * application, not the session (§5.6: a second C_Login answers
 * CKR_USER_ALREADY_LOGGED_IN), so several key stores share both.
 *
 * The native addon is imported lazily: a device whose build lacks it still
 * runs every file-key flow, and is told plainly when it asks for a token.
 */
import type * as Pkcs11Types from 'pkcs11js';
import { AgentError } from '../errors.js';

type Pkcs11Module = typeof Pkcs11Types;
export type Pkcs11 = Pkcs11Types.PKCS11;
export type Handle = Pkcs11Types.Handle;

const CKR_USER_ALREADY_LOGGED_IN = 0x100;

/** Where distributions put SoftHSM2's module (Debian/Ubuntu, Fedora, source builds). */
export const SOFTHSM2_LIBRARIES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib64/pkcs11/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
];

export interface TokenOptions {
  /** Path of the PKCS#11 module (.so). */
  readonly library: string;
  /** CKA_LABEL of the token (its label as set by the vendor tool, without the padding). */
  readonly tokenLabel: string;
  /** User PIN. */
  readonly pin: string;
}

let binding: Pkcs11Module | undefined;
const modules = new Map<string, Pkcs11>();

export async function pkcs11Binding(): Promise<Pkcs11Module> {
  if (binding) return binding;
  try {
    const imported = (await import('pkcs11js')) as Pkcs11Module & { default?: Pkcs11Module };
    binding = imported.default ?? imported;
    return binding;
  } catch (err) {
    throw new AgentError('token-error', `the PKCS#11 binding (pkcs11js) is not available: ${(err as Error).message}`, { cause: err });
  }
}

/** Maps a pkcs11js failure to the agent's error, keeping the CKR_ name in the message. */
export function tokenError(what: string, err: unknown): AgentError {
  if (err instanceof AgentError) return err;
  return new AgentError('token-error', `${what}: ${(err as Error).message}`, { cause: err });
}

async function loadModule(library: string): Promise<Pkcs11> {
  const existing = modules.get(library);
  if (existing) return existing;
  const p = await pkcs11Binding();
  const module = new p.PKCS11();
  try {
    module.load(library);
    module.C_Initialize();
  } catch (err) {
    throw tokenError(`cannot load PKCS#11 module ${library}`, err);
  }
  modules.set(library, module);
  return module;
}

export class TokenSession {
  private constructor(
    readonly p: Pkcs11Module,
    readonly module: Pkcs11,
    readonly session: Handle,
    readonly tokenLabel: string,
  ) {}

  /** Opens a read/write session on the token labelled `tokenLabel` and logs the user in. */
  static async open(opts: TokenOptions): Promise<TokenSession> {
    const p = await pkcs11Binding();
    const module = await loadModule(opts.library);
    try {
      const slot = module.C_GetSlotList(true).find((s) => module.C_GetTokenInfo(s).label.trim() === opts.tokenLabel);
      if (slot === undefined) throw new AgentError('token-error', `no token labelled ${JSON.stringify(opts.tokenLabel)} in ${opts.library}`);
      const session = module.C_OpenSession(slot, p.CKF_SERIAL_SESSION | p.CKF_RW_SESSION);
      try {
        module.C_Login(session, p.CKU_USER, opts.pin);
      } catch (err) {
        if ((err as { code?: number }).code !== CKR_USER_ALREADY_LOGGED_IN) {
          module.C_CloseSession(session);
          throw tokenError(`cannot log in to token ${opts.tokenLabel}`, err);
        }
      }
      return new TokenSession(p, module, session, opts.tokenLabel);
    } catch (err) {
      throw tokenError(`cannot open token ${opts.tokenLabel}`, err);
    }
  }

  /** Object handles matching `template`. */
  find(template: Pkcs11Types.Template): Handle[] {
    this.module.C_FindObjectsInit(this.session, template);
    try {
      return this.module.C_FindObjects(this.session, 16);
    } finally {
      this.module.C_FindObjectsFinal(this.session);
    }
  }

  close(): void {
    try {
      this.module.C_CloseSession(this.session);
    } catch {
      // Already closed (the module was finalised): nothing left to release.
    }
  }
}
