// One fuzz exchange over a fresh TCP connection: send some bytes (in pieces, so a parser sees
// frames split anywhere), then collect what comes back until a sentinel reply, the server's close,
// or a short quiet spell (a parser waiting for the rest of a frame it was promised, which is correct).
import { connect, type Socket } from "node:net";

/** How an exchange ended. */
export type ExchangeEnd = "sentinel" | "closed" | "quiet";

/** What came back and how the exchange ended. */
export interface Exchanged {
  readonly received: string;
  readonly end: ExchangeEnd;
}

/**
 * How long the server may stay quiet before the exchange ends: it is waiting for more input. Long
 * enough for a linearizable read (a heartbeat round) on a loaded machine.
 */
const quietMs = 1_500;
/** The longest an exchange may take; past it (with data still flowing) it is a hang. */
const exchangeMsMax = 15_000;

/**
 * Writes `pieces` one by one on `socket` once it is `ready` (connected, or TLS-secured), hands
 * every chunk that comes back to `onData` (true: the answer is complete), and resolves with how
 * the exchange ended; destroys the socket. Rejects after {@link exchangeMsMax} (a hang).
 */
export async function converse(
  socket: Socket,
  ready: "connect" | "secureConnect",
  pieces: readonly Uint8Array[],
  onData: (chunk: Buffer) => boolean,
  quietMsMax = quietMs,
): Promise<ExchangeEnd> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let quiet: NodeJS.Timeout | undefined;
    const finish = (end: ExchangeEnd): void => {
      if (settled) return;
      settled = true;
      clearTimeout(quiet);
      clearTimeout(overall);
      socket.destroy();
      resolve(end);
    };
    const overall = setTimeout(() => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(new Error(`the exchange went on for ${exchangeMsMax} ms`));
    }, exchangeMsMax);
    const rearm = (): void => {
      clearTimeout(quiet);
      quiet = setTimeout(() => finish("quiet"), quietMsMax);
    };
    socket.on("data", (chunk: Buffer) => {
      if (onData(chunk)) finish("sentinel");
      else rearm();
    });
    socket.on("close", () => finish("closed"));
    // A reset after the server closed on a protocol error is an ordinary end of the exchange.
    socket.on("error", () => finish("closed"));
    socket.on(ready, () => {
      void (async () => {
        for (const piece of pieces) {
          if (settled || socket.destroyed) return;
          socket.write(piece);
          await new Promise((r) => setImmediate(r));
        }
        rearm();
      })();
    });
  });
}

/** Writes `pieces` one by one on a new TCP connection and collects the replies (latin1) up to `sentinel`. */
export async function exchange(
  host: string,
  port: number,
  pieces: readonly Uint8Array[],
  sentinel: string,
): Promise<Exchanged> {
  let received = "";
  const end = await converse(connect(port, host), "connect", pieces, (chunk) => {
    received += chunk.toString("latin1");
    return received.includes(sentinel);
  }).catch((error: unknown) => {
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}; received ${JSON.stringify(received.slice(-300))}`,
    );
  });
  return { received, end };
}

/** `bytes` cut at the given fractions (of 1,000,000) into pieces, in order. */
export function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const at = [...new Set(cuts.map((c) => Math.floor((c * bytes.length) / 1_000_001)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let from = 0;
  for (const cut of at) {
    if (cut <= from) continue;
    pieces.push(bytes.subarray(from, cut));
    from = cut;
  }
  pieces.push(bytes.subarray(from));
  return pieces;
}
