/**
 * Fleet provisioning by claim, the device side (DESIGN.md "Fleet provisioning
 * over MQTT", the AWS IoT flow under `$certfleet/`). A device connected with
 * a claim credential:
 *
 *  1. create-from-csr: sends a CSR; gets a certificate (active, on no thing,
 *     no policy: it can do nothing yet) and a certificateOwnershipToken, 32
 *     random bytes stored only as their SHA-256, bound to that certificate and
 *     that claim, single use, expiring after one hour. `create` is the same
 *     with a key made here (development phase), returned once.
 *  2. provision: spends the token with template parameters; the template
 *     (and its pre-provisioning hook, if any) decides the thing, its
 *     attributes and groups and the certificate's policies, all written in
 *     one store transaction with the token's consumption, audited with the
 *     claim as actor (`claim:<claim certificate id>`).
 *
 * A certificate whose token expires unspent is deleted by the sweep if it was
 * never used (on no thing, no policy, never connected); its serial stays in
 * the issuance journal, so it is never reused, and admission refuses the
 * certificate from then on as unknown. One that an operator took into use
 * meanwhile only loses its token.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Certificate, OID, encodePem } from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import type { EventBus } from '../events/index.js';
import { audit, SYSTEM, type Actor } from '../registry/actor.js';
import type { Issuance } from '../registry/issuance.js';
import type { CertificateStore, ClaimRecord, ProvisioningStore } from '../store/index.js';
import { callHook, type HookCaller } from './hook.js';
import { ProvisioningRefusal } from './rejections.js';
import type { ProvisioningTemplates } from './template-registry.js';
import { decideThing, renderTemplate, resolveParameters } from './templates.js';

export const OWNERSHIP_TOKEN_TTL_MS = 3_600_000;
const MAX_CSR_LENGTH = 32 * 1024;
const MAX_TOKEN_LENGTH = 128;
const SWEEP_BATCH = 200;

/** Who asks: the certificate the device connected (or authenticated) with, and its MQTT client id. */
export interface Caller {
  readonly certificateId: string;
  readonly clientId: string;
}

export interface CreatedCertificate {
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly certificateOwnershipToken: string;
  /** Only for `create` (server-generated key). */
  readonly privateKey?: string;
}

export interface Provisioned {
  readonly thingName: string;
  readonly deviceConfiguration: Record<string, unknown>;
}

export interface SweepResult {
  readonly deleted: number;
  readonly kept: number;
  readonly purged: number;
}

export interface FleetProvisioningDeps {
  readonly store: ProvisioningStore & Pick<CertificateStore, 'getCertificate'> & { getClaim(certificateId: string): Promise<ClaimRecord | undefined> };
  readonly issuance: Pick<Issuance, 'fromCsr' | 'withGeneratedKey'>;
  readonly templates: Pick<ProvisioningTemplates, 'load'>;
  readonly bus: Pick<EventBus, 'emit'>;
  readonly now: () => Date;
  readonly hook?: HookCaller;
  readonly random?: (bytes: number) => Buffer;
  readonly tokenTtlMs?: number;
  readonly onSweepError?: (err: unknown) => void;
}

export const claimActor = (claimCertificateId: string): Actor => ({ id: `claim:${claimCertificateId}` });
const hashToken = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function subjectCn(der: Buffer): string | null {
  const cns = Certificate.fromDer(der).subjectAttributes().filter((a) => a.type === OID.commonName);
  return cns.at(-1)?.value ?? null;
}

export class FleetProvisioning {
  readonly #random: (bytes: number) => Buffer;
  readonly #hook: HookCaller;
  readonly #ttl: number;
  #timer: NodeJS.Timeout | undefined;
  #sweeping: Promise<SweepResult> | undefined;
  /** Tokens whose discard failed (a table we do not know refers to the certificate): not retried by this process. */
  readonly #stuck = new Set<string>();

