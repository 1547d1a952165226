/**
 * Who makes a change, for the audit log: an API token (by id), the CLI's
 * local bootstrap, or certfleet itself.
 */
import type { AuditInput } from '../store/index.js';

export interface Actor {
  /** e.g. `token:tok-1a2b`, `system`, `init`. */
  readonly id: string;
}

export const SYSTEM: Actor = { id: 'system' };
export const INIT: Actor = { id: 'init' };

export const tokenActor = (tokenId: string): Actor => ({ id: `token:${tokenId}` });

/** The audit entry of one change. */
export function audit(actor: Actor, action: string, target: string, details?: Record<string, unknown>): AuditInput {
  return { actor: actor.id, action, target, ...(details ? { details } : {}) };
}
