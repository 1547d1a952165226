/**
 * Device replacement in one step (DESIGN.md, Revocation): a thing gets a new
 * certificate and every certificate it had is revoked, in one transaction
 * with one audit entry (`thing.replace-certificate`).
 *
 * What moves: the thing keeps its name, attributes and groups (groups belong
 * to the thing, so the new certificate is in them by joining the thing); the
 * policies attached directly to the revoked certificates are attached to the
 * new one. The old certificates stay on the thing, revoked, as its history.
 *
 * Which certificates are replaced: the one named by `replaces`, or by
 * default every active and inactive certificate of the thing. Certificates in
 * a pending state are in a flow certfleet runs (JITR activation, transfer)
 * and are left alone unless named.
 *
 * Every refusal comes before anything is signed: an unknown thing is
 * 'not-found'; a thing with nothing to replace (no certificate, or all
 * revoked) is 'invalid-state' (a first certificate is issued, not a
 * replacement); a bad CSR or reason is 'bad-request'. Only a race lost after
 * signing (another replacement or status change committed first) leaves a
 * signed certificate unstored; the signer's journal holds its serial and TBS.
 */
import { isKeyAlgorithm, type KeyAlgorithm, type RevocationReason } from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import { checkReason } from '../revocation/revoker.js';
import type {
  CertificateRecord,
  CertificateReplacementStore,
  CertificateStatus,
  CertificateStore,
  ThingStore,
} from '../store/index.js';
import { audit, type Actor } from './actor.js';
import type { Issuance, PreparedCertificate } from './issuance.js';
import { checkThingName } from './things.js';

/** Statuses replaced when the request names no certificate. */
const REPLACED_BY_DEFAULT: readonly CertificateStatus[] = ['active', 'inactive'];
const PAGE = 1000;

export interface ReplacementRequest {
  /** PEM text or DER bytes: the new device's key never leaves it. */
  readonly csr?: string | Uint8Array;
  /** Without a CSR the server makes the key pair (development phase); ec-p256 by default. */
  readonly keyAlgorithm?: string;
  /** RFC 5280 reason name for the old certificates; superseded by default. */
  readonly reason?: string;
  /** The one certificate (id or serial, hex) to replace; by default every active and inactive one of the thing. */
  readonly replaces?: string;
}

export interface Replaced {
  readonly issued: PreparedCertificate;
  /** The old certificates, as revoked. */
  readonly revoked: readonly CertificateRecord[];
  /** Policies now attached to the new certificate. */
  readonly policies: readonly string[];
}

export interface ReplacementDeps {
  readonly issuance: Pick<Issuance, 'prepareForThing'>;
  readonly things: Pick<ThingStore, 'getThing'>;
  readonly certificates: Pick<CertificateStore, 'getCertificate' | 'getCertificateBySerial' | 'listCertificates'>;
  readonly replacements: CertificateReplacementStore;
  readonly bus: Pick<EventBus, 'emit'>;
  readonly now: () => Date;
}

/** A replacement is final: certificateHold, the one revocation that can be lifted, would leave two devices in force. */
export function checkReplacementReason(reason: unknown): RevocationReason {
  const r = checkReason(reason);
  if (r === 'certificateHold') throw new CertfleetError('bad-request', 'a replaced certificate is revoked for good: certificateHold is not a replacement reason');
  return r;
}

export class DeviceReplacement {
  constructor(private readonly deps: ReplacementDeps) {}

  async replace(actor: Actor, thingName: unknown, req: ReplacementRequest): Promise<Replaced> {
    const thing = checkThingName(thingName);
    const reason = checkReplacementReason(req.reason ?? 'superseded');
    const keyAlgorithm = checkKey(req);
    if (!(await this.deps.things.getThing(thing))) throw new CertfleetError('not-found', `no thing named ${thing}`);
    const old = req.replaces === undefined ? await this.replaceable(thing) : [await this.named(thing, req.replaces)];
    if (old.length === 0) {
      throw new CertfleetError('invalid-state', `thing ${thing} has no active or inactive certificate: nothing to replace (issue its first certificate instead)`);
    }

    const issued = await this.deps.issuance.prepareForThing({
      thing,
      ...(req.csr !== undefined ? { csr: req.csr } : { keyAlgorithm }),
    });
    const { record } = issued;
    const result = await this.deps.replacements.replaceCertificates(
      {
        newCertificate: record,
        revoke: old.map((c) => ({ id: c.id, expectedStatus: c.status, revocationReason: reason })),
        copyPolicies: true,
        at: this.deps.now(),
        actor: actor.id,
      },
      audit(actor, 'thing.replace-certificate', `thing:${thing}`, {
        thing,
        new: record.id,
        serial: record.serial,
        revoked: old.map((c) => c.id),
        reason,
      }),
    );

    // After the commit: the broker disconnects the old device, CRL and OCSP drop their answers.
    for (const c of old) this.deps.bus.emit('certificate.status-changed', { certificateId: c.id, from: c.status, to: 'revoked' });
    this.deps.bus.emit('thing.changed', { thingName: thing, certificateId: record.id });
    return { issued, revoked: result.revoked, policies: result.policies };
  }

  /** Every active and inactive certificate of the thing, oldest first. */
  private async replaceable(thing: string): Promise<CertificateRecord[]> {
    const found: CertificateRecord[] = [];
    for (const status of REPLACED_BY_DEFAULT) {
      let cursor: string | undefined;
      do {
        const page = await this.deps.certificates.listCertificates({ thing, status, limit: PAGE, ...(cursor ? { cursor } : {}) });
        found.push(...page.items);
        cursor = page.next;
      } while (cursor);
    }
    return found.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1));
  }

  /** The certificate the request names: it must be the thing's and not yet revoked. */
  private async named(thing: string, idOrSerial: string): Promise<CertificateRecord> {
    const key = typeof idOrSerial === 'string' ? idOrSerial.toLowerCase() : '';
    if (!/^[0-9a-f]{1,64}$/.test(key)) throw new CertfleetError('bad-request', 'replaces names a certificate by its SHA-256 fingerprint or its serial, in hex');
    const c = (await this.deps.certificates.getCertificate(key)) ?? (await this.deps.certificates.getCertificateBySerial(key));
    if (!c) throw new CertfleetError('not-found', `no certificate ${idOrSerial}`);
    if (c.thingName !== thing) throw new CertfleetError('invalid-state', `certificate ${c.id} is not a certificate of thing ${thing}`);
    if (c.status === 'revoked') throw new CertfleetError('invalid-state', `certificate ${c.id} is already revoked (${c.revocationReason ?? 'unspecified'})`);
    return c;
  }
}

function checkKey(req: ReplacementRequest): KeyAlgorithm {
  if (req.csr !== undefined && req.keyAlgorithm !== undefined) throw new CertfleetError('bad-request', 'give a CSR or a key algorithm, not both');
  const alg = req.keyAlgorithm ?? 'ec-p256';
  if (!isKeyAlgorithm(alg)) throw new CertfleetError('bad-request', `unknown key algorithm "${String(alg)}"`);
  return alg;
}
