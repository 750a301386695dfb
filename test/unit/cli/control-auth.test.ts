// The control API of `cairn dev` under authentication: its calls (ours and Axon's) go through the
// authorize hook with the caller's Authorization header, and a refusal answers 401 or 403 in the
// control API's error shape without reaching the supervisor; the page itself stays open so a user
// can enter a token. Driven by fastify's inject against a stub supervisor.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ControlNodeList } from "../../../src/api/index.js";
import { buildControlApp } from "../../../src/cli/control-server.js";
import { ControlError, type NodeSupervisor } from "../../../src/cli/supervisor.js";

describe("the control API with authentication", () => {
  it("asks the authorize hook for every control call and answers its refusals", async () => {
    const seen: (string | undefined)[] = [];
    let listed = 0;
    const list: ControlNodeList = { nodes: [], leader: null, term: 0, clusterId: null };
    // Only list() is reached; the stub stands in for the whole supervisor.
    const supervisor = {
      list: () => {
        listed++;
        return list;
      },
    } as unknown as NodeSupervisor;
    const app = buildControlApp(
      {
        supervisor,
        port: 0,
        staticDir: "/nonexistent",
        authorize: async (header) => {
          seen.push(header);
          if (header === undefined)
            throw new ControlError("ERR_UNAUTHENTICATED", "the cluster asks for a token");
          if (header !== "Bearer admin") throw new ControlError("ERR_FORBIDDEN", "needs admin:cluster");
        },
      },
      () => ["http://localhost:80"],
    );
    const call = (authorization?: string) =>
      app.inject({
        method: "GET",
        url: "/v1/control/nodes",
        headers: { host: "localhost:80", ...(authorization !== undefined ? { authorization } : {}) },
      });
    const none = await call();
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().error.code, "ERR_UNAUTHENTICATED");
    const weak = await call("Bearer app");
    assert.equal(weak.statusCode, 403);
    assert.equal(weak.json().error.code, "ERR_FORBIDDEN");
    assert.equal(listed, 0, "a refused call never reached the supervisor");
    const ok = await call("Bearer admin");
    assert.equal(ok.statusCode, 200);
    assert.deepEqual(ok.json(), list);
    assert.deepEqual(seen, [undefined, "Bearer app", "Bearer admin"]);
    const page = await app.inject({ method: "GET", url: "/", headers: { host: "localhost:80" } });
    // Not built here (503 names the build command), but never refused for want of a token.
    assert.ok(![401, 403].includes(page.statusCode), "the page stays open");
    assert.equal(seen.length, 3, "the page did not ask the hook");
    await app.close();
  });
});
