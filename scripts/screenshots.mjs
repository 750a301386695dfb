#!/usr/bin/env node
// `npm run screenshots`: regenerates the dashboard screenshots in docs/dashboard/ (shown by
// docs/dashboard.md) by running the browser tests, which save a PNG of each view when
// CAIRN_SCREENSHOTS names a directory.
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const result = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", "--test-reporter=spec", join(root, "test/browser/dashboard.test.ts")],
  { cwd: root, stdio: "inherit", env: { ...process.env, CAIRN_SCREENSHOTS: join(root, "docs/dashboard") } },
);
process.exit(result.status ?? 1);
