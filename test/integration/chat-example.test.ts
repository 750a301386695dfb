// The chat example (examples/chat) run as its users run it: its `(chat)` shell as a process, typed
// into line by line, against real Cairn clusters of processes, through the chat seed's README
// scenarios. 3 nodes: the leader killed mid-conversation loses no message; two nodes down refuses
// writes with a clear error until one returns and loses nothing; a full restart keeps accounts,
// messages and read flags; three users sending while nodes stop deliver every message exactly
// once. 5 nodes: two followers down, it keeps working, and the returning nodes catch up.
import assert from "node:assert/strict";
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { ProcessCluster, type ProcessNode } from "../support/process-cluster.js";
import { waitFor } from "../support/wait-for.js";

const root = new URL("../../", import.meta.url).pathname;
const PROMPT = /(?:\([A-Za-z0-9_-]{1,32}\) |Password: )$/;

/** The chat shell as a child process, driven the way a person types into it. */
class ChatShellProcess {
  readonly #child: ChildProcessWithoutNullStreams;
  #output = "";
  #wake: (() => void) | undefined;
  #exited = false;

  constructor(endpoints: readonly string[]) {
    this.#child = spawn(
      process.execPath,
      ["--import", "tsx", "examples/chat/main.ts", "--endpoints", endpoints.join(",")],
      { cwd: root },
    );
    const take = (chunk: Buffer) => {
      this.#output += chunk.toString();
      this.#wake?.();
    };
    this.#child.stdout.on("data", take);
    this.#child.stderr.on("data", take);
    this.#child.once("exit", () => {
      this.#exited = true;
      this.#wake?.();
    });
  }

  /** Waits for the first prompt; answers the greeting. */
  ready(): Promise<string> {
    return this.#untilPrompt();
  }

  /** Types one line; answers what the shell printed before its next prompt. */
  async type(line: string): Promise<string> {
    this.#child.stdin.write(`${line}\n`);
    return this.#untilPrompt();
  }

  /** Types `command` and then `password` at the password prompt. */
  async withPassword(command: string, password: string): Promise<string> {
    assert.equal(await this.type(command), "");
    return this.type(password);
  }

  /** Quits the shell. */
  async quit(): Promise<void> {
    if (this.#exited) return;
    this.#child.stdin.end("quit\n");
    await new Promise<void>((resolve) => {
      if (this.#exited) resolve();
      else this.#child.once("exit", () => resolve());
    });
  }

  async #untilPrompt(): Promise<string> {
    for (;;) {
      const match = PROMPT.exec(this.#output);
      if (match !== null) {
        const reply = this.#output.slice(0, match.index);
        this.#output = "";
        return reply.trimEnd();
      }
      if (this.#exited) throw new Error(`the shell exited: ${this.#output}`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
      this.#wake = undefined;
    }
  }
}

/** The contents of a `messages` reply, newest first, with their read flags. */
function inboxOf(reply: string): { id: number; flag: string; from: string; content: string }[] {
  return [...reply.matchAll(/^#(\d+) \[(new|read)\] \S+ From (\S+): (.*)$/gm)].map((m) => ({
    id: Number(m[1]),
    flag: m[2] ?? "",
    from: m[3] ?? "",
    content: m[4] ?? "",
  }));
}

async function leaderSeenBy(node: ProcessNode): Promise<string | null | undefined> {
  try {
    const response = await fetch(`${node.httpUrl}/v1/cluster`, { signal: AbortSignal.timeout(2_000) });
    const status = (await response.json()) as { leader: { name: string } | null };
    return status.leader?.name ?? null;
  } catch {
    return undefined;
  }
}

/** Starts shells logged in as `users` (creating their accounts). */
async function shellsFor(cluster: ProcessCluster, users: readonly string[]): Promise<ChatShellProcess[]> {
  const shells: ChatShellProcess[] = [];
  for (const user of users) {
    const shell = new ChatShellProcess(cluster.nodes.map((n) => n.httpUrl));
    await shell.ready();
    assert.equal(await shell.type(`create ${user} pw-${user}`), "Account created successfully");
    assert.equal(await shell.type(`login ${user} pw-${user}`), "Logged in successfully");
    shells.push(shell);
  }
  return shells;
}

describe("the chat example on a 3-node cluster", { timeout: 600_000 }, () => {
  let cluster: ProcessCluster;
  let alice: ChatShellProcess;
  let bob: ChatShellProcess;
  const shells: ChatShellProcess[] = [];

  before(async () => {
    cluster = await ProcessCluster.create(3);
    await cluster.startAll();
    await cluster.leader(60_000);
    alice = new ChatShellProcess(cluster.nodes.map((n) => n.httpUrl));
    bob = new ChatShellProcess(cluster.nodes.map((n) => n.httpUrl));
    shells.push(alice, bob);
  });
  after(async () => {
    await Promise.all(shells.map((s) => s.quit()));
    await cluster?.close();
  });

  it("names the leader, creates accounts once, keeps passwords hashed, and logs in", async () => {
    const leader = await cluster.leader(60_000);
    assert.match(await alice.ready(), new RegExp(`Leader: ${leader.name} \\(${leader.httpUrl}\\)`));
    await bob.ready();
    assert.equal(await alice.withPassword("create alice", "alice-secret"), "Account created successfully");
    assert.equal(
      await bob.withPassword("create alice", "other"),
      "Failed to create account: Username already exists",
    );
    assert.equal(await bob.type("create bob bob-secret"), "Account created successfully");
    assert.equal(await alice.type("list"), "Accounts:\n- alice\n- bob");
    const stored = await fetch(`${leader.httpUrl}/v1/kv/chat/accounts/alice`);
    const value = ((await stored.json()) as { value: string }).value;
    assert.ok(!value.includes("alice-secret"), "no password text is stored");
    assert.match(value, /"algorithm":"scrypt"/);
    assert.equal(await alice.withPassword("login alice", "wrong"), "Failed to log in: Invalid credentials");
    assert.equal(await alice.withPassword("login alice", "alice-secret"), "Logged in successfully");
    assert.equal(await bob.type("login bob bob-secret"), "Logged in successfully");
    assert.equal(await bob.type("send nobody hi"), "Failed to send message: No such user: nobody");
  });

  it("loses no message when the leader is killed mid-conversation, and says who leads now", async () => {
    assert.equal(await alice.type("send bob hello bob"), "Message sent successfully");
    assert.equal(await alice.type("send bob how   are you?"), "Message sent successfully");
    const leader = await cluster.leader(60_000);
    await cluster.kill(leader);
    const third = await alice.type("send bob are you there?");
    assert.match(third, /^Message sent successfully/);
    assert.match(await bob.type("send alice still here"), /^Message sent successfully/);
    const fourth = await alice.type("send bob good");
    assert.match(`${third}\n${fourth}`, /\[leader is now /, "the shell reports the new leader");
    const inbox = inboxOf(await bob.type("messages"));
    assert.deepEqual(
      inbox.map((m) => [m.from, m.content, m.flag]),
      [
        ["alice", "good", "new"],
        ["alice", "are you there?", "new"],
        ["alice", "how   are you?", "new"],
        ["alice", "hello bob", "new"],
      ],
    );
    await cluster.start(leader);
  });

  it("marks messages read and deletes them", async () => {
    const inbox = inboxOf(await bob.type("messages"));
    const [good, there] = inbox;
    assert.ok(good !== undefined && there !== undefined);
    assert.equal(await bob.type(`read ${good.id} 999`), "Marked 1 message(s) as read");
    assert.equal(await bob.type(`remove ${there.id}`), "Deleted 1 message(s)");
    assert.deepEqual(
      inboxOf(await bob.type("messages 2")).map((m) => [m.content, m.flag]),
      [
        ["good", "read"],
        ["how   are you?", "new"],
      ],
    );
  });

  it("refuses writes with a clear error while two of three nodes are down, and loses nothing", async () => {
    const leader = await cluster.leader(60_000);
    const [first, second] = cluster.nodes.filter((n) => n !== leader);
    assert.ok(first !== undefined && second !== undefined);
    await cluster.kill(first);
    await cluster.kill(second);
    await waitFor("the survivor to know no leader", async () => (await leaderSeenBy(leader)) === null, {
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    const refused = await alice.type("send bob sent with no majority");
    assert.match(refused, /^Failed to send message: the cluster cannot take it now: no majority/);
    assert.match(refused, /Nothing was changed/);
    await cluster.start(first);
    await waitFor("a leader again", async () => typeof (await leaderSeenBy(first)) === "string", {
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    assert.match(await alice.type("send bob one node came back"), /^Message sent successfully/);
    await cluster.start(second);
    const contents = inboxOf(await bob.type("messages")).map((m) => m.content);
    assert.equal(contents[0], "one node came back");
    assert.ok(!contents.includes("sent with no majority"), "a refused message never appears");
    assert.deepEqual(contents.slice(1), ["good", "how   are you?", "hello bob"]);
  });

  it("keeps accounts, messages and read flags across a full restart", async () => {
    const before = await bob.type("messages");
    for (const node of cluster.nodes) await cluster.kill(node);
    await cluster.startAll();
    await cluster.leader(60_000);
    const fresh = new ChatShellProcess(cluster.nodes.map((n) => n.httpUrl));
    shells.push(fresh);
    await fresh.ready();
    assert.equal(await fresh.type("login bob bob-secret"), "Logged in successfully");
    assert.deepEqual(inboxOf(await fresh.type("messages")), inboxOf(before));
    assert.equal(await fresh.type("list"), "Accounts:\n- alice\n- bob");
  });

  it("deletes an account with its messages; the name can be created again, empty", async () => {
    const shell = new ChatShellProcess(cluster.nodes.map((n) => n.httpUrl));
    shells.push(shell);
    await shell.ready();
    assert.equal(await shell.type("create temp pw"), "Account created successfully");
    assert.match(await alice.type("send temp for the old account"), /^Message sent successfully/);
    assert.equal(await shell.type("login temp pw"), "Logged in successfully");
    assert.equal(inboxOf(await shell.type("messages")).length, 1);
    assert.equal(await shell.type("delete"), "Account deleted successfully");
    assert.equal(await alice.type("send temp anyone there?"), "Failed to send message: No such user: temp");
    assert.equal(await shell.type("create temp pw2"), "Account created successfully");
    assert.equal(await shell.type("login temp pw"), "Failed to log in: Invalid credentials");
    assert.equal(await shell.type("login temp pw2"), "Logged in successfully");
    assert.equal(await shell.type("messages"), "No messages");
    assert.equal(await shell.type("delete"), "Account deleted successfully");
    assert.equal(await shell.type("list"), "Accounts:\n- alice\n- bob");
  });

  it("delivers every message exactly once while three users send and nodes stop", async () => {
    const senders = ["carol", "dave", "erin"];
    const users = await shellsFor(cluster, senders);
    shells.push(...users);
    const perSender = 8;
    const sending = users.map(async (shell, i) => {
      const answers: string[] = [];
      for (let n = 0; n < perSender; n++) answers.push(await shell.type(`send bob ${senders[i]}-${n}`));
      return answers;
    });
    // Stop and restart nodes one at a time while they send: the leader first, then a follower.
    const leader = await cluster.leader(60_000);
    await cluster.kill(leader);
    await cluster.leader(60_000);
    await cluster.start(leader);
    const follower = cluster.nodes.find((n) => n !== leader && n.process !== undefined);
    assert.ok(follower !== undefined);
    await cluster.kill(follower);
    await cluster.start(follower);
    for (const answers of await Promise.all(sending)) {
      for (const answer of answers) assert.match(answer, /^Message sent successfully/);
    }
    const received = inboxOf(await bob.type("messages 100")).map((m) => m.content);
    for (const sender of senders) {
      for (let n = 0; n < perSender; n++) {
        assert.equal(received.filter((c) => c === `${sender}-${n}`).length, 1, `${sender}-${n}`);
      }
    }
  });
});

describe("the chat example on a 5-node cluster", { timeout: 600_000 }, () => {
  let cluster: ProcessCluster;
  const shells: ChatShellProcess[] = [];

  before(async () => {
    cluster = await ProcessCluster.create(5);
    await cluster.startAll();
    await cluster.leader(60_000);
  });
  after(async () => {
    await Promise.all(shells.map((s) => s.quit()));
    await cluster?.close();
  });

  it("keeps working with two followers down, and the returning nodes catch up", async () => {
    const [alice, bob] = await shellsFor(cluster, ["alice", "bob"]);
    assert.ok(alice !== undefined && bob !== undefined);
    shells.push(alice, bob);
    assert.equal(await alice.type("send bob before"), "Message sent successfully");
    const leader = await cluster.leader(60_000);
    const down = cluster.nodes.filter((n) => n !== leader).slice(0, 2);
    for (const node of down) await cluster.kill(node);
    for (let n = 0; n < 3; n++) {
      assert.match(await alice.type(`send bob while two are down ${n}`), /^Message sent successfully/);
    }
    assert.deepEqual(
      inboxOf(await bob.type("messages")).map((m) => m.content),
      ["while two are down 2", "while two are down 1", "while two are down 0", "before"],
    );
    for (const node of down) await cluster.start(node);
    const account = await fetch(`${leader.httpUrl}/v1/kv/chat/accounts/bob`);
    const { inbox } = JSON.parse(((await account.json()) as { value: string }).value) as { inbox: string };
    for (const node of down) {
      await waitFor(
        `${node.name} to catch up`,
        async () => {
          const response = await fetch(`${node.httpUrl}/v1/streams/${inbox}?consistency=stale`);
          return response.ok && ((await response.json()) as { lastSeq: number }).lastSeq === 4;
        },
        { timeoutMs: 60_000, intervalMs: 100 },
      );
    }
  });
});
