// One HTTP request as a fault-suite client sees it: an answer, a connection refused (nothing was
// sent, so nothing happened), or an answer lost (timeout, reset: it may have happened). Keeping the
// last two apart is what lets the checkers treat a lost write as "maybe" and a refused one as "no".
// Both systems' clients go through one undici Agent with keep-alive connections: the global fetch
// cost the test process 2-3x the CPU per request (streams, WHATWG bodies), and on a 2-core machine
// that CPU is taken from the nodes under test (docs/faults.md, "Availability against etcd").
import { Agent, type Dispatcher, request } from "undici";

/** The connections every fault-suite client shares: kept alive, one request at a time on each. */
const agent = new Agent({ keepAliveTimeout: 10_000, pipelining: 1 });

/** How a request ended. */
export type HttpOutcome =
  | { readonly kind: "answer"; readonly status: number; readonly body: unknown }
  | { readonly kind: "refused"; readonly reason: string }
  | { readonly kind: "lost"; readonly reason: string };

/** Sends a JSON request and waits at most `timeoutMs` for the whole answer. */
export async function httpJson(
  method: Dispatcher.HttpMethod,
  url: string,
  options: {
    readonly body?: unknown;
    readonly headers?: Readonly<Record<string, string>>;
    readonly timeoutMs: number;
  },
): Promise<HttpOutcome> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  try {
    const response = await request(url, {
      method,
      dispatcher: agent,
      headers: {
        ...(options.body === undefined ? {} : { "content-type": "application/json" }),
        ...options.headers,
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      signal,
    });
    const text = await response.body.text();
    let body: unknown;
    try {
      body = text === "" ? undefined : JSON.parse(text);
    } catch {
      body = text;
    }
    return { kind: "answer", status: response.statusCode, body };
  } catch (error) {
    if (signal.aborted) return { kind: "lost", reason: "timeout" };
    const code = errorCodeOf(error);
    // Refused before anything was sent: the server never saw the request.
    if (code === "ECONNREFUSED") return { kind: "refused", reason: code };
    return { kind: "lost", reason: code ?? String(error) };
  }
}

/** The system error code of a failed request (on the error or, wrapped, on its cause). */
function errorCodeOf(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && typeof current === "object" && current !== null; depth++) {
    if ("code" in current && typeof current.code === "string") return current.code;
    current = "cause" in current ? current.cause : undefined;
  }
  return undefined;
}

/** A field of a JSON object answer, if the answer is an object. */
export function field(body: unknown, name: string): unknown {
  return typeof body === "object" && body !== null && name in body
    ? (body as Record<string, unknown>)[name]
    : undefined;
}

/** The `error.code` of a Cairn error body, if it is one. */
export function errorCode(body: unknown): string | undefined {
  const code = field(field(body, "error"), "code");
  return typeof code === "string" ? code : undefined;
}
