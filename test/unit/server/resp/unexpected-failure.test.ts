// A bug below the Redis adapter (a service throwing something that is not a CairnError) must cost
// only the request that hit it: the client gets Redis's `-ERR internal error`, the node logs the
// failure once with its stack, and the connection and every other client go on. The throw is
// planted in the single-replica log the services run on.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RawConnection, startLocalRespServer } from "../../../support/resp-fixture.js";

describe("RESP server: an unexpected failure", () => {
  let fixture: Awaited<ReturnType<typeof startLocalRespServer>>;
  before(async () => {
    fixture = await startLocalRespServer();
  });
  after(async () => {
    await fixture.server.close();
  });

  it("answers -ERR internal error, logs the stack once and keeps serving", async () => {
    const c = await RawConnection.open(fixture.port);
    const other = await RawConnection.open(fixture.port);
    fixture.log.failWith = new TypeError("planted: not a CairnError");
    try {
      c.write("GET a\r\nSET a 1\r\nMULTI\r\nSET a 2\r\nEXEC\r\nPING\r\n");
      const replies = await c.until((s) => s.endsWith("+PONG\r\n"));
      assert.equal(
        replies,
        "-ERR internal error\r\n-ERR internal error\r\n+OK\r\n+QUEUED\r\n-ERR internal error\r\n+PONG\r\n",
      );
    } finally {
      fixture.log.failWith = undefined;
    }
    assert.equal(fixture.logged.length, 1, "the same failure is logged once");
    assert.match(fixture.logged[0] ?? "", /^ERROR \[redis\] internal error in /);
    assert.match(fixture.logged[0] ?? "", /TypeError: planted: not a CairnError\n\s+at /);
    c.write("SET a 3\r\nGET a\r\n");
    assert.ok((await c.until((s) => s.endsWith("$1\r\n3\r\n"))).endsWith("+OK\r\n$1\r\n3\r\n"));
    other.write("GET a\r\n");
    assert.equal(await other.until((s) => s.endsWith("3\r\n")), "$1\r\n3\r\n");
    c.close();
    other.close();
  });
});
