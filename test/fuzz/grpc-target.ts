// Fuzzes the gRPC port two ways: raw HTTP/2 requests (node:http2) whose gRPC frames carry mutated
// protobuf payloads, wrong length prefixes, the compressed flag, odd content types and paths; and
// valid calls through grpc-js with random field values and metadata. Status INTERNAL or UNKNOWN,
// or an HTTP status of 5xx, is a finding; every other status is tallied by name.
import { connect as http2Connect } from "node:http2";
import { credentials, Metadata, status } from "@grpc/grpc-js";
import fc from "fast-check";
import { isServiceError, MessageServiceClient } from "../support/grpc-client.js";
import type { FuzzEndpoints } from "./live-node.js";
import { concat, fuzzString, mutated, preview, utf8 } from "./mutate.js";
import { type Outcome, target } from "./target.js";

const methods = ["PostMessage", "GetMessages", "CatchUp"] as const;
const statusNames = new Map<number, string>(
  Object.entries(status).map(([name, code]) => [Number(code), name]),
);

function varint(n: number): Uint8Array {
  const out: number[] = [];
  let v = BigInt.asUintN(64, BigInt(n));
  do {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v === 0n ? byte : byte | 0x80);
  } while (v !== 0n);
  return Uint8Array.from(out);
}

function stringField(field: number, text: string): Uint8Array {
  const bytes = utf8(text);
  return concat(varint((field << 3) | 2), varint(bytes.length), bytes);
}

function intField(field: number, n: number): Uint8Array {
  return concat(varint(field << 3), varint(n));
}

/** Valid request messages of each method, protobuf-encoded. */
const validPayload = fc.oneof(
  fc
    .tuple(fuzzString, fc.integer({ min: -5, max: 5 }), fuzzString)
    .map(([content, wc, client]) => concat(stringField(1, content), intField(2, wc), stringField(3, client))),
  fc.constant(new Uint8Array(0)),
  fc.tuple(fc.integer(), fuzzString).map(([last, token]) => concat(intField(1, last), stringField(2, token))),
);

function grpcFrame(payload: Uint8Array, compressed: boolean, lengthDelta: number): Uint8Array {
  const header = new Uint8Array(5);
  header[0] = compressed ? 1 : 0;
  new DataView(header.buffer).setUint32(1, Math.max(0, payload.length + lengthDelta));
  return concat(header, payload);
}

interface RawInput {
  readonly kind: "raw";
  readonly path: string;
  readonly contentType: string;
  readonly body: Uint8Array;
}

interface CallInput {
  readonly kind: "call";
  readonly method: (typeof methods)[number];
  readonly content: string;
  readonly writeConcern: number;
  readonly clientId: string;
  readonly lastSequence: number;
  readonly authToken: string;
  readonly idempotencyKey: string | null;
  readonly bearer: "fuzz" | "none" | "garbage";
}

type GrpcInput = RawInput | CallInput;

const rawInput: fc.Arbitrary<RawInput> = fc.record({
  kind: fc.constant("raw" as const),
  path: fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom(...methods).map((m) => `/messages.MessageService/${m}`) },
    { weight: 1, arbitrary: fuzzString.map((s) => `/${encodeURIComponent(s)}`) },
  ),
  contentType: fc.constantFrom(
    "application/grpc",
    "application/grpc",
    "application/grpc+proto",
    "application/json",
    "text/plain",
  ),
  body: fc.oneof(
    { weight: 3, arbitrary: validPayload.map((p) => grpcFrame(p, false, 0)) },
    {
      weight: 4,
      arbitrary: fc
        .tuple(mutated(validPayload), fc.boolean(), fc.constantFrom(0, 0, 0, 1, -1, 100, 70_000, 2 ** 31))
        .map(([p, compressed, delta]) => grpcFrame(p, compressed && delta === 0, delta)),
    },
    { weight: 2, arbitrary: mutated(validPayload.map((p) => grpcFrame(p, false, 0))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 48 }) },
  ),
});

const callInput: fc.Arbitrary<CallInput> = fc.record({
  kind: fc.constant("call" as const),
  method: fc.constantFrom(...methods),
  content: fuzzString,
  writeConcern: fc.oneof(fc.integer({ min: -3, max: 5 }), fc.integer()),
  clientId: fuzzString,
  lastSequence: fc.oneof(fc.integer({ min: -2, max: 10 }), fc.integer()),
  authToken: fuzzString,
  idempotencyKey: fc.option(
    fuzzString.map((s) => s.replace(/[^\x20-\x7e]/g, "")),
    { freq: 3 },
  ),
  bearer: fc.constantFrom("fuzz" as const, "fuzz" as const, "none" as const, "garbage" as const),
});

