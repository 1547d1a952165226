/**
 * CRLs per issuer and shard (RFC 5280 §5), signed through the signer, kept
 * in memory and served as a lookup. A revocation marks its CRL dirty; dirty
 * CRLs are rebuilt together after a short delay (so a burst of revocations
 * costs one signature), and every CRL is rebuilt when half of its validity
 * has passed, well before nextUpdate.
 */
import { prepareCrl, REVOCATION_REASONS, type CrlEntry } from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import type { EventBus } from '../events/bus.js';
import type { Authorities } from '../registry/authorities.js';
import type { Signer } from '../signer/signer.js';
import type { CaStore, CertificateStore, SettingsStore } from '../store/index.js';
import { crlPath, crlShardsSetting, SETTING_PUBLIC_URL, shardOf } from './locations.js';
import type { Revoker } from './revoker.js';

export interface CrlPublisherOptions {
  /** thisUpdate to nextUpdate (default 24 h). */
  readonly validityMs?: number;
  /** How long revocations are gathered before the CRL is rebuilt (default 1 s). */
  readonly batchMs?: number;
}

export interface CrlPublisherDeps {
  readonly certificates: Pick<CertificateStore, 'listCertificates' | 'getCertificate'>;
  readonly cas: Pick<CaStore, 'listCas'>;
  readonly settings: SettingsStore;
  readonly authorities: Authorities;
  readonly signer: Signer;
  readonly revoker: Revoker;
  readonly bus: Pick<EventBus, 'on'>;
  readonly now: () => Date;
}

interface Published {
  readonly der: Buffer;
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  readonly number: bigint;
}

const key = (issuerId: string, shard: number) => `${issuerId}/${shard}`;

export class CrlPublisher {
  private readonly published = new Map<string, Published>();
  private readonly building = new Map<string, Promise<Published>>();
  private readonly dirty = new Set<string>();
  private readonly validityMs: number;
  private readonly batchMs: number;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: Array<() => void> = [];

  constructor(
    private readonly deps: CrlPublisherDeps,
    opts: CrlPublisherOptions = {},
  ) {
    this.validityMs = opts.validityMs ?? 24 * 3_600_000;
    this.batchMs = opts.batchMs ?? 1000;
  }

  /** Listens for revocations and keeps CRLs fresh until stop(). */
  start(): void {
    this.unsubscribe.push(
      this.deps.bus.on('certificate.status-changed', async (e) => {
        if (e.to !== 'revoked' && e.from !== 'revoked') return;
        const c = await this.deps.certificates.getCertificate(e.certificateId);
        if (c) this.markDirty(c.issuerId, c.serial);
      }),
      this.deps.bus.on('ca.status-changed', async (e) => {
        const ca = (await this.deps.cas.listCas()).find((x) => x.id === e.caId);
        if (ca?.parentId) this.markDirty(ca.parentId, ca.serial);
      }),
    );
    this.timer = setInterval(() => void this.refresh(), Math.max(50, Math.min(this.batchMs, 60_000)));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
  }

  private async shards(issuerId: string): Promise<number> {
    return Number((await this.deps.settings.getSetting(crlShardsSetting(issuerId))) ?? '1');
  }

  private markDirty(issuerId: string, serial: string): void {
    void this.shards(issuerId).then((n) => this.dirty.add(key(issuerId, shardOf(serial, n))));
  }

  /** Rebuilds dirty CRLs and those past half their validity. */
  async refresh(): Promise<void> {
    const now = this.deps.now().getTime();
    const due = new Set(this.dirty);
    this.dirty.clear();
    for (const [k, p] of this.published) if (now - p.thisUpdate.getTime() > this.validityMs / 2) due.add(k);
    for (const k of due) {
      const [issuerId, shard] = k.split('/') as [string, string];
      await this.build(issuerId, Number(shard)).catch((err: unknown) => {
        // An issuer without a CRL here (a CA registered from outside) stays so: retrying would only repeat the error.
        if (err instanceof CertfleetError && err.code === 'not-found') return;
        this.dirty.add(k);
        console.error(`certfleet: CRL ${k} could not be rebuilt:`, err);
      });
    }
  }

  /** The current CRL (DER) of an issuer's shard, built on first request. */
  async crl(issuerId: string, shard = 0): Promise<Buffer> {
    const shards = await this.shards(issuerId);
    if (!Number.isInteger(shard) || shard < 0 || shard >= shards) throw new CertfleetError('not-found', `issuer ${issuerId} has no CRL shard ${shard}`);
    const p = this.published.get(key(issuerId, shard));
    if (p && p.nextUpdate.getTime() > this.deps.now().getTime()) return p.der;
    return (await this.build(issuerId, shard)).der;
  }

  private build(issuerId: string, shard: number): Promise<Published> {
    const k = key(issuerId, shard);
    let b = this.building.get(k);
    if (!b) {
      b = this.generate(issuerId, shard).finally(() => this.building.delete(k));
      this.building.set(k, b);
    }
    return b;
  }

  private async generate(issuerId: string, shard: number): Promise<Published> {
    const { record, info } = await this.deps.authorities.issuer(issuerId);
    const shards = await this.shards(record.id);
    const now = this.deps.now();
    // §3.3: an entry stays until it has appeared on a CRL issued after the certificate expired.
    const keepAfter = new Date(now.getTime() - 2 * this.validityMs);
    const entries: CrlEntry[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.deps.certificates.listCertificates({ issuerId: record.id, status: 'revoked', limit: 1000, ...(cursor ? { cursor } : {}) });
      for (const c of page.items) {
        if (c.notAfter < keepAfter || shardOf(c.serial, shards) !== shard) continue;
        const reason = c.revocationReason && c.revocationReason !== 'unspecified' ? REVOCATION_REASONS[c.revocationReason as keyof typeof REVOCATION_REASONS] : undefined;
        entries.push({ serial: c.serial, revokedAt: c.revokedAt ?? c.createdAt, ...(reason !== undefined ? { reason } : {}) });
      }
      cursor = page.next;
    } while (cursor);
    for (const child of await this.deps.cas.listCas()) {
      if (child.parentId !== record.id || child.status !== 'revoked' || shardOf(child.serial, shards) !== shard) continue;
      const r = await this.deps.revoker.caRevocation(child.id);
      entries.push({ serial: child.serial, revokedAt: r?.at ?? now, reason: REVOCATION_REASONS[r?.reason ?? 'cACompromise'] });
    }

    // The CRL number only grows (§5.2.3), across restarts too.
    const numberKey = `crl.number.${record.id}.${shard}`;
    const number = BigInt((await this.deps.settings.getSetting(numberKey)) ?? '0') + 1n;
    await this.deps.settings.putSetting(numberKey, number.toString());
    const base = await this.deps.settings.getSetting(SETTING_PUBLIC_URL);
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + this.validityMs);
    const prepared = prepareCrl({
      issuer: info,
      crlNumber: number,
      thisUpdate,
      nextUpdate,
      entries,
      ...(base ? { idp: { url: base + crlPath(record.id, shard, shards) } } : {}),
    });
    const published: Published = { der: await this.deps.signer.signCrl(prepared), thisUpdate, nextUpdate, number };
    this.published.set(key(record.id, shard), published);
    return published;
  }
}
