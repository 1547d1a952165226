/**
 * Initialising a data dir: database, root and issuing CAs, the TLS server
 * certificate, the first admin token, and the files the CLI reads.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import type { KeyAlgorithm } from '@certfleet/pki';
import { dataDir, isInitialised, writePrivate, type DataDir } from '../config/data-dir.js';
import { CertfleetError } from '../errors.js';
import { SETTING_ISSUER, SETTING_ROOT } from '../registry/authorities.js';
import { openServices, type Services } from '../services.js';
import { issueServerCertificate } from './tls.js';

export interface InitOptions {
  readonly data?: string;
  readonly force?: boolean;
  /** Database URL; the embedded SQLite file in the data dir when absent. */
  readonly database?: string;
  readonly keyAlgorithm?: KeyAlgorithm;
  readonly passphrase?: string;
  readonly apiPort?: number;
  /** PostgreSQL only: the schema holding this data set (a tenant's, tenancy/names.ts). */
  readonly schema?: string;
  /** A tenant's data set: named in its CA subjects; its server certificate is for `serverNames`. */
  readonly tenant?: { readonly name: string; readonly serverNames: readonly string[] };
}

export interface InitResult {
  readonly dir: DataDir;
  readonly adminToken: string;
  readonly rootId: string;
  readonly issuingId: string;
}

/** `servername`: the TLS server name the CLI sends to reach a tenant (RFC 6066 §3), absent for the default tenant. */
export function writeCliJson(dir: DataDir, url: string, token: string, servername?: string): void {
  writePrivate(dir.cliJson, JSON.stringify({ url, token, caFile: dir.caFile, ...(servername ? { servername } : {}) }, null, 2) + '\n');
}

async function freeName(s: Services, base: string): Promise<string> {
  for (let i = 1; ; i++) {
    const name = i === 1 ? base : `${base}-${i}`;
    if (!(await s.store.getCaByName(name))) return name;
  }
}

export async function initDataDir(opts: InitOptions): Promise<InitResult> {
  const dir = dataDir(opts.data);
  if (isInitialised(dir) || existsSync(dir.database)) {
    if (!opts.force) throw new CertfleetError('conflict', `${dir.root} already holds a certfleet node; use --force to replace it`);
    rmSync(dir.root, { recursive: true, force: true });
  }
  mkdirSync(dir.root, { recursive: true, mode: 0o700 });
  const database = opts.database ?? dir.database;
  const s = await openServices({
    database,
    masterKeyFile: dir.masterKey,
    ...(opts.passphrase ? { passphrase: opts.passphrase } : {}),
    ...(opts.schema ? { schema: opts.schema } : {}),
    createMasterKey: true,
  });
  try {
    // A tenant's PostgreSQL schema outlives its folder (purge removes files only): its old CAs and tokens must not come back under a new tenant.
    if (opts.tenant && (await s.store.getSetting(SETTING_ROOT))) {
      throw new CertfleetError('conflict', `the database of tenant ${opts.tenant.name} already holds a certfleet data set${opts.schema ? ` (schema ${opts.schema})` : ''}: drop it first or choose another name`);
    }
    const alg = opts.keyAlgorithm ?? 'ec-p256';
    // A tenant's CAs say whose they are, so a device or an operator reading a chain can tell tenants apart.
    const label = opts.tenant ? `certfleet ${opts.tenant.name}` : 'certfleet';
    const root = await s.authorities.createRoot({ name: await freeName(s, 'root'), subject: `CN=${label} Root CA,O=certfleet`, keyAlgorithm: alg });
    const issuing = await s.authorities.createIntermediate({
      name: await freeName(s, 'issuing'),
      subject: `CN=${label} Issuing CA,O=certfleet`,
      keyAlgorithm: alg,
      parentId: root.id,
      pathLen: 0,
    });
    await s.store.putSetting(SETTING_ROOT, root.id);
    await s.store.putSetting(SETTING_ISSUER, issuing.id);
    const chain = await s.authorities.chain(issuing.id);
    writeFileSync(dir.caFile, chain[chain.length - 1]!.toPem());
    await issueServerCertificate(s, dir, opts.tenant?.serverNames);
    const { token } = await s.tokens.create('init-admin', ['admin']);
    writeCliJson(dir, `https://localhost:${opts.apiPort ?? 8443}`, token, opts.tenant?.serverNames[0]);
    writePrivate(dir.configJson, JSON.stringify({ database, ...(opts.schema ? { schema: opts.schema } : {}) }, null, 2) + '\n');
    return { dir, adminToken: token, rootId: root.id, issuingId: issuing.id };
  } finally {
    await s.close();
  }
}
