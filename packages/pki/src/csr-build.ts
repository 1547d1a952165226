/** Building PKCS#10 requests (RFC 2986 §4), for devices and for tests. */
import type { KeyObject } from 'node:crypto';
import { oid, seq, smallInt, tlv, bitString, Tag } from './der.js';
import { extension } from './extensions.js';
import { encodeGeneralNames, type GeneralName } from './general-name.js';
import { schemeForKey, signWith } from './keys.js';
import { encodeName, type NameAttribute } from './name.js';
import { OID } from './oids.js';
import { encodePem } from './pem.js';

export interface CsrInput {
  readonly subject: readonly NameAttribute[];
  readonly publicKey: KeyObject;
  readonly privateKey: KeyObject;
  readonly sans?: readonly GeneralName[];
}

export function buildCsr(input: CsrInput): Buffer {
  const spki = input.publicKey.export({ format: 'der', type: 'spki' });
  const attrs: Buffer[] = [];
  if (input.sans && input.sans.length > 0) {
    const exts = seq(extension(OID.subjectAltName, false, encodeGeneralNames(input.sans)));
    attrs.push(seq(oid(OID.extensionRequest), tlv(Tag.Set, exts)));
  }
  const info = seq(smallInt(0), encodeName(input.subject), spki, tlv(0xa0, ...attrs));
  const scheme = schemeForKey(input.privateKey);
  return seq(info, scheme.algorithmId, bitString(signWith(scheme, info, input.privateKey)));
}

export const buildCsrPem = (input: CsrInput): string => encodePem('CERTIFICATE REQUEST', buildCsr(input));

