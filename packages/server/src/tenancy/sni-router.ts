/**
 * Which tenant a TLS connection is for, from the server name it sent (RFC
 * 6066 §3). A name no tenant claims, and a connection without SNI, go to the
 * default tenant: the node's own data set, which a single-tenant node is.
 * Names match exactly after normalisation; there are no wildcards, so one
 * host can never match two tenants.
 */
import type { SecureContext } from 'node:tls';
import { normaliseHost } from './names.js';

export interface Routed<T> {
  /** undefined for the default tenant. */
  readonly tenant: string | undefined;
  readonly value: T;
}

export class SniRouter<T> {
  readonly #byHost = new Map<string, string>();
  readonly #tenants = new Map<string, { hosts: readonly string[]; value: T }>();

  constructor(private readonly fallback: T) {}

  /** Adds or replaces a tenant; a host another tenant holds moves to this one only if that tenant is removed first. */
  set(tenant: string, hosts: readonly string[], value: T): void {
    const mine = hosts.map(normaliseHost);
    for (const h of mine) {
      const owner = this.#byHost.get(h);
      if (owner !== undefined && owner !== tenant) throw new Error(`SNI host ${h} already routes to tenant ${owner}`);
    }
    this.remove(tenant);
    this.#tenants.set(tenant, { hosts: mine, value });
    for (const h of mine) this.#byHost.set(h, tenant);
  }

  remove(tenant: string): boolean {
    const t = this.#tenants.get(tenant);
    if (!t) return false;
    for (const h of t.hosts) this.#byHost.delete(h);
    this.#tenants.delete(tenant);
    return true;
  }

  route(servername: string | false | null | undefined): Routed<T> {
    if (servername) {
      const name = this.#byHost.get(normaliseHost(servername));
      const t = name === undefined ? undefined : this.#tenants.get(name);
      if (t) return { tenant: name, value: t.value };
    }
    return { tenant: undefined, value: this.fallback };
  }

  get(tenant: string): T | undefined {
    return this.#tenants.get(tenant)?.value;
  }

  tenants(): string[] {
    return [...this.#tenants.keys()];
  }
}

/**
 * An `SNICallback` for node:tls: the secure context (server certificate) of
 * the tenant the name selects. No context keeps the listener's own, which is
 * the default tenant's.
 */
export function sniCallback(contextFor: (servername: string) => SecureContext | undefined): (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void) => void {
  return (servername, cb) => {
    const ctx = contextFor(servername);
    if (ctx) cb(null, ctx);
    else cb(null);
  };
}
