/**
 * The CA hierarchy: creating roots and intermediates (through the signer),
 * and giving the issuance path what it needs of an issuer — its public
 * information, its chain, and one template per profile, built once.
 */
import { randomBytes } from 'node:crypto';
import {
  Certificate,
  CertificateTemplate,
  encodeName,
  issuerInfoFromCertificate,
  parseName,
  prepareIssuance,
  PROFILES,
  selfIssuerInfo,
  withPathLen,
  withValidity,
  type IssuerInfo,
  type KeyAlgorithm,
  type NameAttribute,
  type Profile,
} from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import type { Signer } from '../signer/signer.js';
import type { EventBus } from '../events/bus.js';
import type { IssuerRotationStore } from '../store/index.js';
import type { AuditLogStore, CaKeyStore, CaProvisioning, CaProvisioningStore, CaRecord, CaStatus, CaStore, SettingsStore } from '../store/index.js';
import { checkShardCount, crlPath, crlShardsSetting, ocspPath, SETTING_PUBLIC_URL, shardOf } from '../revocation/locations.js';
import { audit, INIT, type Actor } from './actor.js';

export interface AuthoritiesDeps {
  readonly cas: CaStore & Pick<CaKeyStore, 'createCaWithKey'> & CaProvisioningStore & Pick<AuditLogStore, 'appendAudit'>;
  readonly bus: Pick<EventBus, 'emit'>;
  readonly settings: SettingsStore;
  readonly signer: Signer;
  readonly now: () => Date;
  /** Cross certificates (issuer rotation, lifecycle/issuer-rotation.ts), served in chains. */
  readonly crossCertificates?: Pick<IssuerRotationStore, 'crossCertificatesOf'>;
}

export interface NewAuthority {
  readonly name: string;
  /** Distinguished name, e.g. `CN=Acme Device Root,O=Acme`; `CN=<name>` when absent. */
  readonly subject?: string;
  readonly keyAlgorithm?: KeyAlgorithm;
  readonly validityDays?: number;
  /** Intermediates only: the parent CA's id. */
  readonly parentId?: string;
  /** Intermediates only: pathLenConstraint (default 0: it issues only end entities). */
  readonly pathLen?: number | null;
}

/** Settings keys naming the CAs `init` made. */
export const SETTING_ROOT = 'ca.root';
export const SETTING_ISSUER = 'ca.issuing';

const CA_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

interface Loaded {
  readonly record: CaRecord;
  readonly cert: Certificate;
  readonly info: IssuerInfo;
  readonly templates: Map<string, CertificateTemplate>;
}

export class Authorities {
  private readonly cache = new Map<string, Loaded>();

  constructor(private readonly deps: AuthoritiesDeps) {}

  async createRoot(req: NewAuthority, actor: Actor = INIT): Promise<CaRecord> {
    return this.create(req, undefined, actor);
  }

  async createIntermediate(req: NewAuthority & { parentId: string }, actor: Actor = INIT): Promise<CaRecord> {
    const parent = await this.load(req.parentId);
    // A CA registered from outside has no key here (registry/external-cas.ts): it cannot sign an intermediate.
    if (parent.record.kind === 'external') throw new CertfleetError('invalid-state', `CA ${parent.record.name} was registered from outside: certfleet holds no key for it and cannot issue under it`);
    return this.create(req, parent, actor);
  }

  private async create(req: NewAuthority, parent: Loaded | undefined, actor: Actor): Promise<CaRecord> {
    if (!CA_NAME.test(req.name)) throw new CertfleetError('bad-request', `CA name "${req.name}" must be 1-64 of A-Z a-z 0-9 . _ -`);
    if (await this.deps.cas.getCaByName(req.name)) throw new CertfleetError('conflict', `a CA named ${req.name} exists`);
    if (parent && parent.record.status !== 'active') throw new CertfleetError('invalid-state', `parent CA ${parent.record.name} is ${parent.record.status}`);
    let subject: NameAttribute[];
    try {
      subject = parseName(req.subject ?? `CN=${req.name}`);
    } catch (err) {
      throw new CertfleetError('bad-request', (err as Error).message, { cause: err });
    }
    const id = `ca-${randomBytes(8).toString('hex')}`;
    const { signer } = this.deps;
    const publicKey = signer.generateKey(id, req.keyAlgorithm ?? 'ec-p256');
    try {
      let profile: Profile = parent ? withPathLen(PROFILES['intermediate-ca'], req.pathLen === undefined ? 0 : req.pathLen) : PROFILES['root-ca'];
      if (req.validityDays) profile = withValidity(profile, req.validityDays);
      const issuer = parent ? parent.info : selfIssuerInfo(id, encodeName(subject), publicKey.spki, publicKey.key);
      const now = this.deps.now();
      const prepared = prepareIssuance(new CertificateTemplate(issuer, profile), { subject, publicKey, now });
      const der = await signer.issue(prepared);
      const cert = Certificate.fromDer(der);
      const record: CaRecord = {
        id,
        name: req.name,
        parentId: parent?.record.id ?? null,
        kind: parent ? 'intermediate' : 'root',
        status: 'active',
        keyAlgorithm: publicKey.algorithm,
        subject: cert.subject(),
        serial: cert.serial(),
        certificateDer: der,
        notBefore: cert.notBefore(),
        notAfter: cert.notAfter(),
        pathLen: cert.basicConstraints()?.pathLen ?? null,
        createdAt: now,
      };
      await this.deps.cas.createCaWithKey(
        record,
        signer.sealedKey(id),
        audit(actor, 'ca.create', `ca:${id}`, { name: record.name, kind: record.kind, parentId: record.parentId, subject: record.subject, keyAlgorithm: record.keyAlgorithm }),
      );
      signer.keyStored(id);
      return record;
    } catch (err) {
      signer.discardKey(id);
      throw err;
    }
  }