const grpcInput: fc.Arbitrary<GrpcInput> = fc.oneof(rawInput, callInput);

function judge(code: number, detail: string, what: string): Outcome {
  const name = statusNames.get(code) ?? `status ${code}`;
  if (code === status.INTERNAL || code === status.UNKNOWN)
    return { kind: "finding", what: `${name} ${detail.slice(0, 300)} for ${what}` };
  return code === status.OK ? { kind: "served" } : { kind: "refused", code: name };
}

async function sendRaw(endpoints: FuzzEndpoints, input: RawInput): Promise<Outcome> {
  const what = `${input.path} ${input.contentType} ${preview(input.body)}`;
  const session = http2Connect(`http://${endpoints.grpc}`);
  try {
    return await new Promise<Outcome>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no gRPC answer in 15 s to ${what}`)), 15_000);
      session.on("error", (error) => {
        clearTimeout(timer);
        resolve({ kind: "refused", code: `session ${error.message.slice(0, 40)}` });
      });
      const request = session.request({
        ":method": "POST",
        ":path": input.path,
        "content-type": input.contentType,
        te: "trailers",
        authorization: `Bearer ${endpoints.token}`,
      });
      let headers: Record<string, unknown> = {};
      request.on("response", (h) => {
        headers = h;
      });
      request.on("trailers", (t) => {
        headers = { ...headers, ...t };
      });
      request.on("data", () => {});
      request.on("error", (error) => {
        clearTimeout(timer);
        resolve({ kind: "refused", code: `stream ${error.message.slice(0, 40)}` });
      });
      request.on("close", () => {
        clearTimeout(timer);
        const httpStatus = Number(headers[":status"] ?? 0);
        if (httpStatus >= 500) {
          resolve({ kind: "finding", what: `HTTP ${httpStatus} for ${what}` });
          return;
        }
        const grpcStatus = headers["grpc-status"];
        if (grpcStatus === undefined) {
          resolve({ kind: "refused", code: `HTTP ${httpStatus}, no grpc-status` });
          return;
        }
        resolve(judge(Number(grpcStatus), String(headers["grpc-message"] ?? ""), what));
      });
      request.end(input.body);
    });
  } finally {
    session.destroy();
  }
}

let client: { readonly address: string; readonly stub: MessageServiceClient } | undefined;

async function sendCall(endpoints: FuzzEndpoints, input: CallInput): Promise<Outcome> {
  if (client?.address !== endpoints.grpc) {
    client?.stub.close();
    client = {
      address: endpoints.grpc,
      stub: new MessageServiceClient(endpoints.grpc, credentials.createInsecure()),
    };
  }
  const token =
    input.bearer === "fuzz"
      ? endpoints.token
      : input.bearer === "garbage"
        ? `${endpoints.token.slice(0, 30)}x`
        : undefined;
  const metadata = new Metadata();
  if (token !== undefined) metadata.set("authorization", `Bearer ${token}`);
  const what = JSON.stringify(input).slice(0, 300);
  try {
    const stub = client.stub;
    if (input.method === "PostMessage") {
      const answered = await stub.postMessage(
        { content: input.content, write_concern: input.writeConcern | 0, client_id: input.clientId },
        {
          ...(token !== undefined ? { token } : {}),
          ...(input.idempotencyKey !== null ? { idempotencyKey: input.idempotencyKey } : {}),
        },
      );
      // PostMessage answers a failure in its response, as the seed did, with the code in a trailer.
      if (answered.response.status !== "success") {
        const code = answered.trailers["cairn-code"];
        if (code === undefined || code === "ERR_INTERNAL")
          return { kind: "finding", what: `PostMessage ${JSON.stringify(answered)} for ${what}` };
        return { kind: "refused", code: `PostMessage ${code}` };
      }
    } else if (input.method === "GetMessages") {
      await stub.getMessages();
    } else {
      await stub.catchUp(input.lastSequence | 0, token ?? input.authToken);
    }
    return { kind: "served" };
  } catch (error) {
    if (isServiceError(error)) return judge(error.code, error.details, what);
    throw error;
  }
}

/** The gRPC target. */
export const grpcTarget = {
  ...target("grpc", grpcInput, (endpoints, input) =>
    input.kind === "raw" ? sendRaw(endpoints, input) : sendCall(endpoints, input),
  ),
  close(): void {
    client?.stub.close();
    client = undefined;
  },
};
