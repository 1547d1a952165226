/**
 * One-time enrollment secrets for EST simpleenroll over HTTP Basic (RFC 7030
 * §3.2.3, RFC 7617): an operator makes them per device (bound to a thing
 * name: the certificate goes on that thing, created if missing) or per batch
 * (N secrets for devices not named yet: a device names itself by its CSR's
 * CN, or the template names it from `${cert.subject.cn}`).
 *
 * The secret is 32 bytes from the CSPRNG (256 bits), shown once, stored only
 * as its SHA-256. A slow password hash (scrypt) protects low-entropy
 * passwords against guessing from a stolen table; a secret with 256 random
 * bits cannot be guessed either way, so a fast hash loses nothing and keeps
 * enrollment cheap (as API tokens and ownership tokens). The hash is
 * compared in constant time. The secret is spent by compare-and-set in the
 * transaction that stores the certificate: of two enrollments with one
 * secret exactly one commits; expired, spent or revoked is 401, nothing
 * issued.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { Certificate, certsOnlyPkcs7, commonName, OID, parseCsr } from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import type { EventBus } from '../events/index.js';
import { audit, type Actor } from '../registry/actor.js';
import type { Issuance } from '../registry/issuance.js';
import { checkThingName } from '../registry/things.js';
import type { EnrollmentSecretRecord, EnrollmentStore, NewEnrollmentSecret, Page } from '../store/index.js';
import { refuseRoleTemplates } from './gateway-role.js';
import type { ProvisioningTemplates } from './template-registry.js';
import { decideThing, renderTemplate, resolveParameters, type ProvisioningTemplate } from './templates.js';

export const DEFAULT_SECRET_HOURS = 72;
const MAX_SECRET_HOURS = 24 * 365;
export const MAX_SECRETS_PER_REQUEST = 10_000;
const BATCH_LABEL = /^[A-Za-z0-9:_.-]{1,128}$/;
const PROFILES = ['device', 'server'];

export interface SecretRequest {
  readonly thing?: unknown;
  readonly count?: unknown;
  readonly batch?: unknown;
  readonly expiresInHours?: unknown;
  readonly template?: unknown;
  readonly profile?: unknown;
}

export interface IssuedSecret {
  readonly id: string;
  readonly username: string;
  /** Shown once, never kept. */
  readonly secret: string;
  readonly thing?: string;
  readonly batch?: string;
  readonly expiresAt: string;
}

export interface SecretView {
  readonly id: string;
  readonly username: string;
  readonly thing: string | null;
  readonly batch: string | null;
  readonly template: string | null;
  readonly profile: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  readonly status: 'unused' | 'spent' | 'revoked' | 'expired';
  readonly spentAt: string | null;
  readonly certificateId: string | null;
}

export interface EnrollmentSecretsDeps {
  readonly store: Pick<EnrollmentStore, 'insertEnrollmentSecrets' | 'getEnrollmentSecretByUsername' | 'listEnrollmentSecrets' | 'revokeEnrollmentSecret' | 'enrollWithSecret'>;
  readonly templates: Pick<ProvisioningTemplates, 'load'>;
  /** An Issuance whose thing lookup lets the store create the thing in the certificate's transaction. */
  readonly issuance: Pick<Issuance, 'fromCsr'>;
  readonly bus: Pick<EventBus, 'emit'>;
  readonly now: () => Date;
  readonly random?: (bytes: number) => Buffer;
}

export const secretActor = (id: string): Actor => ({ id: `enrollment-secret:${id}` });
const hash = (secret: string): Buffer => createHash('sha256').update(secret, 'utf8').digest();
const denied = (detail: string) => new CertfleetError('unauthorized', detail);

function secretView(r: EnrollmentSecretRecord, now: Date): SecretView {
  const status = r.spentAt ? 'spent' : r.revokedAt ? 'revoked' : r.expiresAt.getTime() <= now.getTime() ? 'expired' : 'unused';
  return {
    id: r.id,
    username: r.username,
    thing: r.thingName,
    batch: r.batch,
    template: r.template,
    profile: r.profile,
    createdAt: r.createdAt.toISOString(),
    expiresAt: r.expiresAt.toISOString(),
    status,
    spentAt: r.spentAt?.toISOString() ?? null,
    certificateId: r.certificateId,
  };
}

