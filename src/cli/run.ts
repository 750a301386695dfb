// The process entry of the `cairn` command: runs the CLI and turns an unexpected failure into a
// message on stderr and exit status 1. bin/cairn.js loads the compiled copy of this file.
import { main } from "./main.js";

main(process.argv).catch((error: unknown) => {
  process.stderr.write(`cairn: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
