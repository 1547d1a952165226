/**
 * Just-in-time provisioning (JITP) and registration (JITR), DESIGN.md
 * "Provisioning": the first connection of a device certificate that is not
 * registered but chains to an active CA with auto-registration on.
 *
 * - The CA has a provisioning template: JITP. In one store transaction the
 *   thing named by the template is created (or reused), the certificate is
 *   registered active with the template's policies, the thing joins the
 *   template's groups, and the change is audited ('certificate.jitp'). The
 *   broker then admits the device on that same connection.
 * - The CA has none: JITR. The certificate is registered
 *   `pending-activation` ('certificate.jitr'), the connection is refused,
 *   and the `certificate.registered` event (MQTT lifecycle topic, webhooks)
 *   lets custom logic activate it (`certfleet cert activate ID`); its next
 *   connection is admitted.
 *
 * The JIT template, held in the CA's `provisioningTemplate` field as JSON:
 *
 *   { "thingName": "${cert.subject.cn}",              required
 *     "attributes": { "site": "paris", "sn": "${cert.subject.serialNumber}" },
 *     "groups": ["sensors"],                           existing thing groups
 *     "policies": ["telemetry"] }                      existing policies
 *
 * Placeholders, in thingName and attribute values: `${cert.subject.cn}` (the
 * last, most specific CN of the device certificate's subject) and
 * `${cert.subject.serialNumber}` (its subject serialNumber attribute, OID
 * 2.5.4.5, not the certificate's serial). A thing name must come out as 1-128
 * of A-Z a-z 0-9 : _ -, else the device is refused; an attribute whose
 * placeholder the certificate cannot fill is left out. Any other field's text is
 * taken literally. The field may instead hold a template NAME (full
 * provisioning templates, resolved through `namedTemplate`); until one is
 * resolvable, a device under such a CA is refused.
 *
 * A thing that already exists is reused as it is: whoever holds the CA key
 * can name any thing, which is what trusting that CA for auto-registration means.
 */
import { OID, type Certificate } from '@certfleet/pki';
import type { AutoRegister, AutoRegistrationOutcome, UnregisteredCertificate } from '../broker/index.js';
import { CertfleetError } from '../errors.js';
import type { EventBus } from '../events/index.js';
import { audit, SYSTEM } from '../registry/actor.js';
import { checkAttributes, checkGroupName, checkPolicyName, checkThingName } from '../registry/things.js';
import type {
  AutoRegistration,
  AutoRegistrationResult,
  AutoRegistrationStore,
  CaProvisioningStore,
  CertificateRecord,
  CertificateStore,
  NewCertificate,
} from '../store/index.js';

/** Characters of the CA's provisioningTemplate field (the API's limit too). */
export const JIT_TEMPLATE_MAX_LENGTH = 8192;
const MAX_LIST = 16;
const TEMPLATE_NAME = /^[A-Za-z0-9_-]{1,128}$/;
const PLACEHOLDER = /\$\{([^}]*)\}/g;
/** What a thing name may hold around its placeholders (registry/things.ts). */
const THING_NAME_LITERAL = /^[A-Za-z0-9:_-]*$/;
const VARIABLES = ['cert.subject.cn', 'cert.subject.serialNumber'] as const;
type Variable = (typeof VARIABLES)[number];

/** The certificate profile recorded for each way of registering. */
export const JITP_PROFILE = 'jitp';
export const JITR_PROFILE = 'jitr';

export interface JitTemplate {
  readonly thingName: string;
  readonly attributes: Readonly<Record<string, string>>;
  readonly groups: readonly string[];
  readonly policies: readonly string[];
}

/** What a CA's provisioningTemplate field holds. */
export type ProvisioningTemplateField = { readonly kind: 'inline'; readonly template: JitTemplate } | { readonly kind: 'named'; readonly name: string };

const bad = (msg: string) => new CertfleetError('bad-request', `provisioningTemplate: ${msg}`);

/**
 * Parses the field: a JSON JIT template (checked strictly: unknown keys,
 * unknown placeholders and bad names are refused) or a template name.
 * Throws CertfleetError 'bad-request'.
 */
export function parseProvisioningTemplate(text: string): ProvisioningTemplateField {
  if (typeof text !== 'string') throw bad('must be a string');
  if (text.length > JIT_TEMPLATE_MAX_LENGTH) throw bad(`at most ${JIT_TEMPLATE_MAX_LENGTH} characters`);
  if (!text.trimStart().startsWith('{')) {
    if (!TEMPLATE_NAME.test(text)) throw bad('a JSON object (a JIT template) or a template name of 1-128 of A-Z a-z 0-9 _ -');
    return { kind: 'named', name: text };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw bad(`not JSON: ${(err as Error).message}`);
  }
  return { kind: 'inline', template: parseJitTemplate(value) };
}

