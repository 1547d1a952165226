/**
 * A parsed X.509 certificate: an immutable wrapper over @peculiar/asn1-x509's
 * structure and the original DER, with getters computed on first use.
 */
import { createHash, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn from '@peculiar/asn1-x509';
import { children, expect, slice, Tag } from './der.js';
import { PkiError } from './errors.js';
import { decodeGeneralNames, type GeneralName } from './general-name.js';
import { schemeFromAlgorithmId, type SignatureScheme } from './keys.js';
import { decodeName, formatName, type NameAttribute } from './name.js';
import { OID } from './oids.js';
import { decodePemBlocks, encodePem } from './pem.js';

const KU_NAMES = ['digitalSignature', 'nonRepudiation', 'keyEncipherment', 'dataEncipherment', 'keyAgreement', 'keyCertSign', 'cRLSign'] as const;

function once<T>(fn: () => T): () => T {
  let done = false;
  let v: T;
  return () => {
    if (!done) {
      v = fn();
      done = true;
    }
    return v;
  };
}

export class Certificate {
  readonly der: Buffer;
  private readonly asn: asn.Certificate;
  private readonly parts: { issuer: Buffer; subject: Buffer; spki: Buffer; tbs: Buffer };

  private constructor(der: Buffer) {
    this.der = der;
    try {
      this.asn = AsnConvert.parse(der, asn.Certificate);
      const top = expect(der, 0, Tag.Sequence, der.length, 'Certificate');
      if (top.end !== der.length) throw new PkiError('malformed-der', 'trailing bytes after the certificate');
      const [tbsEl] = children(der, top);
      const fields = children(der, tbsEl!);
      const base = fields[0]?.tag === 0xa0 ? 1 : 0;
      const [, , issuer, , subject, spki] = fields.slice(base);
      if (!issuer || !subject || !spki) throw new PkiError('malformed-der', 'TBSCertificate is missing fields');
      this.parts = { issuer: slice(der, issuer), subject: slice(der, subject), spki: slice(der, spki), tbs: slice(der, tbsEl!) };
    } catch (err) {
      if (err instanceof PkiError) throw err;
      throw new PkiError('malformed-der', `not a DER certificate: ${(err as Error).message}`, { cause: err });
    }
  }

  static fromDer(der: Uint8Array): Certificate {
    return new Certificate(Buffer.from(der));
  }

  /** The first CERTIFICATE block of a PEM text. */
  static fromPem(pem: string): Certificate {
    return Certificate.allFromPem(pem)[0]!;
  }

  /** Every CERTIFICATE block of a PEM text, in order. */
  static allFromPem(pem: string): Certificate[] {
    const blocks = decodePemBlocks(pem).filter((b) => b.label === 'CERTIFICATE');
    if (blocks.length === 0) throw new PkiError('malformed-pem', 'no CERTIFICATE block found');
    return blocks.map((b) => new Certificate(b.der));
  }

  toPem(): string {
    return encodePem('CERTIFICATE', this.der);
  }

  get tbs(): Buffer {
    return this.parts.tbs;
  }
  get issuerDer(): Buffer {
    return this.parts.issuer;
  }
  get subjectDer(): Buffer {
    return this.parts.subject;
  }
  get spki(): Buffer {
    return this.parts.spki;
  }

  readonly serial = once(() => {
    const bytes = Buffer.from(this.asn.tbsCertificate.serialNumber);
    let i = 0;
    while (i < bytes.length - 1 && bytes[i] === 0) i++;
    return bytes.subarray(i).toString('hex');
  });

  readonly subjectAttributes = once((): NameAttribute[] => decodeName(this.parts.subject));
  readonly subject = once(() => formatName(this.subjectAttributes()));
  readonly issuer = once(() => formatName(decodeName(this.parts.issuer)));
  readonly notBefore = once(() => this.asn.tbsCertificate.validity.notBefore.getTime());
  readonly notAfter = once(() => this.asn.tbsCertificate.validity.notAfter.getTime());
  readonly fingerprint = once(() => createHash('sha256').update(this.der).digest('hex'));

  /** The outer signature's scheme; must equal the TBS one (RFC 5280 §4.1.1.2). */
  readonly signatureScheme = once((): SignatureScheme => {
    const outer = AsnConvert.serialize(this.asn.signatureAlgorithm);
    const inner = AsnConvert.serialize(this.asn.tbsCertificate.signature);
    if (!Buffer.from(outer).equals(Buffer.from(inner))) {
      throw new PkiError('malformed-der', 'signatureAlgorithm differs from tbsCertificate.signature');
    }
    const buf = Buffer.from(outer);
    return schemeFromAlgorithmId(buf, 0, buf.length);
  });

  get signature(): Buffer {
    return Buffer.from(this.asn.signatureValue);
  }

  get isSelfIssued(): boolean {
    return this.parts.subject.equals(this.parts.issuer);
  }

  private extension<T>(id: string, type: new () => T): { critical: boolean; value: T } | undefined {
    const ext = this.asn.tbsCertificate.extensions?.find((e) => e.extnID === id);
    if (!ext) return undefined;
    return { critical: ext.critical, value: AsnConvert.parse(ext.extnValue, type) };
  }

  readonly extensionIds = once(() => (this.asn.tbsCertificate.extensions ?? []).map((e) => e.extnID));
  readonly criticalExtensionIds = once(() => (this.asn.tbsCertificate.extensions ?? []).filter((e) => e.critical).map((e) => e.extnID));

  readonly basicConstraints = once(() => {
    const bc = this.extension(OID.basicConstraints, asn.BasicConstraints);
    return bc ? { ca: bc.value.cA, pathLen: bc.value.pathLenConstraint ?? null, critical: bc.critical } : undefined;
  });

  /** Key usage names, or undefined when the extension is absent. */
  readonly keyUsage = once(() => {
    const ku = this.extension(OID.keyUsage, asn.KeyUsage);
    if (!ku) return undefined;
    const flags = ku.value.toNumber();
    return KU_NAMES.filter((_, i) => flags & (1 << i));
  });

  readonly extKeyUsage = once(() => {
    const eku = this.extension(OID.extKeyUsage, asn.ExtendedKeyUsage);
    return eku ? [...eku.value] : undefined;
  });

  readonly subjectKeyIdentifier = once(() => {
    const ski = this.extension(OID.subjectKeyIdentifier, asn.SubjectKeyIdentifier);
    return ski ? Buffer.from(ski.value.buffer) : undefined;
  });

  readonly authorityKeyIdentifier = once(() => {
    const aki = this.extension(OID.authorityKeyIdentifier, asn.AuthorityKeyIdentifier);
    return aki?.value.keyIdentifier ? Buffer.from(aki.value.keyIdentifier.buffer) : undefined;
  });

  readonly subjectAltNames = once((): GeneralName[] => {
    const ext = this.asn.tbsCertificate.extensions?.find((e) => e.extnID === OID.subjectAltName);
    return ext ? decodeGeneralNames(Buffer.from(ext.extnValue.buffer)) : [];
  });

  readonly crlDistributionPoints = once((): string[] => {
    const dp = this.extension(OID.crlDistributionPoints, asn.CRLDistributionPoints);
    return (dp?.value ?? []).flatMap((p) =>
      (p.distributionPoint?.fullName ?? []).flatMap((n) => (n.uniformResourceIdentifier ? [n.uniformResourceIdentifier] : [])),
    );
  });

  readonly ocspUrls = once((): string[] => {
    const aia = this.extension(OID.authorityInfoAccess, asn.AuthorityInfoAccessSyntax);
    return (aia?.value ?? [])
      .filter((d) => d.accessMethod === OID.ocsp)
      .flatMap((d) => (d.accessLocation.uniformResourceIdentifier ? [d.accessLocation.uniformResourceIdentifier] : []));
  });

  /** Node's view of the same certificate, for its key and its TLS helpers. */
  readonly node = once(() => new X509Certificate(this.der));

  get publicKey() {
    return this.node().publicKey;
  }

  /** Key algorithm in certfleet's words ('ec-p256', 'rsa-2048', …), never refusing weak keys: audits must see them. */
  readonly keyAlgorithm = once(() => {
    const k = this.publicKey;
    const d = k.asymmetricKeyDetails;
    if (k.asymmetricKeyType === 'ec') {
      return d?.namedCurve === 'prime256v1' ? 'ec-p256' : d?.namedCurve === 'secp384r1' ? 'ec-p384' : `ec-${d?.namedCurve}`;
    }
    if (k.asymmetricKeyType === 'rsa') return `rsa-${d?.modulusLength}`;
    return k.asymmetricKeyType ?? 'unknown';
  });

  isValidAt(at: Date): boolean {
    return at >= this.notBefore() && at <= this.notAfter();
  }
}