  constructor(private readonly deps: FleetProvisioningDeps) {
    this.#random = deps.random ?? randomBytes;
    this.#hook = deps.hook ?? callHook;
    this.#ttl = deps.tokenTtlMs ?? OWNERSHIP_TOKEN_TTL_MS;
  }

  /** The caller's claim, read each time: a claim deleted or revoked meanwhile is refused. */
  async claimOf(caller: Caller): Promise<ClaimRecord> {
    const claim = await this.deps.store.getClaim(caller.certificateId);
    if (!claim) throw new ProvisioningRefusal('NotAClaim', 'only a claim certificate may ask for this');
    return claim;
  }

  /** `$certfleet/certificates/create-from-csr/json`: the key stays on the device. */
  async createFromCsr(caller: Caller, body: unknown): Promise<CreatedCertificate> {
    const claim = await this.claimOf(caller);
    const csr = isObject(body) ? body.certificateSigningRequest : undefined;
    if (typeof csr !== 'string' || csr.length === 0 || csr.length > MAX_CSR_LENGTH) {
      throw new CertfleetError('bad-request', `certificateSigningRequest must be a PEM CSR of at most ${MAX_CSR_LENGTH} characters`);
    }
    const { token, store } = this.#ownership(claim);
    const issued = await this.deps.issuance.fromCsr({ csr, profile: 'device', actor: claimActor(claim.certificateId), store });
    return { certificateId: issued.record.id, certificatePem: issued.certificatePem, certificateOwnershipToken: token };
  }

  /** `$certfleet/certificates/create/json`: development phase, the key is made here and returned once. */
  async createKeysAndCertificate(caller: Caller, body: unknown): Promise<CreatedCertificate> {
    const claim = await this.claimOf(caller);
    if (body !== undefined && !isObject(body)) throw new CertfleetError('bad-request', 'the request must be a JSON object');
    const { token, store } = this.#ownership(claim);
    const issued = await this.deps.issuance.withGeneratedKey({
      profile: 'device',
      commonName: `device-${this.#random(8).toString('hex')}`,
      actor: claimActor(claim.certificateId),
      store,
    });
    return { certificateId: issued.record.id, certificatePem: issued.certificatePem, certificateOwnershipToken: token, privateKey: issued.privateKeyPem };
  }

