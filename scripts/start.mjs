#!/usr/bin/env node
// `npm start`: builds when the compiled output is missing or older than the sources, then runs
// `cairn dev`: a local three-node cluster on 127.0.0.1 (extra arguments go to `cairn dev`).
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;

/** The newest modification time of any file below `dir`. */
function newest(dir) {
  let latest = 0;
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    const stat = statSync(path);
    latest = Math.max(latest, stat.isDirectory() ? newest(path) : stat.mtimeMs);
  }
  return latest;
}

const distMain = join(root, "dist", "cli", "main.js");
if (!existsSync(distMain) || newest(join(root, "src")) > statSync(distMain).mtimeMs) {
  const build = spawnSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" });
  if (build.status !== 0) process.exit(build.status ?? 1);
}
const cli = spawnSync(process.execPath, [join(root, "bin", "cairn.js"), "dev", ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
});
process.exit(cli.status ?? 1);
