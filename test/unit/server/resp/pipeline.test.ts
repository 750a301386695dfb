// A connection's pipeline of key commands is proposed as one Raft entry per batch, answered in
// order as if run one by one (differential.test.ts compares a whole pipeline with redis-server):
// here the entries it costs, a refused command among others, a command over a limit (the batch
// then runs command by command, each answering for itself) and TTL limits, checked per command.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { RawConnection, startLocalRespServer } from "../../../support/resp-fixture.js";

describe("RESP pipelines", () => {
  let fixture: Awaited<ReturnType<typeof startLocalRespServer>>;
  before(async () => {
    fixture = await startLocalRespServer({ valueBytesMax: 64, ttlMsMax: 60_000 });
  });
  after(async () => {
    await fixture.server.close();
  });

  it("runs 200 pipelined writes in a few entries, answered in order", async () => {
    const roomy = await startLocalRespServer();
    const c = await RawConnection.open(roomy.port);
    const before = roomy.log.appliedIndex;
    let pipeline = "";
    let expected = "";
    for (let i = 0; i < 100; i++) {
      pipeline += `SET p${i} ${i}\r\nINCR p${i}\r\n`;
      expected += `+OK\r\n:${i + 1}\r\n`;
    }
    c.write(`${pipeline}GET p99\r\n`);
    expected += "$3\r\n100\r\n";
    assert.equal(await c.until((s) => s.length >= expected.length), expected);
    const entries = roomy.log.appliedIndex - before;
    assert.ok(entries >= 1 && entries < 20, `${entries} entries for 201 commands`);
    c.close();
    await roomy.server.close();
  });

  it("answers a refused command in its place and applies the others", async () => {
    const c = await RawConnection.open(fixture.port);
    c.write("SET s text\r\nINCR s\r\nSET t 1\r\nINCRBY t x\r\nINCR t\r\n");
    assert.equal(
      await c.until((s) => s.endsWith(":2\r\n")),
      "+OK\r\n-ERR value is not an integer or out of range\r\n+OK\r\n-ERR value is not an integer or out of range\r\n:2\r\n",
    );
    c.close();
  });

  it("runs a batch command by command when one command is over a limit", async () => {
    const c = await RawConnection.open(fixture.port);
    const big = "v".repeat(65);
    c.write(`SET a 1\r\nSET b ${big}\r\nSET c 3\r\nMGET a b c\r\n`);
    assert.equal(
      await c.until((s) => s.endsWith("3\r\n")),
      "+OK\r\n-ERR string exceeds maximum allowed size (proto-max-bulk-len)\r\n+OK\r\n*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n",
    );
    c.close();
  });

  it("keeps one keyspace when a batch runs command by command", async () => {
    const c = await RawConnection.open(fixture.port);
    // An empty key is refused before the batch is proposed; the other commands still see the
    // stream as a key.
    c.write(`XADD kstream 1-1 f v\r\nSET "" x\r\nINCR kstream\r\nTYPE kstream\r\n`);
    assert.equal(
      await c.until((s) => s.endsWith("+stream\r\n") || s.endsWith("+string\r\n")),
      "$3\r\n1-1\r\n-ERR key must not be empty\r\n" +
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n+stream\r\n",
    );
    c.close();
  });

  it("checks each command's TTL as the command alone would", async () => {
    const alone = await RawConnection.open(fixture.port);
    alone.write("SET x 1 EX 61\r\n");
    const refusal = await alone.until((s) => s.endsWith("\r\n"));
    assert.match(refusal, /^-ERR a TTL may be at most 60000 ms\r\n$/);
    const piped = await RawConnection.open(fixture.port);
    piped.write("SET x 1\r\nSET x 1 EX 61\r\nEXPIRE x 61\r\nEXPIRE x 60\r\n");
    assert.equal(await piped.until((s) => s.endsWith(":1\r\n")), `+OK\r\n${refusal}${refusal}:1\r\n`);
    alone.close();
    piped.close();
  });
});
