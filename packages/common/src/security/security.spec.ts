import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect, createServer, type TLSSocket } from "node:tls";
import { describe, it } from "node:test";
import { createCertificateAuthority, issueCertificate } from "./certificates.js";
import { identityOfSubject, identitySubject } from "./identity.js";
import { isLoopbackAddress, securityOf } from "./security.js";
import { loadTlsMaterial, tlsMaterialOf } from "./tls-material.js";

const ca = createCertificateAuthority({ name: "test CA" });

describe("cluster certificates", () => {
  it("makes a CA certificate that may sign certificates and nothing else", () => {
    const cert = new X509Certificate(ca.certPem);
    assert.equal(cert.ca, true);
    assert.equal(cert.subject, "CN=test CA");
    assert.ok(cert.verify(cert.publicKey), "self-signed");
    assert.ok(cert.checkIssued(cert));
  });

  it("issues a certificate signed by the CA whose subject names the role and holder", () => {
    const issued = issueCertificate(ca, { role: "seed", name: "seed-0" });
    const cert = new X509Certificate(issued.certPem);
    const authority = new X509Certificate(ca.certPem);
    assert.equal(cert.ca, false);
    assert.equal(cert.subject, "CN=lacewing:seed:seed-0");
    assert.ok(cert.checkIssued(authority) && cert.verify(authority.publicKey));
    assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    assert.ok(new Date(cert.validFrom) < new Date() && new Date(cert.validTo) > new Date(Date.now() + 364 * 86_400_000));
  });

  it("writes dates from 2050 on as GeneralizedTime, which X.509 parsers read back", () => {
    const issued = issueCertificate(ca, { role: "peer", validDays: 40 * 365 });
    assert.ok(new Date(new X509Certificate(issued.certPem).validTo).getUTCFullYear() >= 2060);
  });

  it("refuses a CA key that does not belong to the CA certificate", () => {
    const other = createCertificateAuthority();
    assert.throws(() => issueCertificate({ certPem: ca.certPem, keyPem: other.keyPem }, { role: "peer" }), /CA key does not belong/);
  });

  it("completes a mutual TLS handshake in which each side sees the other's role", async () => {
    const serverPair = issueCertificate(ca, { role: "scheduler" });
    const clientPair = issueCertificate(ca, { role: "peer", name: "node-7" });
    const server = createServer({ ca: ca.certPem, cert: serverPair.certPem, key: serverPair.keyPem, requestCert: true, rejectUnauthorized: true });
    const seen = once(server, "secureConnection") as Promise<[TLSSocket]>;
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as { port: number };
    const socket = connect({
      host: "127.0.0.1",
      port,
      ca: ca.certPem,
      cert: clientPair.certPem,
      key: clientPair.keyPem,
      checkServerIdentity: () => undefined,
    });
    await once(socket, "secureConnect");
    const [serverSide] = await seen;
    assert.equal(serverSide.getPeerCertificate().subject.CN, "lacewing:peer:node-7");
    assert.equal(socket.getPeerCertificate().subject.CN, "lacewing:scheduler");
    assert.ok(socket.authorized && serverSide.authorized);
    socket.destroy();
    server.close();
  });
});

describe("identities", () => {
  it("reads the role and name of a common name and nothing else", () => {
    assert.deepEqual(identityOfSubject("lacewing:peer:node-1"), { role: "peer", name: "node-1", subject: "lacewing:peer:node-1" });
    assert.deepEqual(identityOfSubject("lacewing:manager"), { role: "manager", name: "", subject: "lacewing:manager" });
    for (const bad of ["peer", "lacewing:root", "lacewing:peer:a:b", "other:peer", "lacewing:peer:../x", "", undefined])
      assert.equal(identityOfSubject(bad), undefined, String(bad));
  });

  it("refuses to make a subject of an unknown role or an odd name", () => {
    assert.throws(() => identitySubject("root" as "peer"), /unknown role/);
    assert.throws(() => identitySubject("peer", "a b"), /invalid certificate name/);
  });
});

describe("TLS material", () => {
  const peer = issueCertificate(ca, { role: "peer", name: "n1" });

  it("accepts a certificate of the CA with the expected role", () => {
    const material = tlsMaterialOf({ ca: ca.certPem, cert: peer.certPem, key: peer.keyPem }, "peer");
    assert.equal(material.identity.name, "n1");
  });

  it("says what is wrong: another role, another CA, another key, expired, not a role at all", () => {
    const pems = { ca: ca.certPem, cert: peer.certPem, key: peer.keyPem };
    assert.throws(() => tlsMaterialOf(pems, "seed"), /is a peer certificate; this process needs a seed certificate/);
    assert.throws(() => tlsMaterialOf({ ...pems, ca: createCertificateAuthority().certPem }, "peer"), /not signed by the CA/);
    assert.throws(() => tlsMaterialOf({ ...pems, key: issueCertificate(ca, { role: "peer" }).keyPem }, "peer"), /does not belong/);
    assert.throws(() => tlsMaterialOf(pems, "peer", { now: new Date(Date.now() + 400 * 86_400_000) }), /is not valid now/);
    assert.throws(() => tlsMaterialOf({ ...pems, cert: ca.certPem, key: ca.keyPem }, "peer"), /names no Lacewing role/);
  });

  it("loads ca.crt, tls.crt and tls.key from a directory and names a missing file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "lacewing-tls-"));
    try {
      await writeFile(join(dir, "ca.crt"), ca.certPem);
      await writeFile(join(dir, "tls.crt"), peer.certPem);
      assert.throws(
        () => loadTlsMaterial(dir, "peer"),
        (err: Error) => err.message.includes(join(dir, "tls.key")) && /ENOENT/.test(err.message),
      );
      await writeFile(join(dir, "tls.key"), peer.keyPem);
      assert.equal(loadTlsMaterial(dir, "peer").dir, dir);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("securityOf", () => {
  const none = { tlsDir: "", insecure: false, forceInsecure: false };

  it("requires a TLS directory unless insecure is asked for", () => {
    assert.throws(() => securityOf(none, { role: "peer", listen: ["127.0.0.1:1"] }), /tlsDir is required/);
    assert.throws(() => securityOf({ ...none, tlsDir: "/x", insecure: true }, { role: "peer", listen: [] }), /cannot be combined/);
  });

  it("runs insecure on loopback only, unless forced", () => {
    const insecure = { ...none, insecure: true };
    assert.deepEqual(securityOf(insecure, { role: "scheduler", listen: ["127.0.0.1:8002", "[::1]:1", "unix:/run/x.sock"] }), { mode: "insecure" });
    assert.throws(() => securityOf(insecure, { role: "scheduler", listen: ["0.0.0.0:8002"] }), /refuses to listen in the clear on 0\.0\.0\.0:8002/);
    assert.deepEqual(securityOf({ ...insecure, forceInsecure: true }, { role: "scheduler", listen: ["0.0.0.0:8002"] }), { mode: "insecure" });
  });

  it("tells loopback addresses from the others", () => {
    for (const address of ["127.0.0.1:80", "localhost:1", "[::1]:2", "::1", "127.9.9.9", "unix:/tmp/s"]) assert.ok(isLoopbackAddress(address), address);
    for (const address of ["0.0.0.0:80", "10.0.0.1:1", "[::]:2", "example.com:1", "128.0.0.1"]) assert.ok(!isLoopbackAddress(address), address);
  });
});
