/**
 * What a tenant is called and which TLS server names select it. A name is a
 * folder under DATA/tenants/ and, on PostgreSQL, part of a schema name, so it
 * is kept to what both allow. SNI carries DNS host names only, never IP
 * addresses, and compares them case-insensitively (RFC 6066 §3).
 */
import { isIP } from 'node:net';
import { CertfleetError } from '../errors.js';

const TENANT_NAME = /^[a-z][a-z0-9-]{0,30}$/;
const LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;
/** A node serves a handful of tenants on one certificate each; more SANs than this is a mistake. */
export const MAX_SNI_HOSTS = 20;

export function checkTenantName(name: unknown): string {
  if (typeof name !== 'string' || !TENANT_NAME.test(name)) {
    throw new CertfleetError('bad-request', 'a tenant name is 1-31 characters: a lower-case letter, then lower-case letters, digits or hyphens');
  }
  return name;
}

/** The host name in the form SNI routing compares: lower case, no trailing dot. */
export function normaliseHost(host: string): string {
  return host.toLowerCase().replace(/\.$/, '');
}

/** A DNS host name a device may send as SNI (RFC 6066 §3: "HostName", no IP literals, no wildcards). */
export function checkSniHost(host: unknown): string {
  if (typeof host !== 'string') throw new CertfleetError('bad-request', 'an SNI host must be a string');
  const h = normaliseHost(host);
  if (h.length === 0 || h.length > 253 || isIP(h) !== 0 || !h.split('.').every((l) => LABEL.test(l))) {
    throw new CertfleetError('bad-request', `${JSON.stringify(host)} is not a DNS host name a device can send as SNI`);
  }
  return h;
}

/** One to MAX_SNI_HOSTS host names, normalised, without repeats. */
export function checkSniHosts(hosts: unknown): string[] {
  if (!Array.isArray(hosts) || hosts.length === 0) throw new CertfleetError('bad-request', 'a tenant needs at least one SNI host');
  if (hosts.length > MAX_SNI_HOSTS) throw new CertfleetError('bad-request', `a tenant has at most ${MAX_SNI_HOSTS} SNI hosts`);
  return [...new Set(hosts.map(checkSniHost))];
}

/** The PostgreSQL schema holding a tenant's data set when the node runs on PostgreSQL (store/postgres.ts allows [a-z_][a-z0-9_]*). */
export function tenantSchema(name: string): string {
  return `tenant_${checkTenantName(name).replace(/-/g, '_')}`;
}