/** Checks a decoded JIT template; returns a frozen copy. */
export function parseJitTemplate(value: unknown): JitTemplate {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('must be a JSON object');
  const obj = value as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!['thingName', 'attributes', 'groups', 'policies'].includes(key)) throw bad(`unknown field "${key}" (thingName, attributes, groups, policies)`);
  }
  if (typeof obj.thingName !== 'string' || obj.thingName.length === 0 || obj.thingName.length > 256) throw bad('thingName: a string is required');
  checkPlaceholders(obj.thingName, 'thingName');
  if (!THING_NAME_LITERAL.test(obj.thingName.replace(PLACEHOLDER, ''))) {
    throw bad('thingName: outside placeholders, only A-Z a-z 0-9 : _ - (what thing names allow)');
  }
  let attributes: Record<string, string>;
  try {
    attributes = checkAttributes(obj.attributes);
  } catch (err) {
    throw bad(`attributes: ${(err as Error).message}`);
  }
  for (const [k, v] of Object.entries(attributes)) checkPlaceholders(v, `attributes.${k}`);
  const groups = nameList(obj.groups, 'groups', checkGroupName);
  const policies = nameList(obj.policies, 'policies', checkPolicyName);
  return Object.freeze({ thingName: obj.thingName, attributes: Object.freeze(attributes), groups, policies });
}

/** For the API: null clears the field; anything else must parse. */
export function checkProvisioningTemplate(text: string | null): string | null {
  if (text !== null) parseProvisioningTemplate(text);
  return text;
}

function checkPlaceholders(text: string, path: string): void {
  for (const m of text.matchAll(PLACEHOLDER)) {
    if (!(VARIABLES as readonly string[]).includes(m[1]!)) throw bad(`${path}: unknown placeholder \${${m[1]}} (\${cert.subject.cn} or \${cert.subject.serialNumber})`);
  }
  if (text.replace(PLACEHOLDER, '').includes('${')) throw bad(`${path}: an unterminated placeholder`);
}

function nameList(v: unknown, path: string, check: (n: unknown) => string): readonly string[] {
  if (v === undefined) return Object.freeze([]);
  if (!Array.isArray(v) || v.length > MAX_LIST) throw bad(`${path}: an array of at most ${MAX_LIST} names`);
  const names = v.map((n, i) => {
    try {
      return check(n);
    } catch (err) {
      throw bad(`${path}[${i}]: ${(err as Error).message}`);
    }
  });
  if (new Set(names).size !== names.length) throw bad(`${path}: a name is listed twice`);
  return Object.freeze(names);
}

/** The values of the placeholders for one certificate; a missing attribute is undefined. */
function variablesOf(leaf: Certificate): Record<Variable, string | undefined> {
  const attrs = leaf.subjectAttributes();
  const last = (type: string) => attrs.filter((a) => a.type === type).at(-1)?.value;
  return { 'cert.subject.cn': last(OID.commonName), 'cert.subject.serialNumber': last(OID.serialNumber) };
}

/**
 * Fills the placeholders. The thing name needs every attribute it names
 * (else CertfleetError 'bad-request' naming what the certificate lacks); an
 * attribute whose placeholder has no value is left out, so one template
 * serves devices with and without, say, a subject serialNumber.
 */
export function renderJitTemplate(t: JitTemplate, leaf: Certificate): { thingName: string; attributes: Record<string, string> } {
  const vars = variablesOf(leaf);
  /** The text filled in, or the name of the first variable the certificate has no value for. */
  const fill = (text: string): { text: string } | { missing: Variable } => {
    const missing = [...text.matchAll(PLACEHOLDER)].map((m) => m[1] as Variable).find((name) => vars[name] === undefined);
    return missing ? { missing } : { text: text.replace(PLACEHOLDER, (_, name: Variable) => vars[name]!) };
  };
  const name = fill(t.thingName);
  if ('missing' in name) throw new CertfleetError('bad-request', `thingName: the certificate subject has no ${name.missing.slice('cert.subject.'.length)}`);
  let thingName: string;
  try {
    thingName = checkThingName(name.text);
  } catch {
    throw new CertfleetError('bad-request', `thingName: "${name.text}" from the certificate is not a thing name (1-128 of A-Z a-z 0-9 : _ -)`);
  }
  const attributes: Record<string, string> = {};
  for (const [k, v] of Object.entries(t.attributes)) {
    const filled = fill(v);
    if ('text' in filled) attributes[k] = filled.text;
  }
  return { thingName, attributes: checkAttributes(attributes) };
}

