import { CertfleetError } from '../errors.js';
import * as attachments from './attachments.js';
import type { AuditInput } from './audit-records.js';
import { appendAudit, prepareAudit } from './audit.js';
import * as certificates from './certificates.js';
import { fromIso, fromIsoOrNull, toIso } from './columns.js';
import { checkLimit, decodeCursor, encodeCursor } from './cursor.js';
import { guarded } from './driver-errors.js';
import * as groups from './groups.js';
import * as lifecycle from './lifecycle.js';
import type { NewCertificate, Page, PageRequest, ThingAttributes, ThingRecord } from './records.js';
import type { Db, OwnershipTokensTable, ProvisioningTemplatesTable } from './schema.js';
import * as things from './things.js';
import { write, type StoreContext } from './transaction.js';

/*
 * SQL for fleet provisioning by claim (schema v6): templates, claim
 * credentials, certificate ownership tokens, and the one transaction that
 * turns a claimed certificate into a thing's identity. Which thing, which
 * attributes, which policies and groups is decided by provisioning/; the
 * store makes it all-or-nothing and conditional on the token.
 */

/** A document as JSON; its grammar belongs to provisioning/templates.ts. */
export type ProvisioningTemplateDocument = Record<string, unknown>;

export interface ProvisioningTemplateRecord {
  name: string;
  document: ProvisioningTemplateDocument;
  createdAt: Date;
  updatedAt: Date;
}

/** A claim credential: a certificate good only for asking for a device certificate and provisioning with `template`. */
export interface ClaimRecord {
  certificateId: string;
  template: string;
  createdAt: Date;
}

export interface NewOwnershipToken {
  /** SHA-256 of the token, hex: the token itself is never stored. */
  tokenHash: string;
  /** The claim certificate that asked for the certificate; only it may spend the token. */
  claimCertificateId: string;
  createdAt: Date;
  expiresAt: Date;
}

export interface OwnershipTokenRecord extends NewOwnershipToken {
  /** The certificate the token proves ownership of. */
  certificateId: string;
  consumedAt: Date | null;
}

/** What provisioning decided to do with the thing, given what exists. */
export type ThingChange =
  | { kind: 'create'; attributes: ThingAttributes }
  | { kind: 'update'; attributes: ThingAttributes }
  | { kind: 'keep' };

export interface DeviceProvisioning {
  tokenHash: string;
  claimCertificateId: string;
  certificateId: string;
  /** Now: the token must not have expired by then; consumed at this time. */
  at: Date;
  thingName: string;
  /**
   * Called inside the transaction with the thing as it is (undefined if
   * none): the template's override rule. May throw (e.g. 'conflict' for
   * the rule "fail"), which rolls everything back.
   */
  decideThing(existing: ThingRecord | undefined): ThingChange;
  /** Attached to the certificate (those already attached are left as they are). */
  policies: readonly string[];
  /** The thing is added to each (where it is not already a member). */
  groups: readonly string[];
}

export interface DeviceProvisioningResult {
  thing: ThingRecord;
  change: ThingChange['kind'];
}

/** Why an expired token's certificate was not deleted. */
export type DiscardOutcome = 'deleted' | 'kept' | 'gone';

/** Fleet provisioning's reads and writes (provisioning/). */
export interface ProvisioningStore {
  /** 'conflict' if the name is taken. */
  createProvisioningTemplate(name: string, document: ProvisioningTemplateDocument, audit?: AuditInput): Promise<ProvisioningTemplateRecord>;
  /** 'not-found' if there is no such template. */
  replaceProvisioningTemplate(name: string, document: ProvisioningTemplateDocument, audit?: AuditInput): Promise<ProvisioningTemplateRecord>;
  getProvisioningTemplate(name: string): Promise<ProvisioningTemplateRecord | undefined>;
  /** Ordered by name. */
  listProvisioningTemplates(page: PageRequest): Promise<Page<ProvisioningTemplateRecord>>;
  /** 'not-found' if there is no such template. Its claims stay (and can no longer provision). */
  deleteProvisioningTemplate(name: string, audit?: AuditInput): Promise<void>;

  /** 'not-found' for an unknown certificate, 'conflict' if it already is a claim. */
  insertClaim(claim: ClaimRecord, audit?: AuditInput): Promise<void>;
  /** A new claim certificate and its claim in one transaction (with its first history entry and `audit`). */
  insertClaimCertificate(certificate: NewCertificate, template: string, audit?: AuditInput): Promise<void>;

