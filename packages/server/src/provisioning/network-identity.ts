/**
 * Network identities a gateway may assert for a device (3GPP TS 23.003):
 *
 *  - IMSI (§2.2): MCC (3 digits) + MNC (2 or 3) + MSIN, at most 15 digits;
 *    certfleet takes 14 or 15 decimal digits, nothing else.
 *  - IMEI (§6.2.1): TAC (8) + SNR (6) + a check digit (Luhn, Annex B), 15
 *    digits; the 14 digits without the check digit are taken too, and an
 *    IMEISV (§6.2.2: TAC + SNR + a 2-digit software version, 16 digits).
 *    All three name the same device, which is TAC + SNR: the stored form is
 *    the 15-digit IMEI with its check digit, so one handset cannot be bound
 *    twice under two spellings (the software version changes on updates).
 */
import { CertfleetError } from '../errors.js';
import type { NetworkIdentityType } from '../store/index.js';

export interface NetworkIdentity {
  readonly type: NetworkIdentityType;
  /** Canonical: the IMSI as given; the IMEI as 15 digits with its check digit. */
  readonly value: string;
}

const bad = (msg: string) => new CertfleetError('bad-request', `networkIdentity: ${msg}`);

/** The Luhn check digit of `body` (TS 23.003 Annex B): from the right, every other digit doubled, digits of the products summed. */
export function luhnCheckDigit(body: string): number {
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    const d = body.charCodeAt(body.length - 1 - i) - 48;
    const v = i % 2 === 0 ? d * 2 : d;
    sum += v > 9 ? v - 9 : v;
  }
  return (10 - (sum % 10)) % 10;
}

export function parseNetworkIdentity(input: unknown): NetworkIdentity {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw bad('must be an object { "type": "imsi" | "imei", "value": "digits" }');
  const { type, value, ...rest } = input as Record<string, unknown>;
  if (Object.keys(rest).length > 0) throw bad(`unknown field "${Object.keys(rest)[0]}"`);
  if (typeof value !== 'string') throw bad('value must be a string of digits');
  if (type === 'imsi') {
    if (!/^[0-9]{14,15}$/.test(value)) throw bad('an IMSI is 14 or 15 decimal digits (3GPP TS 23.003 §2.2)');
    return { type, value };
  }
  if (type === 'imei') {
    if (!/^[0-9]{14,16}$/.test(value)) throw bad('an IMEI is 15 digits (14 without the check digit), an IMEISV 16 (3GPP TS 23.003 §6.2)');
    const body = value.slice(0, 14);
    if (value.length === 15 && Number(value[14]) !== luhnCheckDigit(body)) throw bad(`the IMEI's check digit is wrong (expected ${luhnCheckDigit(body)}, TS 23.003 Annex B)`);
    return { type, value: body + String(luhnCheckDigit(body)) };
  }
  throw bad('type must be "imsi" or "imei"');
}
