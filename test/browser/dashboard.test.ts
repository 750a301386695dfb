// The dashboard in a real Chromium (Debian's, driven by playwright-core) against `cairn dev`'s
// supervisor and three real node processes: the page shows the nodes and the leader; stopping the
// leader from the page brings a new leader, and starting it again lets it catch up; a fourth node
// is added and removed; a key is put and read back in the explorer; a message published to a stream
// shows in the live tail; a nacked message fetched again counts as a redelivery, apart from first
// deliveries, for its group and each consumer; a message nacked past its delivery limit shows as a
// dead letter and is redriven. Every wait is on a condition in the page; the browser and the nodes are stopped by pid.
// With CAIRN_SCREENSHOTS=<dir> it saves a screenshot of each view there (scripts/screenshots.mjs).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Browser, type BrowserServer, chromium, type Locator, type Page } from "playwright-core";
import { type ControlServer, startControlServer } from "../../src/cli/control-server.js";
import { type DevCluster, startDevCluster } from "../../src/cli/dev-cluster.js";
import type { NodeAddresses } from "../../src/cli/supervisor.js";
import { CairnClient } from "../../src/client/index.js";
import { freePort } from "../support/process-cluster.js";

const root = new URL("../../", import.meta.url).pathname;
const chromiumPath = process.env["CAIRN_CHROMIUM"] ?? "/usr/bin/chromium";
const screenshots = process.env["CAIRN_SCREENSHOTS"];
/** How long the page may take to show a change: elections and joins on a loaded 2-core machine. */
const uiTimeoutMs = 30_000;

/** The newest modification time below `dir`. */
function newest(dir: string): number {
  let latest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    latest = Math.max(latest, stat.isDirectory() ? newest(path) : stat.mtimeMs);
  }
  return latest;
}

/** Builds the dashboard when dist/dashboard is missing or older than its sources. */
function ensureDashboardBuilt(): string {
  const out = join(root, "dist", "dashboard");
  const index = join(out, "index.html");
  const sources = Math.max(...["src/dashboard", "src/api", "src/client"].map((d) => newest(join(root, d))));
  if (!existsSync(index) || statSync(index).mtimeMs < sources) {
    const build = spawnSync(
      process.execPath,
      [join(root, "node_modules/vite/bin/vite.js"), "build", "--config", "src/dashboard/vite.config.ts"],
      { cwd: root, encoding: "utf8" },
    );
    assert.equal(build.status, 0, `the dashboard build failed:\n${build.stdout}${build.stderr}`);
  }
  return out;
}