  /**
   * A certificate made for a claim and its ownership token, in one
   * transaction (with the certificate's first history entry and `audit`):
   * never a certificate the sweep cannot find.
   */
  insertCertificateWithOwnershipToken(certificate: NewCertificate, token: NewOwnershipToken, audit?: AuditInput): Promise<void>;
  /** Consumed and expired tokens too: the caller says which they are. */
  getOwnershipToken(tokenHash: string): Promise<OwnershipTokenRecord | undefined>;

  /**
   * All or nothing: consumes the token (compare-and-set: unconsumed,
   * unexpired at `at`, for this certificate and claim, else
   * 'invalid-state'), creates or updates the thing as decideThing says,
   * attaches the certificate to it ('invalid-state' if on another thing),
   * attaches the policies and adds the thing to the groups ('not-found' for
   * a missing one), and appends `audit`.
   */
  provisionDevice(p: DeviceProvisioning, audit?: AuditInput): Promise<DeviceProvisioningResult>;

  /** Unconsumed tokens that expired before `before`, soonest first. */
  expiredOwnershipTokens(before: Date, limit: number): Promise<OwnershipTokenRecord[]>;
  /**
   * For an expired, unconsumed token: deletes it and, if its certificate was
   * never used (on no thing, no policy, never connected), the certificate
   * with its history ('deleted'); otherwise only the token ('kept'). 'gone'
   * when the token was consumed or removed meanwhile.
   */
  discardUnprovisionedCertificate(tokenHash: string, at: Date, audit?: AuditInput): Promise<DiscardOutcome>;
  /** Consumed tokens that expired before `before` serve no purpose any more; returns how many went. */
  purgeConsumedOwnershipTokens(before: Date): Promise<number>;
}

/** The broker's read at CONNECT. */
export interface ClaimStore {
  getClaim(certificateId: string): Promise<ClaimRecord | undefined>;
}

const TEMPLATE_COLUMNS = ['name', 'document', 'created_at', 'updated_at'] as const;
const TOKEN_COLUMNS = ['token_hash', 'certificate_id', 'claim_certificate_id', 'created_at', 'expires_at', 'consumed_at'] as const;
const TEMPLATE_CURSOR = 'provisioning-templates';

function templateRecord(row: ProvisioningTemplatesTable): ProvisioningTemplateRecord {
  return {
    name: row.name,
    document: JSON.parse(row.document) as ProvisioningTemplateDocument,
    createdAt: fromIso(row.created_at),
    updatedAt: fromIso(row.updated_at),
  };
}

function tokenRecord(row: OwnershipTokensTable): OwnershipTokenRecord {
  return {
    tokenHash: row.token_hash,
    certificateId: row.certificate_id,
    claimCertificateId: row.claim_certificate_id,
    createdAt: fromIso(row.created_at),
    expiresAt: fromIso(row.expires_at),
    consumedAt: fromIsoOrNull(row.consumed_at),
  };
}

function documentText(document: ProvisioningTemplateDocument): string {
  if (typeof document !== 'object' || document === null || Array.isArray(document)) {
    throw new CertfleetError('bad-request', 'a provisioning template document must be an object');
  }
  return JSON.stringify(document);
}

export async function createProvisioningTemplate(
  ctx: StoreContext,
  name: string,
  document: ProvisioningTemplateDocument,
  audit?: AuditInput,
): Promise<ProvisioningTemplateRecord> {
  const at = toIso(ctx.now(), 'createdAt');
  const row: ProvisioningTemplatesTable = { name, document: documentText(document), created_at: at, updated_at: at };
  await write(ctx, `provisioning template ${name}`, audit, (trx) => trx.insertInto('provisioning_templates').values(row).execute());
  return templateRecord(row);
}

export async function replaceProvisioningTemplate(
  ctx: StoreContext,
  name: string,
  document: ProvisioningTemplateDocument,
  audit?: AuditInput,
): Promise<ProvisioningTemplateRecord> {
  const text = documentText(document);
  const at = toIso(ctx.now(), 'updatedAt');
  return write(ctx, `provisioning template ${name}`, audit, async (trx) => {
    const row = await trx
      .updateTable('provisioning_templates')
      .set({ document: text, updated_at: at })
      .where('name', '=', name)
      .returning(TEMPLATE_COLUMNS)
      .executeTakeFirst();
    if (row === undefined) throw new CertfleetError('not-found', `provisioning template ${name} not found`);
    return templateRecord(row);
  });
}

export async function getProvisioningTemplate(db: Db, name: string): Promise<ProvisioningTemplateRecord | undefined> {
  const row = await guarded(`provisioning template ${name}`, () =>
    db.selectFrom('provisioning_templates').select(TEMPLATE_COLUMNS).where('name', '=', name).executeTakeFirst(),
  );
  return row && templateRecord(row);
}

