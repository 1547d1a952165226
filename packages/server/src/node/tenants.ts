/**
 * The node's tenants: each an isolated certfleet data set in
 * DATA/tenants/NAME/ (its own SQLite file, or its own PostgreSQL schema when
 * the node runs on PostgreSQL), with its own sealed CA keys, tokens,
 * registry, MQTT endpoint, CRLs and OCSP. Isolation comes from separate
 * stores, never from a filter on shared tables. This module creates, opens,
 * lists and removes them while the node runs; SNI routing (tenancy/) decides
 * which one a connection is for.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { dataDir, readNodeConfig, type DataDir } from '../config/data-dir.js';
import { CertfleetError } from '../errors.js';
import { openServices } from '../services.js';
import { TenantDirectory, tenantRoot, type TenantEntry } from '../tenancy/directory.js';
import { checkSniHosts, checkTenantName, tenantSchema } from '../tenancy/names.js';
import { SniRouter } from '../tenancy/sni-router.js';
import { initDataDir, writeCliJson } from './init.js';
import { startTenantStack, type TenantStack } from './tenant-stack.js';
import { serverTls } from './tls.js';

export interface TenancyOptions {
  /** The node's data dir (the default tenant's). */
  readonly root: DataDir;
  /** The node's database URL: a tenant on PostgreSQL gets a schema in it. */
  readonly database: string;
  readonly passphrase?: string;
  /** The http port's base URL; a tenant's documents are under BASE/tenants/NAME. */
  readonly publicBase: () => string;
  readonly apiPort: () => number;
  readonly logger?: boolean;
}

export interface TenantView {
  readonly name: string;
  readonly sniHosts: readonly string[];
  readonly createdAt: string;
  /** Where its CRLs, OCSP and trust bundle are on the http port. */
  readonly publicUrl: string;
}

export interface CreatedTenant extends TenantView {
  /** The tenant's first admin token, shown once. */
  readonly adminToken: string;
  /** The root its devices and the CLI trust (PEM). */
  readonly caPem: string;
  /** DATA/tenants/NAME/cli.json: url, token, caFile, servername. */
  readonly cliJson: string;
}

const isPostgres = (url: string) => /^postgres(ql)?:\/\//.test(url);

export class Tenancy {
  readonly directory: TenantDirectory;
  readonly router = new SniRouter<TenantStack | undefined>(undefined);
  /** The node's own data set: what no SNI, or one no tenant has, selects (set once it runs). */
  fallback: TenantStack | undefined;
  /** One change at a time: two creations must not both find a name free. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: TenancyOptions) {
    this.directory = new TenantDirectory(o.root.root);
  }

  /** The stack a TLS connection that sent `servername` is for (undefined while the node starts). */
  route(servername: string | false | null | undefined): TenantStack | undefined {
    return this.router.route(servername).value ?? this.fallback;
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.then(work, work);
    this.#queue = next.catch(() => {});
    return next;
  }

  #view(t: TenantEntry): TenantView {
    return { name: t.name, sniHosts: t.sniHosts, createdAt: t.createdAt, publicUrl: this.#publicUrl(t.name) };
  }

