// MULTI queues every command Cairn serves, as Redis 7 does (only MULTI, EXEC, DISCARD, WATCH, QUIT
// and RESET act at once), and every command that touches a key becomes part of the one
// transaction entry, so a queued write is never applied on its own. Exact replies inside EXEC are
// compared with a real redis-server in differential.test.ts.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { commandTable } from "../../../../src/server/resp/commands.js";
import { transactionPlanners } from "../../../../src/server/resp/transaction-plans.js";
import { RawConnection, startLocalRespServer } from "../../../support/resp-fixture.js";

/** Commands that act at once even inside MULTI, as in Redis. */
const immediate = new Set(["multi", "exec", "discard", "watch", "quit", "reset"]);
/**
 * Reads of the whole keyspace and of streams, and the group commands: they run in their place after
 * the entry applied (docs/redis.md says so).
 */
const runInPlace = (name: string) =>
  [
    "keys",
    "scan",
    "randomkey",
    "dbsize",
    "xlen",
    "xrange",
    "xrevrange",
    "xread",
    "xinfo",
    "xpending",
    "xgroup",
    "xreadgroup",
    "xclaim",
    "xautoclaim",
  ].includes(name);

describe("MULTI", () => {
  let fixture: Awaited<ReturnType<typeof startLocalRespServer>>;
  before(async () => {
    fixture = await startLocalRespServer();
  });
  after(async () => {
    await fixture.server.close();
  });

  it("queues every command of the table with a valid number of arguments", async () => {
    const c = await RawConnection.open(fixture.port);
    let sent = "*1\r\n$5\r\nMULTI\r\n";
    let expected = "+OK\r\n";
    for (const spec of commandTable) {
      if (immediate.has(spec.name)) continue;
      const args = [spec.name, ...Array.from({ length: Math.abs(spec.arity) - 1 }, () => "1")];
      sent += `*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join("")}`;
      expected += "+QUEUED\r\n";
    }
    c.write(`${sent}*1\r\n$7\r\nDISCARD\r\n`);
    assert.equal(await c.until((s) => s.length >= expected.length + 5), `${expected}+OK\r\n`);
    c.close();
  });

  it("plans every command that reads or writes a key as steps of the transaction entry", () => {
    const unplanned = commandTable
      .filter((spec) => spec.flags.includes("write") || spec.flags.includes("readonly"))
      .filter((spec) => !transactionPlanners.has(spec.name) && !runInPlace(spec.name))
      .map((spec) => spec.name);
    assert.deepEqual(unplanned, []);
  });

  it("applies the queued writes as one entry", async () => {
    const c = await RawConnection.open(fixture.port);
    const before = fixture.log.appliedIndex;
    c.write(
      "MULTI\r\nSET a 1\r\nINCRBY a 4\r\nRENAME a b\r\nEXPIRE b 100 NX\r\nGETEX b PERSIST\r\nPING\r\nEXEC\r\n",
    );
    const replies = await c.until((s) => s.includes("PONG\r\n"));
    assert.ok(replies.endsWith("*6\r\n+OK\r\n:5\r\n+OK\r\n:1\r\n$1\r\n5\r\n+PONG\r\n"), replies);
    assert.equal(fixture.log.appliedIndex, before + 1);
    c.close();
  });
});
