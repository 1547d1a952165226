/**
 * Where devices find revocation information (RFC 5280 §4.2.1.13 CRL
 * distribution points, §4.2.2.1 authority information access): URLs on the
 * node's plain-HTTP port. Large fleets partition an issuer's CRL into
 * shards; a certificate's shard follows from its serial, which is random, so
 * shards fill evenly and the shard is fixed the moment the serial is drawn.
 */
import { CertfleetError } from '../errors.js';

/** Settings keys. */
export const SETTING_PUBLIC_URL = 'http.public-url';
export const crlShardsSetting = (caId: string): string => `crl.shards.${caId}`;

export const MAX_SHARDS = 4096;

export function checkShardCount(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > MAX_SHARDS) throw new CertfleetError('bad-request', `CRL shards must be 1 to ${MAX_SHARDS}`);
  return n;
}

/** The shard of a serial: its first 32 bits modulo the shard count. */
export function shardOf(serialHex: string, shards: number): number {
  if (shards <= 1) return 0;
  return parseInt(serialHex.padStart(8, '0').slice(0, 8), 16) % shards;
}

/** `/crl/{issuerId}.crl` for an unpartitioned issuer, `/crl/{issuerId}/{shard}.crl` otherwise. */
export function crlPath(issuerId: string, shard: number, shards: number): string {
  return shards <= 1 ? `/crl/${issuerId}.crl` : `/crl/${issuerId}/${shard}.crl`;
}

export const ocspPath = '/ocsp';
