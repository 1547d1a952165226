/**
 * Expiry forecast: how many active certificates expire in each of the next
 * 52 weeks, in all, per CA and per thing group, and which devices are at
 * risk: their certificate expires within the renewal window and they have
 * not connected recently enough to renew in time (an offline device cannot
 * renew; DESIGN.md row 7).
 */
import type { CaStore, CertificateStore, ConnectionStore, ThingGroupStore } from '../store/index.js';

const DAY = 86_400_000;
const WEEK = 7 * DAY;

export interface ForecastOptions {
  readonly weeks?: number;
  /** Renewal window: devices renew this long before expiry (the agent's default is 28 days). */
  readonly renewalWindowDays?: number;
  /** A device not seen for this long is assumed unable to renew (default 7 days). */
  readonly offlineDays?: number;
}

export interface AtRisk {
  readonly thing: string | null;
  readonly certificateId: string;
  readonly notAfter: Date;
  readonly lastSeen: Date | null;
}

export interface Forecast {
  readonly from: Date;
  readonly weeks: number;
  /** Index i counts certificates expiring in [from + i weeks, from + i + 1 weeks); expired ones count in week 0. */
  readonly total: number[];
  readonly byCa: Record<string, number[]>;
  readonly byGroup: Record<string, number[]>;
  readonly atRisk: AtRisk[];
}

export interface ForecastDeps {
  readonly certificates: Pick<CertificateStore, 'listCertificates'>;
  readonly cas: Pick<CaStore, 'listCas'>;
  readonly groups: Pick<ThingGroupStore, 'groupsOfThing'>;
  readonly connections: Pick<ConnectionStore, 'listConnections'>;
  readonly now: () => Date;
}

export async function forecast(deps: ForecastDeps, opts: ForecastOptions = {}): Promise<Forecast> {
  const from = deps.now();
  const weeks = opts.weeks ?? 52;
  const windowMs = (opts.renewalWindowDays ?? 28) * DAY;
  const offlineMs = (opts.offlineDays ?? 7) * DAY;
  const names = new Map((await deps.cas.listCas()).map((c) => [c.id, c.name]));
  const total = new Array<number>(weeks).fill(0);
  const byCa: Record<string, number[]> = {};
  const byGroup: Record<string, number[]> = {};
  const groupCache = new Map<string, string[]>();
  const atRisk: AtRisk[] = [];

  let cursor: string | undefined;
  do {
    const page = await deps.certificates.listCertificates({ status: 'active', expiringBefore: new Date(from.getTime() + weeks * WEEK), limit: 1000, ...(cursor ? { cursor } : {}) });
    for (const c of page.items) {
      const week = Math.max(0, Math.floor((c.notAfter.getTime() - from.getTime()) / WEEK));
      total[week]!++;
      const ca = names.get(c.issuerId) ?? c.issuerId;
      (byCa[ca] ??= new Array<number>(weeks).fill(0))[week]!++;
      if (c.thingName) {
        let groups = groupCache.get(c.thingName);
        if (!groups) {
          groups = (await deps.groups.groupsOfThing(c.thingName)).map((g) => g.name);
          groupCache.set(c.thingName, groups);
        }
        for (const g of groups) (byGroup[g] ??= new Array<number>(weeks).fill(0))[week]!++;
      }
      if (c.profile === 'device' && c.notAfter.getTime() - from.getTime() <= windowMs) {
        const last = (await deps.connections.listConnections({ certificateId: c.id, limit: 1 })).items[0];
        const lastSeen = last ? (last.disconnectedAt ?? from) : null;
        if (!lastSeen || from.getTime() - lastSeen.getTime() > offlineMs) atRisk.push({ thing: c.thingName, certificateId: c.id, notAfter: c.notAfter, lastSeen });
      }
    }
    cursor = page.next;
  } while (cursor);
  return { from, weeks, total, byCa, byGroup, atRisk };
}