export async function listProvisioningTemplates(db: Db, page: PageRequest): Promise<Page<ProvisioningTemplateRecord>> {
  checkLimit(page.limit);
  const after = page.cursor === undefined ? undefined : (decodeCursor(TEMPLATE_CURSOR, page.cursor, 1)[0] as string);
  const rows = await guarded('provisioning template list', () => {
    let select = db.selectFrom('provisioning_templates').select(TEMPLATE_COLUMNS);
    if (after !== undefined) select = select.where('name', '>', after);
    return select.orderBy('name').limit(page.limit + 1).execute();
  });
  const items = rows.slice(0, page.limit).map(templateRecord);
  const last = rows.length > page.limit ? rows[page.limit - 1] : undefined;
  return last === undefined ? { items } : { items, next: encodeCursor(TEMPLATE_CURSOR, [last.name]) };
}

export async function deleteProvisioningTemplate(ctx: StoreContext, name: string, audit?: AuditInput): Promise<void> {
  await write(ctx, `provisioning template ${name}`, audit, async (trx) => {
    const result = await trx.deleteFrom('provisioning_templates').where('name', '=', name).executeTakeFirst();
    if (result.numDeletedRows === 0n) throw new CertfleetError('not-found', `provisioning template ${name} not found`);
  });
}

export async function insertClaim(ctx: StoreContext, claim: ClaimRecord, audit?: AuditInput): Promise<void> {
  const row = { certificate_id: claim.certificateId, template: claim.template, created_at: toIso(claim.createdAt, 'createdAt') };
  await write(ctx, `claim ${claim.certificateId}`, audit, async (trx) => {
    const cert = await trx.selectFrom('certificates').select('id').where('id', '=', claim.certificateId).executeTakeFirst();
    if (cert === undefined) throw new CertfleetError('not-found', `certificate ${claim.certificateId} not found`);
    await trx.insertInto('provisioning_claims').values(row).execute();
  });
}

export async function insertClaimCertificate(ctx: StoreContext, certificate: NewCertificate, template: string, audit?: AuditInput): Promise<void> {
  const row = { certificate_id: certificate.id, template, created_at: toIso(certificate.createdAt, 'createdAt') };
  await write(ctx, `certificate ${certificate.id}`, undefined, async (trx) => {
    await certificates.insertCertificate({ ...ctx, db: trx }, certificate, audit);
    await trx.insertInto('provisioning_claims').values(row).execute();
  });
}

export async function getClaim(db: Db, certificateId: string): Promise<ClaimRecord | undefined> {
  const row = await guarded(`claim ${certificateId}`, () =>
    db.selectFrom('provisioning_claims').select(['certificate_id', 'template', 'created_at']).where('certificate_id', '=', certificateId).executeTakeFirst(),
  );
  return row && { certificateId: row.certificate_id, template: row.template, createdAt: fromIso(row.created_at) };
}

export async function insertCertificateWithOwnershipToken(
  ctx: StoreContext,
  certificate: NewCertificate,
  token: NewOwnershipToken,
  audit?: AuditInput,
): Promise<void> {
  const row: OwnershipTokensTable = {
    token_hash: token.tokenHash,
    certificate_id: certificate.id,
    claim_certificate_id: token.claimCertificateId,
    created_at: toIso(token.createdAt, 'createdAt'),
    expires_at: toIso(token.expiresAt, 'expiresAt'),
    consumed_at: null,
  };
  await write(ctx, `certificate ${certificate.id}`, undefined, async (trx) => {
    // Inside our transaction: certificates.insertCertificate joins it (transaction.ts).
    await certificates.insertCertificate({ ...ctx, db: trx }, certificate, audit);
    await trx.insertInto('ownership_tokens').values(row).execute();
  });
}

export async function getOwnershipToken(db: Db, tokenHash: string): Promise<OwnershipTokenRecord | undefined> {
  const row = await guarded('ownership token', () =>
    db.selectFrom('ownership_tokens').select(TOKEN_COLUMNS).where('token_hash', '=', tokenHash).executeTakeFirst(),
  );
  return row && tokenRecord(row);
}

