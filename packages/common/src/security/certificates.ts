import { ErrorCode } from "../error-codes.js";
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from "node:crypto";
import { LacewingError } from "../errors.js";
import { bitString, boolean, explicit, integer, namedBits, octetString, oid, sequence, set, smallInteger, time, tlv, utf8String, type Der } from "./der.js";
import { identitySubject, type Role } from "./identity.js";

/** A certificate and its private key, both PEM. */
export interface KeyPair {
  certPem: string;
  keyPem: string;
}

export interface IssueOptions {
  role: Role;
  /** Who holds the certificate (a node, a pod); part of its identity. */
  name?: string;
  /** Default 365. */
  validDays?: number;
  now?: Date;
}

const OID = {
  commonName: "2.5.4.3",
  ecPublicKey: "1.2.840.10045.2.1",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
} as const;

const KEY_USAGE = { digitalSignature: 0, keyCertSign: 5, cRLSign: 6 } as const;
/** Clocks of the nodes of a cluster disagree a little; a certificate is valid from a few minutes before it was made. */
const BACKDATE_MS = 5 * 60_000;

/**
 * Creates a cluster certificate authority: an ECDSA P-256 key and a
 * self-signed CA certificate that may only sign end-entity certificates.
 */
export function createCertificateAuthority(options: { name?: string; validDays?: number; now?: Date } = {}): KeyPair {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const subject = nameOf(options.name ?? "lacewing cluster CA");
  const keyId = keyIdOf(publicKey);
  const tbs = tbsCertificate({
    issuer: subject,
    subject,
    publicKey,
    now: options.now ?? new Date(),
    validDays: options.validDays ?? 3650,
    extensions: [
      extension(OID.basicConstraints, true, sequence(boolean(true), smallInteger(0))),
      extension(OID.keyUsage, true, namedBits([KEY_USAGE.keyCertSign, KEY_USAGE.cRLSign])),
      extension(OID.subjectKeyIdentifier, false, octetString(keyId)),
    ],
  });
  return { certPem: signedPem(tbs, privateKey), keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
}

/**
 * Issues a certificate for one process of the cluster, signed by `ca`. Its
 * subject carries the role (see identity.ts); it serves and authenticates
 * TLS (serverAuth and clientAuth), since every process is both.
 */
export function issueCertificate(ca: KeyPair, options: IssueOptions): KeyPair {
  let caCert: X509Certificate;
  let caKey: KeyObject;
  try {
    caCert = new X509Certificate(ca.certPem);
    caKey = createPrivateKey(ca.keyPem);
  } catch (err) {
    throw new LacewingError(ErrorCode.tls, "invalid_argument", `the CA certificate or key cannot be read: ${(err as Error).message}`, { cause: err });
  }
  if (!caCert.ca) throw new LacewingError(ErrorCode.tls, "invalid_argument", "the CA certificate is not a certificate authority (basicConstraints CA:FALSE)");
  if (!caCert.checkPrivateKey(caKey)) throw new LacewingError(ErrorCode.tls, "invalid_argument", "the CA key does not belong to the CA certificate");
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const caFields = certificateFields(caCert.raw);
  const authorityKeyId = caFields.subjectKeyId ?? keyIdOf(caCert.publicKey);
  const tbs = tbsCertificate({
    issuer: caFields.subject,
    subject: nameOf(identitySubject(options.role, options.name)),
    publicKey,
    now: options.now ?? new Date(),
    validDays: options.validDays ?? 365,
    extensions: [
      extension(OID.basicConstraints, true, sequence()),
      extension(OID.keyUsage, true, namedBits([KEY_USAGE.digitalSignature])),
      extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth), oid(OID.clientAuth))),
      extension(OID.subjectKeyIdentifier, false, octetString(keyIdOf(publicKey))),
      extension(OID.authorityKeyIdentifier, false, sequence(tlv(0x80, authorityKeyId))),
    ],
  });
  return { certPem: signedPem(tbs, caKey), keyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString() };
}