export interface JitDeps {
  readonly cas: Pick<CaProvisioningStore, 'getCaProvisioning'>;
  readonly store: Pick<AutoRegistrationStore, 'autoRegisterCertificate'> & Pick<CertificateStore, 'getCertificate'>;
  readonly bus: Pick<EventBus, 'emit'>;
  readonly now: () => Date;
  /** Resolves a template NAME held by a CA (full provisioning templates); without it such a CA provisions nothing. */
  readonly namedTemplate?: (name: string) => Promise<JitTemplate | undefined>;
}

/** Store errors that mean "this template cannot provision this device", not "the store is down". */
const REFUSING = new Set(['bad-request', 'not-found', 'invalid-state']);

export class JustInTimeProvisioning {
  constructor(private readonly deps: JitDeps) {}

  /** The broker's hook (AdmissionDeps.autoRegister). Rejects only when the store fails. */
  readonly register: AutoRegister = async (c: UnregisteredCertificate): Promise<AutoRegistrationOutcome> => {
    const ca = await this.autoRegisteringCa(c.issuerIds);
    if (!ca) return undefined;
    try {
      return await this.registerUnder(ca.caId, ca.template, c.leaf);
    } catch (err) {
      if (err instanceof CertfleetError && REFUSING.has(err.code)) return { refused: err.message };
      throw err;
    }
  };

  /** The first registration of the issuing CA with auto-registration on. */
  private async autoRegisteringCa(ids: readonly string[]): Promise<{ caId: string; template: string | null } | undefined> {
    for (const id of ids) {
      const p = await this.deps.cas.getCaProvisioning(id);
      if (p?.autoRegistration) return { caId: id, template: p.provisioningTemplate };
    }
    return undefined;
  }

  private async registerUnder(caId: string, field: string | null, leaf: Certificate): Promise<AutoRegistrationOutcome> {
    const base = this.certificate(leaf, caId);
    if (field === null) {
      const certificate: NewCertificate = { ...base, status: 'pending-activation', profile: JITR_PROFILE, thingName: null };
      return { registered: await this.store({ certificate, groups: [], policies: [] }, caId, 'certificate.jitr') };
    }
    const template = await this.template(field);
    const { thingName, attributes } = renderJitTemplate(template, leaf);
    const certificate: NewCertificate = { ...base, status: 'active', profile: JITP_PROFILE, thingName };
    const reg: AutoRegistration = { certificate, thingAttributes: attributes, groups: template.groups, policies: template.policies };
    return { registered: await this.store(reg, caId, 'certificate.jitp', { thing: thingName, groups: template.groups, policies: template.policies }) };
  }

  private async template(field: string): Promise<JitTemplate> {
    const parsed = parseProvisioningTemplate(field);
    if (parsed.kind === 'inline') return parsed.template;
    const t = this.deps.namedTemplate ? await this.deps.namedTemplate(parsed.name) : undefined;
    if (!t) throw new CertfleetError('not-found', `provisioning template ${parsed.name} cannot be used for just-in-time provisioning`);
    return t;
  }

  /**
   * Registers in one transaction; the loser of a race reads the winner's row
   * (the certificates primary key decides). Emits certificate.registered once,
   * from the winner.
   */
  private async store(reg: AutoRegistration, caId: string, action: 'certificate.jitp' | 'certificate.jitr', details: Record<string, unknown> = {}): Promise<CertificateRecord> {
    const c = reg.certificate;
    const entry = audit(SYSTEM, action, `certificate:${c.id}`, { caId, subject: c.subject, serial: c.serial, status: c.status, ...details });
    let result: AutoRegistrationResult;
    try {
      result = await this.deps.store.autoRegisterCertificate(reg, entry);
    } catch (err) {
      if (!(err instanceof CertfleetError) || err.code !== 'conflict') throw err;
      const winner = await this.deps.store.getCertificate(c.id);
      if (!winner) throw new CertfleetError('invalid-state', `serial ${c.serial} is already registered for another certificate`, { cause: err });
      return winner;
    }
    if (result.registered) {
      this.deps.bus.emit('certificate.registered', { certificateId: c.id, caId, status: result.certificate.status });
      // A reused thing may have joined groups: its other connections reload their policies.
      if (c.thingName !== null && !result.thingCreated && reg.groups.length > 0) this.deps.bus.emit('thing.changed', { thingName: c.thingName, certificateId: c.id });
    }
    return result.certificate;
  }

  private certificate(leaf: Certificate, caId: string): Omit<NewCertificate, 'status' | 'profile' | 'thingName'> {
    return {
      id: leaf.fingerprint(),
      serial: leaf.serial(),
      issuerId: caId,
      subject: leaf.subject(),
      notBefore: leaf.notBefore(),
      notAfter: leaf.notAfter(),
      keyAlgorithm: leaf.keyAlgorithm(),
      der: leaf.der,
      createdAt: this.deps.now(),
    };
  }
}
