// What the command-line scripts under test/ (fault runs, the soak, the fuzzer) share: reading an integer option
// within bounds, and running `main` with its answer as the exit status (2 and the stack on a throw).

/** The integer `--name` gave as `text`, or `fallback` when it was not given; throws when out of bounds. */
export function integerOption<Fallback extends number | undefined>(
  name: string,
  text: string | undefined,
  fallback: Fallback,
  min: number,
  max: number,
): number | Fallback {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw new Error(`--${name} must be an integer from ${min} to ${max}`);
  return n;
}

/** Runs a script's `main`: its answer is the exit status; a throw prints its stack and exits 2. */
export function runScript(main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 2;
    },
  );
}