function tbsCertificate(fields: { issuer: Der; subject: Der; publicKey: KeyObject; now: Date; validDays: number; extensions: Der[] }): Der {
  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const notBefore = new Date(fields.now.getTime() - BACKDATE_MS);
  const notAfter = new Date(fields.now.getTime() + fields.validDays * 86_400_000);
  return sequence(
    explicit(0, smallInteger(2)),
    integer(serial),
    sequence(oid(OID.ecdsaWithSha256)),
    fields.issuer,
    sequence(time(notBefore), time(notAfter)),
    fields.subject,
    fields.publicKey.export({ type: "spki", format: "der" }),
    explicit(3, sequence(...fields.extensions)),
  );
}

function signedPem(tbs: Der, key: KeyObject): string {
  // ECDSA signatures from node:crypto are DER-encoded ECDSA-Sig-Value, as X.509 wants.
  const signature = sign("sha256", tbs, key);
  const der = sequence(tbs, sequence(oid(OID.ecdsaWithSha256)), bitString(signature));
  const base64 = Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n");
  return `-----BEGIN CERTIFICATE-----\n${base64.endsWith("\n") ? base64 : `${base64}\n`}-----END CERTIFICATE-----\n`;
}

function nameOf(commonName: string): Der {
  return sequence(set(sequence(oid(OID.commonName), utf8String(commonName))));
}

function extension(id: string, critical: boolean, value: Der): Der {
  return critical ? sequence(oid(id), boolean(true), octetString(value)) : sequence(oid(id), octetString(value));
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (what Go and OpenSSL compute too). */
function keyIdOf(publicKey: KeyObject): Buffer {
  const spki = publicKey.export({ type: "spki", format: "der" });
  const [, keyBits] = children(spki, readNode(spki, 0));
  // The BIT STRING's first content byte counts unused bits.
  return createHash("sha1")
    .update(spki.subarray(keyBits!.start + keyBits!.header + 1, keyBits!.end))
    .digest();
}

interface DerNode {
  tag: number;
  start: number;
  header: number;
  end: number;
}

function readNode(der: Uint8Array, start: number): DerNode {
  const tag = der[start]!;
  const first = der[start + 1]!;
  let length = first;
  let header = 2;
  if (first & 0x80) {
    length = 0;
    for (let i = 0; i < (first & 0x7f); i++) length = length * 256 + der[start + 2 + i]!;
    header += first & 0x7f;
  }
  if (start + header + length > der.length) throw new Error("truncated DER");
  return { tag, start, header, end: start + header + length };
}

function children(der: Uint8Array, node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  for (let at = node.start + node.header; at < node.end;) {
    const child = readNode(der, at);
    out.push(child);
    at = child.end;
  }
  return out;
}

/** The issuer-relevant parts of a certificate another tool may have made: its subject as encoded, and its key identifier. */
function certificateFields(raw: Buffer): { subject: Buffer; subjectKeyId: Buffer | undefined } {
  const [tbs] = children(raw, readNode(raw, 0));
  const fields = children(raw, tbs!);
  // [0] version is optional; then serial, signature, issuer, validity, subject.
  const offset = fields[0]!.tag === 0xa0 ? 1 : 0;
  const subject = fields[offset + 4]!;
  let subjectKeyId: Buffer | undefined;
  const extensions = fields.find((field) => field.tag === 0xa3);
  if (extensions !== undefined) {
    const [list] = children(raw, extensions);
    for (const ext of children(raw, list!)) {
      const [id, ...rest] = children(raw, ext);
      if (!raw.subarray(id!.start, id!.end).equals(oid(OID.subjectKeyIdentifier))) continue;
      const value = rest[rest.length - 1]!;
      const inner = readNode(raw, value.start + value.header);
      subjectKeyId = raw.subarray(inner.start + inner.header, inner.end);
    }
  }
  return { subject: raw.subarray(subject.start, subject.end), subjectKeyId };
}
