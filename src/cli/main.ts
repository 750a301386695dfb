import { readFileSync } from "node:fs";
import { Command } from "commander";

/** The package version, read from package.json next to the compiled output. */
function packageVersion(): string {
  const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
  const parsed: unknown = JSON.parse(text);
  if (
    typeof parsed === "object" &&
    parsed !== null &&
    "version" in parsed &&
    typeof parsed.version === "string"
  ) {
    return parsed.version;
  }
  return "unknown";
}

/** Builds the `cairn` command tree. Exported so tests can drive it without spawning a process. */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name("cairn")
    .description(
      "Cairn: a fault-tolerant, strongly consistent message and key-value store.\n" +
        "Raft replication to a majority, fsync before every acknowledgement.",
    )
    .version(packageVersion(), "-v, --version", "print the version and exit")
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) });
  return program;
}

/** Runs the CLI on `argv` (as in `process.argv`): the composition root, the only code reading argv. */
export async function main(argv: readonly string[]): Promise<void> {
  await buildProgram().parseAsync([...argv]);
}
