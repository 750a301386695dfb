// The Redis server over TCP as a client sees it: the handshake commands, pipelined replies in
// order, inline commands, and protocol errors answered with Redis's text before the connection
// closes while other connections go on.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RawConnection, startLocalRespServer } from "../../../support/resp-fixture.js";

describe("RESP server", () => {
  let fixture: Awaited<ReturnType<typeof startLocalRespServer>>;
  before(async () => {
    fixture = await startLocalRespServer();
  });
  after(async () => {
    await fixture.server.close();
  });

  it("answers PING, ECHO and HELLO in RESP2 and RESP3", async () => {
    const c = await RawConnection.open(fixture.port);
    c.write("*1\r\n$4\r\nPING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n");
    assert.equal(await c.until((s) => s.endsWith("hi\r\n")), "+PONG\r\n$2\r\nhi\r\n");
    c.write("HELLO 3\r\n");
    const hello = await c.until((s) => s.includes("modules"));
    assert.match(hello, /%7\r\n\$6\r\nserver\r\n\$5\r\nredis\r\n/);
    c.write("GET nothing\r\n");
    assert.ok((await c.until((s) => s.endsWith("_\r\n"))).endsWith("*0\r\n_\r\n"));
    c.close();
  });

  it("answers a pipeline in order", async () => {
    const c = await RawConnection.open(fixture.port);
    let pipeline = "";
    let expected = "";
    for (let i = 0; i < 200; i++) {
      pipeline += `SET k${i} v${i}\r\nGET k${i}\r\n`;
      expected += `+OK\r\n$${`v${i}`.length}\r\nv${i}\r\n`;
    }
    c.write(pipeline);
    assert.equal(await c.until((s) => s.length >= expected.length), expected);
    c.close();
  });

  it("answers a protocol error and closes that connection only", async () => {
    const bad = await RawConnection.open(fixture.port);
    const good = await RawConnection.open(fixture.port);
    bad.write("PING\r\n*1\r\n$abc\r\n");
    assert.equal(await bad.closed(), "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n");
    good.write("PING\r\n");
    assert.equal(await good.until((s) => s.endsWith("\r\n")), "+PONG\r\n");
    good.close();
  });

  it("answers unknown commands and wrong arity as Redis does", async () => {
    const c = await RawConnection.open(fixture.port);
    c.write("FOO a b\r\nGET\r\nCLIENT NOPE\r\n");
    const expected =
      "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n" +
      "-ERR wrong number of arguments for 'get' command\r\n" +
      "-ERR unknown subcommand 'NOPE'. Try CLIENT HELP.\r\n";
    assert.equal(await c.until((s) => s.length >= expected.length), expected);
    c.close();
  });

  it("applies MULTI/EXEC as one entry, and answers nil when a WATCHed key changed", async () => {
    const c = await RawConnection.open(fixture.port);
    const other = await RawConnection.open(fixture.port);
    c.write("SET tx:a 1\r\n");
    await c.until((s) => s.endsWith("+OK\r\n"));
    const before = fixture.log.appliedIndex;
    c.write("WATCH tx:a\r\nMULTI\r\nINCR tx:a\r\nSET tx:b x\r\nGET tx:b\r\nEXEC\r\n");
    const committed = "+OK\r\n+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n:2\r\n+OK\r\n$1\r\nx\r\n";
    assert.equal((await c.until((s) => s.endsWith("x\r\n"))).slice(5), committed);
    assert.equal(fixture.log.appliedIndex, before + 1);
    c.write("WATCH tx:a\r\n");
    await c.until((s) => s.endsWith(`${committed}+OK\r\n`));
    other.write("SET tx:a 5\r\n");
    await other.until((s) => s.endsWith("+OK\r\n"));
    c.write("MULTI\r\nINCR tx:a\r\nEXEC\r\nGET tx:a\r\n");
    assert.ok(
      (await c.until((s) => s.endsWith("$1\r\n5\r\n"))).endsWith("+OK\r\n+QUEUED\r\n*-1\r\n$1\r\n5\r\n"),
    );
    c.close();
    other.close();
  });
});