  async list(): Promise<CaRecord[]> {
    return this.deps.cas.listCas();
  }

  /** A CA by id or by name. */
  async get(idOrName: string): Promise<CaRecord> {
    const rec = (await this.deps.cas.getCa(idOrName)) ?? (await this.deps.cas.getCaByName(idOrName));
    if (!rec) throw new CertfleetError('not-found', `no CA ${idOrName}`);
    return rec;
  }

  private async load(idOrName: string): Promise<Loaded> {
    const cached = this.cache.get(idOrName);
    if (cached) return cached;
    const record = await this.get(idOrName);
    const cert = Certificate.fromDer(record.certificateDer);
    const loaded: Loaded = { record, cert, info: issuerInfoFromCertificate(record.id, cert, await this.revocationUrls(record.id)), templates: new Map() };
    this.cache.set(record.id, loaded);
    return loaded;
  }

  /**
   * Where certificates of this issuer point relying parties (RFC 5280
   * §4.2.1.13, §4.2.2.1): the OCSP responder and, unless the issuer's CRL is
   * partitioned (then crlUrl() per certificate), its CRL. None until the node
   * knows its public HTTP URL.
   */
  private async revocationUrls(issuerId: string): Promise<IssuerInfo['urls']> {
    const base = await this.deps.settings.getSetting(SETTING_PUBLIC_URL);
    if (!base) return undefined;
    const shards = await this.crlShards(issuerId);
    return { ocsp: base + ocspPath, ...(shards === 1 ? { crl: base + crlPath(issuerId, 0, 1) } : {}) };
  }

  async crlShards(issuerId: string): Promise<number> {
    return Number((await this.deps.settings.getSetting(crlShardsSetting(issuerId))) ?? '1');
  }

  /** A partitioned issuer's CRL URL for one serial; undefined when the issuer-wide URL applies. */
  async crlUrl(issuerId: string, serial: string): Promise<string | undefined> {
    const shards = await this.crlShards(issuerId);
    const base = await this.deps.settings.getSetting(SETTING_PUBLIC_URL);
    if (shards === 1 || !base) return undefined;
    return base + crlPath(issuerId, shardOf(serial, shards), shards);
  }

  /**
   * Sets how many CRL shards an issuer has. Only before it has issued
   * anything: a certificate's distribution point is fixed when it is signed.
   */
  async setCrlShards(actor: Actor, idOrName: string, shards: number, issued: number): Promise<void> {
    const ca = await this.get(idOrName);
    checkShardCount(shards);
    if (issued > 0 && shards !== (await this.crlShards(ca.id))) {
      throw new CertfleetError('invalid-state', `CA ${ca.name} has issued ${issued} certificates; their CRL distribution points cannot move`);
    }
    await this.deps.settings.putSetting(crlShardsSetting(ca.id), String(shards));
    await this.deps.cas.appendAudit(audit(actor, 'ca.set-crl-shards', `ca:${ca.id}`, { shards }));
    this.invalidate(ca.id);
  }

  /** The node's public plain-HTTP base URL, written into certificates issued from now on. */
  async setPublicUrl(url: string): Promise<void> {
    await this.deps.settings.putSetting(SETTING_PUBLIC_URL, url.replace(/\/+$/, ''));
    this.invalidate();
  }

  /** What a CRL or OCSP response needs of an issuer: its public information and certificate. */
  async issuer(idOrName: string): Promise<{ record: CaRecord; cert: Certificate; info: IssuerInfo }> {
    const l = await this.load(idOrName);
    // Its CRLs and OCSP responses are its owner's to sign, from its own key (registry/external-cas.ts).
    if (l.record.kind === 'external') throw new CertfleetError('not-found', `CA ${l.record.name} was registered from outside: certfleet holds no key for it and publishes no CRL or OCSP for it`);
    return { record: l.record, cert: l.cert, info: l.info };
  }