describe("the dashboard in Chromium", { timeout: 300_000 }, () => {
  let dir: string;
  let cluster: DevCluster;
  let control: ControlServer;
  let server: BrowserServer;
  let browser: Browser;
  let page: Page;
  let browserPid: number | undefined;
  const nodePids = new Set<number>();
  let client: CairnClient;
  const pageLog: string[] = [];
  /** Whether a test failed: the nodes' logs are then printed, to show why. */
  let failed = false;
  /** A test that marks the suite failed when it throws. */
  const step = (name: string, body: () => Promise<void>): void =>
    void it(name, async () => {
      try {
        await body();
      } catch (error) {
        failed = true;
        throw error;
      }
    });

  const remember = () => {
    for (const n of cluster.nodes) if (n.pid !== null) nodePids.add(n.pid);
  };
  const card = (name: string) => page.locator(`[data-testid="node-${name}"]`);
  /** The name of the node whose card says it leads, once one does. */
  const leaderName = async (other?: string): Promise<string> => {
    const selector = `.card[data-role="leader"]${other !== undefined ? `:not([data-testid="node-${other}"])` : ""}`;
    const leader = page.locator(selector);
    await leader.waitFor({ timeout: uiTimeoutMs });
    return ((await leader.getAttribute("data-testid")) ?? "").replace("node-", "");
  };
  const shot = async (name: string) => {
    if (screenshots !== undefined)
      await page.screenshot({ path: join(screenshots, `${name}.png`), fullPage: true });
  };

  before(async () => {
    const staticDir = ensureDashboardBuilt();
    if (screenshots !== undefined) await mkdir(screenshots, { recursive: true });
    dir = await mkdtemp(join(tmpdir(), "cairn-dashboard-"));
    const dashboardPort = await freePort();
    const slots = new Map<number, NodeAddresses>();
    // Slots past the fourth node's too: a port picked here may be taken by the time the node is
    // added (another test's connection), and the supervisor then moves on to the next slot.
    for (let i = 1; i <= 7; i++) {
      slots.set(i, {
        httpUrl: `http://127.0.0.1:${await freePort()}`,
        peerAddress: `127.0.0.1:${await freePort()}`,
        redisAddress: `127.0.0.1:${await freePort()}`,
      });
    }
    cluster = await startDevCluster({
      nodes: 3,
      dir,
      httpPort: 0,
      peerPort: 0,
      dashboardPort,
      cairnBin: join(root, "src/cli/run.ts"),
      nodeFlags: ["--import", "tsx"],
      print: () => {},
      addressesOf: (index) => {
        const slot = slots.get(index);
        if (slot === undefined) throw new Error(`no free ports prepared for slot ${index}`);
        return slot;
      },
    });
    remember();
    cluster.watch(250);
    control = await startControlServer({ supervisor: cluster, port: dashboardPort, staticDir });
    client = new CairnClient({ endpoints: cluster.nodes.map((n) => n.httpUrl), retryBudgetMs: 20_000 });
    server = await chromium.launchServer({
      executablePath: chromiumPath,
      headless: true,
      args: ["--no-sandbox"],
    });
    browserPid = server.process().pid;
    browser = await chromium.connect(server.wsEndpoint());
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(uiTimeoutMs);
    // What the page logged, to show with a failure.
    page.on("pageerror", (error) => pageLog.push(`page error: ${error.message}`));
    page.on("response", (r) => {
      if (r.status() < 500) return;
      const line = `${r.status()} from ${r.request().method()} ${r.url()}`;
      pageLog.push(line);
      // What the server said, once the body arrives (it may not, as the page moves on).
      r.text().then(
        (body) => pageLog.push(`${line}: ${body.slice(0, 500)}`),
        () => undefined,
      );
    });
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") pageLog.push(`console ${m.type()}: ${m.text()}`);
    });
  });

  after(async () => {
    if (pageLog.length > 0) process.stdout.write(`the page logged:\n${pageLog.slice(-30).join("\n")}\n`);
    if (failed) {
      const events = cluster?.events() ?? [];
      process.stdout.write(`the supervisor's events:\n${events.map((e) => JSON.stringify(e)).join("\n")}\n`);
      for (const node of cluster?.nodes ?? []) {
        const log = await readFile(node.logFile, "utf8").catch((error: unknown) => String(error));
        process.stdout.write(
          `${node.name}'s log (its last 80 lines):\n${log.split("\n").slice(-80).join("\n")}\n`,
        );
      }
    }
    await browser?.close().catch(() => undefined);
    await server?.close().catch(() => undefined);
    if (browserPid !== undefined) {
      try {
        process.kill(browserPid, "SIGKILL");
      } catch {
        // Already gone: close() stopped it.
      }
    }
    remember();
    await control?.close();
    await cluster?.close();
    for (const pid of nodePids)
      assert.throws(() => process.kill(pid, 0), /ESRCH/, `node process ${pid} stopped`);
    await rm(dir, { recursive: true, force: true });
  });

  step("shows three running nodes and the leader", async () => {
    await page.goto(control.url);
    for (const name of ["n1", "n2", "n3"]) await card(name).waitFor();
    const leader = await leaderName();
    await page.getByTestId("leader").filter({ hasText: leader }).waitFor();
    assert.equal(await page.locator(".card").count(), 3);
    await page.getByTestId("chart-throughput").waitFor();
    await client.put("warm-up", "1");
    await shot("cluster");
  });

  step("stops the leader from the page, shows it stopped and a new leader, then it catches up", async () => {
    const old = await leaderName();
    await card(old).getByTestId("stop").click();
    await page.locator(`[data-testid="node-${old}"][data-state="stopped"]`).waitFor();
    const next = await leaderName(old);
    assert.notEqual(next, old);
    await client.put("while-down", "written without the old leader");
    await card(old).getByTestId("start").click();
    await page.locator(`[data-testid="node-${old}"][data-role="follower"]`).waitFor();
    // Caught up: the leader sees it at its last index, and it applied what the leader committed.
    // A string, not a function: the test runner's compiler would name inner functions with a helper
    // the page does not have.
    await page.waitForFunction(`(() => {
      const text = (id, field) =>
        document.querySelector('[data-testid="node-' + id + '"] [data-testid="' + field + '"]')?.textContent?.trim();
      const applied = text(${JSON.stringify(old)}, "indexes")?.split(" / ")[1];
      const committed = text(${JSON.stringify(next)}, "indexes")?.split(" / ")[0];
      return text(${JSON.stringify(old)}, "lag") === "0 entries" && applied !== undefined && applied === committed;
    })()`);
    assert.equal(
      (
        await new CairnClient({ endpoints: [cluster.nodes.find((n) => n.name === old)?.httpUrl ?? ""] }).get(
          "while-down",
          { consistency: "stale" },
        )
      )?.value,
      "written without the old leader",
    );
    remember();
  });

  step("adds a fourth node, which is promoted, and removes it", async () => {
    await page.getByTestId("add-name").fill("n4");
    await page.getByTestId("add-node").click();
    await card("n4").waitFor();
    await page.locator('[data-testid="node-n4"][data-role="follower"]').waitFor();
    await page.locator('[data-testid="node-n4"]', { hasText: "voter" }).waitFor();
    remember();
    await shot("cluster-four-nodes");
    await card("n4").getByTestId("remove").click();
    await card("n4").getByTestId("confirm-remove").click();
    await card("n4").waitFor({ state: "detached" });
    assert.match((await page.getByTestId("cluster-message").textContent()) ?? "", /n4 removed/);
    await page.getByText("n4 removed from the cluster").first().waitFor();
  });

  step("puts a key and reads it back in the explorer", async () => {
    await page.getByTestId("tab-data").click();
    await page.getByTestId("key").fill("greeting");
    await page.getByTestId("value").fill("hello from the browser");
    await page.getByTestId("put").click();
    await page.getByTestId("kv-result").filter({ hasText: "Written at revision" }).waitFor();
    await page.getByTestId("value").fill("");
    await page.getByTestId("get").click();
    await page.getByTestId("item-value").filter({ hasText: "hello from the browser" }).waitFor();
    await page.getByTestId("keys").getByText("greeting").waitFor();
    assert.equal((await client.get("greeting"))?.value, "hello from the browser");
    await page.getByTestId("consistency").selectOption("stale");
    await page.getByTestId("get").click();
    await page.getByText("last leader contact").first().waitFor();
    await shot("data-explorer");
  });

  step("publishes to a stream and sees the message in the live tail", async () => {
    await page.getByTestId("tab-streams").click();
    await page.getByTestId("new-stream").fill("orders");
    await page.getByTestId("payload").fill("first order");
    await page.getByTestId("publish").click();
    await page.getByTestId("messages").getByText("first order").waitFor();
    await page.getByTestId("tail-start").click();
    await page.getByTestId("tail-status").filter({ hasText: "waiting for new messages" }).waitFor();
    await client.append("orders", "from another client");
    await page.getByTestId("tail").getByText("from another client").waitFor();
    await page.getByTestId("payload").fill("second order");
    await page.getByTestId("publish").click();
    await page.getByTestId("tail").getByText("second order").waitFor();
    await shot("streams");
    await page.getByTestId("tail-stop").click();
  });

  step("shows a dead letter for a message nacked past its delivery limit, and redrives it", async () => {
    await client.createGroup("orders", "billing", { maxDeliveries: 1, startAt: "first" });
    const [first] = await client.fetchMessages("orders", "billing", "worker-1", { max: 1 });
    assert.ok(first !== undefined);
    await client.settle("orders", "billing", "nack", [first.seq]);
    // The next fetch finds it past its limit and moves it to the dead-letter stream.
    await client.fetchMessages("orders", "billing", "worker-1", { max: 10 });
    // Another group with room for a redelivery: worker-1 nacks its message, worker-2 gets it again.
    await client.createGroup("orders", "audit", { maxDeliveries: 5, startAt: "first" });
    const [audited] = await client.fetchMessages("orders", "audit", "worker-1", { max: 1 });
    assert.ok(audited !== undefined);
    await client.settle("orders", "audit", "nack", [audited.seq]);
    const [again] = await client.fetchMessages("orders", "audit", "worker-2", { max: 1 });
    assert.equal(again?.seq, audited.seq);
    await page.goto(`${control.url}/#groups/orders`);
    await page
      .locator('[data-testid="group-billing"] [data-testid="dead-lettered"]', { hasText: "1" })
      .waitFor();
    // Redeliveries apart from first deliveries, for the group and for each consumer.
    const shows = (scope: Locator, testId: string, n: number) =>
      scope
        .getByTestId(testId)
        .filter({ hasText: new RegExp(`^${n}$`) })
        .waitFor();
    const audit = page.getByTestId("group-audit");
    await shows(audit, "redelivered", 1);
    await shows(audit, "first-deliveries", 1);
    const [worker1, worker2] = [
      audit.getByTestId("consumer-worker-1"),
      audit.getByTestId("consumer-worker-2"),
    ];
    await shows(worker1, "consumer-first", 1);
    await shows(worker1, "consumer-redelivered", 0);
    await shows(worker2, "consumer-first", 0);
    await shows(worker2, "consumer-redelivered", 1);
    const letters = page.locator('[data-testid="group-billing"] [data-testid="dead-letters"]');
    await letters.getByText("first order").waitFor();
    await shot("consumer-groups");
    const before = (await client.streamInfo("orders"))?.lastSeq ?? 0;
    await letters.getByRole("checkbox").first().check();
    await page.locator('[data-testid="group-billing"] [data-testid="redrive"]').click();
    await page.getByTestId("groups-result").filter({ hasText: "Redrove 1 dead letter" }).waitFor();
    const page2 = await client.read("orders", { from: before + 1 });
    assert.deepEqual(
      page2.messages.map((m) => m.payload),
      ["first order"],
    );
  });
});
