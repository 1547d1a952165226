import { CertfleetError } from '../errors.js';

/*
 * Conversions between domain values and column values, shared by every table.
 */

// Fixed-width form: only then does string order equal time order on both
// dialects. Date#toISOString switches to a signed 6-digit year outside
// 0000-9999, which would sort wrongly, so such dates are refused.
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function toIso(date: Date, field: string): string {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) {
    throw new CertfleetError('bad-request', `${field} is not a valid date`);
  }
  const text = date.toISOString();
  if (!ISO_UTC.test(text)) throw new CertfleetError('bad-request', `${field} is outside years 0000-9999`);
  return text;
}

export function toIsoOrNull(date: Date | null | undefined, field: string): string | null {
  return date == null ? null : toIso(date, field);
}

export function isIsoUtc(text: string): boolean {
  return ISO_UTC.test(text);
}

export function fromIso(text: string): Date {
  return new Date(text);
}

export function fromIsoOrNull(text: string | null): Date | null {
  return text === null ? null : new Date(text);
}

/** Both drivers bind Buffer as BLOB/bytea; wrap other views without copying. */
export function toBlob(bytes: Uint8Array): Buffer {
  if (Buffer.isBuffer(bytes)) return bytes;
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** pg returns Buffer for bytea and better-sqlite3 for BLOB; this only narrows the type. */
export function fromBlob(value: Buffer | Uint8Array): Buffer {
  return toBlob(value);
}