  /** The CA that signs device certificates unless a request names another. */
  async defaultIssuerId(): Promise<string> {
    const id = await this.deps.settings.getSetting(SETTING_ISSUER);
    if (!id) throw new CertfleetError('invalid-state', 'no issuing CA: run `certfleet init` first');
    return id;
  }

  async rootId(): Promise<string> {
    const id = await this.deps.settings.getSetting(SETTING_ROOT);
    if (!id) throw new CertfleetError('invalid-state', 'no root CA: run `certfleet init` first');
    return id;
  }

  /** The template for `profile` under an active issuer, built once per (issuer, profile). */
  async template(issuerId: string, profile: Profile): Promise<CertificateTemplate> {
    const ca = await this.load(issuerId);
    if (ca.record.kind === 'external') throw new CertfleetError('invalid-state', `CA ${ca.record.name} was registered from outside: certfleet holds no key for it and cannot issue under it`);
    const status = (await this.deps.cas.getCa(ca.record.id))?.status;
    if (status !== 'active') throw new CertfleetError('invalid-state', `CA ${ca.record.name} is ${status} and cannot issue`);
    const key = `${profile.name}/${profile.validityDays}`;
    let t = ca.templates.get(key);
    if (!t) {
      t = new CertificateTemplate(ca.info, profile);
      ca.templates.set(key, t);
    }
    return t;
  }

  /** The certificates from `issuerId` up to its root, issuer first (the root last). */
  async chain(issuerId: string): Promise<Certificate[]> {
    const out: Certificate[] = [];
    let id: string | null = issuerId;
    while (id) {
      const ca: Loaded = await this.load(id);
      out.push(ca.cert);
      id = ca.record.parentId;
      if (out.length > 8) throw new CertfleetError('internal', 'CA hierarchy deeper than 8: a parent loop?');
    }
    await this.withCrossCertificates(out);
    return out;
  }

  /**
   * Issuer rotation: each CA above the issuer that an older root
   * cross-certified gets its cross certificates placed just before it, so a
   * device trusting only the old root builds leaf → issuer → cross → old
   * root, and one trusting the new root still ends at the new root (RFC 4158
   * §2.3; validators take the first usable issuer they meet). Only those
   * still valid and signed by an active CA. A chain of one (a root alone)
   * is left as it is.
   */
  private async withCrossCertificates(chain: Certificate[]): Promise<void> {
    const source = this.deps.crossCertificates;
    if (!source || chain.length < 2) return;
    const now = this.deps.now();
    for (let i = chain.length - 1; i >= 1; i--) {
      const ca = [...this.cache.values()].find((l) => l.cert === chain[i]);
      if (!ca) continue;
      // Cached like the CA itself (issuance's hot path); invalidate() forgets them.
      let crosses = this.crossCache.get(ca.record.id);
      if (!crosses) {
        crosses = [];
        for (const x of await source.crossCertificatesOf(ca.record.id)) {
          if ((await this.deps.cas.getCa(x.signedBy))?.status === 'active') crosses.push(Certificate.fromDer(x.der));
        }
        this.crossCache.set(ca.record.id, crosses);
      }
      chain.splice(i, 0, ...crosses.filter((c) => c.notAfter() > now));
    }
  }
  private readonly crossCache = new Map<string, Certificate[]>();

  /** Activates, deactivates or revokes a CA; the broker stops admitting under it at once. */
  async setStatus(actor: Actor, idOrName: string, status: CaStatus): Promise<CaRecord> {
    const ca = await this.get(idOrName);
    if (ca.status === status) return ca;
    if (ca.status === 'revoked') throw new CertfleetError('invalid-state', `CA ${ca.name} is revoked, which is final`);
    await this.deps.cas.setCaStatus(ca.id, status, audit(actor, `ca.${status === 'active' ? 'activate' : status === 'revoked' ? 'revoke' : 'deactivate'}`, `ca:${ca.id}`, { from: ca.status, to: status }));
    this.invalidate(ca.id);
    this.deps.bus.emit('ca.status-changed', { caId: ca.id, to: status });
    return { ...ca, status };
  }

  async provisioning(idOrName: string): Promise<CaProvisioning> {
    const ca = await this.get(idOrName);
    const p = await this.deps.cas.getCaProvisioning(ca.id);
    if (!p) throw new CertfleetError('not-found', `no CA ${idOrName}`);
    return p;
  }

  async updateProvisioning(actor: Actor, idOrName: string, update: { autoRegistration?: boolean; provisioningTemplate?: string | null }): Promise<CaProvisioning> {
    const ca = await this.get(idOrName);
    await this.deps.cas.updateCa(ca.id, update, audit(actor, 'ca.update', `ca:${ca.id}`, { ...update }));
    return this.provisioning(ca.id);
  }

  /** Forgets cached CA state (after a status change). */
  invalidate(id?: string): void {
    this.crossCache.clear();
    if (id) this.cache.delete(id);
    else this.cache.clear();
  }
}
