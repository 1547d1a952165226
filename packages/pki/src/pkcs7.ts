/**
 * A certs-only ("degenerate") CMS SignedData (RFC 5652 §5; RFC 7030 §4.1.3
 * for EST /cacerts, where it is sent base64 as application/pkcs7-mime):
 * certificates, no content, no signers.
 */
import type { Certificate } from './certificate.js';
import { explicit, oid, seq, smallInt, tlv, Tag } from './der.js';
import { PkiError } from './errors.js';
import { OID } from './oids.js';

/**
 * ContentInfo { signedData, [0] SignedData { version 1, digestAlgorithms {},
 * encapContentInfo { id-data }, [0] IMPLICIT certificates, signerInfos {} } }.
 *
 * Certificates are written in the order given (root last or first, as the
 * caller chooses) rather than sorted as DER's SET OF would have them:
 * OpenSSL also keeps the order, and EST clients read the set as a bag.
 */
export function certsOnlyPkcs7(certs: readonly Certificate[]): Buffer {
  if (certs.length === 0) throw new PkiError('lint-failed', 'a certs-only PKCS#7 needs at least one certificate');
  // §5.1: version 1 — no attribute certificates, no other formats, id-data content, no signers.
  const signedData = seq(
    smallInt(1),
    tlv(Tag.Set),
    seq(oid(OID.data)),
    tlv(0xa0, ...certs.map((c) => c.der)),
    tlv(Tag.Set),
  );
  return seq(oid(OID.signedData), explicit(0, signedData));
}