  /** A fresh token, and how to store it with the certificate in one transaction. */
  #ownership(claim: ClaimRecord) {
    const token = this.#random(32).toString('base64url');
    const createdAt = this.deps.now();
    const stored = { tokenHash: hashToken(token), claimCertificateId: claim.certificateId, createdAt, expiresAt: new Date(createdAt.getTime() + this.#ttl) };
    return {
      token,
      store: (record: Parameters<ProvisioningStore['insertCertificateWithOwnershipToken']>[0], entry: Parameters<ProvisioningStore['insertCertificateWithOwnershipToken']>[2]) =>
        this.deps.store.insertCertificateWithOwnershipToken(record, stored, entry),
    };
  }

  /** `$certfleet/provisioning-templates/{name}/provision/json`. */
  async provision(caller: Caller, templateName: string, body: unknown): Promise<Provisioned> {
    const claim = await this.claimOf(caller);
    if (claim.template !== templateName) throw new ProvisioningRefusal('NotAClaim', `this claim provisions with template ${claim.template} only`);
    if (!isObject(body)) throw new CertfleetError('bad-request', 'the request must be a JSON object');
    const token = body.certificateOwnershipToken;
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw new CertfleetError('bad-request', 'certificateOwnershipToken must be a string');
    const template = await this.deps.templates.load(templateName);
    if (!template) throw new CertfleetError('not-found', `no provisioning template named ${templateName}`);

    const tokenHash = hashToken(token);
    const certificate = await this.#certificateFor(tokenHash, claim);
    let parameters = resolveParameters(template, body.parameters);
    if (template.preProvisioningHook) {
      const verdict = await this.#hook(template.preProvisioningHook, {
        claimCertificateId: claim.certificateId,
        certificateId: certificate.id,
        certificatePem: encodePem('CERTIFICATE', certificate.der),
        templateName,
        parameters,
        clientId: caller.clientId,
      });
      parameters = resolveParameters(template, { ...parameters, ...verdict.parameterOverrides });
    }
    const plan = renderTemplate(template, { parameters, certificate: { id: certificate.id, subjectCn: subjectCn(certificate.der) } });
    const actor = claimActor(claim.certificateId);
    try {
      const result = await this.deps.store.provisionDevice(
        {
          tokenHash,
          claimCertificateId: claim.certificateId,
          certificateId: certificate.id,
          at: this.deps.now(),
          thingName: plan.thingName,
          decideThing: (existing) => decideThing(plan.override, existing, plan.attributes),
          policies: plan.policies,
          groups: plan.groups,
        },
        audit(actor, 'provisioning.provision', `certificate:${certificate.id}`, {
          template: templateName,
          thing: plan.thingName,
          policies: plan.policies,
          groups: plan.groups,
        }),
      );
      this.deps.bus.emit('thing.changed', { thingName: result.thing.name, certificateId: certificate.id });
    } catch (err) {
      // The token was fine a moment ago: if it is not now, another request spent it (or it just expired).
      if (err instanceof CertfleetError && err.code === 'invalid-state') await this.#certificateFor(tokenHash, claim);
      throw err;
    }
    return { thingName: plan.thingName, deviceConfiguration: plan.deviceConfiguration };
  }

  /** The certificate the token proves ownership of, if the token can still be spent by this claim. */
  async #certificateFor(tokenHash: string, claim: ClaimRecord) {
    const record = await this.deps.store.getOwnershipToken(tokenHash);
    if (!record || record.claimCertificateId !== claim.certificateId) throw new ProvisioningRefusal('InvalidToken', 'unknown certificate ownership token');
    if (record.consumedAt !== null) throw new ProvisioningRefusal('InvalidToken', 'the certificate ownership token was already used');
    if (record.expiresAt.getTime() <= this.deps.now().getTime()) throw new ProvisioningRefusal('InvalidToken', 'the certificate ownership token expired');
    const certificate = await this.deps.store.getCertificate(record.certificateId);
    if (!certificate) throw new ProvisioningRefusal('InvalidToken', 'the certificate of this ownership token no longer exists');
    if (certificate.status !== 'active') throw new CertfleetError('invalid-state', `certificate ${certificate.id} is ${certificate.status}`);
    return certificate;
  }

  /** Deletes the never-used certificates of expired tokens and purges spent tokens; one sweep at a time. */
  sweep(): Promise<SweepResult> {
    return (this.#sweeping ??= this.#sweep().finally(() => (this.#sweeping = undefined)));
  }

  async #sweep(): Promise<SweepResult> {
    const now = this.deps.now();
    let deleted = 0;
    let kept = 0;
    for (;;) {
      const batch = (await this.deps.store.expiredOwnershipTokens(now, SWEEP_BATCH)).filter((t) => !this.#stuck.has(t.tokenHash));
      if (batch.length === 0) break;
      for (const t of batch) {
        try {
          const outcome = await this.deps.store.discardUnprovisionedCertificate(
            t.tokenHash,
            now,
            audit(SYSTEM, 'certificate.discard-unprovisioned', `certificate:${t.certificateId}`, { claim: t.claimCertificateId, expiredAt: t.expiresAt.toISOString() }),
          );
          if (outcome === 'deleted') deleted++;
          else if (outcome === 'kept') kept++;
        } catch (err) {
          this.#stuck.add(t.tokenHash);
          this.deps.onSweepError?.(err);
        }
      }
      if (batch.length < SWEEP_BATCH) break;
    }
    const purged = await this.deps.store.purgeConsumedOwnershipTokens(now);
    return { deleted, kept, purged };
  }

  /** Sweeps every `intervalMs` (default 5 minutes); the timer does not hold the process open. */
  start(intervalMs = 300_000): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.sweep().catch((err: unknown) => this.deps.onSweepError?.(err)), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