  #publicUrl(name: string): string {
    return `${this.o.publicBase().replace(/\/+$/, '')}/tenants/${name}`;
  }

  list(): TenantView[] {
    return this.directory.list().map((t) => this.#view(t));
  }

  get(name: string): TenantView {
    const t = this.directory.get(checkTenantName(name));
    if (!t) throw new CertfleetError('not-found', `no tenant ${name}`);
    return this.#view(t);
  }

  /** Opens every tenant the directory lists; the node does not start with one missing (its devices would land in the default tenant). */
  async openAll(): Promise<void> {
    for (const t of this.directory.list()) {
      try {
        await this.#open(t);
      } catch (err) {
        throw new CertfleetError('invalid-state', `cannot open tenant ${t.name} (${tenantRoot(this.o.root.root, t.name)}): ${(err as Error).message}`, { cause: err });
      }
    }
  }

  async #open(t: TenantEntry): Promise<TenantStack> {
    const dir = dataDir(tenantRoot(this.o.root.root, t.name));
    const { database } = readNodeConfig(dir);
    const schema = (JSON.parse(readFileSync(dir.configJson, 'utf8')) as { schema?: string }).schema;
    const services = await openServices({
      database,
      masterKeyFile: dir.masterKey,
      ...(schema ? { schema } : {}),
      ...(this.o.passphrase ? { passphrase: this.o.passphrase } : {}),
    });
    let tls: { key: string; cert: string };
    try {
      tls = await serverTls(services, dir, t.sniHosts);
    } catch (err) {
      await services.close();
      throw err;
    }
    const stack = await startTenantStack({ name: t.name, services, dir, tls, publicUrl: this.#publicUrl(t.name), logger: this.o.logger ?? false });
    // The tenant's CLI follows the node to whatever api port it got.
    const cli = JSON.parse(readFileSync(dir.cliJson, 'utf8')) as { token: string };
    writeCliJson(dir, `https://localhost:${this.o.apiPort()}`, cli.token, t.sniHosts[0]);
    this.router.set(t.name, t.sniHosts, stack);
    return stack;
  }

  /**
   * A new tenant, live: its data set made as `certfleet init` makes one (root
   * and issuing CA, a server certificate for its SNI hosts, an admin token),
   * opened, routed, and only then recorded, so a tenant that is listed is one
   * that worked.
   */
  create(name: string, sniHosts: unknown): Promise<CreatedTenant> {
    return this.#serial(async () => {
      checkTenantName(name);
      const hosts = checkSniHosts(sniHosts);
      this.directory.checkFree(name, hosts);
      const root = tenantRoot(this.o.root.root, name);
      if (existsSync(root)) throw new CertfleetError('conflict', `${root} holds the data of an earlier tenant ${name}: remove it (tenant delete with purge) or choose another name`);
      const pg = isPostgres(this.o.database);
      let init: Awaited<ReturnType<typeof initDataDir>>;
      try {
        init = await initDataDir({
          data: root,
          ...(pg ? { database: this.o.database, schema: tenantSchema(name) } : {}),
          ...(this.o.passphrase ? { passphrase: this.o.passphrase } : {}),
          apiPort: this.o.apiPort(),
          tenant: { name, serverNames: hosts },
        });
      } catch (err) {
        rmSync(root, { recursive: true, force: true });
        throw err;
      }
      const entry: TenantEntry = { name, sniHosts: hosts, createdAt: new Date().toISOString() };
      try {
        await this.#open(entry);
        this.directory.add(entry);
      } catch (err) {
        const stack = this.router.get(name);
        this.router.remove(name);
        await stack?.close();
        rmSync(root, { recursive: true, force: true });
        throw err;
      }
      return { ...this.#view(entry), adminToken: init.adminToken, caPem: readFileSync(init.dir.caFile, 'utf8'), cliJson: init.dir.cliJson };
    });
  }

  /**
   * Stops a tenant: its connections close, its SNI hosts select the default
   * tenant from now on, and it is no longer listed. Its data stays in
   * DATA/tenants/NAME unless `purge`.
   */
  delete(name: string, purge: boolean): Promise<void> {
    return this.#serial(async () => {
      checkTenantName(name);
      if (!this.directory.get(name)) throw new CertfleetError('not-found', `no tenant ${name}`);
      const stack = this.router.get(name);
      this.router.remove(name);
      this.directory.remove(name);
      await stack?.close();
      if (purge) rmSync(tenantRoot(this.o.root.root, name), { recursive: true, force: true });
    });
  }

  stack(name: string): TenantStack | undefined {
    return this.router.get(name);
  }

  async closeAll(): Promise<void> {
    for (const name of this.router.tenants()) {
      const stack = this.router.get(name);
      this.router.remove(name);
      await stack?.close().catch(() => {});
    }
  }
}
