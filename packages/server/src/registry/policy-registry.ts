/**
 * Policies: validated before they are stored, versioned (at most 5), attached
 * to certificates and thing groups. Every change is audited and tells the
 * broker to reload what it evaluates.
 */
import { CertfleetError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { CertificateStore, Page, PageRequest, PolicyAttachment, PolicyRecord, PolicyStore, PolicySummary, PolicyTarget, PolicyVersionRecord, ThingGroupStore } from '../store/index.js';
import { audit, type Actor } from './actor.js';
import { parsePolicyDocument } from './policy/index.js';
import { checkGroupName, checkPolicyName } from './things.js';

export interface PolicyRegistryDeps {
  readonly policies: PolicyStore;
  readonly certificates: Pick<CertificateStore, 'getCertificate'>;
  readonly groups: Pick<ThingGroupStore, 'getGroup'>;
  readonly bus: Pick<EventBus, 'emit'>;
}

/** The document as the store keeps it: the validated, normalised form. */
function validated(document: unknown): Record<string, unknown> {
  return JSON.parse(JSON.stringify(parsePolicyDocument(document))) as Record<string, unknown>;
}

export class PolicyRegistry {
  constructor(private readonly deps: PolicyRegistryDeps) {}

  private changed(name: string): void {
    this.deps.bus.emit('policy.changed', { policyName: name });
  }

  async create(actor: Actor, name: unknown, document: unknown): Promise<PolicyRecord> {
    const n = checkPolicyName(name);
    return this.deps.policies.createPolicy(n, validated(document), audit(actor, 'policy.create', `policy:${n}`));
  }

  async get(name: string): Promise<PolicyRecord> {
    const p = await this.deps.policies.getPolicy(name);
    if (!p) throw new CertfleetError('not-found', `no policy named ${name}`);
    return p;
  }

  list(page: PageRequest): Promise<Page<PolicySummary>> {
    return this.deps.policies.listPolicies(page);
  }

  async getVersion(name: string, version: number): Promise<PolicyVersionRecord> {
    const v = await this.deps.policies.getPolicyVersion(name, version);
    if (!v) throw new CertfleetError('not-found', `policy ${name} has no version ${version}`);
    return v;
  }

  async createVersion(actor: Actor, name: string, document: unknown, setDefault: boolean): Promise<PolicyVersionRecord> {
    const v = await this.deps.policies.createPolicyVersion(name, validated(document), { setDefault }, audit(actor, 'policy.version.create', `policy:${name}`, { setDefault }));
    if (setDefault) this.changed(name);
    return v;
  }

  async setDefault(actor: Actor, name: string, version: number): Promise<void> {
    await this.deps.policies.setDefaultPolicyVersion(name, version, audit(actor, 'policy.version.set-default', `policy:${name}`, { version }));
    this.changed(name);
  }

  async deleteVersion(actor: Actor, name: string, version: number): Promise<void> {
    await this.deps.policies.deletePolicyVersion(name, version, audit(actor, 'policy.version.delete', `policy:${name}`, { version }));
  }

  async delete(actor: Actor, name: string): Promise<void> {
    await this.deps.policies.deletePolicy(name, audit(actor, 'policy.delete', `policy:${name}`));
  }

  /** The target must exist; a revoked certificate takes no new policies. */
  private async target(t: { certificate?: string; group?: string }): Promise<PolicyTarget> {
    if ((t.certificate === undefined) === (t.group === undefined)) throw new CertfleetError('bad-request', 'name exactly one of certificate or group');
    if (t.certificate !== undefined) {
      const id = t.certificate.toLowerCase();
      const cert = await this.deps.certificates.getCertificate(id);
      if (!cert) throw new CertfleetError('not-found', `no certificate ${t.certificate}`);
      return { type: 'certificate', id };
    }
    const group = checkGroupName(t.group);
    if (!(await this.deps.groups.getGroup(group))) throw new CertfleetError('not-found', `no thing group named ${group}`);
    return { type: 'group', id: group };
  }

  async attach(actor: Actor, name: string, t: { certificate?: string; group?: string }): Promise<PolicyTarget> {
    const target = await this.target(t);
    if (target.type === 'certificate' && (await this.deps.certificates.getCertificate(target.id))?.status === 'revoked') {
      throw new CertfleetError('invalid-state', 'a revoked certificate cannot take policies');
    }
    await this.deps.policies.attachPolicy(name, target, audit(actor, 'policy.attach', `policy:${name}`, { target }));
    this.changed(name);
    return target;
  }

  async detach(actor: Actor, name: string, t: { certificate?: string; group?: string }): Promise<PolicyTarget> {
    const target = await this.target(t);
    await this.deps.policies.detachPolicy(name, target, audit(actor, 'policy.detach', `policy:${name}`, { target }));
    this.changed(name);
    return target;
  }

  attachments(name: string, page: PageRequest): Promise<Page<PolicyAttachment>> {
    return this.deps.policies.listAttachments(name, page);
  }
}
