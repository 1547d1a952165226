/**
 * The OCSP responder (RFC 6960). Responses are signed by a delegated
 * responder certificate per issuing CA (id-kp-OCSPSigning with
 * id-pkix-ocsp-nocheck, §4.2.2.2), whose key lives in the signer's memory
 * and which is rotated when two thirds of its life have passed. A nonce-less
 * answer for one certificate is cached and re-signed once half its validity
 * has passed, so most requests are a lookup; a request with a nonce is
 * signed for itself (RFC 8954).
 */
import {
  buildBasicOcspResponse,
  certIdHashes,
  certIdKey,
  Certificate,
  ocspErrorResponse,
  OCSP_RESPONDER_PROFILE,
  OID,
  parseOcspRequest,
  prepareIssuance,
  REVOCATION_REASONS,
  responderIdFor,
  sha256Hex,
  type CertId,
  type OcspCertStatus,
} from '@certfleet/pki';
import type { EventBus } from '../events/bus.js';
import type { Authorities } from '../registry/authorities.js';
import type { Signer } from '../signer/signer.js';
import type { CaStore, CertificateStore } from '../store/index.js';
import type { Revoker } from './revoker.js';

export interface OcspResponderOptions {
  /** thisUpdate to nextUpdate of each answer (default 1 h). */
  readonly validityMs?: number;
}

export interface OcspResponderDeps {
  readonly certificates: Pick<CertificateStore, 'getCertificateBySerial' | 'getCertificate' | 'insertCertificate'>;
  readonly cas: Pick<CaStore, 'listCas'>;
  readonly authorities: Authorities;
  readonly signer: Signer;
  readonly revoker: Revoker;
  readonly bus: Pick<EventBus, 'on'>;
  readonly now: () => Date;
}

interface Responder {
  readonly id: string;
  readonly cert: Certificate;
  readonly rotateAt: number;
}

interface Cached {
  readonly der: Buffer;
  readonly refreshAt: number;
  readonly expiresAt: number;
}

export class OcspResponder {
  private issuers = new Map<string, string>();
  private issuersLoadedAt = 0;
  private readonly responders = new Map<string, Promise<Responder>>();
  private readonly cache = new Map<string, Cached>();
  private readonly validityMs: number;
  private unsubscribe: Array<() => void> = [];
  private generation = 0;
  /** CA status and revocation by id: read once, dropped on ca.status-changed (the nonce path read them per request). */
  private readonly caState = new Map<string, Promise<{ revoked: boolean; revocation: Awaited<ReturnType<Revoker['caRevocation']>> }>>();

  constructor(
    private readonly deps: OcspResponderDeps,
    opts: OcspResponderOptions = {},
  ) {
    this.validityMs = opts.validityMs ?? 3_600_000;
  }

  start(): void {
    // A status change makes the cached answer wrong at once: drop it.
    this.unsubscribe.push(
      this.deps.bus.on('certificate.status-changed', async (e) => {
        const c = await this.deps.certificates.getCertificate(e.certificateId);
        if (c) for (const k of [...this.cache.keys()]) if (k.endsWith(`:${c.serial}`)) this.cache.delete(k);
      }),
      this.deps.bus.on('ca.status-changed', () => {
        this.cache.clear();
        this.caState.clear();
        this.issuersLoadedAt = 0;
      }),
    );
  }

  stop(): void {
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
  }

  /** An OCSPResponse (DER) for any input: malformed requests get malformedRequest, never an exception. */
  async respond(request: Uint8Array): Promise<Buffer> {
    let req;
    try {
      req = parseOcspRequest(request);
    } catch {
      return ocspErrorResponse('malformedRequest');
    }
    try {
      const now = this.deps.now();
      const single = req.requests.length === 1 && !req.nonce;
      if (single) {
        const hit = this.cache.get(certIdKey(req.requests[0]!));
        if (hit && hit.refreshAt > now.getTime()) return hit.der;
      }
      const issuerIds = await Promise.all(req.requests.map((id) => this.issuerOf(id)));
      const issuerId = issuerIds[0];
      // One response is signed by one responder (§4.2.2.2): every CertID must name the same issuer we serve.
      if (!issuerId || issuerIds.some((i) => i !== issuerId)) return ocspErrorResponse('unauthorized');
      const responder = await this.responder(issuerId);
      const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
      const nextUpdate = new Date(thisUpdate.getTime() + this.validityMs);
      const responses = await Promise.all(req.requests.map(async (certId) => ({ certId, status: await this.status(issuerId, certId), thisUpdate, nextUpdate })));
      const prepared = buildBasicOcspResponse({
        signerId: responder.id,
        responderId: responderIdFor(responder.cert, 'key'),
        producedAt: thisUpdate,
        responses,
        ...(req.nonce ? { nonce: req.nonce } : {}),
        responderCerts: [responder.cert],
      });
      const der = await this.deps.signer.signOcsp(prepared);
      if (single) this.cache.set(certIdKey(req.requests[0]!), { der, refreshAt: thisUpdate.getTime() + this.validityMs / 2, expiresAt: nextUpdate.getTime() });
      return der;
    } catch (err) {
      console.error('certfleet: OCSP request failed:', err);
      return ocspErrorResponse('internalError');
    }
  }