export async function provisionDevice(ctx: StoreContext, p: DeviceProvisioning, audit?: AuditInput): Promise<DeviceProvisioningResult> {
  const at = toIso(p.at, 'at');
  return write(ctx, `provisioning of certificate ${p.certificateId}`, audit, async (trx) => {
    const inner: StoreContext = { ...ctx, db: trx };
    // First, so two requests with one token cannot both get past this line
    // (SQLite: one writer; PostgreSQL: the second waits for the row lock, then finds it consumed).
    const consumed = await trx
      .updateTable('ownership_tokens')
      .set({ consumed_at: at })
      .where('token_hash', '=', p.tokenHash)
      .where('certificate_id', '=', p.certificateId)
      .where('claim_certificate_id', '=', p.claimCertificateId)
      .where('consumed_at', 'is', null)
      .where('expires_at', '>', at)
      .executeTakeFirst();
    if (consumed.numUpdatedRows === 0n) throw new CertfleetError('invalid-state', 'the ownership token is no longer valid');

    const existing = await things.getThing(trx, p.thingName);
    const change = p.decideThing(existing);
    let thing: ThingRecord;
    if (change.kind === 'create') thing = await things.createThing(inner, { name: p.thingName, attributes: change.attributes });
    else if (change.kind === 'update') thing = await things.updateThing(inner, p.thingName, { attributes: change.attributes });
    else if (existing !== undefined) thing = existing;
    else throw new CertfleetError('internal', `provisioning kept thing ${p.thingName}, which does not exist`);

    await lifecycle.attachCertificateToThing(inner, p.certificateId, p.thingName);
    const attached = new Set(await attachments.policiesOfTarget(trx, { type: 'certificate', id: p.certificateId }));
    for (const policy of p.policies) {
      if (!attached.has(policy)) await attachments.attachPolicy(inner, policy, { type: 'certificate', id: p.certificateId });
    }
    const memberOf = new Set((await groups.groupsOfThing(trx, p.thingName)).filter((g) => g.depth === 0).map((g) => g.name));
    for (const group of p.groups) {
      if (!memberOf.has(group)) await groups.addThingToGroup(inner, group, p.thingName);
    }
    return { thing, change: change.kind };
  });
}

export async function expiredOwnershipTokens(db: Db, before: Date, limit: number): Promise<OwnershipTokenRecord[]> {
  checkLimit(limit);
  const rows = await guarded('ownership tokens', () =>
    db
      .selectFrom('ownership_tokens')
      .select(TOKEN_COLUMNS)
      .where('expires_at', '<=', toIso(before, 'before'))
      .where('consumed_at', 'is', null)
      .orderBy('expires_at')
      .limit(limit)
      .execute(),
  );
  return rows.map(tokenRecord);
}

export async function discardUnprovisionedCertificate(ctx: StoreContext, tokenHash: string, at: Date, audit?: AuditInput): Promise<DiscardOutcome> {
  const now = toIso(at, 'at');
  const entry = audit === undefined ? undefined : prepareAudit(audit, ctx.now);
  // Audited only when something is deleted: a kept certificate is not news.
  return write(ctx, 'unprovisioned certificate', undefined, async (trx) => {
    const token = await trx
      .deleteFrom('ownership_tokens')
      .where('token_hash', '=', tokenHash)
      .where('consumed_at', 'is', null)
      .where('expires_at', '<=', now)
      .returning('certificate_id')
      .executeTakeFirst();
    if (token === undefined) return 'gone';
    const id = token.certificate_id;
    const cert = await trx.selectFrom('certificates').select(['thing_name']).where('id', '=', id).executeTakeFirst();
    if (cert === undefined) return 'gone';
    // "Never used": no thing, no policy, no connection, not a claim, no other token.
    const used =
      cert.thing_name !== null ||
      (await trx.selectFrom('policy_attachments').select('policy_name').where('target_type', '=', 'certificate').where('target_id', '=', id).limit(1).executeTakeFirst()) !== undefined ||
      (await trx.selectFrom('connections').select('id').where('certificate_id', '=', id).limit(1).executeTakeFirst()) !== undefined ||
      (await trx.selectFrom('provisioning_claims').select('certificate_id').where('certificate_id', '=', id).executeTakeFirst()) !== undefined ||
      (await trx.selectFrom('ownership_tokens').select('token_hash').where('certificate_id', '=', id).limit(1).executeTakeFirst()) !== undefined;
    if (used) return 'kept';
    await trx.deleteFrom('certificate_status_history').where('certificate_id', '=', id).execute();
    await trx.deleteFrom('certificates').where('id', '=', id).execute();
    if (entry !== undefined) await appendAudit(trx, ctx.dialect, entry);
    return 'deleted';
  });
}

export async function purgeConsumedOwnershipTokens(db: Db, before: Date): Promise<number> {
  const result = await guarded('ownership tokens', () =>
    db.deleteFrom('ownership_tokens').where('consumed_at', 'is not', null).where('expires_at', '<=', toIso(before, 'before')).executeTakeFirst(),
  );
  return Number(result.numDeletedRows);
}
