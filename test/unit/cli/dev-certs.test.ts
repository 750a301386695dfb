// Development certificates as `npm start` uses them: a fresh directory gets a CA and one
// certificate per node and client, keys are private (0600), names and SANs are what the transport
// checks, a second run reuses everything, and a missing or foreign certificate is reissued.
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import {
  createDevCa,
  type DevCertsResult,
  devCertsCommand,
  ensureDevCerts,
  readNodeTls,
} from "../../../src/cli/dev-certs.js";
import { nodeId } from "../../../src/raft/types.js";
import { TlsTransport } from "../../../src/transport/tls-transport.js";
import { waitFor } from "../../support/wait-for.js";

let dir = "";
let first: DevCertsResult;
const options = () => ({ dir, nodeNames: ["node-1", "node-2"], clientNames: ["cairn-client"] });

before(async () => {
  dir = join(await mkdtemp(join(tmpdir(), "cairn-dev-certs-")), "certs");
  first = await ensureDevCerts(options());
});
after(async () => {
  await rm(join(dir, ".."), { recursive: true, force: true });
});

async function x509(path: string): Promise<X509Certificate> {
  return new X509Certificate(await readFile(path));
}

describe("development certificates", () => {
  it("creates a CA, node and client certificates signed by it, with private keys at mode 0600", async () => {
    assert.deepEqual([...first.created].sort(), ["ca", "cairn-client", "node-1", "node-2"]);
    const ca = await x509(first.caCertPath);
    assert.equal(ca.ca, true);
    for (const paths of [...first.nodes.values(), ...first.clients.values()]) {
      const cert = await x509(paths.certPath);
      assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), `${paths.certPath} signed by the CA`);
      assert.equal((await stat(paths.keyPath)).mode & 0o777, 0o600);
      assert.equal(cert.ca, false);
    }
    assert.equal((await stat(join(dir, "ca.key"))).mode & 0o777, 0o600);
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
  });

  it("names each node in its CN and SANs, with localhost and loopback addresses", async () => {
    const paths = first.nodes.get("node-2");
    assert.ok(paths);
    const cert = await x509(paths.certPath);
    assert.match(cert.subject, /CN=node-2/);
    const san = cert.subjectAltName ?? "";
    for (const name of ["DNS:node-2", "DNS:localhost", "IP Address:127.0.0.1"])
      assert.ok(san.includes(name), `${name} in ${san}`);
    assert.ok(cert.keyUsage?.includes("1.3.6.1.5.5.7.3.1"), "server auth");
    assert.ok(cert.keyUsage?.includes("1.3.6.1.5.5.7.3.2"), "client auth");
    const client = await x509(first.clients.get("cairn-client")?.certPath ?? "");
    assert.ok(!client.keyUsage?.includes("1.3.6.1.5.5.7.3.1"), "a client certificate cannot serve");
    assert.equal(client.subjectAltName?.includes("localhost") ?? false, false);
  });

  it("reuses everything on a second run and reissues only what is missing", async () => {
    const node1 = await readFile(first.nodes.get("node-1")?.certPath ?? "", "utf8");
    const again = await ensureDevCerts(options());
    assert.deepEqual(again.created, []);
    assert.equal(await readFile(again.nodes.get("node-1")?.certPath ?? "", "utf8"), node1);
    await unlink(first.nodes.get("node-2")?.keyPath ?? "");
    const repaired = await ensureDevCerts(options());
    assert.deepEqual(repaired.created, ["node-2"]);
    assert.equal(await readFile(repaired.nodes.get("node-1")?.certPath ?? "", "utf8"), node1);
  });

  it("reissues a certificate that the CA on disk did not sign", async () => {
    const foreign = await createDevCa("someone else");
    await writeFile(first.nodes.get("node-1")?.certPath ?? "", foreign.cert);
    const repaired = await ensureDevCerts(options());
    assert.deepEqual(repaired.created, ["node-1"]);
    const cert = await x509(repaired.nodes.get("node-1")?.certPath ?? "");
    assert.ok(cert.checkIssued(await x509(repaired.caCertPath)));
  });

  it("reads a node's TLS material and refuses a key others can read", async () => {
    const paths = first.nodes.get("node-1");
    assert.ok(paths);
    const material = await readNodeTls(first.caCertPath, paths);
    assert.match(material.key, /PRIVATE KEY/);
    const { chmod } = await import("node:fs/promises");
    await chmod(paths.keyPath, 0o644);
    await assert.rejects(readNodeTls(first.caCertPath, paths), /readable by group or others/);
    await chmod(paths.keyPath, 0o600);
  });

  it("the dev-certs command reports reused certificates and validates --nodes", async () => {
    let out = "";
    const command = devCertsCommand((text) => {
      out += text;
    });
    await command.parseAsync(["--dir", dir, "--nodes", "2"], { from: "user" });
    assert.match(out, /node-2 .*node-2\.crt/);
    assert.match(out, /reused existing certificates/);
    await assert.rejects(
      devCertsCommand(() => {}).parseAsync(["--dir", dir, "--nodes", "0"], { from: "user" }),
      /--nodes must be/,
    );
  });

  it("the files on disk work for mutual TLS between two transports", async () => {
    const decoder = new TextDecoder();
    const codec = {
      encode: (text: string) => new TextEncoder().encode(text),
      decode: (bytes: Uint8Array) => ({ ok: true as const, message: decoder.decode(bytes) }),
    };
    const make = async (id: number) => {
      const paths = first.nodes.get(`node-${id}`);
      assert.ok(paths);
      return new TlsTransport<string>({
        self: nodeId(id),
        clusterId: "dev",
        listen: { host: "127.0.0.1", port: 0 },
        tls: await readNodeTls(first.caCertPath, paths),
        codec,
      });
    };
    const a = await make(1);
    const b = await make(2);
    try {
      await a.start();
      await b.start();
      const got: string[] = [];
      b.onMessage((m) => got.push(`${m.from}:${m.message}`));
      const peers = new Map([
        [nodeId(1), a.listenAddress ?? { host: "", port: 0 }],
        [nodeId(2), b.listenAddress ?? { host: "", port: 0 }],
      ]);
      a.setPeers(peers);
      b.setPeers(peers);
      a.send(nodeId(2), "hello over mTLS");
      await waitFor("the message to arrive over mTLS", () => got.length > 0);
      assert.deepEqual(got, ["1:hello over mTLS"]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it("rejects names that are not plain identifiers", async () => {
    await assert.rejects(ensureDevCerts({ dir, nodeNames: ["../escape"] }), /bad certificate name/);
    await assert.rejects(ensureDevCerts({ dir, nodeNames: ["ca"] }), /bad certificate name/);
  });
});
