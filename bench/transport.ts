// Micro-benchmark of the TLS transport: messages/s and MB/s from one transport to another on
// 127.0.0.1, for 100-byte and 16 KiB payloads, plus one snapshot stream. Bounded to ~20 s.
// Run: node --import tsx bench/transport.ts [secondsPerCase]
import { createDevCa, issueCertificate } from "../src/cli/dev-certs.js";
import { groupId, nodeId } from "../src/raft/types.js";
import type { Codec } from "../src/transport/codec.js";
import { TlsTransport } from "../src/transport/tls-transport.js";

const secondsPerCase = Number(process.argv[2] ?? "5");
const rawCodec: Codec<Uint8Array> = {
  encode: (message) => message,
  decode: (bytes) => ({ ok: true, message: bytes }),
};

const ca = await createDevCa("bench CA");
const cert1 = await issueCertificate(ca, { commonName: "node-1", role: "node" });
const cert2 = await issueCertificate(ca, { commonName: "node-2", role: "node", privateKey: cert1.key });
const make = (id: number, pem: { cert: string; key: string }) =>
  new TlsTransport<Uint8Array>({
    self: nodeId(id),
    clusterId: "bench",
    listen: { host: "127.0.0.1", port: 0 },
    tls: { ca: ca.cert, cert: pem.cert, key: pem.key },
    codec: rawCodec,
  });
const a = make(1, cert1);
const b = make(2, cert2);
await a.start();
await b.start();
const peers = new Map([
  [nodeId(1), a.listenAddress ?? { host: "", port: 0 }],
  [nodeId(2), b.listenAddress ?? { host: "", port: 0 }],
]);
a.setPeers(peers);
b.setPeers(peers);

let received = 0;
let receivedBytes = 0;
b.onMessage((m) => {
  received++;
  receivedBytes += m.message.length;
});
let dropped = 0;
a.onUnreachable(() => dropped++);

const yieldToIo = () => new Promise((resolve) => setImmediate(resolve));

async function run(payloadBytes: number): Promise<void> {
  const payload = new Uint8Array(payloadBytes).fill(7);
  // Keep at most half a queue in flight so the benchmark measures throughput, not drops.
  const window = Math.floor(a.settings.peerQueueMessagesMax / 2);
  received = 0;
  receivedBytes = 0;
  let sent = 0;
  const started = performance.now();
  const end = started + secondsPerCase * 1000;
  while (performance.now() < end) {
    while (sent - received < window) {
      a.send(nodeId(2), payload);
      sent++;
    }
    await yieldToIo();
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `${String(payloadBytes).padStart(6)} B messages: ${Math.round(received / seconds).toLocaleString("en")} msg/s, ` +
      `${(receivedBytes / seconds / 1e6).toFixed(1)} MB/s (${received.toLocaleString("en")} in ${seconds.toFixed(1)} s, dropped ${dropped})`,
  );
  while (received < sent) await yieldToIo();
}

async function snapshot(totalBytes: number): Promise<void> {
  b.onSnapshot((s) => {
    void (async () => {
      for await (const _ of s.chunks) {
        // consume
      }
    })();
  });
  const chunk = new Uint8Array(1024 * 1024).fill(3);
  async function* source(): AsyncGenerator<Uint8Array> {
    for (let sent = 0; sent < totalBytes; sent += chunk.length) yield chunk;
  }
  const started = performance.now();
  await a.sendSnapshot(nodeId(2), groupId(1), new Uint8Array(0), source());
  const seconds = (performance.now() - started) / 1000;
  console.log(
    `snapshot stream: ${(totalBytes / seconds / 1e6).toFixed(1)} MB/s (${totalBytes / 1024 / 1024} MiB in ${seconds.toFixed(2)} s)`,
  );
}

console.log(`TLS transport on 127.0.0.1, Node ${process.version}, ${secondsPerCase} s per case`);
await run(100);
await run(16 * 1024);
await snapshot(256 * 1024 * 1024);
await a.close();
await b.close();
