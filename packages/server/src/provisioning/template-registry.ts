/** Provisioning templates in the registry: validated before they are stored, every change audited. */
import { CertfleetError } from '../errors.js';
import { audit, type Actor } from '../registry/actor.js';
import type { Page, PageRequest, ProvisioningStore, ProvisioningTemplateRecord } from '../store/index.js';
import { parseTemplate, type ProvisioningTemplate } from './templates.js';

/** One MQTT topic level (`$certfleet/provisioning-templates/{name}/provision/json`), as AWS IoT template names. */
const TEMPLATE_NAME = /^[A-Za-z0-9_-]{1,128}$/;

export function checkTemplateName(name: unknown): string {
  if (typeof name !== 'string' || !TEMPLATE_NAME.test(name)) {
    throw new CertfleetError('bad-request', 'a provisioning template name is 1-128 characters of A-Z a-z 0-9 _ -');
  }
  return name;
}

/** The stored form: the validated, normalised document. */
const stored = (t: ProvisioningTemplate): Record<string, unknown> => JSON.parse(JSON.stringify(t)) as Record<string, unknown>;

export class ProvisioningTemplates {
  constructor(private readonly store: Pick<ProvisioningStore, 'createProvisioningTemplate' | 'replaceProvisioningTemplate' | 'getProvisioningTemplate' | 'listProvisioningTemplates' | 'deleteProvisioningTemplate'>) {}

  async create(actor: Actor, name: unknown, document: unknown): Promise<ProvisioningTemplateRecord> {
    const n = checkTemplateName(name);
    const t = parseTemplate(document);
    return this.store.createProvisioningTemplate(n, stored(t), audit(actor, 'provisioning-template.create', `provisioning-template:${n}`));
  }

  async replace(actor: Actor, name: string, document: unknown): Promise<ProvisioningTemplateRecord> {
    const t = parseTemplate(document);
    return this.store.replaceProvisioningTemplate(name, stored(t), audit(actor, 'provisioning-template.update', `provisioning-template:${name}`));
  }

  async get(name: string): Promise<ProvisioningTemplateRecord> {
    const t = await this.store.getProvisioningTemplate(name);
    if (!t) throw new CertfleetError('not-found', `no provisioning template named ${name}`);
    return t;
  }

  /** The template parsed, for provisioning; undefined if there is none. */
  async load(name: string): Promise<ProvisioningTemplate | undefined> {
    const t = await this.store.getProvisioningTemplate(name);
    // Stored documents were validated on the way in; parsing again also fills defaults a newer version adds.
    return t && parseTemplate(t.document);
  }

  list(page: PageRequest): Promise<Page<ProvisioningTemplateRecord>> {
    return this.store.listProvisioningTemplates(page);
  }

  async delete(actor: Actor, name: string): Promise<void> {
    await this.store.deleteProvisioningTemplate(name, audit(actor, 'provisioning-template.delete', `provisioning-template:${name}`));
  }
}
