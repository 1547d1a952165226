/**
 * Claim credentials (fleet provisioning by claim, DESIGN.md "Provisioning"):
 * one certificate and key shared by a batch of devices at the factory, good
 * for nothing but asking for each device's own certificate and provisioning
 * it with one template. The broker knows a claim certificate by its row in
 * the claims table and holds it to exactly that (broker/authorization.ts),
 * whatever policies say; no policy is attached to it.
 */
import { randomBytes } from 'node:crypto';
import { CertfleetError } from '../errors.js';
import type { Actor } from '../registry/actor.js';
import type { Issuance, Issued } from '../registry/issuance.js';
import type { ClaimRecord, ProvisioningStore } from '../store/index.js';
import { checkTemplateName } from './template-registry.js';

export interface ClaimRequest {
  readonly template: unknown;
  readonly validityDays?: number;
}

export interface ClaimCredential extends Issued {
  readonly template: string;
  /** Returned once, never kept. */
  readonly privateKeyPem: string;
}

export interface ClaimDeps {
  readonly store: Pick<ProvisioningStore, 'getProvisioningTemplate' | 'insertClaimCertificate'> & { getClaim(certificateId: string): Promise<ClaimRecord | undefined> };
  readonly issuance: Pick<Issuance, 'withGeneratedKey'>;
}

export class ClaimCredentials {
  constructor(private readonly deps: ClaimDeps) {}

  /** A claim certificate (profile device, CN `claim-<random>`, on no thing) for an existing template. */
  async create(actor: Actor, req: ClaimRequest): Promise<ClaimCredential> {
    const template = checkTemplateName(req.template);
    if (!(await this.deps.store.getProvisioningTemplate(template))) throw new CertfleetError('not-found', `no provisioning template named ${template}`);
    const issued = await this.deps.issuance.withGeneratedKey({
      profile: 'device',
      commonName: `claim-${randomBytes(8).toString('hex')}`,
      ...(req.validityDays !== undefined ? { validityDays: req.validityDays } : {}),
      actor,
      // The certificate and its claim row commit together: never a claim certificate the broker takes for a device.
      store: (record, entry) => this.deps.store.insertClaimCertificate(record, template, entry && { ...entry, action: 'claim.create', details: { ...entry.details, template } }),
    });
    return { ...issued, template };
  }

  /** The claim a certificate is, if it is one. */
  get(certificateId: string): Promise<ClaimRecord | undefined> {
    return this.deps.store.getClaim(certificateId);
  }
}