  /** The CA named by a CertID's hashes, if it is one of ours. */
  private async issuerOf(id: CertId): Promise<string | undefined> {
    const now = this.deps.now().getTime();
    const k = `${id.hashAlgorithm}:${id.issuerNameHash.toString('hex')}:${id.issuerKeyHash.toString('hex')}`;
    if (!this.issuers.has(k) && now - this.issuersLoadedAt > 1000) {
      const map = new Map<string, string>();
      for (const ca of await this.deps.cas.listCas()) {
        // RFC 6960 §2.3: for a CA registered from outside (no key here) this responder is not authoritative: 'unauthorized'.
        if (ca.kind === 'external') continue;
        const cert = Certificate.fromDer(ca.certificateDer);
        for (const alg of ['sha1', 'sha256'] as const) {
          const h = certIdHashes(cert, alg);
          map.set(`${alg}:${h.nameHash.toString('hex')}:${h.keyHash.toString('hex')}`, ca.id);
        }
      }
      this.issuers = map;
      this.issuersLoadedAt = now;
    }
    return this.issuers.get(k);
  }

  private async status(issuerId: string, id: CertId): Promise<OcspCertStatus> {
    let state = this.caState.get(issuerId);
    if (!state) {
      state = (async () => ({ revoked: (await this.deps.authorities.get(issuerId)).status === 'revoked', revocation: await this.deps.revoker.caRevocation(issuerId) }))();
      state.catch(() => this.caState.delete(issuerId));
      this.caState.set(issuerId, state);
    }
    const { revoked: caIsRevoked, revocation: caRevoked } = await state;
    const c = await this.deps.certificates.getCertificateBySerial(id.serial);
    if (!c || c.issuerId !== issuerId) {
      // A child CA's own certificate is answered too, so relying parties can check intermediates.
      const child = (await this.deps.cas.listCas()).find((x) => x.parentId === issuerId && x.serial === id.serial);
      if (!child) return { unknown: true };
      const r = child.status === 'revoked' ? await this.deps.revoker.caRevocation(child.id) : undefined;
      return child.status === 'revoked' ? { revoked: { at: r?.at ?? this.deps.now(), reason: REVOCATION_REASONS[r?.reason ?? 'cACompromise'] } } : { good: true };
    }
    if (c.status === 'revoked') {
      const reason = c.revocationReason && c.revocationReason !== 'unspecified' ? REVOCATION_REASONS[c.revocationReason as keyof typeof REVOCATION_REASONS] : undefined;
      return { revoked: { at: c.revokedAt ?? c.createdAt, ...(reason !== undefined ? { reason } : {}) } };
    }
    // Everything under a revoked CA is untrusted (RFC 5280 §6.3.3 would reach the same end through the CA's own status).
    if (caIsRevoked) return { revoked: { at: caRevoked?.at ?? this.deps.now(), reason: REVOCATION_REASONS[caRevoked?.reason ?? 'cACompromise'] } };
    return { good: true };
  }

  /** The delegated responder of an issuer, issued on first use and rotated before it expires. */
  private responder(issuerId: string): Promise<Responder> {
    const now = this.deps.now().getTime();
    const current = this.responders.get(issuerId);
    if (current) {
      return current.then((r) => (r.rotateAt > now ? r : this.rotate(issuerId, r)));
    }
    return this.rotate(issuerId);
  }

  private rotate(issuerId: string, old?: Responder): Promise<Responder> {
    const p = (async () => {
      const id = `ocsp-${issuerId}-${++this.generation}`;
      const publicKey = this.deps.signer.generateResponderKey(id);
      const template = await this.deps.authorities.template(issuerId, OCSP_RESPONDER_PROFILE);
      const now = this.deps.now();
      const subject = [{ type: OID.commonName, value: `certfleet OCSP responder ${issuerId}` }];
      const prepared = prepareIssuance(template, { subject, publicKey, now });
      const der = await this.deps.signer.issue(prepared);
      const cert = Certificate.fromDer(der);
      // Stored like every certificate certfleet signs, so audits and lists see it.
      await this.deps.certificates.insertCertificate({
        id: sha256Hex(der),
        serial: prepared.serial,
        issuerId,
        thingName: null,
        status: 'active',
        profile: OCSP_RESPONDER_PROFILE.name,
        subject: prepared.subject,
        notBefore: prepared.notBefore,
        notAfter: prepared.notAfter,
        keyAlgorithm: prepared.keyAlgorithm,
        der,
        createdAt: now,
      });
      if (old) this.deps.signer.dropResponderKey(old.id);
      const life = prepared.notAfter.getTime() - now.getTime();
      this.cache.clear();
      return { id, cert, rotateAt: now.getTime() + (life * 2) / 3 };
    })();
    p.catch(() => this.responders.delete(issuerId));
    this.responders.set(issuerId, p);
    return p;
  }
}
