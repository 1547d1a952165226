/**
 * Certificate profiles. A profile decides every field of an issued
 * certificate; what a request asks for beyond it is dropped or refused
 * (DESIGN.md security baseline).
 */
import type { KeyUsageBit } from './extensions.js';
import type { GeneralName } from './general-name.js';
import { OID } from './oids.js';

export interface Profile {
  readonly name: string;
  readonly ca: boolean;
  /** For CA profiles: the pathLenConstraint to write (null: none). */
  readonly pathLen?: number | null;
  readonly validityDays: number;
  readonly maxValidityDays: number;
  /** Key usage for EC and Ed25519 keys; RSA end-entity keys also get keyEncipherment for TLS 1.2 RSA key exchange. */
  readonly keyUsage: readonly KeyUsageBit[];
  readonly extKeyUsage: readonly string[];
  /** Subject attribute types (OIDs) copied from a request; all others are dropped. */
  readonly subjectAttributes: readonly string[];
  readonly sanTypes: readonly GeneralName['type'][];
  readonly sanRequired: boolean;
  /** Key algorithms accepted, by PublicKeyInfo.algorithm prefix ('ec-p256', 'rsa-', …). */
  readonly keyAlgorithms: readonly string[];
  /** notBefore is set this far in the past so devices with a slightly slow clock accept a fresh certificate. */
  readonly backdateSeconds: number;
  /** Write id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1): delegated OCSP responder certificates only. */
  readonly ocspNoCheck?: boolean;
}

const DEVICE_KEYS = ['ec-p256', 'ec-p384', 'ed25519', 'rsa-'];
const SUBJECT = [OID.commonName, OID.organization, OID.organizationalUnit, OID.country, OID.serialNumber];

/** What every CA profile shares. */
const CA = {
  ca: true,
  keyUsage: ['digitalSignature', 'keyCertSign', 'cRLSign'],
  extKeyUsage: [],
  subjectAttributes: SUBJECT,
  sanTypes: [],
  sanRequired: false,
  keyAlgorithms: DEVICE_KEYS,
  backdateSeconds: 3600,
} as const;

export const PROFILES = {
  device: {
    name: 'device',
    ca: false,
    validityDays: 365,
    maxValidityDays: 3650,
    keyUsage: ['digitalSignature'],
    extKeyUsage: [OID.clientAuth],
    subjectAttributes: SUBJECT,
    sanTypes: ['dns', 'uri', 'email', 'ip'],
    sanRequired: false,
    keyAlgorithms: DEVICE_KEYS,
    backdateSeconds: 3600,
  },
  server: {
    name: 'server',
    ca: false,
    validityDays: 365,
    maxValidityDays: 825,
    keyUsage: ['digitalSignature'],
    extKeyUsage: [OID.serverAuth],
    subjectAttributes: SUBJECT,
    sanTypes: ['dns', 'ip'],
    sanRequired: true,
    keyAlgorithms: DEVICE_KEYS,
    backdateSeconds: 3600,
  },
  // digitalSignature too, so a CA key can sign OCSP responses itself (RFC 6960 §4.2.2.2).
  'root-ca': { ...CA, name: 'root-ca', pathLen: null, validityDays: 20 * 365 + 5, maxValidityDays: 30 * 366 },
  'intermediate-ca': { ...CA, name: 'intermediate-ca', pathLen: 0, validityDays: 10 * 365 + 2, maxValidityDays: 20 * 366 },
} as const satisfies Record<string, Profile>;

export type ProfileName = keyof typeof PROFILES;

export function isProfileName(s: string): s is ProfileName {
  return Object.hasOwn(PROFILES, s);
}

/** A profile with its validity changed, within the profile's bound. */
export function withValidity(p: Profile, days: number): Profile {
  return { ...p, validityDays: days };
}

/** A CA profile with another path length. */
export function withPathLen(p: Profile, pathLen: number | null): Profile {
  return { ...p, pathLen };
}