function whole(v: unknown, name: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new CertfleetError('bad-request', `${name} must be a whole number from ${min} to ${max}`);
  return v;
}

export class EnrollmentSecrets {
  readonly #random: (bytes: number) => Buffer;

  constructor(private readonly deps: EnrollmentSecretsDeps) {
    this.#random = deps.random ?? randomBytes;
  }

  async #template(name: string | null): Promise<ProvisioningTemplate | undefined> {
    if (name === null) return undefined;
    const t = await this.deps.templates.load(name);
    if (!t) throw new CertfleetError('not-found', `no provisioning template named ${name}`);
    return refuseRoleTemplates(name, t);
  }

  async create(actor: Actor, req: SecretRequest): Promise<IssuedSecret[]> {
    const thing = req.thing === undefined ? null : checkThingName(req.thing);
    const count = whole(req.count, 'count', 1, MAX_SECRETS_PER_REQUEST, 1);
    if (thing !== null && count !== 1) throw new CertfleetError('bad-request', 'a secret bound to a thing is one secret: give thing, or count and batch');
    if (req.batch !== undefined && (typeof req.batch !== 'string' || !BATCH_LABEL.test(req.batch))) throw new CertfleetError('bad-request', 'batch must be 1-128 characters of A-Z a-z 0-9 : _ . -');
    const batch = (req.batch as string | undefined) ?? null;
    if (thing === null && batch === null) throw new CertfleetError('bad-request', 'give thing (one device) or batch (devices not named yet)');
    const hours = whole(req.expiresInHours, 'expiresInHours', 1, MAX_SECRET_HOURS, DEFAULT_SECRET_HOURS);
    const profile = req.profile ?? 'device';
    if (typeof profile !== 'string' || !PROFILES.includes(profile)) throw new CertfleetError('bad-request', `profile must be one of ${PROFILES.join(', ')}`);
    if (req.template !== undefined && typeof req.template !== 'string') throw new CertfleetError('bad-request', 'template must be a template name');
    const templateName = (req.template as string | undefined) ?? null;
    const template = await this.#template(templateName);
    // A dry run now, so a template EST cannot fill (a parameter without a default) is refused before any device meets it.
    if (template) plan(template, thing, { id: '0'.repeat(64), subjectCn: 'device' });

    const createdAt = this.deps.now();
    const expiresAt = new Date(createdAt.getTime() + hours * 3_600_000);
    const issued: IssuedSecret[] = [];
    const rows: NewEnrollmentSecret[] = [];
    for (let i = 0; i < count; i++) {
      const id = `es_${this.#random(12).toString('hex')}`;
      const username = `est-${this.#random(9).toString('base64url')}`;
      const secret = this.#random(32).toString('base64url');
      rows.push({ id, username, secretHash: hash(secret).toString('hex'), thingName: thing, batch, template: templateName, profile, createdAt, expiresAt });
      issued.push({ id, username, secret, ...(thing !== null ? { thing } : {}), ...(batch !== null ? { batch } : {}), expiresAt: expiresAt.toISOString() });
    }
    await this.deps.store.insertEnrollmentSecrets(
      rows,
      audit(actor, 'enrollment-secret.create', thing !== null ? `thing:${thing}` : `enrollment-batch:${batch}`, { count, ...(count <= 20 ? { ids: rows.map((r) => r.id) } : {}), template: templateName, profile, expiresAt: expiresAt.toISOString() }),
    );
    return issued;
  }

  async list(query: { batch?: string; limit: number; cursor?: string }): Promise<Page<SecretView>> {
    const page = await this.deps.store.listEnrollmentSecrets(query);
    const now = this.deps.now();
    return { items: page.items.map((r) => secretView(r, now)), ...(page.next ? { next: page.next } : {}) };
  }

  async revoke(actor: Actor, id: string): Promise<SecretView> {
    const r = await this.deps.store.revokeEnrollmentSecret(id, this.deps.now(), audit(actor, 'enrollment-secret.revoke', `enrollment-secret:${id}`));
    return secretView(r, this.deps.now());
  }

  /** HTTP Basic credentials to the secret they name, if it can still be spent; every refusal is 401. */
  async authenticate(username: string, secret: string): Promise<EnrollmentSecretRecord> {
    const record = username.length <= 64 ? await this.deps.store.getEnrollmentSecretByUsername(username) : undefined;
    // Hashed and compared even for an unknown user name, so timing does not tell which names exist.
    const stored = Buffer.from(record?.secretHash ?? '00'.repeat(32), 'hex');
    const given = hash(secret);
    if (!timingSafeEqual(stored, given) || !record) throw denied('unknown EST user name or wrong enrollment secret');
    if (record.spentAt) throw denied('this enrollment secret was already used');
    if (record.revokedAt) throw denied('this enrollment secret was revoked');
    if (record.expiresAt.getTime() <= this.deps.now().getTime()) throw denied('this enrollment secret expired');
    return record;
  }

  /** RFC 7030 §4.2.1 with a secret: the certificate, its thing and the spending of the secret in one transaction. */
  async enroll(secret: EnrollmentSecretRecord, csrDer: Buffer): Promise<{ certificateId: string; thingName: string | null; pkcs7: Buffer }> {
    const template = await this.#template(secret.template);
    const csrCn = commonName(parseCsr(csrDer).subject) ?? null;
    // Decided before signing: the thing's name is the certificate's CN.
    let thingName = secret.thingName;
    if (thingName === null && template) thingName = plan(template, null, { id: '0'.repeat(64), subjectCn: csrCn }).thingName;
    else if (thingName === null) {
      if (csrCn === null) throw new CertfleetError('bad-request', "a batch secret names the device by its CSR's subject CN, and this CSR has none");
      thingName = checkThingName(csrCn);
    }
    const name = thingName;
    const actor = secretActor(secret.id);
    const at = this.deps.now();
    try {
      const issued = await this.deps.issuance.fromCsr({
        csr: csrDer,
        profile: secret.profile,
        thing: name,
        actor,
        store: async (record, entry) => {
          const p = template ? plan(template, secret.thingName, { id: record.id, subjectCn: cnOf(record.der) }) : undefined;
          // Without a template: a bound thing is created if missing (the operator named it);
          // a device naming itself from a batch secret may not take over an existing thing.
          const rule = p?.override ?? (secret.thingName !== null ? 'do-nothing' : 'fail');
          await this.deps.store.enrollWithSecret(
            { secretId: secret.id, at, certificate: record, decideThing: (existing) => decideThing(rule, existing, p?.attributes ?? {}), policies: p?.policies ?? [], groups: p?.groups ?? [] },
            entry && { ...entry, details: { ...entry.details, thing: name, template: secret.template, batch: secret.batch } },
          );
        },
      });
      this.deps.bus.emit('thing.changed', { thingName: name, certificateId: issued.record.id });
      return { certificateId: issued.record.id, thingName: name, pkcs7: certsOnlyPkcs7([Certificate.fromDer(issued.record.der)]) };
    } catch (err) {
      // The compare-and-set found the secret gone: another enrollment spent it a moment ago (or it just expired).
      if (err instanceof CertfleetError && err.code === 'invalid-state') throw denied('this enrollment secret was already used');
      throw err;
    }
  }
}

function cnOf(der: Buffer): string | null {
  return Certificate.fromDer(der).subjectAttributes().filter((a) => a.type === OID.commonName).at(-1)?.value ?? null;
}

/** The template filled for EST: parameters are the template's defaults; a bound thing keeps the operator's name. */
function plan(t: ProvisioningTemplate, boundThing: string | null, certificate: { id: string; subjectCn: string | null }) {
  const template = boundThing === null ? t : { ...t, thing: { ...t.thing, name: boundThing } };
  if (boundThing === null && t.thing.name.includes('${cert.id}')) throw new CertfleetError('bad-request', 'EST names the thing before the certificate exists: the template cannot name it by ${cert.id}');
  return renderTemplate(template, { parameters: resolveParameters(t, {}), certificate });
}
