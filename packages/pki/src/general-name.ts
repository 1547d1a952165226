/** GeneralName (RFC 5280 §4.2.1.6) for the kinds certfleet issues: dNSName, iPAddress, URI, rfc822Name. */
import { isIP } from 'node:net';
import { children, content, expect, seq, tlv, Tag } from './der.js';
import { PkiError } from './errors.js';

export type GeneralName =
  | { readonly type: 'dns'; readonly value: string }
  | { readonly type: 'ip'; readonly value: string }
  | { readonly type: 'uri'; readonly value: string }
  | { readonly type: 'email'; readonly value: string };

const DNS_NAME = /^(?=.{1,253}$)(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function ipToBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  // Expand IPv6 "::" and write eight 16-bit groups.
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

function bytesToIp(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  if (b.length === 16) {
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
    return groups.join(':').replace(/(^|:)0(:0)+(:|$)/, '::');
  }
  throw new PkiError('malformed-der', 'iPAddress must be 4 or 16 bytes');
}

/** Checks one name for syntax; throws lint-failed with the reason. */
export function checkGeneralName(n: GeneralName): void {
  const bad = (why: string): never => {
    throw new PkiError('lint-failed', `subjectAltName ${n.type}:${n.value}: ${why}`);
  };
  switch (n.type) {
    case 'dns':
      if (!DNS_NAME.test(n.value)) bad('not a valid DNS name');
      break;
    case 'ip':
      if (isIP(n.value) === 0 || n.value.includes('%') || n.value.includes('.') && isIP(n.value) === 6) bad('not an IP address');
      break;
    case 'uri':
      if (!/^[a-z][a-z0-9+.-]*:[^\s]+$/i.test(n.value) || /[^\x21-\x7e]/.test(n.value)) bad('not an ASCII URI');
      break;
    case 'email':
      if (!/^[^\s@]+@[^\s@]+$/.test(n.value) || /[^\x21-\x7e]/.test(n.value)) bad('not an ASCII mailbox');
      break;
  }
}

export function encodeGeneralName(n: GeneralName): Buffer {
  checkGeneralName(n);
  switch (n.type) {
    case 'email':
      return tlv(0x81, Buffer.from(n.value, 'ascii'));
    case 'dns':
      return tlv(0x82, Buffer.from(n.value.toLowerCase(), 'ascii'));
    case 'uri':
      return tlv(0x86, Buffer.from(n.value, 'ascii'));
    case 'ip':
      return tlv(0x87, ipToBytes(n.value));
  }
}

export const encodeGeneralNames = (names: readonly GeneralName[]): Buffer => seq(...names.map(encodeGeneralName));

/** Decodes GeneralNames; kinds certfleet does not issue (otherName, directoryName…) are refused. */
export function decodeGeneralNames(buf: Buffer): GeneralName[] {
  const top = expect(buf, 0, Tag.Sequence, buf.length, 'GeneralNames');
  return children(buf, top).map((el) => {
    const v = content(buf, el);
    switch (el.tag) {
      case 0x81:
        return { type: 'email', value: v.toString('latin1') } as const;
      case 0x82:
        return { type: 'dns', value: v.toString('latin1') } as const;
      case 0x86:
        return { type: 'uri', value: v.toString('latin1') } as const;
      case 0x87:
        return { type: 'ip', value: bytesToIp(v) } as const;
      default:
        throw new PkiError('unsupported-algorithm', `subjectAltName entry with tag 0x${el.tag.toString(16)} is not supported`);
    }
  });
}

/** Parses `dns:x`, `ip:1.2.3.4`, `uri:…`, `email:…`; a bare value is a DNS name or an IP. */
export function parseGeneralName(s: string): GeneralName {
  const m = /^(dns|ip|uri|email):(.+)$/i.exec(s);
  const n: GeneralName = m
    ? ({ type: m[1]!.toLowerCase(), value: m[2]! } as GeneralName)
    : isIP(s)
      ? { type: 'ip', value: s }
      : { type: 'dns', value: s };
  checkGeneralName(n);
  return n;
}
