// Shared fixtures for the transport tests: development certificates made once per process, a tiny
// text codec standing in for the Raft codec, and helpers to build and tear down transports.

import { createDevCa, issueCertificate, type PemPair } from "../../../src/cli/dev-certs.js";
import { groupId, type NodeId, nodeId } from "../../../src/raft/types.js";
import type { Codec } from "../../../src/transport/codec.js";
import type { TransportSettings } from "../../../src/transport/settings.js";
import { TlsTransport, type TlsTransportOptions } from "../../../src/transport/tls-transport.js";
import type { TransportEvent } from "../../../src/transport/transport.js";
import { Prng } from "../../../src/util/prng.js";

/** A test message: a group and a text body. */
export interface TestMessage {
  readonly group: number;
  readonly text: string;
}

/** The example codec: u32 group then UTF-8 text. Rejects payloads shorter than 4 bytes. */
export const textCodec: Codec<TestMessage> = {
  encode(message) {
    const body = new TextEncoder().encode(message.text);
    const head = new Uint8Array(4);
    new DataView(head.buffer).setUint32(0, message.group);
    return [head, body];
  },
  decode(bytes) {
    if (bytes.length < 4) return { ok: false, error: "message shorter than its header" };
    const group = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0);
    try {
      return {
        ok: true,
        message: { group, text: new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(4)) },
      };
    } catch {
      return { ok: false, error: "message text is not UTF-8" };
    }
  },
  groupOf: (message) => groupId(message.group),
};

/** The certificates of one test cluster plus an impostor CA. */
export interface TestCerts {
  readonly ca: PemPair;
  readonly nodes: ReadonlyMap<number, PemPair>;
  readonly client: PemPair;
  readonly otherCa: PemPair;
  /** A certificate named node-2 but signed by the other CA. */
  readonly foreignNode2: PemPair;
}

let certs: Promise<TestCerts> | undefined;

/** Certificates for nodes 1..3, made once per test process (RSA key generation is slow-ish). */
export function testCerts(): Promise<TestCerts> {
  certs ??= (async () => {
    const ca = await createDevCa("test CA");
    // Node certificates share one key: generating RSA keys is the slow part, and identity comes
    // from the certificate's names, which is what these tests exercise.
    const shared = await issueCertificate(ca, {
      commonName: "node-1",
      role: "node",
      ipAddresses: ["127.0.0.1"],
    });
    const nodes = new Map<number, PemPair>([[1, shared]]);
    for (const id of [2, 3]) {
      nodes.set(
        id,
        await issueCertificate(ca, {
          commonName: `node-${id}`,
          role: "node",
          ipAddresses: ["127.0.0.1"],
          privateKey: shared.key,
        }),
      );
    }
    const client = await issueCertificate(ca, {
      commonName: "cairn-client",
      role: "client",
      privateKey: shared.key,
    });
    const otherCa = await createDevCa("impostor CA");
    const foreignNode2 = await issueCertificate(otherCa, {
      commonName: "node-2",
      role: "node",
      ipAddresses: ["127.0.0.1"],
      privateKey: shared.key,
    });
    return { ca, nodes, client, otherCa, foreignNode2 };
  })();
  return certs;
}

/** Small limits and quick reconnects, so tests reach every limit fast. */
export const testSettings: Partial<TransportSettings> = {
  reconnectBackoffBaseMs: 10,
  reconnectBackoffMaxMs: 100,
  handshakeTimeoutMs: 3_000,
};

/** A transport under test with everything it received and reported. */
export interface Node {
  readonly id: NodeId;
  readonly transport: TlsTransport<TestMessage>;
  readonly received: { from: number; group: number; text: string }[];
  readonly unreachable: number[];
  readonly events: TransportEvent[];
}

/** Builds (not starts) a transport for node `id` with the given overrides. */
export async function makeNode(
  id: number,
  overrides: Partial<TlsTransportOptions<TestMessage>> = {},
): Promise<Node> {
  const c = await testCerts();
  const pair = c.nodes.get(id) ?? c.client;
  const received: Node["received"] = [];
  const unreachable: number[] = [];
  const events: TransportEvent[] = [];
  const prng = new Prng(id);
  const transport = new TlsTransport<TestMessage>({
    self: nodeId(id),
    clusterId: "test-cluster",
    listen: { host: "127.0.0.1", port: 0 },
    tls: { ca: c.ca.cert, cert: pair.cert, key: pair.key },
    codec: textCodec,
    settings: testSettings,
    env: {
      nowMs: () => performance.now(),
      setTimer(delayMs, callback) {
        const timer = setTimeout(callback, delayMs);
        return { cancel: () => clearTimeout(timer) };
      },
      below: (bound) => prng.below(bound),
    },
    onEvent: (event) => events.push(event),
    ...overrides,
  });
  transport.onMessage((m) => received.push({ from: m.from, group: m.group, text: m.message.text }));
  transport.onUnreachable((peer) => unreachable.push(peer));
  return { id: nodeId(id), transport, received, unreachable, events };
}

/** Points every node at every other node's listen address. */
export function connectAll(nodes: readonly Node[]): void {
  const peers = new Map<NodeId, { host: string; port: number }>();
  for (const n of nodes) {
    const address = n.transport.listenAddress;
    if (address !== undefined) peers.set(n.id, address);
  }
  for (const n of nodes) n.transport.setPeers(peers);
}

/** Waits until a condition holds (polled), failing with a message naming it after a generous timeout. */
export { waitFor } from "../../support/wait-for.js";

/** A node id, for brevity in tests. */
export const n = (id: number): NodeId => nodeId(id);
