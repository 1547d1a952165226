/**
 * Reading a certs-only CMS SignedData (RFC 5652 §5.1; RFC 7030 §4.1.3 and
 * §4.2.3 send EST's CA certificates and issued certificates this way):
 * ContentInfo { id-signedData, [0] SignedData { version, digestAlgorithms,
 * encapContentInfo, [0] IMPLICIT certificates, … } }. Only the certificates
 * are taken; there is no signature to check (signerInfos is empty), so the
 * content is as trustworthy as the TLS session it came over.
 */
import { Certificate } from '@certfleet/pki';
import { AgentError } from '../errors.js';
import { bytesOf, childrenOf, decodeOid, expectTag, readTlv, TAG } from '../der.js';

const SIGNED_DATA = '1.2.840.113549.1.7.2';
const CONTEXT_0 = 0xa0;

export function parseCertsOnlyPkcs7(der: Uint8Array): Certificate[] {
  const top = expectTag(readTlv(der, 0), TAG.sequence, 'ContentInfo');
  if (top.end !== der.length) throw new AgentError('bad-response', 'trailing bytes after the PKCS#7 ContentInfo');
  const [type, wrapped] = childrenOf(der, top);
  if (decodeOid(der, expectTag(type, TAG.oid, 'contentType')) !== SIGNED_DATA) throw new AgentError('bad-response', 'the PKCS#7 is not SignedData');
  const signedData = expectTag(childrenOf(der, expectTag(wrapped, CONTEXT_0, 'content'))[0], TAG.sequence, 'SignedData');
  const certificates = childrenOf(der, signedData).find((el) => el.tag === CONTEXT_0);
  if (!certificates) throw new AgentError('bad-response', 'the PKCS#7 carries no certificates');
  try {
    return childrenOf(der, certificates).map((el) => Certificate.fromDer(bytesOf(der, expectTag(el, TAG.sequence, 'Certificate'))));
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw new AgentError('bad-response', `a certificate in the PKCS#7 does not parse: ${(err as Error).message}`, { cause: err });
  }
}

/** The base64 body of an application/pkcs7-mime answer (RFC 7030 §4.1.3: base64, line breaks allowed). */
export function decodeBase64Body(text: string): Buffer {
  const b64 = text.replace(/\s+/g, '');
  if (b64.length === 0 || b64.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) throw new AgentError('bad-response', 'the EST answer is not base64');
  return Buffer.from(b64, 'base64');
}
