// A node that refuses to start leaves nothing open: started in this process with its HTTP port
// taken (a failure after the WAL, the lmdb environment, the transport and the Raft group are up),
// it must have closed every file under its data directory (read from /proc/self/fd) and its peer
// listener, so the same start can be tried again at once.
import assert from "node:assert/strict";
import { mkdtemp, readdir, readlink, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ensureDevCerts } from "../../../src/cli/dev-certs.js";
import { resolveNodeConfig } from "../../../src/cli/node-config.js";
import { startNode } from "../../../src/cli/run-node.js";
import { callbackLogger } from "../../../src/util/index.js";
import { stablePort } from "../../support/process-cluster.js";

/** The files under `dir` this process holds open. */
async function openFilesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const fd of await readdir("/proc/self/fd")) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => "");
    if (target.startsWith(dir)) out.push(target);
  }
  return out;
}

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}

describe("startNode", { skip: process.platform !== "linux" && "reads /proc/self/fd" }, () => {
  it("closes every handle it opened when the start fails", async () => {
    const dir = await mkdtemp(join(tmpdir(), "cairn-start-"));
    const blocker = await listen(await stablePort());
    try {
      const certs = await ensureDevCerts({ dir: join(dir, "certs"), nodeNames: ["node-1"] });
      const paths = certs.nodes.get("node-1");
      assert.ok(paths !== undefined);
      const address = blocker.address();
      const httpPort = typeof address === "object" && address !== null ? address.port : 0;
      const peerPort = await stablePort();
      const dataDir = join(dir, "data");
      const config = resolveNodeConfig({
        flags: {
          name: "n1",
          dataDir,
          peerListen: `127.0.0.1:${peerPort}`,
          httpListen: `127.0.0.1:${httpPort}`,
          initialCluster: `n1=127.0.0.1:${peerPort}`,
          tlsCa: certs.caCertPath,
          tlsCert: paths.certPath,
          tlsKey: paths.keyPath,
        },
      });
      const lines: string[] = [];
      for (let attempt = 0; attempt < 2; attempt++) {
        await assert.rejects(
          startNode(
            config,
            callbackLogger((entry) => lines.push(entry.message)),
          ),
          /EADDRINUSE/,
        );
        assert.deepEqual(await openFilesUnder(dataDir), [], "files under the data directory stay open");
        // The peer listener is closed too: the port is free again.
        (await listen(peerPort)).close();
      }
    } finally {
      blocker.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
