// Parses one request line of the HaToKuSe text protocol into a command. Command words are
// case-insensitive; tokens are separated by runs of blanks, as Tolerex's strings.Fields did, except
// for SET's message: it is every byte after the one blank that follows the id, kept as sent (Tolerex
// collapsed whitespace runs, losing the message's own spacing). Ids are signed 64-bit decimal
// integers; one outside that range is refused rather than wrapped (Tolerex wrapped to int32).

/** The largest id: ids are signed 64-bit integers, as Tolerex's own clients generate. */
export const textIdMax = 2n ** 63n - 1n;
/** The smallest id (Tolerex accepted negative ids). */
export const textIdMin = -(2n ** 63n);

/** The reply format of GET: 1 is Tolerex's raw line, 2 frames the value with its length. */
export type TextProtoVersion = 1 | 2;

/** One parsed request line. */
export type TextCommand =
  | { readonly kind: "empty" }
  | { readonly kind: "set"; readonly id: bigint; readonly message: Uint8Array }
  | { readonly kind: "get"; readonly id: bigint }
  | { readonly kind: "help" }
  | { readonly kind: "quit" }
  | { readonly kind: "proto"; readonly version: TextProtoVersion }
  /** Authenticates the connection with a token (docs/security.md). */
  | { readonly kind: "auth"; readonly token: string }
  /** A line that is not a valid command; `reason` is the text after `ERROR: `. */
  | { readonly kind: "invalid"; readonly reason: string };

/** Whether a byte separates tokens (Go's unicode.IsSpace over ASCII). */
function isBlank(byte: number | undefined): boolean {
  return byte === 0x20 || byte === 0x09 || byte === 0x0b || byte === 0x0c || byte === 0x0d || byte === 0x0a;
}

/** The next token of `line` from `from`: its [start, end), or undefined at the end of the line. */
function nextToken(line: Uint8Array, from: number): { start: number; end: number } | undefined {
  let start = from;
  while (start < line.length && isBlank(line[start])) start++;
  if (start >= line.length) return undefined;
  let end = start;
  while (end < line.length && !isBlank(line[end])) end++;
  return { start, end };
}

const latin1 = new TextDecoder("latin1");

/** Parses a decimal id as Go's Atoi accepts it (optional sign), within 64 bits. */
function parseId(text: string): bigint | { readonly reason: string } {
  if (!/^[+-]?[0-9]+$/.test(text)) return { reason: "id must be numeric" };
  const id = BigInt(text);
  if (id > textIdMax || id < textIdMin) return { reason: "id out of 64-bit range" };
  return id;
}

/** Parses one line (without its terminator). Never throws: a bad line is an `invalid` command. */
export function parseTextCommand(line: Uint8Array): TextCommand {
  const word = nextToken(line, 0);
  if (word === undefined) return { kind: "empty" };
  const name = latin1.decode(line.subarray(word.start, word.end)).toUpperCase();
  const tokens: string[] = [];
  for (let t = nextToken(line, word.end); t !== undefined; t = nextToken(line, t.end)) {
    tokens.push(latin1.decode(line.subarray(t.start, t.end)));
    // Only the first two arguments matter to any command; stop before scanning a long message.
    if (tokens.length > 2) break;
  }
  switch (name) {
    case "SET": {
      const idToken = nextToken(line, word.end);
      const usage = { kind: "invalid", reason: "SET <id> <message>" } as const;
      if (idToken === undefined) return usage;
      // The message starts after exactly one blank; what follows, blanks included, is the message.
      const messageStart = idToken.end + 1;
      if (messageStart >= line.length) return usage;
      const id = parseId(latin1.decode(line.subarray(idToken.start, idToken.end)));
      if (typeof id !== "bigint") return { kind: "invalid", reason: id.reason };
      return { kind: "set", id, message: line.slice(messageStart) };
    }
    case "GET": {
      const [idText] = tokens;
      if (tokens.length !== 1 || idText === undefined) return { kind: "invalid", reason: "GET <id>" };
      const id = parseId(idText);
      if (typeof id !== "bigint") return { kind: "invalid", reason: id.reason };
      return { kind: "get", id };
    }
    case "AUTH": {
      const [token] = tokens;
      if (tokens.length !== 1 || token === undefined) return { kind: "invalid", reason: "AUTH <token>" };
      return { kind: "auth", token };
    }
    case "HELP":
      return { kind: "help" };
    case "QUIT":
    case "EXIT":
      return { kind: "quit" };
    case "PROTO": {
      const [version] = tokens;
      if (tokens.length !== 1 || (version !== "1" && version !== "2")) {
        return { kind: "invalid", reason: "PROTO 1|2" };
      }
      return { kind: "proto", version: version === "1" ? 1 : 2 };
    }
    default:
      return { kind: "invalid", reason: "unknown command" };
  }
}
