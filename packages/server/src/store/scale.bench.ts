/**
 * Certificate listing at fleet scale. Not a test: run by hand,
 *   node --import tsx packages/server/src/store/scale.bench.ts [certificates] [audit entries]
 * Loads `certificates` (default 1,000,000) into a fresh SQLite file and into
 * a temporary PostgreSQL schema (skipped if unreachable), then times the
 * expiry queries the console and `certfleet cert list --expiring-within 30d`
 * make, and prints the plans of the exact statements the store sends. Then
 * loads `audit entries` (default 1,000,000) chained audit entries and times
 * verifyAuditLog, with the peak heap it needed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import {
  bulkAppendAuditForBench,
  bulkInsertCertificatesForBench,
  explainCertificateQueriesForBench,
  vacuumAnalyzeForBench,
  type BenchTarget,
} from './bench-support.js';
import { openStore, type CertificateFilter, type CertificateStatus, type NewCertificate, type Store } from './index.js';
import { PG_URL, caFixture, dropTestSchema, postgresUnreachable } from './test-fixtures.js';

const COUNT = Number(process.argv[2] ?? 1_000_000);
const AUDIT_COUNT = Number(process.argv[3] ?? 1_000_000);
const DAY = 86_400_000;
const NOW = new Date('2030-01-01T00:00:00.000Z');
const SOON = new Date(NOW.getTime() + 30 * DAY);
const RUNS = 5;

// Deterministic spread (splitmix32), so both dialects hold the same rows.
function unit(i: number, salt: number): number {
  let z = (i * 0x9e3779b9 + salt) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32;
}

const STATUSES: Array<[CertificateStatus, number]> = [['revoked', 0.05], ['inactive', 0.08], ['pending-activation', 0.1]];
const der = randomBytes(420); // a typical EC P-256 device certificate is 400-500 bytes

function certificate(issuerId: string, i: number): NewCertificate {
  // not_after spread evenly over two years starting 15 days ago (so some are
  // expired); created_at independent of it, within the last year.
  const notAfter = new Date(NOW.getTime() - 15 * DAY + Math.floor(unit(i, 1) * 730 * DAY));
  const createdAt = new Date(NOW.getTime() - Math.floor(unit(i, 2) * 365 * DAY));
  const r = unit(i, 3);
  const status = STATUSES.find(([, below]) => r < below)?.[0] ?? 'active';
  const body = Buffer.from(der);
  body.writeUInt32BE(i, 0);
  return {
    id: createHash('sha256').update(body).digest('hex'),
    serial: i.toString(16).padStart(32, '0'),
    issuerId,
    thingName: null,
    status,
    profile: 'device',
    subject: `CN=device-${i}`,
    notBefore: createdAt,
    notAfter,
    keyAlgorithm: 'EC-P256',
    der: body,
    createdAt,
    revokedAt: status === 'revoked' ? NOW : null,
    revocationReason: status === 'revoked' ? 'keyCompromise' : null,
  };
}

async function timeMs(work: () => Promise<unknown>): Promise<{ median: number; min: number; max: number }> {
  await work(); // warm-up, not counted
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i += 1) {
    const start = performance.now();
    await work();
    runs.push(performance.now() - start);
  }
  runs.sort((a, b) => a - b);
  return { median: runs[Math.floor(RUNS / 2)] ?? 0, min: runs[0] ?? 0, max: runs.at(-1) ?? 0 };
}

const fmt = (t: { median: number; min: number; max: number }) =>
  `median ${t.median.toFixed(2)} ms (min ${t.min.toFixed(2)}, max ${t.max.toFixed(2)}, ${RUNS} runs)`;

interface Subject {
  label: string;
  store: Store;
  target: BenchTarget;
  size(): string;
  close(): Promise<void>;
}

const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`;

async function loadCertificates(subject: Subject): Promise<void> {
  const ca = caFixture();
  await subject.store.insertCa(ca);
  const started = performance.now();
  let last = 0;
  await bulkInsertCertificatesForBench(subject.target, COUNT, (i) => certificate(ca.id, i), (done) => {
    if (done - last >= 250_000 || done === COUNT) {
      console.log(`  ${subject.label}: loaded ${done.toLocaleString('en')} certificates (${seconds(started)})`);
      last = done;
    }
  });
  console.log(`  ${subject.label}: load done in ${seconds(started)}, ${subject.size()}`);
}

async function measure(subject: Subject): Promise<void> {
  const { label, store, target } = subject;
  console.log(`\n== ${label}: ${COUNT.toLocaleString('en')} certificates`);
  const filters: Array<[string, CertificateFilter]> = [
    ['expiringBefore now+30d', { expiringBefore: SOON }],
    ['status active + expiringBefore now+30d', { status: 'active', expiringBefore: SOON }],
  ];
  // PostgreSQL: once as loaded, once after what autovacuum would do next.
  for (const phase of target.dialect === 'postgres' ? ['just loaded', 'after VACUUM ANALYZE'] : ['no ANALYZE']) {
    if (phase === 'after VACUUM ANALYZE') await vacuumAnalyzeForBench(target);
    for (const [name, filter] of filters) {
      const page = await store.listCertificates({ ...filter, limit: 100 });
      const list = await timeMs(() => store.listCertificates({ ...filter, limit: 100 }));
      const next = await timeMs(() => store.listCertificates({ ...filter, limit: 100, cursor: page.next }));
      let total = 0;
      const count = await timeMs(async () => (total = await store.countCertificates(filter)));
      console.log(`  ${name} (${phase}): ${total.toLocaleString('en')} match`);
      console.log(`    listCertificates limit 100, first page: ${fmt(list)}`);
      console.log(`    listCertificates limit 100, next page (cursor): ${fmt(next)}`);
      console.log(`    countCertificates: ${fmt(count)}`);
      if (phase === 'just loaded') continue;
      const first = await explainCertificateQueriesForBench(target, { ...filter, limit: 100 });
      const second = await explainCertificateQueriesForBench(target, { ...filter, limit: 100, cursor: page.next });
      const show = (plan: string[]) => plan.map((l) => `      ${l}`).join('\n');
      console.log(`    plan (list, first page):\n${show(first.list)}`);
      console.log(`    plan (list, next page):\n${show(second.list)}`);
      console.log(`    plan (count):\n${show(first.count)}`);
    }
  }
}

async function loadAudit(subject: Subject): Promise<void> {
  const started = performance.now();
  await bulkAppendAuditForBench(subject.target, AUDIT_COUNT, NOW);
  console.log(`  ${subject.label}: ${AUDIT_COUNT.toLocaleString('en')} audit entries loaded in ${seconds(started)}`);
}

async function verify(subject: Subject): Promise<void> {
  global.gc?.();
  const baseHeap = process.memoryUsage().heapUsed;
  let peakHeap = baseHeap;
  const sampler = setInterval(() => (peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed)), 20);
  const started = performance.now();
  const result = await subject.store.verifyAuditLog();
  clearInterval(sampler);
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  console.log(`  ${subject.label}: verifyAuditLog ${JSON.stringify(result)}`);
  console.log(`    in ${seconds(started)}, heap ${mib(baseHeap)} before, peak ${mib(peakHeap)}`);
}

const subjects: Subject[] = [];
const dir = mkdtempSync(join(tmpdir(), 'certfleet-scale-'));
const path = join(dir, 'scale.db');
subjects.push({
  label: 'SQLite',
  store: await openStore(path),
  target: { dialect: 'sqlite', path },
  size: () => `file ${((statSync(path).size + (statSync(`${path}-wal`, { throwIfNoEntry: false })?.size ?? 0)) / 2 ** 20).toFixed(0)} MiB`,
  close: async () => rmSync(dir, { recursive: true, force: true }),
});
const postgres = await postgresUnreachable();
if (postgres.skip !== undefined) {
  console.log(`PostgreSQL skipped: ${postgres.skip}`);
} else {
  const schema = `certfleet_bench_${randomBytes(4).toString('hex')}`;
  subjects.push({
    label: 'PostgreSQL',
    store: await openStore(PG_URL, { schema }),
    target: { dialect: 'postgres', url: PG_URL, schema },
    size: () => `schema ${schema}`,
    close: () => dropTestSchema(schema),
  });
}

const started = performance.now();
try {
  // Loads run side by side (SQLite works in this process, PostgreSQL in its
  // server), measurements one after the other so they do not disturb each other.
  await Promise.all(subjects.map(loadCertificates));
  for (const subject of subjects) await measure(subject);
  if (AUDIT_COUNT > 0) {
    console.log(`\n== audit log: ${AUDIT_COUNT.toLocaleString('en')} entries`);
    await Promise.all(subjects.map(loadAudit));
    for (const subject of subjects) await verify(subject);
  }
} finally {
  for (const subject of subjects) {
    await subject.store.close();
    await subject.close();
  }
}
console.log(`\ntotal ${seconds(started)}`);
