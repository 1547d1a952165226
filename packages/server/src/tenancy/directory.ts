/**
 * The node's list of tenants and their SNI hosts: `DATA/tenants.json`.
 *
 * A file beside the tenants' own folders rather than a table of the default
 * tenant's database: a tenant's data set is a folder on this node (its master
 * key, TLS key, cli.json, and its SQLite file or the name of its PostgreSQL
 * schema), so the list of folders to open belongs with them, and the default
 * tenant's store stays exactly what a single-tenant node has. Every change is
 * written to a temporary file, fsynced, and renamed over the old one, so a
 * kill at any moment leaves the old list or the new one, never half of one.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CertfleetError } from '../errors.js';
import { checkSniHosts, checkTenantName } from './names.js';

export interface TenantEntry {
  readonly name: string;
  /** Normalised host names (names.ts); each belongs to one tenant only. */
  readonly sniHosts: readonly string[];
  readonly createdAt: string;
}

interface TenantsFile {
  readonly tenants: TenantEntry[];
}

export const tenantsJson = (root: string): string => join(root, 'tenants.json');
export const tenantRoot = (root: string, name: string): string => join(root, 'tenants', checkTenantName(name));

function writeAtomically(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  // The rename itself is durable only once the folder is.
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

export class TenantDirectory {
  readonly #path: string;

  constructor(root: string) {
    this.#path = tenantsJson(root);
  }

  list(): TenantEntry[] {
    if (!existsSync(this.#path)) return [];
    let raw: Partial<TenantsFile>;
    try {
      raw = JSON.parse(readFileSync(this.#path, 'utf8')) as Partial<TenantsFile>;
    } catch (err) {
      throw new CertfleetError('invalid-state', `${this.#path} is not JSON: ${(err as Error).message}`, { cause: err });
    }
    if (!Array.isArray(raw.tenants)) throw new CertfleetError('invalid-state', `${this.#path} holds no tenants list`);
    return raw.tenants.map((t) => ({ name: checkTenantName(t.name), sniHosts: checkSniHosts(t.sniHosts), createdAt: String(t.createdAt) }));
  }

  get(name: string): TenantEntry | undefined {
    return this.list().find((t) => t.name === name);
  }

  /** Refuses a name that exists and a host another tenant already has (one host selects one tenant). */
  checkFree(name: string, sniHosts: readonly string[]): void {
    const all = this.list();
    if (all.some((t) => t.name === name)) throw new CertfleetError('conflict', `tenant ${name} already exists`);
    for (const t of all) {
      const taken = t.sniHosts.find((h) => sniHosts.includes(h));
      if (taken) throw new CertfleetError('conflict', `SNI host ${taken} already selects tenant ${t.name}`);
    }
  }

  add(entry: TenantEntry): void {
    this.checkFree(entry.name, entry.sniHosts);
    this.#write([...this.list(), entry]);
  }

  /** Returns whether it was there. */
  remove(name: string): boolean {
    const all = this.list();
    const rest = all.filter((t) => t.name !== name);
    if (rest.length === all.length) return false;
    this.#write(rest);
    return true;
  }

  #write(tenants: TenantEntry[]): void {
    writeAtomically(this.#path, JSON.stringify({ tenants } satisfies TenantsFile, null, 2) + '\n');
  }
}
